package hub_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
)

// The follower's sockets run through the leader's connection code: every
// close a local socket gets, a relayed one gets too, with the same code.
func TestClusterRelayedSocketsCloseAsLocalOnes(t *testing.T) {
	t.Run("identify timeout", func(t *testing.T) {
		c := newTestCluster(t, "hub-a", "hub-b")
		c.start("hub-a", func(cfg *hub.Config) { cfg.Socket.IdentifyTimeout = 200 * time.Millisecond })
		cl := hubtest.Dial(t, c.hubs["hub-b"].WSURL())
		if code, reason := cl.Closed(10 * time.Second); code != protocol.CloseIdentifyTimeout {
			t.Fatalf("closed %d %q", code, reason)
		}
	})
	t.Run("validation flood", func(t *testing.T) {
		c := newTestCluster(t, "hub-a", "hub-b")
		c.start("hub-a", func(cfg *hub.Config) { cfg.Socket.ViolationLimit = 3 })
		cl := c.agent(c.hubs["hub-b"], "noisy")
		for range 3 {
			_ = cl.TrySend(`{"type":"message"}`)
		}
		if code, reason := cl.Closed(10 * time.Second); code != protocol.ClosePolicy {
			t.Fatalf("closed %d %q", code, reason)
		}
	})
	t.Run("revoked token", func(t *testing.T) {
		c := newTestCluster(t, "hub-a", "hub-b")
		c.start("hub-a")
		b := c.hubs["hub-b"]
		cl := c.agent(b, "gone")
		if st, body := b.Do("DELETE", "/admin/tokens/gone", b.AdminToken, nil); st != 200 {
			t.Fatalf("revoke through the follower: %d %v", st, body)
		}
		if code, reason := cl.Closed(10 * time.Second); code != protocol.CloseRevoked {
			t.Fatalf("closed %d %q", code, reason)
		}
	})
	t.Run("frame over the read limit before identify", func(t *testing.T) {
		c := newTestCluster(t, "hub-a", "hub-b")
		c.start("hub-a", func(cfg *hub.Config) { cfg.Socket.ReadLimit = 4 << 10 })
		cl := hubtest.Dial(t, c.hubs["hub-b"].WSURL())
		_ = cl.TrySend(`{"type":"ping","pad":"` + strings.Repeat("x", 8<<10) + `"}`)
		if code, reason := cl.Closed(10 * time.Second); code != websocket.StatusMessageTooBig {
			t.Fatalf("closed %d %q", code, reason)
		}
	})
	t.Run("report over the read limit after identify", func(t *testing.T) {
		c := newTestCluster(t, "hub-a", "hub-b")
		c.start("hub-a", func(cfg *hub.Config) { cfg.Socket.ReadLimit = 4 << 10 })
		cl := c.agent(c.hubs["hub-b"], "reporter")
		// The leader raised the follower's limit at identify: a large
		// report reaches the leader (refused there for its unknown task).
		big := map[string]any{"type": "task_complete", "task_id": "task-0000000000000000", "generation": 1,
			"result": map[string]any{"status": "success", "output": strings.Repeat("y", 64<<10)}}
		cl.Send(big)
		if e := cl.Expect("error"); !strings.Contains(e["error"].(string), "not_found") {
			t.Fatalf("reply: %v", e)
		}
	})
	t.Run("too many unidentified", func(t *testing.T) {
		c := newTestCluster(t, "hub-a", "hub-b")
		c.start("hub-a", func(cfg *hub.Config) { cfg.Socket.MaxUnidentified = 1 })
		b := c.hubs["hub-b"]
		hubtest.Dial(t, b.WSURL())
		ws, resp, err := hubtest.DialWith(b.WSURL(), nil)
		if err == nil {
			ws.CloseNow()
			t.Fatal("second unidentified socket accepted")
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("refusal: %v %v", resp, err)
		}
	})
	t.Run("pings relayed", func(t *testing.T) {
		c := newTestCluster(t, "hub-a", "hub-b")
		c.start("hub-a", func(cfg *hub.Config) {
			cfg.Socket.PingInterval = 50 * time.Millisecond
			cfg.Socket.StaleAfter = 300 * time.Millisecond
			cfg.Socket.ReapInterval = 20 * time.Millisecond
		})
		// A client that never sends a ping frame stays: its pongs to the
		// hub's pings cross the relay. Six stale periods prove it.
		cl := c.agent(c.hubs["hub-b"], "quiet")
		cl.NoFrame("never", 6*300*time.Millisecond)
		cl.Send(map[string]any{"type": "status", "status": "still here"})
		cl.Expect("status_updated")
	})
	t.Run("follower stops", func(t *testing.T) {
		c := newTestCluster(t, "hub-a", "hub-b")
		c.start("hub-a", func(cfg *hub.Config) { cfg.Socket.StaleAfter = time.Hour })
		a, b := c.hubs["hub-a"], c.hubs["hub-b"]
		watcher := c.agent(a, "watcher")
		far := c.agent(b, "far")
		watcher.Expect("agent_joined")
		b.stop()
		if code, reason := far.Closed(10 * time.Second); code != protocol.CloseGoingAway {
			t.Fatalf("closed %d %q", code, reason)
		}
		if left := watcher.Expect("agent_left"); left["agent_id"] != "far" {
			t.Fatalf("agent_left: %v", left)
		}
	})
}

// A browser's dashboard socket opened on a follower is forwarded to the
// leader and gets its live events.
func TestClusterDashboardSocketThroughFollower(t *testing.T) {
	c := newTestCluster(t, "hub-a", "hub-b")
	c.start("hub-a")
	b := c.hubs["hub-b"]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws://"+b.Addr()+"/ws/dashboard?token="+b.AdminToken, nil)
	if err != nil {
		t.Fatalf("dashboard socket through the follower: %v %v", err, resp)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatalf("first dashboard frame: %v", err)
	}
	// Without a token the follower forwards the refusal.
	if _, resp, err := websocket.Dial(ctx, "ws://"+b.Addr()+"/ws/dashboard", nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tokenless dashboard socket: %v %v", err, resp)
	}
}

// The bus delivers at most once: a relayed socket whose envelopes show a
// gap is closed with 1012 (its agent reconnects and resumes) rather than
// run on with a frame missing, in either direction.
func TestClusterRelayGapClosesWith1012(t *testing.T) {
	for _, dir := range []string{"to the leader", "to the follower"} {
		t.Run(dir, func(t *testing.T) {
			c := newTestCluster(t, "hub-a", "hub-b")
			c.start("hub-a")
			b := c.hubs["hub-b"]
			cl := c.agent(b, "holey") // the follower's first socket: conn 1
			e := cluster.RelayEnvelope{Kind: cluster.RelayFrame, Hub: "hub-b", Inst: followerInst(t, c, "hub-b"),
				Conn: 1, Epoch: 1, Seq: 1000, Data: []byte(`{"type":"ping"}`)}
			subject := cluster.SubjectLeaderIn
			if dir == "to the follower" {
				e.Kind, subject = cluster.RelayWrite, cluster.SubjectHub("hub-b")
			}
			payload, err := e.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.bus.link().Publish(context.Background(), subject, payload); err != nil {
				t.Fatal(err)
			}
			if code, reason := cl.Closed(10 * time.Second); code != protocol.CloseRestart {
				t.Fatalf("closed %d %q", code, reason)
			}
			// The agent reconnects through the same follower.
			again := c.agent(b, "holey")
			again.Send(map[string]any{"type": "ping"})
			again.Expect("pong")
		})
	}
}

// A follower whose leader does not answer says so: agent handshakes and
// forwarded requests get 503 leader_unavailable (after waiting for a new
// leader), /health 503.
func TestClusterFollowerWithoutLeader(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	c := newTestCluster(t, "hub-b")
	ch := c.hubs["hub-b"]
	c.el.cur = cluster.Leader{HubID: "hub-gone", URL: deadURL, Epoch: 4}
	cfg := hub.DefaultConfig()
	cfg.Addr, cfg.DataDir = ch.ln.Addr().String(), t.TempDir()
	cfg.Cluster = &hub.ClusterConfig{Bus: ch.link, Elector: c.el.elector("hub-b"), OpenTimeout: 100 * time.Millisecond,
		ForwardWait: 100 * time.Millisecond}
	hb, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.Serve(ch.ln); err != nil {
		t.Fatal(err)
	}
	ch.Hub = &hubtest.Hub{Hub: hb, T: t, Dir: cfg.DataDir}
	t.Cleanup(func() { ch.stop(); _ = ch.link.Close() })

	if _, resp, err := hubtest.DialWith(ch.WSURL(), nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake without a leader: %v %v", err, resp)
	}
	if st, body := ch.Do("GET", "/api/agents", "", nil); st != http.StatusServiceUnavailable || body["error"] != "leader_unavailable" {
		t.Fatalf("forward without a leader: %d %v", st, body)
	}
	st, body := ch.Do("GET", "/health", "", nil)
	if st != http.StatusServiceUnavailable || body["status"] != "leader_unreachable" || body["role"] != "follower" || body["hub_id"] != "hub-b" {
		t.Fatalf("health without a leader: %d %v", st, body)
	}
}

// followerInst is the process id the follower hub puts on its envelopes,
// read off its next heartbeat.
func followerInst(t *testing.T, c *testCluster, hubID string) string {
	t.Helper()
	got := make(chan string, 1)
	link := c.bus.link()
	defer link.Close()
	unsub, err := link.Subscribe(cluster.SubjectLeaderIn, func(p []byte) {
		if e, err := cluster.DecodeRelay(p); err == nil && e.Hub == hubID {
			select {
			case got <- e.Inst:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	select {
	case inst := <-got:
		return inst
	case <-time.After(10 * time.Second):
		t.Fatal("no heartbeat from " + hubID)
		return ""
	}
}

// A plain GET of /ws (no handshake) is refused by a follower as by the
// leader.
func TestClusterFollowerRefusesNonHandshake(t *testing.T) {
	c := newTestCluster(t, "hub-a", "hub-b")
	c.start("hub-a")
	sa, ba := c.hubs["hub-a"].DoRaw("GET", "/ws", "", nil)
	sb, bb := c.hubs["hub-b"].DoRaw("GET", "/ws", "", nil)
	if sa != sb || string(ba) != string(bb) || sa < 400 {
		t.Fatalf("leader %d %q, follower %d %q", sa, ba, sb, bb)
	}
}

// An elected hub whose domain cannot start (here its data directory is
// held by another hub) answers 503 and keeps trying while it leads: the
// election alone would never move the lead.
func TestClusterLeaderRetriesItsDomain(t *testing.T) {
	dir := t.TempDir()
	holder := hubtest.Start(t, dir)
	c := newTestCluster(t, "hub-a")
	c.forwardWait = 100 * time.Millisecond
	c.el.cur = cluster.Leader{HubID: "hub-a", URL: c.hubs["hub-a"].url, Epoch: 1}
	a := c.hubs["hub-a"]
	c.boot(a, func(cfg *hub.Config) { cfg.DataDir = dir })
	// The hub already listens while it tries: "loading" during each try
	// (hub_loading), "domain_unavailable" between them.
	if st, body := a.Do("GET", "/health", "", nil); st != http.StatusServiceUnavailable ||
		(body["status"] != "domain_unavailable" && body["status"] != "loading") {
		t.Fatalf("health while the domain cannot start: %d %v", st, body)
	}
	if st, body := a.Do("GET", "/api/agents", "", nil); st != http.StatusServiceUnavailable ||
		(body["error"] != "leader_unavailable" && body["error"] != "hub_loading") {
		t.Fatalf("API while the domain cannot start: %d %v", st, body)
	}
	holder.Stop()
	c.leader() // waits for the domain
	if st, body := a.Do("GET", "/health", "", nil); st != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("health once the domain started: %d %v", st, body)
	}
}
