package hub_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
)

// A hub elected at start listens while it loads its domain: /health says
// "loading" (with its role, id and leader) and the API refuses with hub_loading (no request waits on the
// load), and once loaded it serves as the leader.
func TestClusterLeaderServesWhileItLoads(t *testing.T) {
	c := newTestCluster(t, "hub-a")
	c.el.cur = cluster.Leader{HubID: "hub-a", URL: c.hubs["hub-a"].url, Epoch: 1}
	a := c.hubs["hub-a"]
	reached, release := make(chan struct{}), make(chan struct{})
	c.boot(a, func(cfg *hub.Config) { cfg.LoadHook = hubtest.HoldLoad(reached, release) })
	<-reached
	// It says, as every hub of a cluster does, who it is and that it leads.
	st, body := a.Do("GET", "/health", "", nil)
	leader, _ := body["leader"].(map[string]any)
	if st != http.StatusServiceUnavailable || body["status"] != protocol.StatusLoading || body["role"] != "leader" ||
		body["hub_id"] != "hub-a" || leader["hub_id"] != "hub-a" || leader["epoch"] != float64(1) {
		t.Fatalf("health while the leader loads: %d %v", st, body)
	}
	if st, body := a.Do("GET", "/api/agents", "", nil); st != http.StatusServiceUnavailable || body["error"] != protocol.CodeHubLoading {
		t.Fatalf("API while the leader loads: %d %v", st, body)
	}
	if a.Domain() != nil {
		t.Fatal("the domain runs while its load is held")
	}
	close(release)
	c.leader()
	if st, body := a.Do("GET", "/health", "", nil); st != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("health once loaded: %d %v", st, body)
	}
}

// A cluster hub shut down while it loads its domain stops the load and
// leaves nothing running (TestMain checks the goroutines).
func TestClusterShutdownWhileLoading(t *testing.T) {
	c := newTestCluster(t, "hub-a")
	c.el.cur = cluster.Leader{HubID: "hub-a", URL: c.hubs["hub-a"].url, Epoch: 1}
	a := c.hubs["hub-a"]
	reached := make(chan struct{})
	c.boot(a, func(cfg *hub.Config) { cfg.LoadHook = hubtest.HoldLoad(reached, nil) })
	<-reached
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown while loading: %v", err)
	}
	a.Hub.Hub = nil
}
