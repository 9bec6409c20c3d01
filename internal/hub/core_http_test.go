package hub_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/store"
)

func TestTokensAreHashedAndAdminOnly(t *testing.T) {
	h := hubtest.Start(t, "")
	agentTok := h.Token("worker", auth.RoleAgent)
	st, body := h.Do("POST", "/admin/tokens", agentTok, map[string]any{"agent_id": "x"})
	if st != 403 {
		t.Fatalf("agent token minting: %d %v", st, body)
	}
	if st, body := h.Do("POST", "/admin/tokens", "", map[string]any{"agent_id": "x"}); st != 401 ||
		body["hint"] != "provide Authorization: Bearer <token>" {
		t.Fatalf("no token: %d %v", st, body)
	}
	st, body = h.Do("POST", "/admin/tokens", h.AdminToken, map[string]any{"agent_id": "new-agent"})
	tok, _ := body["token"].(string)
	if st != 201 || len(tok) != 64 || body["agent_id"] != "new-agent" {
		t.Fatalf("create: %d %v", st, body)
	}
	_, list := h.Do("GET", "/admin/tokens", h.AdminToken, nil)
	for _, e := range list["tokens"].([]any) {
		p := e.(map[string]any)["token_prefix"].(string)
		if len(p) != 11 || !strings.HasSuffix(p, "...") {
			t.Fatalf("prefix = %q", p)
		}
	}
	// The plaintext is nowhere in the table file.
	raw, err := os.ReadFile(store.TablePath(h.Dir, store.Tokens))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(tok)) || bytes.Contains(raw, []byte(agentTok)) {
		t.Fatal("plaintext token stored on disk")
	}
	c := h.Connect("new-agent", tok)
	st, body = h.Do("DELETE", "/admin/tokens/new-agent", h.AdminToken, nil)
	if st != 200 || body["status"] != "revoked" {
		t.Fatalf("revoke: %d %v", st, body)
	}
	if code, _ := c.Closed(5e9); code != 4004 {
		t.Fatalf("revoked agent's socket closed with %d", code)
	}
	if st, _ := h.Do("GET", "/api/tasks", tok, nil); st != 401 {
		t.Fatalf("revoked token still works: %d", st)
	}
}

func TestConfigRoutes(t *testing.T) {
	dir := t.TempDir()
	h := hubtest.Start(t, dir)
	agentTok := h.Token("a", auth.RoleAgent)
	if _, body := h.Do("GET", "/api/config/heartbeat-interval?token="+agentTok, "", nil); body["heartbeat_interval_ms"].(float64) != 900000 {
		t.Fatalf("default heartbeat = %v", body)
	}
	cases := []struct {
		path, token string
		body        any
		status      int
		errText     string
	}{
		{"/api/config/heartbeat-interval", agentTok, map[string]any{"heartbeat_interval_ms": 5000}, 403, ""},
		{"/api/config/heartbeat-interval", h.AdminToken, `{"heartbeat_interval_ms": 5.0}`, 400, "missing or invalid field: heartbeat_interval_ms (positive integer)"},
		{"/api/config/heartbeat-interval", h.AdminToken, map[string]any{"heartbeat_interval_ms": -1}, 400, "missing or invalid field: heartbeat_interval_ms (positive integer)"},
		{"/api/config/heartbeat-interval", h.AdminToken, map[string]any{"heartbeat_interval_ms": 5000}, 200, ""},
		{"/api/config/mailbox-retention", h.AdminToken, map[string]any{"mailbox_ttl_ms": 1000}, 200, ""},
		{"/api/config/default-repo", h.AdminToken, map[string]any{"url": ""}, 400, "missing or invalid field: url"},
		{"/api/config/default-repo", h.AdminToken, map[string]any{"url": "git@example.com:org/repo.git"}, 200, ""},
	}
	for _, tc := range cases {
		st, body := h.Do("PUT", tc.path, tc.token, tc.body)
		if st != tc.status || (tc.errText != "" && body["error"] != tc.errText) {
			t.Errorf("PUT %s %v: %d %v", tc.path, tc.body, st, body)
		}
	}
	h.Restart()
	if _, body := h.Do("GET", "/api/config/heartbeat-interval", agentTok, nil); body["heartbeat_interval_ms"].(float64) != 5000 {
		t.Fatalf("heartbeat after restart = %v", body)
	}
	if _, body := h.Do("GET", "/api/config/default-repo", "", nil); body["configured"] != true {
		t.Fatalf("default repo = %v", body)
	}
	// Retention drives eviction: the shortest TTL (1 s) expires a message
	// once it is older than that.
	if st, body := h.Do("PUT", "/api/config/mailbox-retention", h.AdminToken, map[string]any{"mailbox_ttl_ms": 1000}); st != 200 {
		t.Fatalf("retention 1000: %d %v", st, body)
	}
	h.Do("POST", "/api/message", h.AdminToken, map[string]any{"to": "a", "payload": map[string]any{}})
	if st, body := h.Do("POST", "/api/mailbox/evict", h.AdminToken, nil); st != 200 || body["status"] != "eviction_triggered" {
		t.Fatalf("evict: %d %v", st, body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, mb := h.Do("GET", "/api/mailbox/a", agentTok, nil)
		if mb["count"].(float64) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("message not evicted")
		}
		time.Sleep(100 * time.Millisecond)
		h.Do("POST", "/api/mailbox/evict", h.AdminToken, nil)
	}
}

func TestOnboardRegister(t *testing.T) {
	t.Run("closed by default", func(t *testing.T) {
		h := hubtest.Start(t, "")
		st, body := h.Do("POST", "/api/onboard/register", "", map[string]any{"agent_id": "gcu-x"})
		if st != 403 || body["error"] != "registration_closed" {
			t.Fatalf("%d %v", st, body)
		}
	})
	t.Run("open", func(t *testing.T) {
		h := hubtest.Start(t, "", func(c *hub.Config) { c.OpenRegistration = true })
		st, body := h.Do("POST", "/api/onboard/register", "", map[string]any{"agent_id": "gcu-x"})
		if st != 201 || len(body["token"].(string)) != 64 || body["hub_ws_url"] != "ws://"+h.Addr()+"/ws" ||
			body["hub_api_url"] != "http://"+h.Addr() || body["default_repo"] != nil {
			t.Fatalf("%d %v", st, body)
		}
		if st, body := h.Do("POST", "/api/onboard/register", "", map[string]any{"agent_id": "gcu-x"}); st != 409 || body["error"] != "agent_id already registered" {
			t.Fatalf("duplicate: %d %v", st, body)
		}
		if st, body := h.Do("POST", "/api/onboard/register", "", map[string]any{"agent_id": ""}); st != 400 || body["error"] != "missing or invalid field: agent_id" {
			t.Fatalf("empty: %d %v", st, body)
		}
		h.Connect("gcu-x", body["token"].(string))
	})
	t.Run("join secret", func(t *testing.T) {
		h := hubtest.Start(t, "", func(c *hub.Config) { c.JoinSecret = "s3cret" })
		if st, _ := h.Do("POST", "/api/onboard/register", "", map[string]any{"agent_id": "a", "join_secret": "wrong"}); st != 403 {
			t.Fatalf("wrong secret: %d", st)
		}
		if st, body := h.Do("POST", "/api/onboard/register", "", map[string]any{"agent_id": "a", "join_secret": "s3cret"}); st != 201 {
			t.Fatalf("right secret: %d %v", st, body)
		}
	})
}

func TestHTTPBoundaries(t *testing.T) {
	h := hubtest.Start(t, "")
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		errCode                         string
	}{
		{"unknown route", "GET", "/nope", "", "", 404, "not_found"},
		{"known path, wrong method", "PUT", "/api/tasks", "", "", 404, "not_found"},
		{"trailing slash", "GET", "/health/", "", "", 200, ""},
		{"malformed json", "POST", "/api/tasks", "application/json", "{", 400, "invalid_json"},
		{"wrong content type", "POST", "/api/tasks", "text/plain", "x", 415, "unsupported_media_type"},
		{"array body", "POST", "/api/tasks", "application/json", "[1]", 400, "validation_failed"},
		{"float max_retries", "POST", "/api/tasks", "application/json", `{"description":"d","max_retries":1.5}`, 400, "validation_failed"},
		{"bad capabilities", "POST", "/api/tasks", "application/json", `{"description":"d","needed_capabilities":[1]}`, 400, "validation_failed"},
		{"too long description", "POST", "/api/tasks", "application/json", `{"description":"` + strings.Repeat("x", 10001) + `"}`, 400, "validation_failed"},
		{"bad limit", "GET", "/api/messages?limit=5.0", "", "", 400, "validation_failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, h.URL()+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			req.Header.Set("Authorization", "Bearer "+h.AdminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			buf.ReadFrom(resp.Body)
			if resp.StatusCode != tc.status || (tc.errCode != "" && !strings.Contains(buf.String(), `"error":"`+tc.errCode+`"`)) {
				t.Fatalf("%d %s", resp.StatusCode, buf.String())
			}
		})
	}
	_, stats := h.Do("GET", "/api/tasks/stats", h.AdminToken, nil)
	if len(stats["by_status"].(map[string]any)) != 0 {
		t.Fatalf("a refused body changed state: %v", stats)
	}
}

func TestAdminReset(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.AdminAgents = []string{"boss"} })
	a := h.Agent("worker")
	if st, body := h.Do("POST", "/api/admin/reset", h.Token("worker", auth.RoleAgent), nil); st != 403 ||
		body["error"] != "admin_only" || body["message"] != "Only admin agents can reset the hub" {
		t.Fatalf("non-admin reset: %d %v", st, body)
	}
	st, body := h.Do("POST", "/api/admin/reset", h.Token("boss", auth.RoleAgent), nil)
	if st != 200 || body["status"] != "reset_scheduled" || body["triggered_by"] != "boss" {
		t.Fatalf("reset: %d %v", st, body)
	}
	if code, _ := a.Closed(5e9); code != 1012 {
		t.Fatalf("socket closed with %d, want 1012", code)
	}
	h.Agent("worker") // agents reconnect and identify again
}

// TestWhoAmI: GET /api/whoami names the token's agent and role, for
// every role; without a valid Bearer token it is 401 (no ?token=).
func TestWhoAmI(t *testing.T) {
	h := hubtest.Start(t, "")
	for agent, role := range map[string]auth.Role{"worker": auth.RoleAgent, "watcher": auth.RoleViewer, "ops": auth.RoleAdmin} {
		tok := h.Token(agent, role)
		st, raw := h.DoRaw("GET", "/api/whoami", tok, nil)
		var got protocol.WhoAmI
		if err := json.Unmarshal(raw, &got); st != 200 || err != nil || got != (protocol.WhoAmI{AgentID: agent, Role: string(role)}) {
			t.Fatalf("%s: %d %s", agent, st, raw)
		}
		if !bytes.Equal(bytes.TrimSpace(raw), []byte(`{"agent_id":"`+agent+`","role":"`+string(role)+`"}`)) {
			t.Fatalf("%s: body %s", agent, raw)
		}
	}
	revoked := h.Token("gone", auth.RoleAgent)
	if _, err := h.Tokens.Revoke("gone"); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"none": "", "wrong": strings.Repeat("0", 64), "revoked": revoked} {
		if st, body := h.Do("GET", "/api/whoami", tok, nil); st != 401 || body["error"] != "unauthorized" {
			t.Fatalf("%s token: %d %v", name, st, body)
		}
	}
	if st, body := h.Do("GET", "/api/whoami?token="+h.AdminToken, "", nil); st != 401 {
		t.Fatalf("token in the query: %d %v", st, body)
	}
}
