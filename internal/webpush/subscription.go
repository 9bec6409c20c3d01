package webpush

import (
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Limits on outside input. Real endpoints are a few hundred bytes; the
// bounds only keep junk out of the store.
const (
	// MaxEndpointLength bounds Subscription.Endpoint.
	MaxEndpointLength = 2048
	// MaxSubscriptionJSON bounds the JSON ParseSubscription accepts.
	MaxSubscriptionJSON = 8 << 10
)

// ErrInvalidSubscription is wrapped by every *SubscriptionError.
var ErrInvalidSubscription = errors.New("invalid push subscription")

// Subscription is one browser's push subscription, in the shape of
// PushSubscription.toJSON():
//
//	{"endpoint": "https://...", "expirationTime": null,
//	 "keys": {"p256dh": "<base64url>", "auth": "<base64url>"}}
//
// expirationTime is accepted and ignored: browsers send null, and a
// subscription that lapses is reported by its push service with 404/410.
type Subscription struct {
	// Endpoint is the push service URL messages are POSTed to. It is a
	// capability: whoever knows it can push to the browser (if they also
	// hold the keys), so it is kept out of error messages.
	Endpoint string           `json:"endpoint"`
	Keys     SubscriptionKeys `json:"keys"`
}

// SubscriptionKeys are the browser's message-encryption inputs.
type SubscriptionKeys struct {
	// P256dh is the user agent's P-256 public key (65-byte uncompressed
	// point), base64url.
	P256dh string `json:"p256dh"`
	// Auth is the 16-byte authentication secret, base64url.
	Auth string `json:"auth"`
}

// SubscriptionError says which field of a subscription is wrong and why.
// Field uses the JSON path ("endpoint", "keys.p256dh", "keys.auth", or ""
// for the document as a whole) so the HTTP layer can report it as is.
type SubscriptionError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *SubscriptionError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%v: %s", ErrInvalidSubscription, e.Reason)
	}
	return fmt.Sprintf("%v: %s: %s", ErrInvalidSubscription, e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidSubscription) hold.
func (e *SubscriptionError) Unwrap() error { return ErrInvalidSubscription }

// ParseSubscription decodes a PushSubscription.toJSON() document and
// validates it. Unknown fields are ignored; the error is a
// *SubscriptionError.
func ParseSubscription(data []byte) (Subscription, error) {
	if len(data) > MaxSubscriptionJSON {
		return Subscription{}, &SubscriptionError{Reason: fmt.Sprintf("larger than %d bytes", MaxSubscriptionJSON)}
	}
	var sub Subscription
	if err := json.Unmarshal(data, &sub); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return Subscription{}, &SubscriptionError{Field: typeErr.Field, Reason: "must be a " + typeErr.Type.String()}
		}
		return Subscription{}, &SubscriptionError{Reason: "not a JSON object: " + err.Error()}
	}
	if err := sub.Validate(); err != nil {
		return Subscription{}, err
	}
	return sub, nil
}

// Validate checks that the endpoint is an absolute https URL (http is
// allowed only for a loopback host; EndpointPolicy then decides whether
// such a host may be used at all) and that the keys
// decode to a valid P-256 point and a 16-byte secret. The error is a
// *SubscriptionError.
func (s Subscription) Validate() error {
	_, err := s.parse()
	return err
}

// parsedSubscription is a validated subscription in the form Send needs.
type parsedSubscription struct {
	endpoint *url.URL
	uaPublic *ecdh.PublicKey
	auth     []byte
}

// parse validates s and decodes its fields.
func (s Subscription) parse() (parsedSubscription, error) {
	u, err := parseEndpoint(s.Endpoint)
	if err != nil {
		return parsedSubscription{}, err
	}
	if s.Keys.P256dh == "" {
		return parsedSubscription{}, &SubscriptionError{Field: "keys.p256dh", Reason: "required"}
	}
	p256dh, err := decodeBase64URL(s.Keys.P256dh)
	if err != nil {
		return parsedSubscription{}, &SubscriptionError{Field: "keys.p256dh", Reason: "not base64url"}
	}
	if len(p256dh) != PublicKeySize {
		return parsedSubscription{}, &SubscriptionError{Field: "keys.p256dh",
			Reason: fmt.Sprintf("decodes to %d bytes, want %d", len(p256dh), PublicKeySize)}
	}
	uaPublic, err := ecdh.P256().NewPublicKey(p256dh)
	if err != nil {
		return parsedSubscription{}, &SubscriptionError{Field: "keys.p256dh", Reason: "not a P-256 public key"}
	}
	if s.Keys.Auth == "" {
		return parsedSubscription{}, &SubscriptionError{Field: "keys.auth", Reason: "required"}
	}
	auth, err := decodeBase64URL(s.Keys.Auth)
	if err != nil {
		return parsedSubscription{}, &SubscriptionError{Field: "keys.auth", Reason: "not base64url"}
	}
	if len(auth) != authSize {
		return parsedSubscription{}, &SubscriptionError{Field: "keys.auth",
			Reason: fmt.Sprintf("decodes to %d bytes, want %d", len(auth), authSize)}
	}
	return parsedSubscription{endpoint: u, uaPublic: uaPublic, auth: auth}, nil
}

// parseEndpoint checks a push endpoint URL.
func parseEndpoint(endpoint string) (*url.URL, error) {
	bad := func(reason string) error { return &SubscriptionError{Field: "endpoint", Reason: reason} }
	if endpoint == "" {
		return nil, bad("required")
	}
	if len(endpoint) > MaxEndpointLength {
		return nil, bad(fmt.Sprintf("longer than %d bytes", MaxEndpointLength))
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, bad("not a URL")
	}
	if !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, bad("must be an absolute URL")
	}
	if u.User != nil {
		return nil, bad("must not carry user credentials")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, bad("must be https")
		}
	default:
		return nil, bad("must be https")
	}
	return u, nil
}

// isLoopback reports whether host names this machine: "localhost" or a
// loopback IP literal.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
