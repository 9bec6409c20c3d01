package webpush

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// VAPID (RFC 8292) identifies the hub to push services: every request
// carries an ES256-signed JWT whose audience is the push service's origin,
// plus the public key that verifies it (the same key browsers subscribed
// with as applicationServerKey).

const (
	// DefaultSubject is the VAPID sub claim when none is configured.
	DefaultSubject = "mailto:admin@agentcom.local"
	// tokenLifetime is the JWT exp horizon; RFC 8292 §2 caps it at 24 h.
	tokenLifetime = 12 * time.Hour
)

// jwtHeader is the fixed, pre-encoded JOSE header of every VAPID token.
var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"ES256"}`))

// vapidClaims is the JWT claim set of RFC 8292 §2.
type vapidClaims struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Sub string `json:"sub"`
}

// vapidAuthorization returns the Authorization header value for a push to
// endpoint: "vapid t=<jwt>, k=<public key>".
func vapidAuthorization(k *Keys, endpoint *url.URL, subject string, now time.Time) (string, error) {
	jwt, err := signVAPID(k.priv, vapidClaims{
		Aud: audience(endpoint),
		Exp: now.Add(tokenLifetime).Unix(),
		Sub: subject,
	})
	if err != nil {
		return "", err
	}
	return "vapid t=" + jwt + ", k=" + k.PublicKeyBase64(), nil
}

// signVAPID builds the compact JWS: header.claims.signature, where the
// signature is ES256 in the JWS form (R‖S, 32 bytes each, RFC 7518 §3.4),
// not ASN.1.
func signVAPID(priv *ecdsa.PrivateKey, c vapidClaims) (string, error) {
	claims, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("vapid claims: %w", err)
	}
	signingInput := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signingInput))
	r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
	if err != nil {
		return "", fmt.Errorf("vapid sign: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// audience is the origin of the push service: scheme://host[:port], in
// lower case as origins are compared.
func audience(endpoint *url.URL) string {
	return strings.ToLower(endpoint.Scheme + "://" + endpoint.Host)
}

// validSubject reports whether sub is a contact URI RFC 8292 §2.1 accepts:
// a mailto: address or an https: URL.
func validSubject(sub string) bool {
	u, err := url.Parse(sub)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "mailto":
		return u.Opaque != "" && strings.Contains(u.Opaque, "@")
	case "https":
		return u.Host != ""
	}
	return false
}
