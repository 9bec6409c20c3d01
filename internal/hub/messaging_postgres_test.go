package hub_test

import (
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/testenv"
)

// TestMessagingOnPostgres: direct, broadcast, reply and channel messages
// through a hub whose store is PostgreSQL, across a restart: mailboxes,
// threads, the history and channels come back from the database, and
// numbering continues upward.
func TestMessagingOnPostgres(t *testing.T) {
	pg := testenv.Postgres(t)
	h := hubtest.Start(t, "", func(c *hub.Config) { c.Store = pg })
	a := h.Agent("a")
	bTok := h.Token("b", auth.RoleAgent) // b stays offline
	aTok := h.Token("a", auth.RoleAgent)

	a.Send(map[string]any{"type": "message", "to": "b", "payload": map[string]any{"n": 1}})
	first := a.Expect("message_sent")["id"].(string)
	a.Send(map[string]any{"type": "message", "to": "b", "reply_to": first, "payload": map[string]any{"n": 2}})
	a.Expect("message_sent")
	a.Send(map[string]any{"type": "message", "payload": map[string]any{"all": true}})
	a.Expect("message_sent")
	a.Expect("message") // the sender's own echo
	if st, body := h.Do("POST", "/api/channels", aTok, map[string]any{"name": "dev"}); st != 201 {
		t.Fatalf("create channel: %d %v", st, body)
	}
	if st, body := h.Do("POST", "/api/channels/dev/subscribe", bTok, nil); st != 200 {
		t.Fatalf("subscribe: %d %v", st, body)
	}
	st, pub := h.Do("POST", "/api/channels/dev/publish", aTok, map[string]any{"payload": map[string]any{"n": 3}})
	if st != 200 || pub["seq"].(float64) != 1 {
		t.Fatalf("publish: %d %v", st, pub)
	}

	check := func() float64 {
		t.Helper()
		st, body := h.Do("GET", "/api/mailbox/b?token="+bTok, "", nil)
		if st != 200 || body["count"].(float64) != 4 {
			t.Fatalf("b's mailbox: %d %v", st, body)
		}
		if _, th := h.Do("GET", "/api/threads/"+first, aTok, nil); th["root"] != first || th["count"].(float64) != 2 {
			t.Fatalf("thread: %v", th)
		}
		if _, hist := h.Do("GET", "/api/messages", h.AdminToken, nil); hist["count"].(float64) != 3 {
			t.Fatalf("history: %v", hist)
		}
		if _, info := h.Do("GET", "/api/channels/dev", "", nil); info["subscriber_count"].(float64) != 1 {
			t.Fatalf("channel: %v", info)
		}
		return body["last_seq"].(float64)
	}
	last := check()
	h.Restart()
	if again := check(); again != last {
		t.Fatalf("last_seq %v after restart, %v before", again, last)
	}
	if st, body := h.Do("POST", "/api/mailbox/b/ack?token="+bTok, "", map[string]any{"seq": last}); st != 200 {
		t.Fatalf("ack: %d %v", st, body)
	}
	a = h.Agent("a")
	a.Send(map[string]any{"type": "message", "to": "b", "payload": map[string]any{"n": 4}})
	a.Expect("message_sent")
	_, body := h.Do("GET", "/api/mailbox/b?token="+bTok, "", nil)
	msgs := body["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["seq"].(float64) <= last {
		t.Fatalf("after restart and ack: %v (last seq before %v)", body, last)
	}
	if st, pub := h.Do("POST", "/api/channels/dev/publish", aTok, map[string]any{"payload": map[string]any{"n": 5}}); st != 200 || pub["seq"].(float64) != 2 {
		t.Fatalf("publish after restart: %d %v", st, pub)
	}
}
