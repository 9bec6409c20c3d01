package webpush

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// pushService is a local stand-in for a push service: it records every
// request and answers with the status configured for the request's path
// (201 by default).
type pushService struct {
	*httptest.Server

	mu       sync.Mutex
	statuses map[string]int
	bodies   map[string]string
	got      []received
}

// received is one recorded push request.
type received struct {
	method, path string
	header       http.Header
	body         []byte
}

func newPushService(t *testing.T) *pushService {
	t.Helper()
	ps := &pushService{statuses: map[string]int{}, bodies: map[string]string{}}
	ps.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ps.mu.Lock()
		ps.got = append(ps.got, received{r.Method, r.URL.Path, r.Header.Clone(), body})
		status, ok := ps.statuses[r.URL.Path]
		respBody := ps.bodies[r.URL.Path]
		ps.mu.Unlock()
		if !ok {
			status = http.StatusCreated
		}
		w.WriteHeader(status)
		io.WriteString(w, respBody)
	}))
	t.Cleanup(ps.Close)
	return ps
}

// answer makes the service reply to path with status and body.
func (ps *pushService) answer(path string, status int, body string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.statuses[path] = status
	ps.bodies[path] = body
}

func (ps *pushService) requests() []received {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]received(nil), ps.got...)
}

func newTestSender(t *testing.T, ps *pushService, opts SenderOptions) (*Sender, *Keys) {
	t.Helper()
	keys, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Client == nil {
		opts.Client = ps.Client()
	}
	opts.Endpoints.AllowPrivate = true // the fake push service is on loopback
	s, err := NewSender(keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, keys
}

// TestSendDeliversDecryptableMessage is the end-to-end check: the push
// service receives a POST with correct VAPID and encoding headers, and the
// browser's keys decrypt the body back to the payload.
func TestSendDeliversDecryptableMessage(t *testing.T) {
	ps := newPushService(t)
	sender, keys := newTestSender(t, ps, SenderOptions{
		Subject: "https://ops.example/contact",
		TTL:     90 * time.Minute,
		Urgency: UrgencyHigh,
	})
	ua := newUserAgent(t)
	sub := ua.subscription(ps.URL + "/push/abc123")
	payload := []byte(`{"title":"AgentCom Alert","body":"Agent offline: a1","icon":"/favicon.ico"}`)

	before := time.Now()
	if err := sender.Send(context.Background(), sub, payload); err != nil {
		t.Fatal(err)
	}
	after := time.Now()

	reqs := ps.requests()
	if len(reqs) != 1 {
		t.Fatalf("push service got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/push/abc123" {
		t.Errorf("request %s %s", r.method, r.path)
	}
	for h, want := range map[string]string{
		"Content-Encoding": "aes128gcm",
		"Content-Type":     "application/octet-stream",
		"TTL":              "5400",
		"Urgency":          "high",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}

	claims := verifyVAPID(t, r.header.Get("Authorization"), keys)
	if want := strings.ToLower(ps.URL); claims.Aud != want {
		t.Errorf("aud = %q, want %q", claims.Aud, want)
	}
	if claims.Sub != "https://ops.example/contact" {
		t.Errorf("sub = %q", claims.Sub)
	}
	lo, hi := before.Add(12*time.Hour).Unix()-1, after.Add(12*time.Hour).Unix()+1
	if claims.Exp < lo || claims.Exp > hi {
		t.Errorf("exp = %d, want 12 h ahead (%d..%d)", claims.Exp, lo, hi)
	}

	plain, err := ua.decrypt(r.body)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	if string(plain) != string(payload) {
		t.Fatalf("decrypted %q, want %q", plain, payload)
	}
}

// verifyVAPID parses "vapid t=<jwt>, k=<key>", checks that k is the hub's
// key and that the ES256 signature verifies with it, and returns the claims.
func verifyVAPID(t *testing.T, header string, keys *Keys) vapidClaims {
	t.Helper()
	rest, ok := strings.CutPrefix(header, "vapid ")
	if !ok {
		t.Fatalf("Authorization %q is not a vapid scheme", header)
	}
	params := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			t.Fatalf("bad vapid parameter %q", p)
		}
		params[name] = value
	}
	if params["k"] != keys.PublicKeyBase64() {
		t.Fatalf("k = %q, want the hub's public key", params["k"])
	}
	parts := strings.Split(params["t"], ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d parts", len(parts))
	}
	var hdr struct{ Typ, Alg string }
	if err := json.Unmarshal(b64(t, parts[0]), &hdr); err != nil || hdr.Alg != "ES256" || hdr.Typ != "JWT" {
		t.Fatalf("JWT header %s (%v)", b64(t, parts[0]), err)
	}
	sig := b64(t, parts[2])
	if len(sig) != 64 {
		t.Fatalf("signature is %d bytes, want 64 (R‖S)", len(sig))
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b64(t, params["k"]))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		t.Fatal("JWT signature does not verify with the public key")
	}
	var claims vapidClaims
	dec := json.NewDecoder(strings.NewReader(string(b64(t, parts[1]))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&claims); err != nil {
		t.Fatalf("claims: %v", err)
	}
	return claims
}

func TestSendDefaults(t *testing.T) {
	ps := newPushService(t)
	keys, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	// The default client, subject and TTL (the fake push service is on
	// loopback, which only this policy lets the default client reach).
	sender, err := NewSender(keys, SenderOptions{Endpoints: EndpointPolicy{AllowPrivate: true}})
	if err != nil {
		t.Fatal(err)
	}
	ua := newUserAgent(t)
	if err := sender.Send(context.Background(), ua.subscription(ps.URL+"/d"), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	r := ps.requests()[0]
	if got := r.header.Get("TTL"); got != "86400" {
		t.Errorf("TTL = %q, want 86400", got)
	}
	if _, ok := r.header["Urgency"]; ok {
		t.Error("Urgency sent though not configured")
	}
	if c := verifyVAPID(t, r.header.Get("Authorization"), keys); c.Sub != DefaultSubject {
		t.Errorf("sub = %q, want %q", c.Sub, DefaultSubject)
	}
}

func TestSendStatuses(t *testing.T) {
	ps := newPushService(t)
	sender, _ := newTestSender(t, ps, SenderOptions{})
	ua := newUserAgent(t)
	long := strings.Repeat("e", 1000)
	tests := []struct {
		status   int
		body     string
		wantGone bool
		wantErr  bool
	}{
		{http.StatusOK, "", false, false},
		{http.StatusCreated, "", false, false},
		{http.StatusAccepted, "", false, false},
		{http.StatusNotFound, "no such subscription", true, true},
		{http.StatusGone, "", true, true},
		{http.StatusBadRequest, "bad crypto", false, true},
		{http.StatusForbidden, "vapid mismatch", false, true},
		{http.StatusTooManyRequests, long, false, true},
		{http.StatusInternalServerError, "", false, true},
		{http.StatusTemporaryRedirect, "", false, true},
	}
	for _, tc := range tests {
		path := "/s" + http.StatusText(tc.status)
		path = strings.ReplaceAll(path, " ", "")
		ps.answer(path, tc.status, tc.body)
		err := sender.Send(context.Background(), ua.subscription(ps.URL+path), []byte("x"))
		if gotErr := err != nil; gotErr != tc.wantErr {
			t.Errorf("%d: err = %v, want error %v", tc.status, err, tc.wantErr)
			continue
		}
		if got := errors.Is(err, ErrGone); got != tc.wantGone {
			t.Errorf("%d: errors.Is(ErrGone) = %v", tc.status, got)
		}
		if !tc.wantErr || tc.wantGone {
			continue
		}
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != tc.status {
			t.Errorf("%d: err = %v, want *StatusError with that code", tc.status, err)
			continue
		}
		if len(se.Body) > bodyExcerpt || !strings.HasPrefix(tc.body, se.Body) {
			t.Errorf("%d: body excerpt %q", tc.status, se.Body)
		}
		if strings.Contains(err.Error(), path) {
			t.Errorf("%d: error %q reveals the endpoint path", tc.status, err)
		}
	}
}

// TestSendTransportErrorHidesEndpoint checks that a network failure names
// the push service host but not the endpoint, which is a capability.
func TestSendTransportErrorHidesEndpoint(t *testing.T) {
	ps := newPushService(t)
	sender, _ := newTestSender(t, ps, SenderOptions{})
	endpoint := ps.URL + "/secret-capability-token"
	ps.Close()
	err := sender.Send(context.Background(), newUserAgent(t).subscription(endpoint), []byte("x"))
	if err == nil {
		t.Fatal("send to a closed server succeeded")
	}
	if errors.Is(err, ErrGone) {
		t.Error("transport error reported as gone")
	}
	if strings.Contains(err.Error(), "secret-capability-token") {
		t.Errorf("error %q reveals the endpoint", err)
	}
}

func TestSendHonoursContext(t *testing.T) {
	ps := newPushService(t)
	sender, _ := newTestSender(t, ps, SenderOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := sender.Send(ctx, newUserAgent(t).subscription(ps.URL+"/c"), []byte("x"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestSendRejectsBadInput(t *testing.T) {
	ps := newPushService(t)
	sender, _ := newTestSender(t, ps, SenderOptions{})
	ua := newUserAgent(t)

	bad := ua.subscription("https://push.example/x")
	bad.Keys.Auth = base64.RawURLEncoding.EncodeToString([]byte("short"))
	if err := sender.Send(context.Background(), bad, []byte("x")); !errors.Is(err, ErrInvalidSubscription) {
		t.Errorf("bad subscription: %v", err)
	}
	err := sender.Send(context.Background(), ua.subscription(ps.URL+"/big"), make([]byte, MaxPayloadSize+1))
	if !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("big payload: %v", err)
	}
	if n := len(ps.requests()); n != 0 {
		t.Errorf("push service got %d requests for bad input", n)
	}
}

func TestNewSenderOptions(t *testing.T) {
	keys, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSender(nil, SenderOptions{}); err == nil {
		t.Error("nil keys accepted")
	}
	for _, opts := range []SenderOptions{
		{Subject: "admin@agentcom.local"},
		{Subject: "mailto:"},
		{Subject: "http://ops.example"},
		{Subject: "https://"},
		{TTL: -time.Second},
		{TTL: time.Millisecond},
		{Urgency: "urgent"},
	} {
		if _, err := NewSender(keys, opts); err == nil {
			t.Errorf("options %+v accepted", opts)
		}
	}
	for _, opts := range []SenderOptions{
		{Subject: "mailto:ops@example.com"},
		{Subject: "https://ops.example/contact", TTL: time.Second, Urgency: UrgencyVeryLow},
	} {
		if _, err := NewSender(keys, opts); err != nil {
			t.Errorf("options %+v: %v", opts, err)
		}
	}
}

func BenchmarkSendBody(b *testing.B) {
	keys, err := GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	ua := newUserAgent(b)
	sub, err := ua.subscription("https://push.example/x").parse()
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"title":"AgentCom Alert","body":"Agent offline: a1","icon":"/favicon.ico"}`)
	for b.Loop() {
		if _, err := encrypt(payload, sub.uaPublic, sub.auth, encryptParams{}); err != nil {
			b.Fatal(err)
		}
		if _, err := vapidAuthorization(keys, sub.endpoint, DefaultSubject, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDefaultClientRefusesPrivateAddresses: by default the sender
// refuses endpoints that are not https on a public address, and its
// client refuses to connect to a non-public address whatever name led
// there (a DNS answer changed after subscribing).
func TestDefaultClientRefusesPrivateAddresses(t *testing.T) {
	ps := newPushService(t)
	keys, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	sender, err := NewSender(keys, SenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ua := newUserAgent(t)
	for _, ep := range []string{ps.URL + "/d", "https://127.0.0.1:1/d", "https://[::1]:1/d", "https://10.0.0.7/d", "https://169.254.169.254/d"} {
		var se *SubscriptionError
		if err := sender.Send(t.Context(), ua.subscription(ep), []byte("hi")); !errors.As(err, &se) {
			t.Errorf("send to %s: %v, want a refused endpoint", ep, err)
		}
	}
	// Past the URL check, the dialer itself refuses: "localhost" stands
	// for a public-looking name that resolves to this machine.
	u := strings.Replace(ps.URL, "127.0.0.1", "localhost", 1)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", u+"/d", nil)
	if resp, err := sender.client.Do(req); err == nil || !strings.Contains(err.Error(), "not public") {
		if resp != nil {
			resp.Body.Close()
		}
		t.Fatalf("default client reached %s: %v", u, err)
	}
	if n := len(ps.requests()); n != 0 {
		t.Fatalf("push service got %d requests", n)
	}
	for _, a := range []string{"8.8.8.8", "2606:4700::1111"} {
		if !PublicAddr(netip.MustParseAddr(a)) {
			t.Errorf("%s counted as non-public", a)
		}
	}
	for _, a := range []string{"127.0.0.1", "10.1.1.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "::1", "fe80::1",
		"fc00::1", "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1", "64:ff9b::a00:1"} {
		if PublicAddr(netip.MustParseAddr(a)) {
			t.Errorf("%s counted as public", a)
		}
	}
}
