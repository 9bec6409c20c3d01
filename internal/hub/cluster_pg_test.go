package hub_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/testenv"
)

// startPGHub starts a cluster hub whose election and bus run on the
// PostgreSQL database at storeURL, as `agentcom serve --store URL --bus
// busSpec` does; its domain, when it leads, runs on domainStore ("" for
// its own data directory, or storeURL).
func startPGHub(t *testing.T, storeURL, busSpec, id, domainStore string) *hubtest.Hub {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := cluster.ParseBus(busSpec)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := hub.OpenCluster(context.Background(), storeURL, spec, id, "http://"+ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := hub.DefaultConfig()
	cfg.Addr, cfg.DataDir, cfg.Store, cfg.RateLimits = ln.Addr().String(), t.TempDir(), domainStore, nil
	hubtest.FastTimers(&cfg)
	cfg.Cluster = svc.Config
	hb, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.Serve(ln); err != nil {
		t.Fatal(err)
	}
	h := &hubtest.Hub{Hub: hb, T: t, Dir: cfg.DataDir}
	t.Cleanup(func() {
		if h.Hub != nil {
			stopHub(t, h)
		}
		_ = svc.Close()
	})
	return h
}

func stopHub(t *testing.T, h *hubtest.Hub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	h.Hub = nil
}

func waitLeader(t *testing.T, h *hubtest.Hub, id string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for h.Leader().HubID != id || (h.HubID() == id && h.Domain() == nil) {
		if time.Now().After(deadline) {
			t.Fatalf("hub %s: leader %v, want %s", h.HubID(), h.Leader(), id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two hubs elect and relay over PostgreSQL (the LISTEN/NOTIFY bus, or
// NATS): the second relays its agent to the first; when the first stops,
// the second takes the lead at once and the relayed socket closes with
// 1012. Each leader's domain runs on its own data directory here (see
// TestClusterFailoverOnPostgresStore for the shared store).
func TestClusterRealBusesAndElector(t *testing.T) {
	for _, bus := range []string{"postgres", "nats"} {
		t.Run(bus, func(t *testing.T) {
			storeURL := testenv.Postgres(t)
			busSpec := ""
			if bus == "nats" {
				busSpec = testenv.NATS(t)
			}
			a := startPGHub(t, storeURL, busSpec, "pg-a-"+bus, "")
			waitLeader(t, a, "pg-a-"+bus)
			b := startPGHub(t, storeURL, busSpec, "pg-b-"+bus, "")
			waitLeader(t, b, "pg-a-"+bus)
			_, _, far, id := relayedTask(t, a, b)
			far.Send(map[string]any{"type": "task_complete", "task_id": id, "generation": 1, "result": map[string]any{"status": "success"}})
			if ack := far.Expect("task_ack"); ack["status"] != "complete" {
				t.Fatalf("complete through the relay: %v", ack)
			}

			stopHub(t, a)
			if code, reason := far.Closed(15 * time.Second); code != protocol.CloseRestart {
				t.Fatalf("close on the change of leader: %d %q", code, reason)
			}
			waitLeader(t, b, "pg-b-"+bus)
			tok, err := b.Domain().Tokens.Create("far", auth.RoleAgent)
			if err != nil {
				t.Fatal(err)
			}
			again := b.Connect("far", tok, "code")
			again.Send(map[string]any{"type": "ping"})
			again.Expect("pong")
		})
	}
}

// relayedTask makes agent "far" on follower b hold a task submitted
// through b and accepted; it returns the admin token, the agent and the
// task id.
func relayedTask(t *testing.T, a, b *hubtest.Hub) (admin, tok string, far *hubtest.Client, id string) {
	t.Helper()
	tok, err := a.Domain().Tokens.Create("far", auth.RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	if admin, err = a.Domain().Tokens.Create("admin", auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	far = b.Connect("far", tok, "code")
	st, body := b.Do("POST", "/api/tasks", admin, map[string]any{"description": "over the cluster", "needed_capabilities": []string{"code"}})
	if st != 201 {
		t.Fatalf("submit through the follower: %d %v", st, body)
	}
	id = body["task_id"].(string)
	if as := far.Expect("task_assign"); as["task_id"] != id {
		t.Fatalf("assign: %v", as)
	}
	far.Send(map[string]any{"type": "task_accepted", "task_id": id, "protocol_version": 1})
	far.Expect("task_ack")
	return admin, tok, far, id
}

// With the domain on the shared PostgreSQL store, the agent of a follower
// whose leader stopped reconnects to the new leader with the same token
// and finishes its task there.
func TestClusterFailoverOnPostgresStore(t *testing.T) {
	storeURL := testenv.Postgres(t)
	a := startPGHub(t, storeURL, "", "pg-a", storeURL)
	waitLeader(t, a, "pg-a")
	b := startPGHub(t, storeURL, "", "pg-b", storeURL)
	waitLeader(t, b, "pg-a")
	admin, tok, far, id := relayedTask(t, a, b)

	stopHub(t, a)
	if code, reason := far.Closed(15 * time.Second); code != protocol.CloseRestart {
		t.Fatalf("close on the change of leader: %d %q", code, reason)
	}
	waitLeader(t, b, "pg-b")
	again := b.Connect("far", tok, "code")
	again.Send(map[string]any{"type": "task_recovering", "task_id": id, "protocol_version": 1})
	cont := again.Expect("task_continue")
	if cont["task_id"] != id {
		t.Fatalf("continue: %v", cont)
	}
	again.Send(map[string]any{"type": "task_complete", "task_id": id, "generation": cont["generation"], "result": map[string]any{"status": "success"}})
	if ack := again.Expect("task_ack"); ack["status"] != "complete" {
		t.Fatalf("complete after failover: %v", ack)
	}
	if st, task := b.Do("GET", "/api/tasks/"+id, admin, nil); st != 200 || task["status"] != "completed" {
		t.Fatalf("task after failover: %d %v", st, task)
	}
}
