package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
)

// fakeTokens knows a few tokens.
type fakeTokens map[string]auth.Identity

func (f fakeTokens) Verify(tok string) (auth.Identity, error) {
	if id, ok := f[tok]; ok {
		return id, nil
	}
	return auth.Identity{}, errors.New("unknown token")
}

// denyAll refuses every request after the first n, and remembers the
// keys it was asked about and whether they were public.
type denyAll struct {
	n    int
	keys []string
}

func (d *denyAll) AllowHTTP(key string, public bool) (bool, int64) {
	d.n--
	d.keys = append(d.keys, fmt.Sprint(key, " public=", public))
	return d.n >= 0, 1500
}
func (d *denyAll) AllowClass(string, string) (bool, time.Duration) { return true, 0 }

func newTestServer(t *testing.T) (*Server, *int) {
	t.Helper()
	s := NewServer(fakeTokens{
		"admin-tok": {AgentID: "ops", Role: auth.RoleAdmin},
		"agent-tok": {AgentID: "a1", Role: auth.RoleAgent},
		"view-tok":  {AgentID: "v", Role: auth.RoleViewer},
	}, false, NewHosts(false, nil), slog.New(slog.DiscardHandler))
	calls := new(int)
	h := func(r *Request) Response {
		*calls++
		return JSON(http.StatusOK, map[string]any{"as": r.ID.AgentID, "x": r.Params["x"]})
	}
	s.Handle(
		Route{Method: "GET", Path: "/open", Access: Public, Handler: h},
		Route{Method: "POST", Path: "/agent", Access: Agent, Handler: h},
		Route{Method: "GET", Path: "/own/{agent_id}", Access: OwnAgent, Handler: h},
		Route{Method: "GET", Path: "/admin", Access: Admin, Handler: h},
		Route{Method: "GET", Path: "/dash", Access: Dashboard, Handler: h},
	)
	return s, calls
}

func do(t *testing.T, s *Server, method, path, token, ct, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var m map[string]any
	raw, _ := io.ReadAll(w.Result().Body)
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object", method, path, raw)
	}
	return w.Code, m, w.Result().Header
}

// Every refusal is a structured JSON error, and the handler never runs.
func TestAccessAndBodyRefusalsAreStructured(t *testing.T) {
	s, calls := newTestServer(t)
	cases := []struct {
		method, path, token, ct, body string
		status                        int
		code                          string
	}{
		{"GET", "/nope", "", "", "", 404, "not_found"},
		{"DELETE", "/open", "", "", "", 404, "not_found"},
		{"POST", "/agent", "", "application/json", `{}`, 401, "unauthorized"},
		{"POST", "/agent", "bad", "application/json", `{}`, 401, "unauthorized"},
		{"POST", "/agent", "view-tok", "application/json", `{}`, 403, "forbidden"},
		{"POST", "/agent", "agent-tok", "text/plain", `{}`, 415, "unsupported_media_type"},
		{"POST", "/agent", "agent-tok", "application/json", `{"x":`, 400, "invalid_json"},
		{"POST", "/agent", "agent-tok", "application/json", `[1]`, 400, ""},
		{"POST", "/agent", "agent-tok", "application/json", `{"x":"` + strings.Repeat("a", DefaultMaxBody) + `"}`, 413, "payload_too_large"},
		{"GET", "/own/someone-else", "agent-tok", "", "", 401, "unauthorized"},
		{"GET", "/admin", "agent-tok", "", "", 403, "forbidden"},
		{"GET", "/dash", "agent-tok", "", "", 403, "forbidden"},
	}
	for _, c := range cases {
		st, body, _ := do(t, s, c.method, c.path, c.token, c.ct, c.body)
		if st != c.status || body["error"] == nil || (c.code != "" && body["error"] != c.code) {
			t.Errorf("%s %s (%s): %d %v, want %d %q", c.method, c.path, c.token, st, body, c.status, c.code)
		}
	}
	if *calls != 0 {
		t.Fatalf("a refused request reached its handler %d times", *calls)
	}
	// And the ones that pass.
	for _, c := range []struct{ method, path, token string }{
		{"GET", "/open", ""}, {"POST", "/agent", "agent-tok"}, {"GET", "/own/a1", "agent-tok"},
		{"GET", "/own/a1?token=agent-tok", ""}, {"GET", "/admin", "admin-tok"}, {"GET", "/dash", "view-tok"},
		{"GET", "//open/", ""}, // cleaned path
	} {
		if st, body, _ := do(t, s, c.method, c.path, c.token, "", ""); st != 200 {
			t.Errorf("%s %s: %d %v", c.method, c.path, st, body)
		}
	}
	// Body strings become parameters.
	if _, body, _ := do(t, s, "POST", "/agent", "agent-tok", "application/json", `{"x":"from-body"}`); body["x"] != "from-body" || body["as"] != "a1" {
		t.Errorf("params %v", body)
	}
}

// A rate-limited request gets 429 with Retry-After in whole seconds,
// rounded up, and its handler does not run; callers without a token are
// limited by address in the public class; unlimited routes are not.
func TestRateLimitedRequest(t *testing.T) {
	s, calls := newTestServer(t)
	s.Handle(Route{Method: "GET", Path: "/socket", Access: Public, Unlimited: true, Handler: func(*Request) Response { return JSON(200, map[string]any{}) }})
	lim := &denyAll{n: 1}
	s.SetLimiter(lim)
	if st, _, _ := do(t, s, "GET", "/admin", "admin-tok", "", ""); st != 200 {
		t.Fatalf("first: %d", st)
	}
	st, body, hdr := do(t, s, "GET", "/admin", "admin-tok", "", "")
	if st != 429 || body["error"] != "rate_limited" || body["retry_after_ms"] != float64(1500) || hdr.Get("Retry-After") != "2" {
		t.Fatalf("limited: %d %v Retry-After=%q", st, body, hdr.Get("Retry-After"))
	}
	if st, _, _ := do(t, s, "GET", "/open", "", "", ""); st != 429 {
		t.Fatalf("public route not limited: %d", st)
	}
	if st, _, _ := do(t, s, "GET", "/socket", "", "", ""); st != 200 {
		t.Fatalf("unlimited route limited: %d", st)
	}
	if *calls != 1 {
		t.Fatalf("handler ran %d times, want 1", *calls)
	}
	if want := []string{"agent:ops public=false", "agent:ops public=false", "ip:192.0.2.1 public=true"}; !slices.Equal(lim.keys, want) {
		t.Fatalf("limiter asked %q, want %q", lim.keys, want)
	}
}
