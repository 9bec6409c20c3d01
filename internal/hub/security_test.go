package hub_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/ratelimit"
	"github.com/agentcom/agentcom/internal/testenv"
)

// requestWithHost sends a request to the hub addressed to host, with an
// Origin when origin is set.
func requestWithHost(t *testing.T, h *hubtest.Hub, method, path, host, origin string) int {
	t.Helper()
	req, err := http.NewRequest(method, h.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDNSRebindingRefused: a page on attacker.example whose name resolves
// to 127.0.0.1 sends a matching Host and Origin. A loopback hub answers
// neither its dashboard nor anything else for that name; the same page
// under a served name acts as before, and an operator-listed name is served.
func TestDNSRebindingRefused(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.AllowedHosts = []string{"hub.example.internal"} })
	port := h.Addr()[strings.LastIndexByte(h.Addr(), ':'):]
	evil := "attacker.example" + port

	_, resp, err := hubtest.DialWith("ws://"+h.Addr()+"/ws/dashboard",
		&websocket.DialOptions{Host: evil, HTTPHeader: http.Header{"Origin": {"http://" + evil}}})
	if err == nil {
		t.Fatal("dashboard socket opened for Host attacker.example")
	}
	if resp == nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("dashboard socket for attacker.example: %v, want 421", resp)
	}
	for _, p := range []string{"/api/dashboard/state", "/api/agents", "/metrics", "/health"} {
		if st := requestWithHost(t, h, "GET", p, evil, "http://"+evil); st != http.StatusMisdirectedRequest {
			t.Errorf("GET %s for attacker.example: %d, want 421", p, st)
		}
	}
	if st := requestWithHost(t, h, "POST", "/api/onboard/register", evil, "http://"+evil); st != http.StatusMisdirectedRequest {
		t.Errorf("register for attacker.example: %d, want 421", st)
	}

	// A page of another site aimed at the loopback address itself: the
	// browser's Origin gives it away, so it is not the local operator.
	_, resp, err = hubtest.DialWith("ws://"+h.Addr()+"/ws/dashboard",
		&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://" + evil}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("cross-site dashboard socket: %v %v, want 401", resp, err)
	}
	if st := requestWithHost(t, h, "GET", "/api/dashboard/state", h.Addr(), "http://"+evil); st != http.StatusUnauthorized {
		t.Errorf("cross-site state: %d, want 401", st)
	}

	// Served names: loopback literals, localhost, and the listed name.
	for _, host := range []string{h.Addr(), "localhost" + port, "hub.example.internal" + port, "HUB.example.internal."} {
		conn, resp, err := hubtest.DialWith("ws://"+h.Addr()+"/ws/dashboard",
			&websocket.DialOptions{Host: host, HTTPHeader: http.Header{"Origin": {"http://" + host}}})
		if err != nil {
			t.Fatalf("dashboard socket for %s: %v %v", host, resp, err)
		}
		c := hubtest.NewClient(t, conn)
		if hello := c.Expect("hello"); hello["can_act"] != true {
			t.Errorf("local operator via %s: %v", host, hello)
		}
		c.Close()
	}
}

// TestRevokeClosesDashboardSocket: a dashboard socket opened with an
// admin token is closed (4004) when that token is revoked.
func TestRevokeClosesDashboardSocket(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.DashboardToken = true })
	ops := h.Token("ops2", auth.RoleAdmin)
	viewer := h.Token("screen", auth.RoleViewer)
	d := hubtest.Dial(t, "ws://"+h.Addr()+"/ws/dashboard?token="+ops)
	if hello := d.Expect("hello"); hello["can_act"] != true {
		t.Fatalf("hello: %v", hello)
	}
	v := hubtest.Dial(t, "ws://"+h.Addr()+"/ws/dashboard?token="+viewer)
	v.Expect("hello")
	if st, body := h.Do("DELETE", "/admin/tokens/ops2", h.AdminToken, nil); st != 200 || body["revoked"] != 1.0 {
		t.Fatalf("revoke: %d %v", st, body)
	}
	if code, _ := d.Closed(5 * time.Second); code != protocol.CloseRevoked {
		t.Fatalf("dashboard socket of the revoked token: close %d, want %d", code, protocol.CloseRevoked)
	}
	// Other tokens' sockets stay: the viewer's still answers.
	v.Send(map[string]any{"type": "no_such_request"})
	v.Expect("error")
}

// TestRevokeClosesSocketIdentifiedAsOtherAgent: an admin token identified
// on /ws as another agent loses that socket when the admin token is
// revoked; the agent's own token keeps its socket.
func TestRevokeClosesSocketIdentifiedAsOtherAgent(t *testing.T) {
	h := hubtest.Start(t, "")
	boss := h.Token("boss", auth.RoleAdmin)
	impostor := h.Connect("worker", boss)
	bystander := h.Agent("bystander")
	if st, body := h.Do("DELETE", "/admin/tokens/boss", h.AdminToken, nil); st != 200 || body["revoked"] != 1.0 {
		t.Fatalf("revoke: %d %v", st, body)
	}
	if code, _ := impostor.Closed(5 * time.Second); code != protocol.CloseRevoked {
		t.Fatalf("socket identified with the revoked token: close %d, want %d", code, protocol.CloseRevoked)
	}
	bystander.Send(map[string]any{"type": "ping"})
	bystander.Expect("pong")
	// The revoked token cannot identify again.
	again := hubtest.Dial(t, h.WSURL())
	again.Send(map[string]any{"type": "identify", "agent_id": "worker", "token": boss})
	if e := again.Expect("error"); e["error"] != protocol.CodeInvalidToken {
		t.Fatalf("identify with a revoked token: %v", e)
	}
}

// TestConcurrentIdentifiesLeaveNoGhost: many sockets identifying as one
// agent at once, then all closing, leave no agent behind in the
// scheduler holding a task without a socket.
func TestConcurrentIdentifiesLeaveNoGhost(t *testing.T) {
	// Every round reclaims the task on disconnect: no poison threshold here.
	e := newEngine(t, func(c *hub.Config) { c.Queue.MaxDisconnectReclaims = 0 })
	tok := e.Token("racer", auth.RoleAgent)
	id := e.submit(map[string]any{"description": "held", "target_agent": "racer"})
	// Bystanders make every identify's agent_joined broadcast take a
	// while, widening the window between taking the agent's socket over
	// and telling the scheduler.
	const bystanders = 100
	for i := range bystanders {
		e.Agent(fmt.Sprint("bystander-", i))
	}
	for round := range 3 {
		const n = 50
		conns := make([]*websocket.Conn, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				c, _, err := hubtest.DialWith(e.WSURL(), nil)
				if err != nil {
					return
				}
				conns[i] = c
				_ = hubtest.NewClient(t, c).TrySend(map[string]any{"type": "identify", "agent_id": "racer", "token": tok,
					"name": "racer", "capabilities": []string{}})
			})
		}
		wg.Wait()
		// Let every identify land, then drop every socket.
		testenv.Eventually(t, "identifies handled", func() bool {
			st, body := e.Do("GET", "/api/agents/racer/state", e.AdminToken, nil)
			return st == 200 && body["fsm_state"] != nil
		})
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
		testenv.Eventually(t, "every racer socket gone", func() bool { return e.Sockets.Connected() == bystanders })
		testenv.Eventually(t, fmt.Sprint("no agent left connected, round ", round), func() bool {
			st, _ := e.Do("GET", "/api/agents/racer/state", e.AdminToken, nil)
			return st == http.StatusNotFound
		})
		e.waitTask(id, "back in the queue", func(m map[string]any) bool { return m["status"] == "queued" })
	}
}

// TestIdentifyEmptyAgentRefused: an admin token may act as any agent, but
// not as "": that identify is refused and nobody is connected.
func TestIdentifyEmptyAgentRefused(t *testing.T) {
	h := hubtest.Start(t, "")
	c := hubtest.Dial(t, h.WSURL())
	c.Send(map[string]any{"type": "identify", "agent_id": "", "token": h.AdminToken})
	e := c.Expect("error")
	if e["error"] != protocol.CodeValidationFailed || e["message_type"] != "identify" {
		t.Fatalf("identify as \"\": %v", e)
	}
	c.Send(map[string]any{"type": "list_agents"})
	if e := c.Expect("error"); e["error"] != protocol.CodeNotIdentified {
		t.Fatalf("after the refused identify: %v", e)
	}
	if _, body := h.Do("GET", "/health", "", nil); body["agents_connected"] != 0.0 {
		t.Fatalf("health: %v", body)
	}
}

// TestIdentifyDeadline: a socket that only pings is closed (4006) once
// the identify timeout passes; its pings do not extend it.
func TestIdentifyDeadline(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.Socket.IdentifyTimeout = 300 * time.Millisecond })
	c := hubtest.Dial(t, h.WSURL())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if c.TrySend(map[string]any{"type": "ping"}) != nil {
					return
				}
			}
		}
	})
	code, reason := c.Closed(10 * time.Second)
	close(stop)
	wg.Wait()
	if code != protocol.CloseIdentifyTimeout {
		t.Fatalf("close %d %q, want %d", code, reason, protocol.CloseIdentifyTimeout)
	}
	// An identified socket is not subject to it.
	a := h.Agent("punctual")
	a.Send(map[string]any{"type": "list_agents"})
	a.Expect("agents")
}

// TestUnidentifiedSocketCap: sockets waiting to identify are capped per
// address; the handshake over the cap gets 503, and a socket that
// identifies frees its place.
func TestUnidentifiedSocketCap(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.Socket.MaxUnidentifiedPerAddr = 3 })
	var waiting []*hubtest.Client
	for range 3 {
		waiting = append(waiting, hubtest.Dial(t, h.WSURL()))
	}
	_, resp, err := hubtest.DialWith(h.WSURL(), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("fourth unidentified socket: %v %v, want 503", resp, err)
	}
	tok := h.Token("w", auth.RoleAgent)
	waiting[0].Send(map[string]any{"type": "identify", "agent_id": "w", "token": tok})
	waiting[0].Expect("identified")
	h.Connect("w2", h.Token("w2", auth.RoleAgent)) // dials a fresh socket: there is room again
	waiting[1].Close()
	testenv.Eventually(t, "a closed socket frees its place", func() bool {
		conn, _, err := hubtest.DialWith(h.WSURL(), nil)
		if err != nil {
			return false
		}
		conn.CloseNow()
		return true
	})
}

// TestHTTPServerTimeouts: a request whose body never arrives is cut at
// the read timeout, while an upgraded socket outlives it.
func TestHTTPServerTimeouts(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.HTTP.ReadTimeout = 300 * time.Millisecond })
	a := h.Agent("long-lived")
	conn, err := net.Dial("tcp", h.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/tasks HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", h.Addr())
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("slow body: connection not closed by the hub: %v", err)
	}
	// The socket opened before is still served after the read timeout
	// (net/http clears the connection's deadline when it is hijacked).
	time.Sleep(2 * 300 * time.Millisecond)
	a.Send(map[string]any{"type": "ping"})
	a.Expect("pong")
}

// TestPongKeepsSilentClientAlive: a client that never sends a ping frame
// (scripts/connect.js) but answers WebSocket pings stays connected past
// the stale and idle timeouts.
func TestPongKeepsSilentClientAlive(t *testing.T) {
	h := hubtest.Start(t, "", hubtest.FastTimers, func(c *hub.Config) {
		c.Socket.PingInterval = 200 * time.Millisecond
		c.Socket.StaleAfter = 600 * time.Millisecond
		c.Socket.IdleTimeout = 600 * time.Millisecond
	})
	a := h.Agent("quiet") // its reader answers pings, as every WebSocket client does
	a.NoFrame("never", 3*600*time.Millisecond)
	a.Send(map[string]any{"type": "list_agents"})
	a.Expect("agents")
	// A client that talks but never pings is kept alive the same way.
	b := h.Agent("chatty")
	for range 40 { // never silent for a ping interval, never a ping frame
		b.Send(map[string]any{"type": "list_agents"})
		b.Expect("agents")
		b.NoFrame("never", 50*time.Millisecond)
	}
}

// TestAgentRevokesOwnToken: remove-agent.js revokes with the agent's own
// token; that works, and only for its own agent.
func TestAgentRevokesOwnToken(t *testing.T) {
	h := hubtest.Start(t, "")
	tok := h.Token("leaving", auth.RoleAgent)
	other := h.Token("staying", auth.RoleAgent)
	c := h.Connect("leaving", tok)
	if st, body := h.Do("DELETE", "/admin/tokens/staying", tok, nil); st != http.StatusForbidden {
		t.Fatalf("revoking another agent's token: %d %v", st, body)
	}
	if st, body := h.Do("DELETE", "/admin/tokens/leaving", tok, nil); st != 200 || body["revoked"] != 1.0 {
		t.Fatalf("revoking its own token: %d %v", st, body)
	}
	if code, _ := c.Closed(5 * time.Second); code != protocol.CloseRevoked {
		t.Fatalf("socket of the revoked token: close %d", code)
	}
	if st, _ := h.Do("GET", "/api/tasks", tok, nil); st != http.StatusUnauthorized {
		t.Fatalf("revoked token still works: %d", st)
	}
	if st, _ := h.Do("GET", "/api/tasks", other, nil); st != 200 {
		t.Fatalf("the other agent's token: %d", st)
	}
}

// TestLargeResultsAndPoisonTasks: a result larger than ordinary frames
// is accepted up to the report limit; other frames stay small; a task
// whose result is over every limit (its agent is cut off each time) ends
// in the dead letter with a reason after a few disconnect reclaims.
func TestLargeResultsAndPoisonTasks(t *testing.T) {
	e := newEngine(t, func(c *hub.Config) {
		c.Socket.ReadLimit = 1 << 10
		c.Socket.ReportLimit = 8 << 10
		c.Queue.MaxDisconnectReclaims = 3
	})
	tok := e.Token("w", auth.RoleAgent)
	a := e.Connect("w", tok)
	id := e.submit(map[string]any{"description": "big result"})
	_, g := assignment(a)
	big := strings.Repeat("x", 4<<10)
	expectAck(t, report(a, "task_complete", id, g, map[string]any{"result": map[string]any{"output": big}}), id, "complete")
	if task := e.task(id); task["result"].(map[string]any)["output"] != big {
		t.Fatal("large result not stored whole")
	}
	a.Send(map[string]any{"type": "message", "to": "w", "payload": map[string]any{"blob": big}})
	f := a.Expect("error")
	if errs, _ := f["errors"].([]any); f["error"] != protocol.CodeValidationFailed || len(errs) != 1 ||
		errs[0].(map[string]any)["error"] != protocol.ErrTooLong {
		t.Fatalf("large message frame: %v", f)
	}

	a.Close()
	testenv.Eventually(t, "first socket gone", func() bool { return e.Sockets.Connected() == 0 })
	poison := e.submit(map[string]any{"description": "poison"})
	huge := strings.Repeat("y", 16<<10)
	for i := range 3 {
		c := e.Connect("w", tok)
		tid, g := assignment(c)
		if tid != poison {
			t.Fatalf("round %d: assigned %s", i, tid)
		}
		_ = c.TrySend(map[string]any{"type": "task_complete", "task_id": tid, "generation": g, "result": map[string]any{"output": huge}})
		if code, _ := c.Closed(5 * time.Second); code != websocket.StatusMessageTooBig {
			t.Fatalf("round %d: close %d", i, code)
		}
		// The next socket connects once the hub released this one (a
		// reconnect that overtakes the release keeps the task held).
		e.waitTask(poison, "released", func(m map[string]any) bool { return m["status"] != "assigned" })
	}
	task := e.waitTask(poison, "dead-lettered", func(m map[string]any) bool { return m["status"] == "dead_letter" })
	if le, _ := task["last_error"].(string); !strings.HasPrefix(le, "poison_task: reclaimed 3 times") || task["disconnect_reclaims"] != 3.0 {
		t.Fatalf("poison task: %v %v", task["last_error"], task["disconnect_reclaims"])
	}
	// The operator's retry gives it a fresh count.
	if st, body := e.Do("POST", "/api/tasks/"+poison+"/retry", e.AdminToken, nil); st != 200 {
		t.Fatalf("retry: %d %v", st, body)
	}
	if task := e.task(poison); task["disconnect_reclaims"] != nil {
		t.Fatalf("retried task keeps its count: %v", task["disconnect_reclaims"])
	}
}

// TestSlowConsumerBoundedInBytes: an agent that stops reading is
// disconnected once the bytes waiting for it pass the cap, long before
// its frame count would be.
func TestSlowConsumerBoundedInBytes(t *testing.T) {
	var logs syncBuffer
	const capBytes = 256 << 10
	h := hubtest.Start(t, "", hubtest.WithJSONLog(&logs), func(c *hub.Config) {
		c.Socket.SendBuffer = 100000
		c.Socket.SendBytes = capBytes
	})
	slow, _, err := hubtest.DialWith(h.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	b, _ := json.Marshal(map[string]any{"type": "identify", "agent_id": "slow", "token": h.Token("slow", auth.RoleAgent)})
	if err := slow.Write(t.Context(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "slow identified", func() bool { return h.Sockets.Online("slow") })
	sender := h.Agent("sender")
	payload := map[string]any{"blob": strings.Repeat("z", 32<<10)}
	for i := 0; h.Sockets.Online("slow"); i++ {
		if i == 5000 {
			t.Fatal("the slow agent was never disconnected")
		}
		sender.Send(map[string]any{"type": "message", "to": "slow", "payload": payload})
		sender.Expect("message_sent")
	}
	testenv.Eventually(t, "slow_consumer logged", func() bool { return strings.Contains(logs.String(), `"event":"slow_consumer"`) })
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if !strings.Contains(line, `"event":"slow_consumer"`) {
			continue
		}
		var rec struct {
			QueuedBytes  int64 `json:"queued_bytes"`
			QueuedFrames int   `json:"queued_frames"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.QueuedBytes > capBytes || rec.QueuedFrames >= 100000 {
			t.Fatalf("slow consumer held %d bytes in %d frames (cap %d bytes)", rec.QueuedBytes, rec.QueuedFrames, capBytes)
		}
	}
}

// TestPublicRoutesRateLimited: callers without a token are limited per
// address (429 with Retry-After and retry_after_ms); wrong join secrets
// have their own, tighter limit; the agent socket's handshake is not
// limited by these.
func TestPublicRoutesRateLimited(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.JoinSecret = "s3cret" }, hubtest.WithRateLimits(ratelimit.Limits{
		ratelimit.ClassPublic: {PerSecond: 0.001, Burst: 5}, ratelimit.ClassRegister: {PerSecond: 0.001, Burst: 2}}))
	guess := map[string]any{"agent_id": "intruder", "join_secret": "wrong"}
	for i := range 2 {
		if st, body := h.Do("POST", "/api/onboard/register", "", guess); st != http.StatusForbidden {
			t.Fatalf("guess %d: %d %v", i, st, body)
		}
	}
	st, raw := h.DoRaw("POST", "/api/onboard/register", "", guess)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	if st != http.StatusTooManyRequests || body["error"] != protocol.CodeRateLimited || body["retry_after_ms"].(float64) <= 0 {
		t.Fatalf("third guess: %d %s", st, raw)
	}
	// The public class counted the three registrations too: two more
	// requests fit its burst of 5, then 429.
	for i := range 2 {
		if st, _ := h.Do("GET", "/api/agents", "", nil); st != 200 {
			t.Fatalf("public request %d: %d", i, st)
		}
	}
	req, _ := http.NewRequest("GET", h.URL()+"/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("public flood: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Token holders and agent sockets are not caught by the address's limit.
	if st, _ := h.Do("GET", "/api/tasks", h.AdminToken, nil); st != 200 {
		t.Fatalf("token holder: %d", st)
	}
	h.Agent("still-welcome")
}
