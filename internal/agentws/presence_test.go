package agentws_test

import (
	"slices"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hubtest"
)

// connectV2 identifies agent in protocol version 2.
func connectV2(h *hubtest.Hub, agent string) *hubtest.Client {
	c := hubtest.Dial(h.T, h.WSURL())
	c.Send(map[string]any{"type": "identify", "agent_id": agent, "token": h.Token(agent, auth.RoleAgent), "name": agent,
		"capabilities": []string{}, "client_type": "sidecar", "protocol_version": 2})
	c.Expect("identified")
	return c
}

// presenceUntil reads presence frames until want holds for what they
// listed, failing on any version-1 presence frame.
func presenceUntil(t *testing.T, c *hubtest.Client, want func(joined, left, status []string) bool) {
	t.Helper()
	var joined, left, status []string
	deadline := time.Now().Add(10 * time.Second)
	for !want(joined, left, status) {
		m := c.Next(time.Until(deadline))
		if m == nil {
			t.Fatalf("presence: joined %v, left %v, status %v so far", joined, left, status)
		}
		switch m["type"] {
		case "agent_joined", "agent_left", "status_changed":
			t.Fatalf("version-2 client got %v", m)
		case "presence":
			for _, a := range list(m["joined"]) {
				joined = append(joined, a.(map[string]any)["agent_id"].(string))
			}
			for _, a := range list(m["left"]) {
				left = append(left, a.(string))
			}
			for _, a := range list(m["status_changed"]) {
				status = append(status, a.(map[string]any)["status"].(string))
			}
		}
	}
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// A version-2 client gets joins, leaves and status changes in presence
// frames; a version-1 client beside it gets the original frames, one per
// change, and never a presence frame.
func TestPresenceBatchedForVersion2(t *testing.T) {
	h := hubtest.Start(t, "")
	v2 := connectV2(h, "new")
	v1 := h.Agent("old")
	var agents []*hubtest.Client
	for _, id := range []string{"b1", "b2", "b3"} {
		agents = append(agents, h.Agent(id))
	}
	presenceUntil(t, v2, func(joined, _, _ []string) bool {
		return len(joined) == 4 && !slices.Contains(joined, "new")
	})
	for _, id := range []string{"b1", "b2", "b3"} {
		if j := v1.Expect("agent_joined"); j["agent"].(map[string]any)["agent_id"] != id {
			t.Fatalf("version 1: %v, want %s joined", j, id)
		}
	}
	agents[1].Send(map[string]any{"type": "status", "status": "busy"})
	presenceUntil(t, v2, func(_, _, status []string) bool { return slices.Equal(status, []string{"busy"}) })
	v1.Expect("status_changed")
	agents[0].Close()
	presenceUntil(t, v2, func(_, left, _ []string) bool { return slices.Equal(left, []string{"b1"}) })
	if l := v1.Expect("agent_left"); l["agent_id"] != "b1" {
		t.Fatalf("version 1: %v", l)
	}
	v1.Send(`{"type":"ping"}`)
	v1.NoFrameBefore("presence", func(m map[string]any) bool { return m["type"] == "pong" })
}
