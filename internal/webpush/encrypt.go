package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Message encryption per RFC 8291 with the aes128gcm content coding of
// RFC 8188. Every message is one record:
//
//	header:  salt (16) ‖ rs (uint32 BE) ‖ idlen (1) ‖ keyid (as_public, 65)
//	record:  AES-128-GCM(CEK, NONCE, payload ‖ 0x02) ‖ tag (16)
//
// where, with a fresh ephemeral application-server key pair (as_private,
// as_public) and the subscription's ua_public and auth secret:
//
//	ecdh_secret = ECDH(as_private, ua_public)
//	IKM   = HKDF(salt=auth, ikm=ecdh_secret, info="WebPush: info"‖0x00‖ua_public‖as_public, 32)
//	PRK   = HKDF-Extract(salt, IKM)
//	CEK   = HKDF-Expand(PRK, "Content-Encoding: aes128gcm"‖0x00, 16)
//	NONCE = HKDF-Expand(PRK, "Content-Encoding: nonce"‖0x00, 12)
//
// The single record is also the last one, so its padding delimiter is 0x02
// and no padding follows; the nonce is NONCE XOR sequence number 0.

const (
	// RecordSize is the rs value written in every message header.
	RecordSize = 4096
	// MaxPayloadSize is the largest plaintext a message can carry. RFC 8291
	// §4 caps the encrypted body at 4096 bytes, the size push services must
	// accept: 4096 − 86 (header) − 16 (tag) − 1 (delimiter) = 3993.
	MaxPayloadSize = RecordSize - headerSize - tagSize - 1

	saltSize   = 16
	authSize   = 16
	headerSize = saltSize + 4 + 1 + PublicKeySize
	tagSize    = 16
	keySize    = 16
	nonceSize  = 12

	// lastRecordDelimiter ends the plaintext of the final record (RFC 8188 §2).
	lastRecordDelimiter = 0x02
)

// ErrPayloadTooLarge is returned for a payload over MaxPayloadSize bytes.
var ErrPayloadTooLarge = errors.New("push payload too large")

// encryptParams are the per-message random inputs. Production code leaves
// them nil and gets fresh ones; tests set them to replay RFC 8291's
// Appendix A vector.
type encryptParams struct {
	salt      []byte           // 16 bytes
	ephemeral *ecdh.PrivateKey // as_private, P-256
}

// encrypt produces the aes128gcm body carrying payload for the user agent
// whose public key is uaPublic and whose auth secret is auth.
func encrypt(payload []byte, uaPublic *ecdh.PublicKey, auth []byte, p encryptParams) ([]byte, error) {
	if len(payload) > MaxPayloadSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(payload), MaxPayloadSize)
	}
	if len(auth) != authSize {
		return nil, fmt.Errorf("auth secret is %d bytes, want %d", len(auth), authSize)
	}
	salt := p.salt
	if salt == nil {
		salt = make([]byte, saltSize)
		if _, err := rand.Read(salt); err != nil {
			return nil, fmt.Errorf("salt: %w", err)
		}
	}
	if len(salt) != saltSize {
		return nil, fmt.Errorf("salt is %d bytes, want %d", len(salt), saltSize)
	}
	asPrivate := p.ephemeral
	if asPrivate == nil {
		var err error
		if asPrivate, err = ecdh.P256().GenerateKey(rand.Reader); err != nil {
			return nil, fmt.Errorf("ephemeral key: %w", err)
		}
	}
	asPublic := asPrivate.PublicKey().Bytes()

	cek, nonce, err := deriveKeys(asPrivate, uaPublic, asPublic, uaPublic.Bytes(), auth, salt)
	if err != nil {
		return nil, err
	}
	gcm, err := newGCM(cek)
	if err != nil {
		return nil, err
	}

	body := make([]byte, headerSize, headerSize+len(payload)+1+tagSize)
	copy(body, salt)
	binary.BigEndian.PutUint32(body[saltSize:], RecordSize)
	body[saltSize+4] = PublicKeySize
	copy(body[saltSize+5:], asPublic)

	plain := make([]byte, 0, len(payload)+1)
	plain = append(append(plain, payload...), lastRecordDelimiter)
	return gcm.Seal(body, nonce, plain, nil), nil
}

// deriveKeys runs the RFC 8291 §3.4 key schedule and RFC 8188 §2.2–2.3
// derivations, returning the content-encryption key and the nonce.
// local is our side of the ECDH (as_private when sending, ua_private when a
// test decrypts); remote is the other side's public key.
func deriveKeys(local *ecdh.PrivateKey, remote *ecdh.PublicKey, asPublic, uaPublic, auth, salt []byte) (cek, nonce []byte, err error) {
	secret, err := local.ECDH(remote)
	if err != nil {
		return nil, nil, fmt.Errorf("ecdh: %w", err)
	}
	info := make([]byte, 0, len("WebPush: info")+1+2*PublicKeySize)
	info = append(info, "WebPush: info\x00"...)
	info = append(info, uaPublic...)
	info = append(info, asPublic...)
	ikm, err := hkdf.Key(sha256.New, secret, auth, string(info), 32)
	if err != nil {
		return nil, nil, fmt.Errorf("hkdf ikm: %w", err)
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, nil, fmt.Errorf("hkdf prk: %w", err)
	}
	if cek, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", keySize); err != nil {
		return nil, nil, fmt.Errorf("hkdf cek: %w", err)
	}
	if nonce, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", nonceSize); err != nil {
		return nil, nil, fmt.Errorf("hkdf nonce: %w", err)
	}
	return cek, nonce, nil
}

// newGCM returns AES-128-GCM keyed with cek.
func newGCM(cek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return gcm, nil
}
