package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/testenv"
)

// seedTasks stores n queued tasks in a hub over dir (and store) and stops
// it; it returns the admin token, which the next hub over the same store
// still honours.
func seedTasks(t *testing.T, dir, store string, n int) string {
	t.Helper()
	h := hubtest.Start(t, dir, func(c *hub.Config) { c.Store = store })
	for i := range n {
		if st, body := h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "stored task",
			"needed_capabilities": []string{"nobody-has-this"}, "metadata": map[string]any{"i": i}}); st != 201 {
			t.Fatalf("submit %d: %d %v", i, st, body)
		}
	}
	tok := h.AdminToken
	h.Stop()
	return tok
}

func get(t *testing.T, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, b
}

// TestServeWhileLoading: a hub over stored tasks listens before it has
// loaded them. While the load is held, /health is 503 "loading" with the
// phase, the API and the agent socket refuse with hub_loading and
// Retry-After, and /dashboard is the loading page; once released, the
// same listener serves the loaded hub. On bbolt and PostgreSQL.
func TestServeWhileLoading(t *testing.T) {
	for _, store := range []string{"bolt", "postgres"} {
		t.Run(store, func(t *testing.T) {
			spec := ""
			if store == "postgres" {
				spec = testenv.Postgres(t)
			}
			dir := t.TempDir()
			const stored = 30
			admin := seedTasks(t, dir, spec, stored)

			reached, release := make(chan struct{}), make(chan struct{})
			cfg := hub.DefaultConfig()
			cfg.DataDir, cfg.Store, cfg.RateLimits = dir, spec, nil
			cfg.LoadHook = hubtest.HoldLoad(reached, release)
			l, base := hubtest.StartLoading(t, cfg)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := l.Shutdown(ctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			})
			<-reached

			resp, body := get(t, base+"/health", "")
			var lh protocol.LoadingHealth
			if err := json.Unmarshal(body, &lh); err != nil {
				t.Fatalf("health body %q: %v", body, err)
			}
			if resp.StatusCode != http.StatusServiceUnavailable || lh.Status != protocol.StatusLoading || lh.Phase != "tasks" ||
				resp.Header.Get("Retry-After") == "" {
				t.Fatalf("health while loading: %d %+v (Retry-After %q)", resp.StatusCode, lh, resp.Header.Get("Retry-After"))
			}
			for _, path := range []string{"/api/tasks", "/api/agents", "/ws"} {
				resp, body := get(t, base+path, admin)
				var er protocol.ErrorReply
				if err := json.Unmarshal(body, &er); err != nil {
					t.Fatalf("%s body %q: %v", path, body, err)
				}
				if resp.StatusCode != http.StatusServiceUnavailable || er.Error != protocol.CodeHubLoading || resp.Header.Get("Retry-After") == "" {
					t.Fatalf("%s while loading: %d %s (Retry-After %q)", path, resp.StatusCode, body, resp.Header.Get("Retry-After"))
				}
			}
			// An agent's socket is refused at the upgrade, as at any
			// restart: it retries.
			_, wsResp, err := hubtest.DialWith("ws"+strings.TrimPrefix(base, "http")+"/ws", nil)
			if err == nil || wsResp == nil || wsResp.StatusCode != http.StatusServiceUnavailable || wsResp.Header.Get("Retry-After") == "" {
				t.Fatalf("socket while loading: %v %v", err, wsResp)
			}
			resp, body = get(t, base+"/dashboard", "")
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Hub is loading") {
				t.Fatalf("dashboard while loading: %d %s", resp.StatusCode, body)
			}
			if l.Hub() != nil {
				t.Fatal("the hub is ready while its load is held")
			}

			close(release)
			<-l.Done()
			if err := l.Err(); err != nil {
				t.Fatalf("load: %v", err)
			}
			if resp, body := get(t, base+"/health", ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("health once loaded: %d %s", resp.StatusCode, body)
			}
			resp, body = get(t, base+"/api/tasks?limit=100", admin)
			var list struct {
				Count int `json:"count"`
			}
			if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != http.StatusOK || list.Count != stored {
				t.Fatalf("tasks once loaded: %d %s (%v)", resp.StatusCode, body, err)
			}
			resp, body = get(t, base+"/dashboard", "")
			if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "Hub is loading") {
				t.Fatalf("dashboard once loaded: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// TestShutdownWhileLoading: a hub stopped during its load ends the load,
// closes its listener and leaves no goroutine (TestMain checks); a load
// that fails says why, and the hub never serves.
func TestShutdownWhileLoading(t *testing.T) {
	dir := t.TempDir()
	seedTasks(t, dir, "", 5)
	reached := make(chan struct{})
	cfg := hub.DefaultConfig()
	cfg.DataDir, cfg.RateLimits = dir, nil
	cfg.LoadHook = hubtest.HoldLoad(reached, nil)
	l, base := hubtest.StartLoading(t, cfg)
	<-reached
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown while loading: %v", err)
	}
	if !errors.Is(l.Err(), context.Canceled) || l.Hub() != nil {
		t.Fatalf("after a shutdown while loading: err %v, hub %v", l.Err(), l.Hub())
	}
	if _, err := http.Get(base + "/health"); err == nil {
		t.Fatal("the listener still answers after the shutdown")
	}

	// The data directory was released: a load that fails reports it.
	broken := errors.New("disk on fire")
	cfg.LoadHook = func(context.Context) error { return broken }
	l, _ = hubtest.StartLoading(t, cfg)
	<-l.Done()
	if !errors.Is(l.Err(), broken) || l.Hub() != nil {
		t.Fatalf("failed load: err %v, hub %v", l.Err(), l.Hub())
	}
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown after a failed load: %v", err)
	}
}
