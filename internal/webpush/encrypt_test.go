package webpush

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"testing"
)

// RFC 8291 Appendix A.
const (
	rfcPlaintext = "When I grow up, I want to be a watermelon"
	rfcASPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
	rfcASPublic  = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
	rfcUAPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
	rfcUAPublic  = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	rfcSalt      = "DGv6ra1nlYgDCS1FRnbzlw"
	rfcAuth      = "BTBZMqHH6r4Tts7J_aSIgg"
	rfcBody      = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)

// TestEncryptRFC8291Vector reproduces the RFC's example message byte for
// byte from its keys, salt and plaintext, and decrypts it back.
func TestEncryptRFC8291Vector(t *testing.T) {
	asPrivate, err := ecdh.P256().NewPrivateKey(b64(t, rfcASPrivate))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(asPrivate.PublicKey().Bytes(), b64(t, rfcASPublic)) {
		t.Fatal("as_public derived from as_private differs from the RFC")
	}
	uaPublic, err := ecdh.P256().NewPublicKey(b64(t, rfcUAPublic))
	if err != nil {
		t.Fatal(err)
	}
	got, err := encrypt([]byte(rfcPlaintext), uaPublic, b64(t, rfcAuth),
		encryptParams{salt: b64(t, rfcSalt), ephemeral: asPrivate})
	if err != nil {
		t.Fatal(err)
	}
	if want := b64(t, rfcBody); !bytes.Equal(got, want) {
		t.Fatalf("encrypt:\n got %x\nwant %x", got, want)
	}

	uaPrivate, err := ecdh.P256().NewPrivateKey(b64(t, rfcUAPrivate))
	if err != nil {
		t.Fatal(err)
	}
	ua := &userAgent{priv: uaPrivate, auth: b64(t, rfcAuth)}
	plain, err := ua.decrypt(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != rfcPlaintext {
		t.Fatalf("decrypt = %q", plain)
	}
}

// TestEncryptFreshRandomness checks that, left to itself, encrypt uses a
// new salt and ephemeral key per message and still round-trips, up to the
// largest payload allowed, and that the body stays within 4096 bytes.
func TestEncryptFreshRandomness(t *testing.T) {
	ua := newUserAgent(t)
	payload := bytes.Repeat([]byte("x"), MaxPayloadSize)
	a, err := encrypt(payload, ua.priv.PublicKey(), ua.auth, encryptParams{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := encrypt(payload, ua.priv.PublicKey(), ua.auth, encryptParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != RecordSize {
		t.Errorf("max payload body is %d bytes, want %d", len(a), RecordSize)
	}
	if bytes.Equal(a[:16], b[:16]) || bytes.Equal(a[21:86], b[21:86]) {
		t.Error("salt or ephemeral key repeated between messages")
	}
	for _, body := range [][]byte{a, b} {
		plain, err := ua.decrypt(body)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(plain, payload) {
			t.Fatal("round trip changed the payload")
		}
	}
	empty, err := encrypt(nil, ua.priv.PublicKey(), ua.auth, encryptParams{})
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := ua.decrypt(empty); err != nil || len(plain) != 0 {
		t.Fatalf("empty payload: %q, %v", plain, err)
	}
}

func TestEncryptRejects(t *testing.T) {
	ua := newUserAgent(t)
	_, err := encrypt(make([]byte, MaxPayloadSize+1), ua.priv.PublicKey(), ua.auth, encryptParams{})
	if !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("oversized payload: %v, want ErrPayloadTooLarge", err)
	}
	if _, err := encrypt([]byte("x"), ua.priv.PublicKey(), ua.auth[:15], encryptParams{}); err == nil {
		t.Error("short auth secret accepted")
	}
	if _, err := encrypt([]byte("x"), ua.priv.PublicKey(), ua.auth, encryptParams{salt: make([]byte, 8)}); err == nil {
		t.Error("short salt accepted")
	}
}

func BenchmarkEncrypt(b *testing.B) {
	ua := newUserAgent(b)
	payload := []byte(`{"title":"AgentCom Alert","body":"Agent offline: builder-1","icon":"/favicon.ico"}`)
	for b.Loop() {
		if _, err := encrypt(payload, ua.priv.PublicKey(), ua.auth, encryptParams{}); err != nil {
			b.Fatal(err)
		}
	}
}
