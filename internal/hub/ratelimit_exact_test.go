package hub_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/ratelimit"
	"github.com/agentcom/agentcom/internal/testenv"
)

func newFakeClock() *testenv.Clock {
	return testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}

// TestRateLimitCloseAndCooldownsExact pins README's numbers with the
// default socket config: the tenth refused frame in a minute (not the
// ninth, not the eleventh) closes the socket with 1008, and the agent may
// identify again after 30 s, then 60 s, then 300 s (and 300 s after that).
func TestRateLimitCloseAndCooldownsExact(t *testing.T) {
	clk := newFakeClock()
	h := hubtest.Start(t, "",
		// One message and no refill within the test: every further
		// message frame is refused.
		hubtest.WithRateLimits(ratelimit.Limits{ratelimit.ClassMessages: {PerSecond: 1e-6, Burst: 1}}),
		func(c *hub.Config) {
			def := hub.DefaultConfig().Socket
			c.Socket = def // the documented limit, window and cooldowns
			c.Socket.Now = clk.Now
			// The frozen clock must not make sockets look idle when it jumps.
			c.Socket.IdleTimeout, c.Socket.StaleAfter = 1000*time.Hour, 1000*time.Hour
		})
	tok := h.Token("flood", auth.RoleAgent)
	h.Token("nobody", auth.RoleAgent) // a known, offline recipient
	identify := func(c *hubtest.Client) {
		c.Send(map[string]any{"type": "identify", "agent_id": "flood", "token": tok, "name": "flood",
			"capabilities": []string{}, "client_type": "sidecar", "protocol_version": 1})
	}
	msg := map[string]any{"type": "message", "to": "nobody", "payload": map[string]any{}}

	a := h.Connect("flood", tok)
	a.Send(msg)
	a.Expect("message_sent") // the burst of one
	for i := range 9 {
		a.Send(msg)
		if e := a.Expect("error"); e["error"] != "rate_limited" {
			t.Fatalf("refused frame %d: %v", i+1, e)
		}
	}
	// Nine refused: still open.
	a.Send(map[string]any{"type": "status", "status": "still here"})
	a.Expect("status_updated")
	a.Send(msg) // the tenth
	if code, reason := a.Closed(10 * time.Second); code != protocol.ClosePolicy {
		t.Fatalf("after ten refused frames: closed %d %q", code, reason)
	}

	for n, want := range []time.Duration{30 * time.Second, 60 * time.Second, 300 * time.Second, 300 * time.Second} {
		// Just before the cooldown ends: refused, and told how long.
		clk.Advance(want - time.Second)
		c := hubtest.Dial(t, h.WSURL())
		identify(c)
		code, reason := c.Closed(10 * time.Second)
		if code != protocol.ClosePolicy || !strings.Contains(reason, "retry in 1s") {
			t.Fatalf("cooldown %d (%v), 1 s before its end: %d %q", n+1, want, code, reason)
		}
		clk.Advance(time.Second)
		c = h.Connect("flood", tok) // at its end: welcome again
		// Flood again for the next cooldown.
		for range 10 {
			if c.TrySend(msg) != nil {
				break
			}
		}
		if code, _ := c.Closed(10 * time.Second); code != protocol.ClosePolicy {
			t.Fatalf("flood %d: closed %d", n+2, code)
		}
		// Right after the close the whole cooldown is announced.
		d := hubtest.Dial(t, h.WSURL())
		identify(d)
		next := []time.Duration{60, 300, 300, 300}[n] * time.Second
		if _, reason := d.Closed(10 * time.Second); !strings.Contains(reason, "retry in "+strconv.Itoa(int(next.Seconds()))+"s") {
			t.Fatalf("after flood %d: %q, want a %v cooldown", n+2, reason, next)
		}
	}
}

// TestTasksHTTPRateClass: POST /api/tasks has its own class on top of the
// http class; once its bucket is empty submissions get 429 with
// Retry-After while other routes, and other callers' submissions, go on.
func TestTasksHTTPRateClass(t *testing.T) {
	h := hubtest.Start(t, "", hubtest.WithRateLimits(ratelimit.Limits{
		ratelimit.ClassTasks: {PerSecond: 1e-6, Burst: 3},
		ratelimit.ClassHTTP:  {PerSecond: 1e-6, Burst: 1000},
	}))
	submit := func(tok string) (int, map[string]any) {
		return h.Do("POST", "/api/tasks", tok, map[string]any{"description": "limited"})
	}
	for i := range 3 {
		if st, body := submit(h.AdminToken); st != 201 {
			t.Fatalf("submission %d within the burst: %d %v", i+1, st, body)
		}
	}
	st, body := submit(h.AdminToken)
	if st != 429 || body["error"] != "rate_limited" || body["retry_after_ms"] == nil {
		t.Fatalf("4th submission: %d %v", st, body)
	}
	if st, body := h.Do("GET", "/api/tasks/stats", h.AdminToken, nil); st != 200 {
		t.Fatalf("another route limited by the tasks class: %d %v", st, body)
	}
	if st, body := submit(h.Token("other", auth.RoleAgent)); st != 201 {
		t.Fatalf("another caller's submission: %d %v", st, body)
	}
	_, stats := h.Do("GET", "/api/tasks/stats", h.AdminToken, nil)
	if q := stats["by_status"].(map[string]any)["queued"]; q != float64(4) {
		t.Fatalf("queued %v: the refused submission changed state", q)
	}
}
