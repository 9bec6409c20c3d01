package webpush

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultTTL is how long a push service keeps an undelivered message
	// (for a phone that is asleep or offline) when SenderOptions.TTL is 0.
	DefaultTTL = 24 * time.Hour
	// DefaultTimeout bounds one push request of the default HTTP client.
	DefaultTimeout = 30 * time.Second

	// bodyExcerpt is how much of an error response goes into StatusError.
	bodyExcerpt = 200
	// drainLimit is how much of a response is read so the connection can
	// be reused; a longer body costs a new connection instead.
	drainLimit = 64 << 10
)

// ErrGone is wrapped by Send when the push service answers 404 or 410: the
// subscription has expired or been withdrawn and will never work again, so
// the caller should delete it.
var ErrGone = errors.New("push subscription gone")

// Urgency is the RFC 8030 §5.3 hint that lets a push service save a
// device's battery by holding low-urgency messages.
type Urgency string

// The urgency levels of RFC 8030.
const (
	UrgencyVeryLow Urgency = "very-low"
	UrgencyLow     Urgency = "low"
	UrgencyNormal  Urgency = "normal"
	UrgencyHigh    Urgency = "high"
)

// SenderOptions configure a Sender. The zero value is usable.
type SenderOptions struct {
	// Client sends the requests. Nil means a client with DefaultTimeout
	// that does not follow redirects (a push service that redirects is
	// misconfigured, and the VAPID audience would no longer match).
	Client *http.Client
	// Subject is the VAPID sub claim, a mailto: or https: contact URI.
	// Empty means DefaultSubject.
	Subject string
	// TTL is the TTL header, in whole seconds. Zero means DefaultTTL.
	TTL time.Duration
	// Urgency, when set, is sent as the Urgency header.
	Urgency Urgency
	// Endpoints says which endpoints may be sent to; the default client
	// also refuses to connect to a non-public address (checked per
	// connection, so a DNS answer changed after subscribing is caught).
	Endpoints EndpointPolicy
}

// Sender encrypts payloads and delivers them to push services. It is safe
// for concurrent use.
type Sender struct {
	keys    *Keys
	client  *http.Client
	subject string
	ttl     string // TTL header value
	urgency Urgency
	policy  EndpointPolicy
}

// StatusError is a push service's refusal other than 404/410 (those give
// ErrGone). A 429 or 5xx is usually transient; a 400, 403 or 413 points at
// a bug or a key mismatch.
type StatusError struct {
	Host       string // push service host, e.g. fcm.googleapis.com
	StatusCode int
	Body       string // start of the response body, for the log
}

// Error implements error.
func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("push service %s answered %d", e.Host, e.StatusCode)
	}
	return fmt.Sprintf("push service %s answered %d: %q", e.Host, e.StatusCode, e.Body)
}

// NewSender returns a Sender signing with keys.
func NewSender(keys *Keys, opts SenderOptions) (*Sender, error) {
	if keys == nil {
		return nil, errors.New("webpush sender: nil keys")
	}
	s := &Sender{keys: keys, client: opts.Client, subject: opts.Subject, urgency: opts.Urgency, policy: opts.Endpoints}
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // a proxy would connect on the hub's behalf, past the address check
		tr.DialContext = (&net.Dialer{Timeout: DefaultTimeout, Control: opts.Endpoints.dialControl}).DialContext
		s.client = &http.Client{
			Transport: tr,
			Timeout:   DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if s.subject == "" {
		s.subject = DefaultSubject
	}
	if !validSubject(s.subject) {
		return nil, fmt.Errorf("webpush sender: VAPID subject %q is not a mailto: or https: URI", s.subject)
	}
	ttl := opts.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second {
		return nil, fmt.Errorf("webpush sender: TTL %v must be at least 1s", ttl)
	}
	s.ttl = strconv.FormatInt(int64(ttl/time.Second), 10)
	switch s.urgency {
	case "", UrgencyVeryLow, UrgencyLow, UrgencyNormal, UrgencyHigh:
	default:
		return nil, fmt.Errorf("webpush sender: unknown urgency %q", s.urgency)
	}
	return s, nil
}

// Send encrypts payload for sub and POSTs it to sub's push service. It
// returns nil when the service accepted the message (200, 201 or 202), an
// error wrapping ErrGone on 404 or 410, a *StatusError on any other status,
// and otherwise the transport or validation error. Errors name the push
// service host but never the full endpoint, which is a secret capability.
func (s *Sender) Send(ctx context.Context, sub Subscription, payload []byte) error {
	return s.send(ctx, sub, payload, encryptParams{})
}

// send is Send with injectable encryption randomness, for tests.
func (s *Sender) send(ctx context.Context, sub Subscription, payload []byte, p encryptParams) error {
	ps, err := sub.parse()
	if err != nil {
		return err
	}
	if err := s.policy.checkStatic(ps.endpoint); err != nil {
		return err
	}
	host := ps.endpoint.Host
	body, err := encrypt(payload, ps.uaPublic, ps.auth, p)
	if err != nil {
		return fmt.Errorf("push to %s: encrypt: %w", host, err)
	}
	auth, err := vapidAuthorization(s.keys, ps.endpoint, s.subject, time.Now())
	if err != nil {
		return fmt.Errorf("push to %s: %w", host, err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ps.endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("push to %s: %w", host, err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("TTL", s.ttl)
	if s.urgency != "" {
		req.Header.Set("Urgency", string(s.urgency))
	}

	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error repeats the full endpoint; keep only the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("push to %s: %w", host, err)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, bodyExcerpt))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))

	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusAccepted:
		return nil
	case http.StatusNotFound, http.StatusGone:
		return fmt.Errorf("push service %s answered %d: %w", host, resp.StatusCode, ErrGone)
	}
	return &StatusError{Host: host, StatusCode: resp.StatusCode, Body: excerpt(head)}
}

// excerpt makes a log string of the start of a body; invalid UTF-8 (or a
// rune cut in half at the limit) becomes U+FFFD, and %q in StatusError
// escapes the rest.
func excerpt(b []byte) string {
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
}
