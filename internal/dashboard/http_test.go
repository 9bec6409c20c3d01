package dashboard_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/webpush"
)

// startRemoteHub runs a hub configured to listen beyond loopback (":0"),
// though the test serves it on a loopback listener: the dashboard then
// needs a token.
func startRemoteHub(t *testing.T) *hubtest.Hub {
	t.Helper()
	cfg := hub.DefaultConfig()
	cfg.Addr = ":0"
	cfg.DataDir = t.TempDir()
	hb, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.Serve(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hb.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	h := &hubtest.Hub{Hub: hb, T: t, Dir: cfg.DataDir}
	h.AdminToken = h.Token("admin", auth.RoleAdmin)
	return h
}

func TestAccessBeyondLoopback(t *testing.T) {
	h := startRemoteHub(t)
	viewer := h.Token("ops-screen", auth.RoleViewer)
	agent := h.Token("worker-1", auth.RoleAgent)

	// The page itself is public (it holds no data and asks for a token).
	if st, body := h.DoRaw("GET", "/dashboard", "", nil); st != 200 || !strings.Contains(string(body), "AgentCom Command Center") {
		t.Fatalf("page: %d", st)
	}
	for _, c := range []struct {
		token string
		want  int
	}{{"", 401}, {"nope", 401}, {agent, 403}, {viewer, 200}, {h.AdminToken, 200}} {
		if st, _ := h.DoRaw("GET", "/api/dashboard/state", c.token, nil); st != c.want {
			t.Errorf("state with %q: %d, want %d", c.token, st, c.want)
		}
	}
	if st, _ := h.DoRaw("GET", "/api/dashboard/state?token="+viewer, "", nil); st != 200 {
		t.Errorf("state with ?token=: %d", st)
	}

	// The socket enforces the same, and a viewer may only watch.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, dashURL(h), nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("socket without token: %v %v", resp, err)
	}
	v := hubtest.Dial(t, dashURL(h)+"?token="+viewer)
	if hello := v.Expect("hello"); hello["can_act"] != false || hello["role"] != "viewer" {
		t.Fatalf("viewer hello: %v", hello)
	}
	v.Expect("snapshot")
	for _, f := range []map[string]any{
		{"type": "retry_task", "task_id": "task-0000000000000000"},
		{"type": "cancel_task", "task_id": "task-0000000000000000"},
		{"type": "backup_now"},
		{"type": "compact", "table": "task_queue"},
		{"type": "restore", "table": "task_queue", "dry_run": true},
	} {
		v.Send(f)
		e := v.Expect("error")
		if e["error"] != "forbidden" || e["request"] != f["type"] {
			t.Fatalf("viewer %v: %v", f["type"], e)
		}
	}
	v.Send(map[string]any{"type": "request_snapshot"})
	v.Expect("snapshot")

	a := hubtest.Dial(t, dashURL(h)+"?token="+h.AdminToken)
	if hello := a.Expect("hello"); hello["can_act"] != true {
		t.Fatalf("admin hello: %v", hello)
	}
	a.Send(map[string]any{"type": "retry_task", "task_id": "task-0000000000000000"})
	if r := a.Expect("retry_result"); r["status"] != "not_found" {
		t.Fatalf("admin retry: %v", r)
	}
	// With no storage override the hub's own resilience coordinator is
	// behind the storage panel.
	a.Send(map[string]any{"type": "backup_now"})
	if r := a.ExpectWithin("backup_result", 30*time.Second); r["error"] != nil {
		t.Fatalf("backup through the hub's coordinator: %v", r)
	}
	s := state(t, h, h.AdminToken)
	if obj(s, "storage")["available"] != true || s["dets_health"] == nil {
		t.Fatalf("storage with the hub's coordinator: %v %v", obj(s, "storage"), s["dets_health"])
	}
}

func TestAssetsAndPushRoutes(t *testing.T) {
	h, _ := startHub(t)
	get := func(path string) *http.Response {
		resp, err := http.Get(h.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	sw := get("/sw.js")
	if sw.StatusCode != 200 || sw.Header.Get("Content-Type") != "application/javascript; charset=utf-8" ||
		sw.Header.Get("Service-Worker-Allowed") != "/" {
		t.Fatalf("sw.js: %d %v", sw.StatusCode, sw.Header)
	}
	for path, ct := range map[string]string{"/dashboard": "text/html; charset=utf-8", "/dashboard/app.js": "application/javascript; charset=utf-8",
		"/dashboard/app.css": "text/css; charset=utf-8", "/favicon.ico": "image/x-icon"} {
		if r := get(path); r.StatusCode != 200 || r.Header.Get("Content-Type") != ct {
			t.Errorf("%s: %d %q", path, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	// Nothing is loaded from elsewhere: the page works offline.
	_, page := h.DoRaw("GET", "/dashboard", "", nil)
	_, js := h.DoRaw("GET", "/dashboard/app.js", "", nil)
	for _, b := range [][]byte{page, js} {
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
			t.Fatalf("asset references another origin")
		}
	}

	st, k := h.Do("GET", "/api/dashboard/vapid-key", "", nil)
	key, _ := k["vapid_public_key"].(string)
	if st != 200 || len(key) != 87 {
		t.Fatalf("vapid key: %d %v", st, k)
	}
	// Keys are kept in the data directory, 0600, and survive a restart.
	fi, err := os.Stat(filepath.Join(h.Dir, webpush.KeysFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}

	ua := newUserAgent(t)
	bad := []struct {
		body  any
		field string
	}{
		{map[string]any{}, "endpoint"},
		{map[string]any{"endpoint": "http://push.example.com/x", "keys": ua.keys()}, "endpoint"},
		{map[string]any{"endpoint": "https://push.example.com/x", "keys": map[string]any{"p256dh": "AAAA", "auth": ua.keys()["auth"]}}, "keys.p256dh"},
		{map[string]any{"endpoint": "https://push.example.com/x", "keys": map[string]any{"p256dh": ua.keys()["p256dh"]}}, "keys.auth"},
		{map[string]any{"endpoint": 12}, "endpoint"},
	}
	for _, b := range bad {
		st, resp := h.Do("POST", "/api/dashboard/push-subscribe", "", b.body)
		errs := arr(resp, "errors")
		if st != 400 || resp["error"] != "validation_failed" || len(errs) != 1 || errs[0].(map[string]any)["field"] != b.field {
			t.Errorf("subscribe %v: %d %v", b.body, st, resp)
		}
	}
	sub := map[string]any{"endpoint": "https://push.example.com/send/abc", "expirationTime": nil, "keys": ua.keys()}
	if st, resp := h.Do("POST", "/api/dashboard/push-subscribe", "", sub); st != 200 || resp["status"] != "subscribed" {
		t.Fatalf("subscribe: %d %v", st, resp)
	}

	h.Restart()
	if _, k := h.Do("GET", "/api/dashboard/vapid-key", "", nil); k["vapid_public_key"] != key {
		t.Fatalf("VAPID key changed across a restart")
	}
	subs, err := webpush.NewSubscriptions(h.Driver.PushSubscriptions(), webpush.EndpointPolicy{}).List(t.Context())
	if err != nil || len(subs) != 1 || subs[0].Endpoint != "https://push.example.com/send/abc" {
		t.Fatalf("subscriptions after restart: %v %v", subs, err)
	}
}
