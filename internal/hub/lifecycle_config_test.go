package hub_test

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
)

// TestZeroConfigServes: a hub built from Config{} (only where its data
// lives set) applies the documented defaults itself, starts and stops
// three times over the same data, and leaves no goroutine behind
// (TestMain).
func TestZeroConfigServes(t *testing.T) {
	dir := t.TempDir()
	for range 3 {
		h, err := hub.New(hub.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Serve(ln); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(h.URL() + "/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("health: %d", resp.StatusCode)
		}
		if err := h.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		http.DefaultClient.CloseIdleConnections()
	}
}

// TestEvictTriggerOwned: the admin eviction route only triggers the
// hub's evictor service, which Shutdown stops: no goroutine outlives the
// hub (TestMain).
func TestEvictTriggerOwned(t *testing.T) {
	h := hubtest.Start(t, "")
	for range 3 {
		if st, body := h.Do("POST", "/api/mailbox/evict", h.AdminToken, nil); st != 200 || body["status"] != "eviction_triggered" {
			t.Fatalf("evict: %d %v", st, body)
		}
	}
}
