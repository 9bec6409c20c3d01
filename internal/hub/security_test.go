package hub_test

import (
	"fmt"
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
)

// eventually polls cond until it holds (10 s).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

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
	e := newEngine(t)
	tok := e.Token("racer", auth.RoleAgent)
	id := e.submit(map[string]any{"description": "held", "target_agent": "racer"})
	for round := range 5 {
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
		eventually(t, "identifies handled", func() bool {
			st, body := e.Do("GET", "/api/agents/racer/state", e.AdminToken, nil)
			return st == 200 && body["fsm_state"] != nil
		})
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
		eventually(t, "every socket gone", func() bool { return e.Sockets.Connected() == 0 })
		eventually(t, fmt.Sprint("no agent left connected, round ", round), func() bool {
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
