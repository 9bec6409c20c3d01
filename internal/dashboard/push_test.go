package dashboard_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/dashboard"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/testenv"
	"github.com/agentcom/agentcom/internal/webpush"
)

// userAgent plays a browser's push subscription: it holds the private key
// and auth secret and decrypts what the hub sends (RFC 8291 receiver side).
type userAgent struct {
	priv *ecdh.PrivateKey
	auth []byte
}

func newUserAgent(t *testing.T) *userAgent {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return &userAgent{priv: priv, auth: auth}
}

func (ua *userAgent) keys() map[string]any {
	return map[string]any{
		"p256dh": base64.RawURLEncoding.EncodeToString(ua.priv.PublicKey().Bytes()),
		"auth":   base64.RawURLEncoding.EncodeToString(ua.auth),
	}
}

func (ua *userAgent) decrypt(body []byte) ([]byte, error) {
	if len(body) < 21+65 {
		return nil, errors.New("short body")
	}
	salt, idlen := body[:16], int(body[20])
	if idlen != 65 {
		return nil, errors.New("bad keyid length")
	}
	asPub := body[21 : 21+65]
	remote, err := ecdh.P256().NewPublicKey(asPub)
	if err != nil {
		return nil, err
	}
	secret, err := ua.priv.ECDH(remote)
	if err != nil {
		return nil, err
	}
	info := append(append([]byte("WebPush: info\x00"), ua.priv.PublicKey().Bytes()...), asPub...)
	ikm, err := hkdf.Key(sha256.New, secret, ua.auth, string(info), 32)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, nonce, body[21+65:], nil)
	if err != nil {
		return nil, err
	}
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 || plain[i] != 2 {
		return nil, errors.New("no padding delimiter")
	}
	return plain[:i], nil
}

// pushed is one request the fake push service received.
type pushed struct {
	path, auth, encoding string
	body                 []byte
}

// pushService is a local push service: /ok/* accepts, /gone/* answers 410.
func pushService(t *testing.T) (*httptest.Server, chan pushed) {
	t.Helper()
	got := make(chan pushed, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- pushed{path: r.URL.Path, auth: r.Header.Get("Authorization"), encoding: r.Header.Get("Content-Encoding"), body: b}
		if strings.HasPrefix(r.URL.Path, "/gone/") {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// nextPush waits for the next message to path and decrypts it.
func nextPush(t *testing.T, got chan pushed, path string, ua *userAgent, vapidKey string, aud string) webpush.Notification {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-got:
			if p.path != path {
				continue
			}
			if p.encoding != "aes128gcm" {
				t.Fatalf("Content-Encoding %q", p.encoding)
			}
			verifyVAPID(t, p.auth, vapidKey, aud)
			plain, err := ua.decrypt(p.body)
			if err != nil {
				t.Fatalf("decrypt: %v", err)
			}
			var n webpush.Notification
			if err := json.Unmarshal(plain, &n); err != nil {
				t.Fatalf("payload %q: %v", plain, err)
			}
			return n
		case <-deadline:
			t.Fatalf("no push to %s", path)
		}
	}
}

// verifyVAPID checks the RFC 8292 header: the hub's key and a valid ES256
// JWT for the push service's origin.
func verifyVAPID(t *testing.T, header, vapidKey, aud string) {
	t.Helper()
	var jwt, k string
	for _, part := range strings.Split(strings.TrimPrefix(header, "vapid "), ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "t="); ok {
			jwt = v
		}
		if v, ok := strings.CutPrefix(part, "k="); ok {
			k = v
		}
	}
	if k != vapidKey {
		t.Fatalf("VAPID k=%q, want the hub's key %q", k, vapidKey)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT %q", jwt)
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(claims, &c); err != nil || c.Aud != aud || c.Exp < time.Now().Unix() || c.Sub == "" {
		t.Fatalf("claims %s: %v", claims, err)
	}
	pub, _ := base64.RawURLEncoding.DecodeString(k)
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub)
	if err != nil {
		t.Fatalf("VAPID key: %v", err)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(key, sum[:],
		new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatalf("VAPID signature does not verify")
	}
}

// TestPushEndToEnd: real hub, real events, a local push service that
// decrypts what it receives.
func TestPushEndToEnd(t *testing.T) {
	h, _ := startHub(t, allowPrivatePush)
	srv, got := pushService(t)
	_, k := h.Do("GET", "/api/dashboard/vapid-key", "", nil)
	vapid := k["vapid_public_key"].(string)
	ua, gone := newUserAgent(t), newUserAgent(t)
	for path, u := range map[string]*userAgent{"/ok/1": ua, "/gone/1": gone} {
		if st, resp := h.Do("POST", "/api/dashboard/push-subscribe", "", map[string]any{"endpoint": srv.URL + path, "keys": u.keys()}); st != 200 {
			t.Fatalf("subscribe: %d %v", st, resp)
		}
	}
	subs := webpush.NewSubscriptions(h.Driver.PushSubscriptions(), webpush.EndpointPolicy{})

	// A completed task is silent; a dead-lettered one notifies.
	a := h.Agent("worker-1", "code")
	submit(t, h, map[string]any{"description": "fine", "needed_capabilities": []string{"code"}})
	runTask(t, a, true)
	id := submit(t, h, map[string]any{"description": "doomed", "needed_capabilities": []string{"code"}, "max_retries": 1})
	runTask(t, a, false)
	n := nextPush(t, got, "/ok/1", ua, vapid, srv.URL)
	if n.Title != dashboard.TitleAlert || n.Body != "Task dead-lettered: doomed ("+id+")" || n.Icon != "/favicon.ico" {
		t.Fatalf("dead-letter push: %+v", n)
	}
	// The push service said 410 for the other subscription: it is dropped.
	testenv.Eventually(t, "gone subscription dropped", func() bool {
		n, err := subs.Count(t.Context())
		return err == nil && n == 1
	})

	// An agent going offline with a task notifies.
	held := submit(t, h, map[string]any{"description": "in flight", "needed_capabilities": []string{"code"}})
	a.Expect("task_assign")
	a.Send(map[string]any{"type": "task_accepted", "task_id": held})
	a.Expect("task_ack")
	a.Close()
	n = nextPush(t, got, "/ok/1", ua, vapid, srv.URL)
	if n.Body != "Agent offline: worker-1 (task "+held+" returned to the queue)" {
		t.Fatalf("offline push: %+v", n)
	}

	// Storage: successes are silent, failures loud, repeats held back by
	// the cooldown. Pushes leave in event order, so the next push after
	// silent events is the next loud one.
	pub := func(p bus.Payload) { bus.Publish(h.Bus, p) }
	mailboxFull := resilience.BackupFailedEvent{Failures: []resilience.Failure{{Table: "agent_mailbox", Reason: "disk full"}}, Reason: "disk full"}
	pub(resilience.BackupCompleteEvent{TablesBackedUp: []string{"task_queue"}})
	pub(resilience.CompactionCompleteEvent{Results: []resilience.CompactResult{{Table: "task_queue", Status: "compacted"}}})
	pub(resilience.RecoveryCompleteEvent{Table: "task_queue", Trigger: resilience.TriggerManual})
	pub(resilience.DrillCompleteEvent{Results: []resilience.DrillResult{{Table: "task_queue", Status: "ok"}}})
	pub(mailboxFull)
	if n := nextPush(t, got, "/ok/1", ua, vapid, srv.URL); n.Body != "Backup failed: agent_mailbox -- disk full" {
		t.Fatalf("backup failure push: %+v", n)
	}
	pub(mailboxFull)
	pub(resilience.RecoveryCompleteEvent{Table: "thread_messages", Trigger: resilience.TriggerAuto})
	if n := nextPush(t, got, "/ok/1", ua, vapid, srv.URL); n.Body != "Auto-restore: thread_messages restored from backup" {
		t.Fatalf("after a repeat within the cooldown: %+v", n)
	}
	pub(resilience.DegradedModeEvent{Table: "agent_channels"})
	if n := nextPush(t, got, "/ok/1", ua, vapid, srv.URL); n.Title != dashboard.TitleCritical ||
		n.Body != "Storage degraded: agent_channels running empty after data loss" {
		t.Fatalf("degraded push: %+v", n)
	}
}

// allowPrivatePush lets the hub push to the local fake push service.
func allowPrivatePush(c *hub.Config) { c.Dashboard.PushAllowPrivate = true }

// TestPushSubscribePolicy: only admins subscribe (a subscription makes the
// hub send requests); by default only https endpoints on public addresses
// are accepted, so a subscription cannot aim the hub at itself or the
// local network.
func TestPushSubscribePolicy(t *testing.T) {
	h := startRemoteHub(t)
	viewer := h.Token("screen", auth.RoleViewer)
	ua := newUserAgent(t)
	sub := func(ep string) map[string]any { return map[string]any{"endpoint": ep, "keys": ua.keys()} }
	if st, resp := h.Do("POST", "/api/dashboard/push-subscribe", viewer, sub("https://push.example.com/v")); st != 403 {
		t.Fatalf("viewer subscribes: %d %v", st, resp)
	}
	for _, ep := range []string{"http://127.0.0.1:9/x", "https://127.0.0.1/x", "https://localhost/x", "https://10.0.0.7/x",
		"https://[fd00::1]/x", "https://169.254.169.254/latest", "https://metadata.localhost/x"} {
		st, resp := h.Do("POST", "/api/dashboard/push-subscribe", h.AdminToken, sub(ep))
		if st != 400 || resp["error"] != "validation_failed" {
			t.Errorf("subscribe %s: %d %v", ep, st, resp)
		}
	}
	if st, resp := h.Do("POST", "/api/dashboard/push-subscribe", h.AdminToken, sub("https://push.example.com/ok")); st != 200 {
		t.Fatalf("public endpoint: %d %v", st, resp)
	}
	subs, err := webpush.NewSubscriptions(h.Driver.PushSubscriptions(), webpush.EndpointPolicy{}).List(t.Context())
	if err != nil || len(subs) != 1 {
		t.Fatalf("stored: %v %v", subs, err)
	}
}
