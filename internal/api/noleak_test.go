package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/settings"
	"github.com/agentcom/agentcom/internal/storage"
)

// secret is the text of every injected storage failure: a path and a
// word no reply may carry.
const secret = "SECRET/var/lib/agentcom/tokens.db: input/output error"

var errSecret = errors.New(secret)

// failingSettings reads empty and fails every write.
type failingSettings struct{}

func (failingSettings) All(context.Context) (map[string][]byte, error) {
	return map[string][]byte{}, nil
}
func (failingSettings) Put(context.Context, string, []byte) error { return errSecret }
func (failingSettings) PutIfAbsent(_ context.Context, _ string, v []byte) ([]byte, error) {
	return v, nil
}

// failingTokens holds no token and fails every write.
type failingTokens struct{}

func (failingTokens) Put(context.Context, storage.TokenRow) error { return errSecret }
func (failingTokens) Get(context.Context, string) (storage.TokenRow, error) {
	return storage.TokenRow{}, storage.ErrNotFound
}
func (failingTokens) RevokeAgent(context.Context, string) (int, error) { return 0, errSecret }
func (failingTokens) All(context.Context) ([]storage.TokenRow, error)  { return nil, nil }

// syncBuffer is a log sink safe for the handlers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoInternalErrorText injects a storage failure whose text names a
// path into the routes of both storage implementations' callers (hub
// core over failing token and settings stores, the PostgreSQL storage
// admin routes over a failing health check): no reply carries the text,
// each carries an error_id, and the hub log has the id with the cause.
func TestNoInternalErrorText(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	tokens, err := auth.New(failingTokens{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := settings.New(failingSettings{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(fakeTokens{"admin-tok": {AgentID: "ops", Role: auth.RoleAdmin}}, false, NewHosts(true, nil), log)
	core := &Core{Server: s, Tokens: tokens, Settings: set, OpenRegistration: true}
	s.Handle(core.Routes()...)
	pg := &ExternalStorage{Server: s, Driver: "postgres", Reason: "maintained by PostgreSQL",
		Health: func(context.Context) (any, error) { return nil, errSecret }}
	for _, rt := range pg.Routes() {
		rt.Path = "/pg" + rt.Path
		s.Handle(rt)
	}

	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/api/config/default-repo", `{"url":"https://example.com/r.git"}`},
		{"PUT", "/api/config/heartbeat-interval", `{"heartbeat_interval_ms":30000}`},
		{"PUT", "/api/config/mailbox-retention", `{"mailbox_ttl_ms":86400000}`},
		{"POST", "/admin/tokens", `{"agent_id":"agent-1"}`},
		{"DELETE", "/admin/tokens/agent-1", ``},
		{"POST", "/api/onboard/register", `{"agent_id":"agent-9"}`},
		{"GET", "/pg/api/admin/storage-health", ``},
	} {
		req := httptest.NewRequest(c.method, "http://127.0.0.1"+c.path, strings.NewReader(c.body))
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer admin-tok")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		raw, _ := io.ReadAll(w.Result().Body)
		if w.Code < 500 || strings.Contains(string(raw), "SECRET") || strings.Contains(string(raw), "input/output") {
			t.Errorf("%s %s: %d %s: want a 5xx without the error's text", c.method, c.path, w.Code, raw)
			continue
		}
		var body struct {
			Error   string `json:"error"`
			ErrorID string `json:"error_id"`
		}
		if err := json.Unmarshal(raw, &body); err != nil || body.Error == "" || len(body.ErrorID) != 16 {
			t.Errorf("%s %s: %s: want a code and a 16-digit error_id", c.method, c.path, raw)
			continue
		}
		if !logHas(logs.String(), body.ErrorID, secret) {
			t.Errorf("%s %s: no log line has error_id %s with the cause", c.method, c.path, body.ErrorID)
		}
	}
}

// logHas reports whether one JSON log line holds error_id id and err.
func logHas(logs, id, err string) bool {
	for line := range strings.SplitSeq(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["error_id"] == id {
			if s, _ := rec["err"].(string); strings.Contains(s, err) {
				return true
			}
		}
	}
	return false
}

// TestRuleRefusalsKeepTheirText: a refusal by an input rule stays
// visible (it tells the caller what to fix); anything else passed where
// one is expected gets a fixed text.
func TestRuleRefusalsKeepTheirText(t *testing.T) {
	if d := ruleDetail(&settings.RangeError{Key: "k", Value: 0, Range: settings.Range{Min: 1, Max: 9}}); d != "k must be between 1 and 9, got 0" {
		t.Errorf("range error: %q", d)
	}
	if d := ruleDetail(errSecret); d != "invalid value" {
		t.Errorf("storage error as a rule: %q", d)
	}
	if resp := Err(http.StatusOK, "x"); resp.Status != http.StatusOK {
		t.Fatal(resp)
	}
}
