package hub_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/messaging"
)

// Analytics keeps at most its cap of agents: the offline one idle the
// longest makes room for a new one.
func TestAnalyticsTracksABoundedNumberOfAgents(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.Messaging.MaxTrackedAgents = 3 })
	for i := range 6 {
		tok := h.Token(fmt.Sprintf("ag-%d", i), auth.RoleAgent)
		if status, body := h.Do("POST", "/api/message", tok, map[string]any{"to": "broadcast", "payload": map[string]any{}}); status != http.StatusOK {
			t.Fatalf("message %d: %d %v", i, status, body)
		}
	}
	_, body := h.Do("GET", "/api/analytics/agents", "", nil)
	if body["total"].(float64) != 3 || len(body["agents"].([]any)) != 3 {
		t.Fatalf("analytics after 6 agents with a cap of 3: %v", body)
	}
	// Paging: one at a time, in id order, to the end.
	var seen []string
	after := ""
	for range 5 {
		_, page := h.Do("GET", "/api/analytics/agents?limit=1&after="+after, "", nil)
		for _, a := range page["agents"].([]any) {
			seen = append(seen, a.(map[string]any)["agent_id"].(string))
		}
		next, ok := page["next_after"].(string)
		if !ok {
			break
		}
		after = next
	}
	if fmt.Sprint(seen) != "[ag-3 ag-4 ag-5]" {
		t.Fatalf("paged analytics: %v", seen)
	}
	if status, _ := h.Do("GET", "/api/analytics/agents?limit=0", "", nil); status != http.StatusBadRequest {
		t.Fatalf("limit=0: %d", status)
	}
}

// Channels are capped in number and members, GET /api/channels pages,
// and names that normalize to nothing (or too long) are refused.
func TestChannelCapsAndPaging(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) {
		c.Messaging.MaxChannels = 3
		c.Messaging.MaxChannelSubscribers = 2
	})
	tok := h.Token("owner", auth.RoleAgent)
	for _, name := range []string{"###", "", "é", fmt.Sprintf("%065d", 0)} {
		if status, body := h.Do("POST", "/api/channels", tok, map[string]any{"name": name}); status != http.StatusBadRequest {
			t.Errorf("channel %q: %d %v", name, status, body)
		}
	}
	for _, name := range []string{"c1", "c2", "c3"} {
		if status, body := h.Do("POST", "/api/channels", tok, map[string]any{"name": name}); status != http.StatusCreated {
			t.Fatalf("create %s: %d %v", name, status, body)
		}
	}
	if status, body := h.Do("POST", "/api/channels", tok, map[string]any{"name": "c4"}); status != http.StatusConflict || body["error"] != "channel_limit_reached" {
		t.Fatalf("fourth channel: %d %v", status, body)
	}
	for i := range 3 {
		member := h.Token(fmt.Sprintf("m%d", i), auth.RoleAgent)
		status, body := h.Do("POST", "/api/channels/c1/subscribe", member, nil)
		if want := http.StatusOK; i < 2 && status != want {
			t.Fatalf("subscriber %d: %d %v", i, status, body)
		}
		if i == 2 && (status != http.StatusConflict || body["error"] != "channel_limit_reached") {
			t.Fatalf("third subscriber: %d %v", status, body)
		}
	}
	// The socket says the same.
	a := h.Connect("m9", h.Token("m9", auth.RoleAgent))
	a.Send(map[string]any{"type": "channel_subscribe", "channel": "c1"})
	if f := a.Expect("error"); f["error"] != "channel_limit_reached" {
		t.Fatalf("socket subscribe over the cap: %v", f)
	}
	_, body := h.Do("GET", "/api/channels?limit=2", "", nil)
	if len(body["channels"].([]any)) != 2 || body["next_after"] != "c2" || body["total"].(float64) != 3 {
		t.Fatalf("first page: %v", body)
	}
	_, body = h.Do("GET", "/api/channels?limit=2&after=c2", "", nil)
	if len(body["channels"].([]any)) != 1 || body["next_after"] != nil {
		t.Fatalf("last page: %v", body)
	}
}

// The thread index holds what the histories keep: a message trimmed from
// its channel's history leaves the thread index too.
func TestThreadIndexTrimmedWithHistory(t *testing.T) {
	h := hubtest.Start(t, "")
	tok := h.Token("poster", auth.RoleAgent)
	if status, body := h.Do("POST", "/api/channels", tok, map[string]any{"name": "busy"}); status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, body)
	}
	a := h.Connect("poster", tok)
	var first, second string
	for i := range messaging.ChannelHistoryCap + 1 {
		f := map[string]any{"type": "channel_publish", "channel": "busy", "payload": map[string]any{"i": i}}
		if i == 1 {
			f["reply_to"] = first
		}
		a.Send(f)
		id := a.Expect("channel_published")["id"].(string)
		switch i {
		case 0:
			first = id
		case 1:
			second = id
		}
	}
	_, body := h.Do("GET", "/api/threads/"+first+"/replies", tok, nil)
	if body["count"].(float64) != 1 {
		t.Fatalf("replies of the trimmed message (the reply is still kept): %v", body)
	}
	_, body = h.Do("GET", "/api/threads/"+second, tok, nil)
	for _, m := range body["messages"].([]any) {
		if m.(map[string]any)["id"] == first {
			t.Fatalf("trimmed message still in the thread index: %v", body)
		}
	}
	if body["count"].(float64) != 1 {
		t.Fatalf("thread of the kept reply: %v", body)
	}
	// One more trims the reply, and with it the link under its parent.
	a.Send(map[string]any{"type": "channel_publish", "channel": "busy", "payload": map[string]any{}})
	a.Expect("channel_published")
	if _, body = h.Do("GET", "/api/threads/"+first+"/replies", tok, nil); body["count"].(float64) != 0 {
		t.Fatalf("replies after the reply was trimmed: %v", body)
	}
	if _, body = h.Do("GET", "/api/threads/"+second, tok, nil); body["count"].(float64) != 0 {
		t.Fatalf("trimmed reply still indexed: %v", body)
	}
}

// A message payload over messaging.MaxPayloadBytes is refused everywhere
// a message enters, before anything is stored.
func TestMessagePayloadCap(t *testing.T) {
	h := hubtest.Start(t, "")
	tok := h.Token("big", auth.RoleAgent)
	h.Token("peer", auth.RoleAgent)
	big := map[string]any{"blob": strings.Repeat("x", messaging.MaxPayloadBytes)}
	if status, body := h.Do("POST", "/api/message", tok, map[string]any{"to": "peer", "payload": big}); status != http.StatusRequestEntityTooLarge || body["error"] != "payload_too_large" {
		t.Fatalf("HTTP message: %d %v", status, body)
	}
	if status, body := h.Do("POST", "/api/channels", tok, map[string]any{"name": "ch"}); status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, body)
	}
	if status, body := h.Do("POST", "/api/channels/ch/publish", tok, map[string]any{"payload": big}); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP publish: %d %v", status, body)
	}
	a := h.Connect("big", tok)
	a.Send(map[string]any{"type": "message", "to": "peer", "payload": map[string]any{"blob": strings.Repeat("y", messaging.MaxPayloadBytes)}})
	if f := a.Expect("error"); f["error"] != "payload_too_large" {
		t.Fatalf("socket message: %v", f)
	}
	_, body := h.Do("GET", "/api/messages", tok, nil)
	if body["count"].(float64) != 0 {
		t.Fatalf("a refused message reached the history: %v", body)
	}
	_, body = h.Do("GET", "/api/mailbox/peer", h.AdminToken, nil)
	if body["count"].(float64) != 0 {
		t.Fatalf("a refused message reached a mailbox: %v", body)
	}
}

// A mailbox poll pages with limit (default and maximum: the mailbox cap)
// and since, as clients continue from last_seq.
func TestMailboxPollPages(t *testing.T) {
	h := hubtest.Start(t, "")
	tok := h.Token("sender", auth.RoleAgent)
	rtok := h.Token("reader", auth.RoleAgent)
	for i := range 3 {
		if status, body := h.Do("POST", "/api/message", tok, map[string]any{"to": "reader", "payload": map[string]any{"i": i}}); status != http.StatusOK {
			t.Fatalf("message %d: %d %v", i, status, body)
		}
	}
	_, body := h.Do("GET", "/api/mailbox/reader?limit=2", rtok, nil)
	if body["count"].(float64) != 2 {
		t.Fatalf("first page: %v", body)
	}
	last := int64(body["last_seq"].(float64))
	_, body = h.Do("GET", fmt.Sprintf("/api/mailbox/reader?limit=2&since=%d", last), rtok, nil)
	msgs := body["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["payload"].(map[string]any)["i"].(float64) != 2 {
		t.Fatalf("second page: %v", body)
	}
	if status, _ := h.Do("GET", "/api/mailbox/reader?limit=-1", rtok, nil); status != http.StatusBadRequest {
		t.Fatalf("limit=-1: %d", status)
	}
	if _, body = h.Do("GET", "/api/mailbox/reader", rtok, nil); body["count"].(float64) != 3 {
		t.Fatalf("default page: %v", body)
	}
}
