package hub_test

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
)

// testCluster is hubs on one in-memory bus with an election the test
// controls. Each hub has its own data directory; only the leader opens
// its own.
type testCluster struct {
	t    *testing.T
	bus  *memBus
	el   *election
	hubs map[string]*clusterHub
	// silence overrides the leader's wait for a silent follower, and
	// forwardWait a request's wait for a leader.
	silence, forwardWait time.Duration
}

type clusterHub struct {
	*hubtest.Hub
	id   string
	link *memLink
	ln   net.Listener
	url  string
}

func newTestCluster(t *testing.T, ids ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, bus: newMemBus(), el: &election{}, hubs: map[string]*clusterHub{}}
	for _, id := range ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.hubs[id] = &clusterHub{id: id, ln: ln, url: "http://" + ln.Addr().String(), link: c.bus.link()}
	}
	return c
}

// start boots every hub with leader leading its first term; opts change
// every hub's config.
func (c *testCluster) start(leader string, opts ...hubtest.Option) {
	c.t.Helper()
	c.el.mu.Lock()
	c.el.cur = cluster.Leader{HubID: leader, URL: c.hubs[leader].url, Epoch: 1}
	c.el.mu.Unlock()
	ids := make([]string, 0, len(c.hubs))
	for id := range c.hubs {
		ids = append(ids, id)
	}
	// The leader first: followers relay to it from their first socket.
	sort.Slice(ids, func(i, j int) bool { return ids[i] == leader || (ids[j] != leader && ids[i] < ids[j]) })
	for _, id := range ids {
		c.boot(c.hubs[id], opts...)
	}
	c.adminToken()
}

// boot starts hub ch (a new process, as far as the cluster can tell).
func (c *testCluster) boot(ch *clusterHub, opts ...hubtest.Option) {
	c.t.Helper()
	cfg := hub.DefaultConfig()
	cfg.Addr = ch.ln.Addr().String()
	cfg.DataDir = c.t.TempDir()
	cfg.RateLimits = nil
	hubtest.FastTimers(&cfg)
	for _, o := range opts {
		o(&cfg)
	}
	cfg.Cluster = &hub.ClusterConfig{Bus: ch.link, Elector: c.el.elector(ch.id), HubID: ch.id, AdvertiseURL: ch.url,
		Silence: cmp.Or(c.silence, 500*time.Millisecond), Heartbeat: 50 * time.Millisecond, ForwardWait: c.forwardWait}
	hb, err := hub.New(cfg)
	if err != nil {
		c.t.Fatalf("hub %s: %v", ch.id, err)
	}
	if err := hb.Serve(ch.ln); err != nil {
		c.t.Fatalf("serve %s: %v", ch.id, err)
	}
	ch.Hub = &hubtest.Hub{Hub: hb, T: c.t, Dir: cfg.DataDir}
	link := ch.link
	c.t.Cleanup(func() { ch.stop(); _ = link.Close() })
}

func (ch *clusterHub) stop() {
	if ch.Hub == nil || ch.Hub.Hub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ch.Shutdown(ctx); err != nil {
		ch.T.Errorf("shutdown %s: %v", ch.id, err)
	}
	ch.Hub.Hub = nil
}

// leader is the hub whose domain runs (waiting for it).
func (c *testCluster) leader() *clusterHub {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, ch := range c.hubs {
			if ch.Hub != nil && ch.Hub.Hub != nil && ch.Domain() != nil {
				return ch
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatal("no hub leads")
	return nil
}

// adminToken creates an admin token on the leader for every hub's helpers.
func (c *testCluster) adminToken() {
	c.t.Helper()
	tok := c.token("admin", auth.RoleAdmin)
	for _, ch := range c.hubs {
		ch.AdminToken = tok
	}
}

func (c *testCluster) token(agent string, role auth.Role) string {
	c.t.Helper()
	tok, err := c.leader().Domain().Tokens.Create(agent, role)
	if err != nil {
		c.t.Fatal(err)
	}
	return tok
}

// agent connects agent on hub ch (any hub).
func (c *testCluster) agent(ch *clusterHub, agent string, caps ...string) *hubtest.Client {
	c.t.Helper()
	return ch.Connect(agent, c.token(agent, auth.RoleAgent), caps...)
}

func agentIDs(t *testing.T, h *clusterHub) []string {
	t.Helper()
	st, body := h.Do("GET", "/api/agents", "", nil)
	if st != 200 {
		t.Fatalf("agents on %s: %d %v", h.id, st, body)
	}
	var ids []string
	for _, a := range body["agents"].([]any) {
		ids = append(ids, a.(map[string]any)["agent_id"].(string))
	}
	sort.Strings(ids)
	return ids
}

func TestClusterFollowerRelaysAgentsAndHTTP(t *testing.T) {
	c := newTestCluster(t, "hub-a", "hub-b")
	c.start("hub-a")
	a, b := c.hubs["hub-a"], c.hubs["hub-b"]

	far := c.agent(b, "far", "code")
	near := c.agent(a, "near")
	far.Expect("agent_joined")
	// Both hubs list the whole fleet.
	for _, h := range []*clusterHub{a, b} {
		if got := agentIDs(t, h); !reflect.DeepEqual(got, []string{"far", "near"}) {
			t.Fatalf("/api/agents on %s = %v", h.id, got)
		}
	}

	// A task submitted on the leader reaches the agent on the follower,
	// which completes it.
	st, body := a.Do("POST", "/api/tasks", a.AdminToken, map[string]any{"description": "relayed", "needed_capabilities": []string{"code"}})
	if st != 201 {
		t.Fatalf("submit: %d %v", st, body)
	}
	id := body["task_id"].(string)
	if as := far.Expect("task_assign"); as["task_id"] != id {
		t.Fatalf("assign: %v", as)
	}
	far.Send(map[string]any{"type": "task_accepted", "task_id": id, "protocol_version": 1})
	if ack := far.Expect("task_ack"); ack["status"] != "accepted" {
		t.Fatalf("accept ack: %v", ack)
	}
	far.Send(map[string]any{"type": "task_complete", "task_id": id, "generation": 1, "result": map[string]any{"status": "success"}})
	if ack := far.Expect("task_ack"); ack["status"] != "complete" {
		t.Fatalf("complete ack: %v", ack)
	}
	// Read through the follower: forwarded to the leader.
	if st, task := b.Do("GET", "/api/tasks/"+id, b.AdminToken, nil); st != 200 || task["status"] != "completed" {
		t.Fatalf("task through the follower: %d %v", st, task)
	}

	// Direct messages both ways, live.
	near.Send(map[string]any{"type": "message", "to": "far", "payload": map[string]any{"q": 1}})
	sent := near.Expect("message_sent")
	if m := far.Expect("message"); m["id"] != sent["id"] || m["from"] != "near" {
		t.Fatalf("dm to the follower's agent: %v", m)
	}
	far.Send(map[string]any{"type": "message", "to": "near", "payload": map[string]any{"a": 2}})
	sent = far.Expect("message_sent")
	if m := near.Expect("message"); m["id"] != sent["id"] || m["from"] != "far" {
		t.Fatalf("dm from the follower's agent: %v", m)
	}
	// A broadcast reaches agents on both hubs.
	third := c.agent(b, "third")
	near.Send(map[string]any{"type": "message", "payload": map[string]any{"all": true}})
	sent = near.Expect("message_sent")
	for _, cl := range []*hubtest.Client{far, third} {
		if m := cl.Expect("message"); m["id"] != sent["id"] {
			t.Fatalf("broadcast: %v", m)
		}
	}

	// HTTP on the follower answers as the leader does.
	for _, req := range []struct{ method, path, token string }{
		{"GET", "/api/agents", ""},
		{"GET", "/api/tasks/" + id, a.AdminToken},
		{"GET", "/api/tasks", ""},
		{"GET", "/api/tasks/nope", a.AdminToken},
		{"GET", "/api/no-such-route", ""},
		{"GET", "/api/metrics", ""},
	} {
		sa, ba := a.DoRaw(req.method, req.path, req.token, nil)
		sb, bb := b.DoRaw(req.method, req.path, req.token, nil)
		if sa != sb || (req.path != "/api/metrics" && string(ba) != string(bb)) {
			t.Fatalf("%s %s: leader %d %s, follower %d %s", req.method, req.path, sa, ba, sb, bb)
		}
	}
	// No hub treats a caller as the local operator in a cluster.
	if st, _ := b.DoRaw("GET", "/api/metrics", "", nil); st != 401 {
		t.Fatalf("tokenless metrics through the follower: %d", st)
	}

	// Health answers on every hub with its role.
	for _, h := range []*clusterHub{a, b} {
		st, body := h.Do("GET", "/health", "", nil)
		role := map[string]string{"hub-a": "leader", "hub-b": "follower"}[h.id]
		if st != 200 || body["status"] != "ok" || body["role"] != role || body["hub_id"] != h.id ||
			body["leader"].(map[string]any)["hub_id"] != "hub-a" || body["agents_connected"] != float64(3) {
			t.Fatalf("health on %s: %d %v", h.id, st, body)
		}
	}
}

func TestClusterLeaderChangeClosesWith1012(t *testing.T) {
	c := newTestCluster(t, "hub-a", "hub-b")
	c.start("hub-a")
	a, b := c.hubs["hub-a"], c.hubs["hub-b"]
	onA := c.agent(a, "on-a")
	onB := c.agent(b, "on-b")

	c.el.elect(t, cluster.Leader{HubID: "hub-b", URL: b.url, Epoch: 2})
	for _, cl := range []*hubtest.Client{onA, onB} {
		if code, reason := cl.Closed(10 * time.Second); code != protocol.CloseRestart {
			t.Fatalf("close on a change of leader: %d %q", code, reason)
		}
	}
	if l := c.leader(); l.id != "hub-b" {
		t.Fatalf("leader = %s", l.id)
	}
	// The old leader follows now: an agent connecting to it reaches the new one.
	again := c.agent(a, "on-a")
	again.Send(map[string]any{"type": "ping"})
	again.Expect("pong")
	if got := agentIDs(t, a); !reflect.DeepEqual(got, []string{"on-a"}) {
		t.Fatalf("agents through the old leader = %v", got)
	}
	st, body := a.Do("GET", "/health", "", nil)
	if st != 200 || body["role"] != "follower" {
		t.Fatalf("old leader's health: %d %v", st, body)
	}
}

func TestClusterSilentFollowerAgentsDisconnected(t *testing.T) {
	c := newTestCluster(t, "hub-a", "hub-b")
	c.start("hub-a")
	a, b := c.hubs["hub-a"], c.hubs["hub-b"]
	watcher := c.agent(a, "watcher")
	far := c.agent(b, "far", "code")
	watcher.Expect("agent_joined")
	st, body := a.Do("POST", "/api/tasks", a.AdminToken, map[string]any{"description": "held", "needed_capabilities": []string{"code"}})
	if st != 201 {
		t.Fatalf("submit: %d %v", st, body)
	}
	id := body["task_id"].(string)
	far.Expect("task_assign")
	far.Send(map[string]any{"type": "task_accepted", "task_id": id, "protocol_version": 1})
	far.Expect("task_ack")

	// The follower dies: not a word more from it on the bus.
	b.link.kill()
	if left := watcher.ExpectWithin("agent_left", 10*time.Second); left["agent_id"] != "far" {
		t.Fatalf("agent_left: %v", left)
	}
	if got := agentIDs(t, a); !reflect.DeepEqual(got, []string{"watcher"}) {
		t.Fatalf("agents after the follower died = %v", got)
	}
	// Its task went back to the queue, as on any disconnect.
	_, task := a.Do("GET", "/api/tasks/"+id, a.AdminToken, nil)
	if !slices.Contains(historyEvents(task), "reclaimed:agent_disconnect") {
		t.Fatalf("task after the follower died: %v", task)
	}
}

// The same hub elected again (a new term) restarts its relay under the
// new term: the followers' sockets reconnect and work.
func TestClusterSameLeaderNewTerm(t *testing.T) {
	c := newTestCluster(t, "hub-a", "hub-b")
	c.start("hub-a")
	a, b := c.hubs["hub-a"], c.hubs["hub-b"]
	local := c.agent(a, "local")
	far := c.agent(b, "far")
	c.el.elect(t, cluster.Leader{HubID: "hub-a", URL: a.url, Epoch: 2})
	if code, reason := far.Closed(10 * time.Second); code != protocol.CloseRestart {
		t.Fatalf("relayed socket on a new term: %d %q", code, reason)
	}
	again := c.agent(b, "far")
	local.Send(map[string]any{"type": "message", "to": "far", "payload": map[string]any{"term": 2}})
	sent := local.Expect("message_sent")
	if m := again.Expect("message"); m["id"] != sent["id"] {
		t.Fatalf("dm after the new term: %v", m)
	}
}

// Many agents on both hubs: every task completes exactly once and every
// direct message arrives, through the relay's per-socket ordering.
func TestClusterRelayUnderLoad(t *testing.T) {
	c := newTestCluster(t, "hub-a", "hub-b")
	// Acceptance is answered at once, but a loaded machine may take longer
	// than the fast timers' 2 s; a reassignment would work a task twice
	// and send an extra message, which is not what this test is about.
	c.start("hub-a", func(cfg *hub.Config) { cfg.AcceptTimeout = time.Minute })
	a, b := c.hubs["hub-a"], c.hubs["hub-b"]
	const workers, tasks = 8, 80
	var clients []*hubtest.Client
	for i := range workers {
		h := b
		if i%4 == 0 {
			h = a
		}
		clients = append(clients, c.agent(h, fmt.Sprintf("w%d", i), "code"))
	}
	ids := map[string]bool{}
	for i := range tasks {
		st, body := b.Do("POST", "/api/tasks", b.AdminToken, map[string]any{"description": fmt.Sprintf("t%d", i), "needed_capabilities": []string{"code"}})
		if st != 201 {
			t.Fatalf("submit: %d %v", st, body)
		}
		ids[body["task_id"].(string)] = true
	}
	done := make(chan string, tasks)
	errs := make(chan error, workers)
	quit := make(chan struct{})
	var messages atomic.Int64
	for i, cl := range clients {
		go func() {
			// Each worker works its assignments and messages its
			// neighbour after each one.
			next := fmt.Sprintf("w%d", (i+1)%workers)
			for {
				m := cl.Next(50 * time.Millisecond)
				if m == nil {
					select {
					case <-quit:
						errs <- nil
						return
					default:
						continue
					}
				}
				if m["type"] == "message" {
					messages.Add(1)
				}
				if m["type"] != "task_assign" {
					continue
				}
				id := m["task_id"].(string)
				for _, f := range []map[string]any{
					{"type": "task_accepted", "task_id": id, "protocol_version": 1},
					{"type": "task_complete", "task_id": id, "generation": m["generation"], "result": map[string]any{"status": "success"}},
					{"type": "message", "to": next, "payload": map[string]any{"after": id}},
				} {
					if err := cl.TrySend(f); err != nil {
						errs <- err
						return
					}
				}
				done <- id
			}
		}()
	}
	seen := map[string]int{}
	for range tasks {
		select {
		case id := <-done:
			seen[id]++
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d tasks worked", len(seen), tasks)
		}
	}
	// Every completion sent one message to an agent online throughout.
	deadline := time.Now().Add(30 * time.Second)
	for messages.Load() < tasks && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(quit)
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Fatalf("task %s worked %d times", id, seen[id])
		}
	}
	if n := messages.Load(); n != tasks {
		t.Fatalf("%d messages arrived, want %d", n, tasks)
	}
	for id := range ids {
		if _, task := a.Do("GET", "/api/tasks/"+id, a.AdminToken, nil); task["status"] != "completed" {
			t.Fatalf("task %s: %v", id, task)
		}
	}
}

// A follower that restarts under the same hub id (its process died and
// came back before the leader noticed the silence): the leader drops the
// old process's sockets at the first word of the new one.
func TestClusterFollowerRestartSameID(t *testing.T) {
	c := newTestCluster(t, "hub-a", "hub-b")
	c.silence = time.Hour
	c.start("hub-a", func(cfg *hub.Config) { cfg.Socket.StaleAfter = time.Hour })
	a, b := c.hubs["hub-a"], c.hubs["hub-b"]
	watcher := c.agent(a, "watcher")
	c.agent(b, "far")
	watcher.Expect("agent_joined")

	// The old process goes deaf and mute at once, and a new one with the
	// same id comes up on a new port.
	b.link.kill()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reborn := &clusterHub{id: "hub-b", ln: ln, url: "http://" + ln.Addr().String(), link: c.bus.link()}
	c.boot(reborn)
	reborn.AdminToken = a.AdminToken
	if left := watcher.Expect("agent_left"); left["agent_id"] != "far" {
		t.Fatalf("agent_left: %v", left)
	}
	again := c.agent(reborn, "far")
	again.Send(map[string]any{"type": "ping"})
	again.Expect("pong")
}

// A request a follower gets while the leader is dead waits for the next
// leader instead of failing: here the follower itself is elected.
func TestClusterForwardWaitsThroughFailover(t *testing.T) {
	logs := &signalWriter{want: `"event":"forward_waiting"`, seen: make(chan struct{})}
	c := newTestCluster(t, "hub-a", "hub-b")
	c.start("hub-a", hubtest.WithJSONLog(logs))
	a, b := c.hubs["hub-a"], c.hubs["hub-b"]
	admin := b.AdminToken
	a.stop() // the leader is gone; the election has not noticed yet
	type answer struct {
		st   int
		body map[string]any
	}
	got := make(chan answer, 1)
	go func() {
		st, body := b.Do("POST", "/api/tasks", admin, map[string]any{"description": "across the failover"})
		got <- answer{st, body}
	}()
	select {
	case <-logs.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never waited for a leader")
	}
	c.el.elect(t, cluster.Leader{HubID: "hub-b", URL: b.url, Epoch: 2})
	// The new leader's domain answers it: 401, as hub-b's own data
	// directory (each test hub has one) does not hold hub-a's admin token.
	// Not a 502 or 503.
	if res := <-got; res.st != 401 || res.body["error"] != "unauthorized" {
		t.Fatalf("request across the failover: %d %v", res.st, res.body)
	}
	if st, body := b.Do("GET", "/api/agents", "", nil); st != 200 {
		t.Fatalf("after the failover: %d %v", st, body)
	}
}
