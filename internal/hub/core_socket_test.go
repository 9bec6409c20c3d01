package hub_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
)

// TestNodeSidecarReplay replays what the original Node sidecar sends when
// it connects and idles, and checks every reply.
func TestNodeSidecarReplay(t *testing.T) {
	h := hubtest.Start(t, "")
	tok := h.Token("gcu-sleeper", auth.RoleAgent)
	c := hubtest.Dial(t, h.WSURL())
	c.Send(`{"type":"identify","agent_id":"gcu-sleeper","token":"` + tok + `","name":"gcu-sleeper","status":"idle","capabilities":["code"],"client_type":"sidecar","protocol_version":1}`)
	id := c.Expect("identified")
	if !reflect.DeepEqual(id, map[string]any{"type": "identified", "agent_id": "gcu-sleeper"}) {
		t.Fatalf("identified = %v", id)
	}
	for range 3 {
		before := time.Now().UnixMilli()
		c.Send(`{"type":"ping","protocol_version":1}`)
		p := c.Expect("pong")
		ts, ok := p["timestamp"].(float64)
		if !ok || int64(ts) < before-1000 || len(p) != 2 {
			t.Fatalf("pong = %v", p)
		}
	}
	st, body := h.Do("GET", "/api/agents", "", nil)
	agents := body["agents"].([]any)
	if st != 200 || len(agents) != 1 {
		t.Fatalf("agents: %d %v", st, body)
	}
	a := agents[0].(map[string]any)
	if a["agent_id"] != "gcu-sleeper" || a["status"] != "idle" || a["fsm_state"] != "idle" {
		t.Fatalf("agent entry = %v", a)
	}
	if _, body := h.Do("GET", "/health", "", nil); body["agents_connected"].(float64) != 1 {
		t.Fatalf("health = %v", body)
	}
}

func TestIdentifyErrors(t *testing.T) {
	h := hubtest.Start(t, "")
	tokA := h.Token("a", auth.RoleAgent)
	viewer := h.Token("watcher", auth.RoleViewer)
	c := hubtest.Dial(t, h.WSURL())

	c.Send(`{"type":"ping"}`)
	c.Expect("pong") // allowed before identify
	c.Send(`{"type":"list_agents"}`)
	if e := c.Expect("error"); e["error"] != "not_identified" {
		t.Fatalf("got %v", e)
	}
	cases := []struct {
		frame string
		want  string
	}{
		{`{"type":"identify","agent_id":"a","token":"nope"}`, "invalid_token"},
		{`{"type":"identify","agent_id":"b","token":"` + tokA + `"}`, "token_agent_mismatch"},
		{`{"type":"identify","agent_id":"watcher","token":"` + viewer + `"}`, "token_agent_mismatch"},
	}
	for _, tc := range cases {
		c.Send(tc.frame)
		if e := c.Expect("error"); e["error"] != tc.want {
			t.Fatalf("%s: got %v, want %s", tc.frame, e, tc.want)
		}
	}
	// The socket stays usable after auth failures.
	c.Send(`{"type":"identify","agent_id":"a","token":"` + tokA + `"}`)
	c.Expect("identified")
}

func TestValidationErrors(t *testing.T) {
	h := hubtest.Start(t, "")
	c := h.Agent("v")
	cases := []struct {
		name  string
		frame string
		want  map[string]any
	}{
		{"invalid json", `{nope`, map[string]any{"type": "error", "error": "invalid_json"}},
		{"missing generation, wrong task_id type", `{"type":"task_complete","task_id":5}`, map[string]any{
			"type": "error", "error": "validation_failed", "message_type": "task_complete",
			"errors": []any{
				map[string]any{"field": "generation", "error": "required", "detail": "field is required"},
				map[string]any{"field": "task_id", "error": "wrong_type", "detail": "expected string, got integer", "value": float64(5)},
			}}},
		{"float is not an integer", `{"type":"task_complete","task_id":"t","generation":1.0}`, map[string]any{
			"type": "error", "error": "validation_failed", "message_type": "task_complete",
			"errors": []any{map[string]any{"field": "generation", "error": "wrong_type", "detail": "expected integer, got float", "value": float64(1)}}}},
		{"array element", `{"type":"identify","agent_id":"v","token":"t","capabilities":["x",3]}`, map[string]any{
			"type": "error", "error": "validation_failed", "message_type": "identify",
			"errors": []any{map[string]any{"field": "capabilities[1]", "error": "wrong_type", "detail": "expected string, got integer", "value": float64(3)}}}},
		{"not an object", `[1,2]`, map[string]any{"type": "error", "error": "validation_failed", "message_type": "unknown",
			"errors": []any{map[string]any{"field": "message", "error": "wrong_type", "detail": "expected JSON object"}}}},
		{"too long", `{"type":"status","status":"` + strings.Repeat("é", 257) + `"}`, map[string]any{
			"type": "error", "error": "validation_failed", "message_type": "status",
			"errors": []any{map[string]any{"field": "status", "error": "too_long", "detail": "exceeds maximum length of 256 characters",
				"value": strings.Repeat("é", 50) + "..."}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.Send(tc.frame)
			got := c.Expect("error")
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("\n got %v\nwant %v", got, tc.want)
			}
		})
	}
	c.Send(`{"type":"teleport"}`)
	got := c.Expect("error")
	errs := got["errors"].([]any)[0].(map[string]any)
	if errs["error"] != "unknown_message_type" || len(errs["known_types"].([]any)) != len(protocol.KnownFrameTypes()) {
		t.Fatalf("unknown type: %v", got)
	}
}

func TestViolationFloodClosesAndCoolsDown(t *testing.T) {
	h := hubtest.Start(t, "")
	tok := h.Token("noisy", auth.RoleAgent)
	c := h.Connect("noisy", tok)
	for i := range 9 {
		c.Send(`{"type":"status"}`)
		if e := c.Expect("error"); e["error"] != "validation_failed" {
			t.Fatalf("violation %d: %v", i, e)
		}
	}
	c.Send(`{"type":"status"}`)
	code, reason := c.Closed(5 * time.Second)
	if code != protocol.ClosePolicy || reason != "too many validation errors" {
		t.Fatalf("close = %d %q", code, reason)
	}
	c2 := hubtest.Dial(t, h.WSURL())
	c2.Send(map[string]any{"type": "identify", "agent_id": "noisy", "token": tok})
	code, reason = c2.Closed(5 * time.Second)
	if code != protocol.ClosePolicy || !strings.HasPrefix(reason, "cooldown active: retry in ") {
		t.Fatalf("cooldown close = %d %q", code, reason)
	}
}

func TestDuplicateConnectionReplacesOld(t *testing.T) {
	h := hubtest.Start(t, "")
	tok := h.Token("dup", auth.RoleAgent)
	old := h.Connect("dup", tok)
	watcher := h.Agent("watcher")
	fresh := h.Connect("dup", tok)
	code, reason := old.Closed(5 * time.Second)
	if code != protocol.CloseReplaced || !strings.Contains(reason, "replaced") {
		t.Fatalf("old closed with %d %q", code, reason)
	}
	// The new connection owns the agent: direct messages reach it and
	// presence still lists it after the old socket's cleanup ran.
	watcher.Send(map[string]any{"type": "message", "to": "dup", "payload": map[string]any{"hi": 1}})
	watcher.Expect("message_sent")
	if m := fresh.Expect("message"); m["from"] != "watcher" {
		t.Fatalf("message = %v", m)
	}
	_, body := h.Do("GET", "/health", "", nil)
	if body["agents_connected"].(float64) != 2 {
		t.Fatalf("health after replace = %v", body)
	}
	watcher.NoFrame("agent_left", 300*time.Millisecond)
}

func TestReaperClosesStaleSockets(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) {
		c.Socket.StaleAfter = 300 * time.Millisecond
		c.Socket.ReapInterval = 50 * time.Millisecond
	})
	quiet := h.Agent("quiet")
	pinger := h.Agent("pinger")
	stop := time.After(time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-tick.C:
			pinger.Send(`{"type":"ping"}`)
		}
	}
	code, _ := quiet.Closed(2 * time.Second)
	if code != protocol.CloseStale {
		t.Fatalf("quiet closed with %d", code)
	}
	if m := pinger.Expect("agent_left"); m["agent_id"] != "quiet" {
		t.Fatalf("agent_left = %v", m)
	}
	pinger.Send(`{"type":"ping"}`)
	pinger.Expect("pong")
}

func TestPresenceFrames(t *testing.T) {
	h := hubtest.Start(t, "")
	a := h.Agent("a")
	b := h.Agent("b", "review")
	j := a.Expect("agent_joined")
	agent := j["agent"].(map[string]any)
	if agent["agent_id"] != "b" || agent["capabilities"].([]any)[0] != "review" {
		t.Fatalf("agent_joined = %v", j)
	}
	b.Send(map[string]any{"type": "status", "status": "reviewing PR 12", "protocol_version": 1})
	b.Expect("status_updated")
	for _, c := range []*hubtest.Client{a, b} {
		sc := c.Expect("status_changed")
		if sc["agent"].(map[string]any)["status"] != "reviewing PR 12" {
			t.Fatalf("status_changed = %v", sc)
		}
	}
	a.Send(`{"type":"list_agents"}`)
	if l := a.Expect("agents"); len(l["agents"].([]any)) != 2 {
		t.Fatalf("agents = %v", l)
	}
	b.Close()
	if l := a.Expect("agent_left"); l["agent_id"] != "b" {
		t.Fatalf("agent_left = %v", l)
	}
}

// TestReidentifyAsAnotherAgent: one socket never holds two agents; the
// first identity is released when the socket identifies as another.
func TestReidentifyAsAnotherAgent(t *testing.T) {
	h := hubtest.Start(t, "")
	c := h.Connect("first", h.Token("first", auth.RoleAgent))
	c.Send(map[string]any{"type": "identify", "agent_id": "second", "token": h.Token("second", auth.RoleAgent)})
	c.Expect("identified")
	_, body := h.Do("GET", "/api/agents", "", nil)
	agents := body["agents"].([]any)
	if len(agents) != 1 || agents[0].(map[string]any)["agent_id"] != "second" {
		t.Fatalf("agents after re-identify: %v", agents)
	}
	c.Send(`{"type":"ping"}`)
	c.Expect("pong")
}
