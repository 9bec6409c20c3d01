package webpush

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/agentcom/agentcom/internal/storage"
)

// KeysFileName is the conventional name of the VAPID key file inside the
// hub's data directory.
const KeysFileName = "vapid_keys.json"

// Sizes of the encoded key material.
const (
	// PublicKeySize is the length of an uncompressed P-256 point (0x04‖X‖Y).
	PublicKeySize = 65
	// PrivateKeySize is the length of a P-256 private scalar.
	PrivateKeySize = 32
)

// ErrBadKeyFile marks a VAPID key file that exists but cannot be used:
// unreadable, group/world accessible, not JSON, or holding keys that are
// invalid or do not belong together. LoadOrCreateKeys never overwrites such
// a file: replacing the keys invalidates every browser subscription, so that
// is the operator's decision (delete or fix the file, then restart).
var ErrBadKeyFile = errors.New("bad VAPID key file")

// ErrBadKey marks VAPID key material (from the environment or a file) that
// does not decode to a valid P-256 key pair.
var ErrBadKey = errors.New("bad VAPID key")

// Keys is the hub's VAPID key pair. The public half is what browsers pass
// as applicationServerKey when subscribing; the private half signs the
// VAPID JWT of every push. A Keys is immutable and safe for concurrent use.
type Keys struct {
	priv *ecdsa.PrivateKey
	pub  []byte // 65-byte uncompressed point
}

// keyFile is the on-disk form of Keys: both halves base64url without
// padding, the same encoding as the VAPID_* environment variables, so an
// operator can copy them between the two.
type keyFile struct {
	PublicKey  string `json:"public_key"`
	PrivateKey string `json:"private_key"`
}

// GenerateKeys makes a fresh P-256 key pair.
func GenerateKeys() (*Keys, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate VAPID key: %w", err)
	}
	return newKeys(priv)
}

// KeysFromBase64 builds Keys from the base64url encodings of the 65-byte
// uncompressed public key and the 32-byte private scalar (the form of the
// VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY environment variables, and of
// common VAPID key generators). Padding is optional. The public key must be
// the one that belongs to the private key.
func KeysFromBase64(pub, priv string) (*Keys, error) {
	pubBytes, err := decodeBase64URL(strings.TrimSpace(pub))
	if err != nil {
		return nil, fmt.Errorf("%w: public key is not base64url: %v", ErrBadKey, err)
	}
	privBytes, err := decodeBase64URL(strings.TrimSpace(priv))
	if err != nil {
		return nil, fmt.Errorf("%w: private key is not base64url: %v", ErrBadKey, err)
	}
	if len(pubBytes) != PublicKeySize {
		return nil, fmt.Errorf("%w: public key is %d bytes, want %d", ErrBadKey, len(pubBytes), PublicKeySize)
	}
	if len(privBytes) != PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes, want %d", ErrBadKey, len(privBytes), PrivateKeySize)
	}
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), privBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: private key: %v", ErrBadKey, err)
	}
	k, err := newKeys(key)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(k.pub, pubBytes) != 1 {
		return nil, fmt.Errorf("%w: public key does not match the private key", ErrBadKey)
	}
	return k, nil
}

// LoadOrCreateKeys returns the key pair kept in the file at path, creating
// the file (and its directory, mode 0700) with a fresh pair when it does
// not exist. The file is written atomically with mode 0600, so a crash
// never leaves a half-written key file behind.
//
// A file that exists but is unusable yields an error wrapping
// ErrBadKeyFile and is left untouched (see ErrBadKeyFile). On Unix the
// file must not be readable or writable by group or others.
func LoadOrCreateKeys(path string) (*Keys, error) {
	k, err := loadKeys(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, err = GenerateKeys()
	if err != nil {
		return nil, err
	}
	created, err := createKeyFile(path, k)
	if err != nil {
		return nil, err
	}
	if !created {
		// Another process created the file between our look and our
		// write; its keys win so both end up with the same pair.
		return loadKeys(path)
	}
	return k, nil
}

// ResolveKeys applies the hub's key policy: when both envPublic and
// envPrivate (the VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY values) are set,
// they are the keys; when neither is, the keys come from the file at path
// through LoadOrCreateKeys. Setting only one of the two is an error rather
// than a silent fallback to the file.
func ResolveKeys(envPublic, envPrivate, path string) (*Keys, error) {
	if k, set, err := envKeys(envPublic, envPrivate); set {
		return k, err
	}
	return LoadOrCreateKeys(path)
}

// ResolveSharedKeys is ResolveKeys for hubs sharing one store: without
// the environment variables the keys live in the store's settings
// (SharedKeysSetting), created by the first hub, so a browser subscribed
// through any hub receives pushes from every hub.
func ResolveSharedKeys(ctx context.Context, envPublic, envPrivate string, s storage.SettingsStore) (*Keys, error) {
	if k, set, err := envKeys(envPublic, envPrivate); set {
		return k, err
	}
	return LoadOrCreateSharedKeys(ctx, s)
}

// envKeys reads the key pair from the environment's values and reports
// whether either was set; only one of the two is an error rather than a
// silent fallback.
func envKeys(envPublic, envPrivate string) (k *Keys, set bool, err error) {
	hasPub, hasPriv := strings.TrimSpace(envPublic) != "", strings.TrimSpace(envPrivate) != ""
	switch {
	case hasPub && hasPriv:
		k, err = KeysFromBase64(envPublic, envPrivate)
		return k, true, err
	case hasPub || hasPriv:
		return nil, true, fmt.Errorf("%w: VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY must be set together", ErrBadKey)
	}
	return nil, false, nil
}

// SharedKeysSetting is the settings key of the VAPID key pair on a shared
// store; the value has the key file's form.
const SharedKeysSetting = "webpush_vapid_keys"

// LoadOrCreateSharedKeys returns the key pair kept in s, storing a fresh
// one when there is none; hubs racing to create it all end up with the
// first one stored. A stored value that is unusable wraps ErrBadKeyFile
// and is left untouched, as a bad key file is.
func LoadOrCreateSharedKeys(ctx context.Context, s storage.SettingsStore) (*Keys, error) {
	fresh, err := GenerateKeys()
	if err != nil {
		return nil, err
	}
	v, err := json.Marshal(keyFile{PublicKey: fresh.PublicKeyBase64(), PrivateKey: fresh.PrivateKeyBase64()})
	if err != nil {
		return nil, fmt.Errorf("encode VAPID keys: %w", err)
	}
	stored, err := s.PutIfAbsent(ctx, SharedKeysSetting, v)
	if err != nil {
		return nil, fmt.Errorf("store VAPID keys: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(stored, &kf); err != nil || kf.PublicKey == "" || kf.PrivateKey == "" {
		return nil, fmt.Errorf("%w: setting %s: want {public_key, private_key}", ErrBadKeyFile, SharedKeysSetting)
	}
	k, err := KeysFromBase64(kf.PublicKey, kf.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w: setting %s: %v", ErrBadKeyFile, SharedKeysSetting, err)
	}
	return k, nil
}

// PublicKeyBase64 is the base64url (no padding) encoding of the 65-byte
// uncompressed public key: the value of vapid_public_key in
// GET /api/dashboard/vapid-key and of the k= parameter of the VAPID header.
func (k *Keys) PublicKeyBase64() string {
	return base64.RawURLEncoding.EncodeToString(k.pub)
}

// PrivateKeyBase64 is the base64url (no padding) encoding of the 32-byte
// private scalar, the form VAPID_PRIVATE_KEY takes.
func (k *Keys) PrivateKeyBase64() string {
	d, err := k.priv.Bytes()
	if err != nil {
		// newKeys checked the key; a P-256 key always encodes.
		panic(fmt.Sprintf("webpush: encode private key: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(d)
}

// PublicKey returns a copy of the 65-byte uncompressed public key.
func (k *Keys) PublicKey() []byte {
	return append([]byte(nil), k.pub...)
}

// newKeys wraps a P-256 private key, caching its public point.
func newKeys(priv *ecdsa.PrivateKey) (*Keys, error) {
	pub, err := priv.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	// The ecdh view of the same key is what a push service would check the
	// point with; insisting on it here keeps odd keys out early.
	if _, err := ecdh.P256().NewPublicKey(pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return &Keys{priv: priv, pub: pub}, nil
}

// loadKeys reads and checks the key file. A missing file is reported as an
// error wrapping fs.ErrNotExist; every other problem wraps ErrBadKeyFile.
func loadKeys(path string) (*Keys, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrBadKeyFile, path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w %s: not a regular file", ErrBadKeyFile, path)
	}
	// Windows has no Unix permission bits to check.
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("%w %s: mode %04o gives other users access to the private key; run chmod 600 on it",
			ErrBadKeyFile, path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrBadKeyFile, path, err)
	}
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, fmt.Errorf("%w %s: not JSON: %v", ErrBadKeyFile, path, err)
	}
	if kf.PublicKey == "" || kf.PrivateKey == "" {
		return nil, fmt.Errorf("%w %s: public_key and private_key are both required", ErrBadKeyFile, path)
	}
	k, err := KeysFromBase64(kf.PublicKey, kf.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrBadKeyFile, path, err)
	}
	return k, nil
}

// createKeyFile writes k to path unless path already exists, and reports
// whether it did. The keys go to a 0600 temporary file that is fsynced and
// then hard-linked to path: the link fails if path appeared meanwhile, and
// path is never visible half-written.
func createKeyFile(path string, k *Keys) (created bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("create VAPID key dir: %w", err)
	}
	data, err := json.MarshalIndent(keyFile{PublicKey: k.PublicKeyBase64(), PrivateKey: k.PrivateKeyBase64()}, "", "  ")
	if err != nil {
		return false, fmt.Errorf("encode VAPID keys: %w", err)
	}
	data = append(data, '\n')

	tmp, err := os.CreateTemp(dir, ".vapid-*.tmp") // CreateTemp uses mode 0600
	if err != nil {
		return false, fmt.Errorf("write VAPID key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // the link (if any) keeps the data
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return false, fmt.Errorf("write VAPID key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write VAPID key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write VAPID key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("write VAPID key file: %w", err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("write VAPID key file: %w", err)
	}
	syncDir(dir)
	return true, nil
}

// syncDir makes a new directory entry durable. Failure only weakens crash
// safety (the file may vanish on power loss and be regenerated next start),
// and some platforms cannot fsync a directory, so it is not reported.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// decodeBase64URL decodes base64url with or without '=' padding.
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
