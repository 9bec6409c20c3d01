package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.VerifyNone(m)
}

// b64 decodes base64url test data, failing the test on bad input.
func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

// userAgent plays the browser: it owns the subscription's private key and
// auth secret and can decrypt what the hub sends.
type userAgent struct {
	priv *ecdh.PrivateKey
	auth []byte
}

func newUserAgent(t testing.TB) *userAgent {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return &userAgent{priv: priv, auth: auth}
}

// subscription is what the browser's PushSubscription.toJSON() would give.
func (ua *userAgent) subscription(endpoint string) Subscription {
	return Subscription{
		Endpoint: endpoint,
		Keys: SubscriptionKeys{
			P256dh: base64.RawURLEncoding.EncodeToString(ua.priv.PublicKey().Bytes()),
			Auth:   base64.RawURLEncoding.EncodeToString(ua.auth),
		},
	}
}

// decrypt is the receiving side of RFC 8291 / RFC 8188, written apart from
// the package's code (HKDF by hand with HMAC) so a shared mistake in the
// key schedule cannot make a round trip pass.
func (ua *userAgent) decrypt(body []byte) ([]byte, error) {
	const fixed = 16 + 4 + 1
	if len(body) < fixed {
		return nil, errors.New("body shorter than the header")
	}
	salt := body[:16]
	rs := binary.BigEndian.Uint32(body[16:20])
	idlen := int(body[20])
	if idlen != 65 || len(body) < fixed+idlen {
		return nil, fmt.Errorf("keyid length %d", idlen)
	}
	asPublicBytes := body[fixed : fixed+idlen]
	record := body[fixed+idlen:]
	if rs < 18 || uint32(len(record)) > rs {
		return nil, fmt.Errorf("record of %d bytes does not fit rs %d as a single record", len(record), rs)
	}
	asPublic, err := ecdh.P256().NewPublicKey(asPublicBytes)
	if err != nil {
		return nil, fmt.Errorf("keyid: %w", err)
	}
	secret, err := ua.priv.ECDH(asPublic)
	if err != nil {
		return nil, err
	}
	hmacSum := func(key []byte, parts ...[]byte) []byte {
		m := hmac.New(sha256.New, key)
		for _, p := range parts {
			m.Write(p)
		}
		return m.Sum(nil)
	}
	// HKDF with one output block: Extract = HMAC(salt, ikm),
	// Expand = HMAC(prk, info ‖ 0x01) truncated.
	keyInfo := append(append([]byte("WebPush: info\x00"), ua.priv.PublicKey().Bytes()...), asPublicBytes...)
	ikm := hmacSum(hmacSum(ua.auth, secret), keyInfo, []byte{1})
	prk := hmacSum(salt, ikm)
	cek := hmacSum(prk, []byte("Content-Encoding: aes128gcm\x00"), []byte{1})[:16]
	nonce := hmacSum(prk, []byte("Content-Encoding: nonce\x00"), []byte{1})[:12]

	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, record, nil)
	if err != nil {
		return nil, fmt.Errorf("open record: %w", err)
	}
	// Strip padding: trailing zeros, then the last-record delimiter 0x02.
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 || plain[i] != 0x02 {
		return nil, errors.New("missing last-record delimiter 0x02")
	}
	return plain[:i], nil
}

// openStore opens a data directory and the bolt driver over it.
func openStore(t testing.TB, dir string) (*store.DB, storage.Driver) {
	t.Helper()
	d, db, err := boltdriver.OpenDir(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db, d
}

// newSubscriptions returns a Subscriptions over a fresh store closed at the
// end of the test.
func newSubscriptions(t testing.TB) *Subscriptions {
	t.Helper()
	subs, _ := newBoltSubscriptions(t)
	return subs
}

// newBoltSubscriptions is newSubscriptions with the bolt table underneath,
// for tests that fill it in bulk or damage it by hand.
func newBoltSubscriptions(t testing.TB) (*Subscriptions, *store.Table) {
	t.Helper()
	db, d := openStore(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	return NewSubscriptions(d.PushSubscriptions(), EndpointPolicy{AllowPrivate: true}), db.MustTable(store.PushSubscriptions)
}
