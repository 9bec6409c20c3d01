package hub_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hubtest"
)

func TestDirectAndBroadcastMessages(t *testing.T) {
	h := hubtest.Start(t, "")
	a := h.Agent("a")
	b := h.Agent("b")
	// "offline" holds two tokens: a broadcast must reach its mailbox once.
	offTok := h.Token("offline", auth.RoleAgent)
	h.Token("offline", auth.RoleAgent)

	a.Send(map[string]any{"type": "message", "to": "b", "message_type": "request", "payload": map[string]any{"q": "review?"}})
	sent := a.Expect("message_sent")
	m := b.Expect("message")
	if m["id"] != sent["id"] || m["from"] != "a" || m["message_type"] != "request" || m["reply_to"] != nil {
		t.Fatalf("direct = %v (sent %v)", m, sent)
	}
	if _, has := m["to"]; has {
		t.Fatalf("pushed message must not carry to: %v", m)
	}
	a.Send(map[string]any{"type": "message", "to": "offline", "payload": map[string]any{"n": 1}})
	a.Expect("message_sent")

	a.Send(map[string]any{"type": "message", "payload": map[string]any{"all": true}})
	a.Expect("message_sent")
	a.Expect("message") // the sender's own echo, as the original does
	b.Expect("message")

	st, body := h.Do("GET", "/api/mailbox/offline?token="+offTok, "", nil)
	if st != 200 || body["count"].(float64) != 2 {
		t.Fatalf("mailbox: %d %v", st, body)
	}
	msgs := body["messages"].([]any)
	first, second := msgs[0].(map[string]any), msgs[1].(map[string]any)
	if first["to"] != "offline" || second["to"] != nil || first["seq"].(float64) >= second["seq"].(float64) {
		t.Fatalf("mailbox messages = %v", msgs)
	}
	if body["last_seq"] != second["seq"] {
		t.Fatalf("last_seq = %v", body)
	}
	// HTTP send: from is always the token's agent.
	st, body = h.Do("POST", "/api/message", h.Token("c", auth.RoleAgent), map[string]any{"to": "b", "from": "spoof", "payload": map[string]any{}})
	if st != 200 || body["status"] != "sent" {
		t.Fatalf("post message: %d %v", st, body)
	}
	if m := b.Expect("message"); m["from"] != "c" || m["message_type"] != "chat" {
		t.Fatalf("http message = %v", m)
	}
	st, body = h.Do("POST", "/api/message", h.AdminToken, map[string]any{"to": "b"})
	if st != 400 || body["error"] != "missing required field: payload" {
		t.Fatalf("missing payload: %d %v", st, body)
	}
}

func TestMailboxAuthAckAndRestart(t *testing.T) {
	dir := t.TempDir()
	h := hubtest.Start(t, dir)
	tok := h.Token("bob", auth.RoleAgent)
	other := h.Token("eve", auth.RoleAgent)
	sender := h.Token("alice", auth.RoleAgent)
	for i := range 3 {
		h.Do("POST", "/api/message", sender, map[string]any{"to": "bob", "payload": map[string]any{"i": i}})
	}
	if st, body := h.Do("GET", "/api/mailbox/bob?token="+other, "", nil); st != 401 || body["error"] != "unauthorized" {
		t.Fatalf("other agent's token: %d %v", st, body)
	}
	if st, body := h.Do("GET", "/api/mailbox/bob?since=abc&token="+tok, "", nil); st != 400 {
		t.Fatalf("bad since: %d %v", st, body)
	}
	_, body := h.Do("GET", "/api/mailbox/bob", tok, nil)
	msgs := body["messages"].([]any)
	firstSeq := msgs[0].(map[string]any)["seq"].(float64)
	st, body := h.Do("POST", "/api/mailbox/bob/ack", tok, map[string]any{"seq": firstSeq})
	if st != 200 || body["status"] != "acked" || body["up_to"] != firstSeq {
		t.Fatalf("ack: %d %v", st, body)
	}
	if st, _ := h.Do("POST", "/api/mailbox/bob/ack", tok, map[string]any{"seq": "all"}); st != 400 {
		t.Fatalf("string seq must be refused, got %d", st)
	}
	_, body = h.Do("GET", "/api/mailbox/bob", tok, nil)
	if body["count"].(float64) != 2 {
		t.Fatalf("after ack: %v", body)
	}
	lastBefore := body["last_seq"].(float64)
	// Ack everything, restart: numbering must continue above the old seqs.
	h.Do("POST", "/api/mailbox/bob/ack", tok, map[string]any{"seq": lastBefore})
	_, hist := h.Do("GET", "/api/messages", sender, nil)
	histCount := hist["count"].(float64)

	h.Restart()
	h.Do("POST", "/api/message", sender, map[string]any{"to": "bob", "payload": map[string]any{"after": "restart"}})
	_, body = h.Do("GET", fmt.Sprintf("/api/mailbox/bob?since=%d", int64(lastBefore)), tok, nil)
	if body["count"].(float64) != 1 || body["messages"].([]any)[0].(map[string]any)["seq"].(float64) <= lastBefore {
		t.Fatalf("seq went backwards across restart: %v (last before %v)", body, lastBefore)
	}
	_, hist = h.Do("GET", "/api/messages", sender, nil)
	if hist["count"].(float64) != histCount+1 {
		t.Fatalf("history after restart = %v, want %v entries", hist["count"], histCount+1)
	}
}

func TestMessageHistoryFilters(t *testing.T) {
	h := hubtest.Start(t, "")
	a := h.Token("a", auth.RoleAgent)
	b := h.Token("b", auth.RoleAgent)
	start := time.Now().UnixMilli()
	for i := range 5 {
		h.Do("POST", "/api/message", a, map[string]any{"to": "b", "payload": map[string]any{"i": i}})
	}
	h.Do("POST", "/api/message", b, map[string]any{"to": "broadcast", "payload": map[string]any{"channel": "ops"}})
	cases := []struct {
		query string
		count int
	}{
		{"", 6},
		{"?from=a", 5},
		{"?to=broadcast", 1},
		{"?channel=ops", 1},
		{"?limit=2", 2},
		{fmt.Sprintf("?start_time=%d", start), 6},
		{fmt.Sprintf("?end_time=%d", start-1), 0},
	}
	for _, tc := range cases {
		st, body := h.Do("GET", "/api/messages"+tc.query, a, nil)
		if st != 200 || int(body["count"].(float64)) != tc.count {
			t.Errorf("%s: %d %v", tc.query, st, body["count"])
		}
	}
	_, page1 := h.Do("GET", "/api/messages?limit=4", a, nil)
	_, page2 := h.Do("GET", fmt.Sprintf("/api/messages?cursor=%d", int64(page1["cursor"].(float64))), a, nil)
	if page2["count"].(float64) != 2 {
		t.Fatalf("cursor paging: %v then %v", page1["cursor"], page2)
	}
	if st, _ := h.Do("GET", "/api/messages", "", nil); st != 401 {
		t.Fatalf("history without token: %d", st)
	}
}

func TestChannels(t *testing.T) {
	h := hubtest.Start(t, "")
	a := h.Agent("a")
	b := h.Agent("b")
	aTok := h.Token("a", auth.RoleAgent)
	st, body := h.Do("POST", "/api/channels", aTok, map[string]any{"name": "#AgentCom-Dev!", "description": "dev talk"})
	if st != 201 || body["channel"] != "#AgentCom-Dev!" {
		t.Fatalf("create: %d %v", st, body)
	}
	if st, body := h.Do("POST", "/api/channels", aTok, map[string]any{"name": "agentcom-dev"}); st != 409 || body["error"] != "channel_exists" {
		t.Fatalf("duplicate: %d %v", st, body)
	}
	b.Send(map[string]any{"type": "channel_subscribe", "channel": "agentcom-dev"})
	if f := b.Expect("channel_subscribed"); f["channel"] != "agentcom-dev" || f["note"] != nil {
		t.Fatalf("subscribed = %v", f)
	}
	b.Send(map[string]any{"type": "channel_subscribe", "channel": "agentcom-dev"})
	if f := b.Expect("channel_subscribed"); f["note"] != "already_subscribed" {
		t.Fatalf("already = %v", f)
	}
	// Subscribing over HTTP also makes live delivery work at once.
	if st, body := h.Do("POST", "/api/channels/agentcom-dev/subscribe", aTok, nil); st != 200 || body["status"] != "subscribed" {
		t.Fatalf("http subscribe: %d %v", st, body)
	}
	if j := b.Expect("channel_agent_joined"); j["agent_id"] != "a" || j["channel"] != "agentcom-dev" {
		t.Fatalf("joined = %v", j)
	}
	a.Send(map[string]any{"type": "channel_publish", "channel": "#agentcom-dev", "payload": map[string]any{"text": "hi"}, "message_type": "chat"})
	pub := a.Expect("channel_published")
	if pub["seq"].(float64) != 1 {
		t.Fatalf("published = %v", pub)
	}
	cm := b.Expect("channel_message")
	if cm["channel"] != "agentcom-dev" || cm["from"] != "a" || cm["id"] != pub["id"] {
		t.Fatalf("channel_message = %v", cm)
	}
	if _, has := cm["payload"].(map[string]any)["channel"]; has {
		t.Fatalf("live copy must not carry payload.channel: %v", cm)
	}
	a.NoFrame("channel_message", 200*time.Millisecond)
	st, body = h.Do("POST", "/api/channels/agentcom-dev/publish", aTok, map[string]any{"payload": map[string]any{"n": 2}})
	if st != 200 || body["seq"].(float64) != 2 {
		t.Fatalf("http publish: %d %v", st, body)
	}
	_, body = h.Do("GET", "/api/channels/agentcom-dev/history?limit=1", "", nil)
	if body["count"].(float64) != 1 || body["messages"].([]any)[0].(map[string]any)["seq"].(float64) != 2 {
		t.Fatalf("history = %v", body)
	}
	b.Send(map[string]any{"type": "channel_history", "channel": "agentcom-dev", "since": 0})
	if hf := b.Expect("channel_history"); len(hf["messages"].([]any)) != 2 {
		t.Fatalf("ws history = %v", hf)
	}
	_, info := h.Do("GET", "/api/channels/agentcom-dev", "", nil)
	if info["subscriber_count"].(float64) != 2 || info["created_by"] != "a" {
		t.Fatalf("info = %v", info)
	}
	_, subs := h.Do("GET", "/api/agents/b/subscriptions", "", nil)
	if len(subs["channels"].([]any)) != 1 {
		t.Fatalf("subscriptions = %v", subs)
	}
	b.Send(map[string]any{"type": "channel_unsubscribe", "channel": "agentcom-dev"})
	b.Expect("channel_unsubscribed")
	b.Send(map[string]any{"type": "channel_publish", "channel": "nope", "payload": map[string]any{}})
	if e := b.Expect("error"); e["error"] != "channel_not_found" {
		t.Fatalf("unknown channel: %v", e)
	}
	b.Send(`{"type":"list_channels"}`)
	if l := b.Expect("channels"); len(l["channels"].([]any)) != 1 {
		t.Fatalf("channels = %v", l)
	}
	if st, _ := h.Do("GET", "/api/channels/nope", "", nil); st != 404 {
		t.Fatalf("unknown channel info: %d", st)
	}
	// Mailbox copies of channel messages carry the channel.
	_, mb := h.Do("GET", "/api/mailbox/b", h.Token("b", auth.RoleAgent), nil)
	found := false
	for _, m := range mb["messages"].([]any) {
		if m.(map[string]any)["payload"].(map[string]any)["channel"] == "agentcom-dev" {
			found = true
		}
	}
	if !found {
		t.Fatalf("mailbox copy missing: %v", mb)
	}
}

func TestThreadsFromRealTraffic(t *testing.T) {
	h := hubtest.Start(t, "")
	a := h.Agent("a")
	tok := h.Token("a", auth.RoleAgent)
	h.Token("b", auth.RoleAgent) // the recipient exists, offline
	var ids []string
	parent := ""
	for i := range 3 {
		f := map[string]any{"type": "message", "to": "b", "payload": map[string]any{"i": i}}
		if parent != "" {
			f["reply_to"] = parent
		}
		a.Send(f)
		parent = a.Expect("message_sent")["id"].(string)
		ids = append(ids, parent)
	}
	_, body := h.Do("GET", "/api/threads/"+ids[2]+"/root", tok, nil)
	if body["root"] != ids[0] {
		t.Fatalf("root = %v", body)
	}
	_, body = h.Do("GET", "/api/threads/"+ids[1], tok, nil)
	if body["root"] != ids[0] || body["count"].(float64) != 3 {
		t.Fatalf("thread = %v", body)
	}
	_, body = h.Do("GET", "/api/threads/"+ids[0]+"/replies", tok, nil)
	if body["count"].(float64) != 1 || body["replies"].([]any)[0].(map[string]any)["id"] != ids[1] {
		t.Fatalf("replies = %v", body)
	}
	// A reply to a parent that does not exist is accepted and heads its own
	// thread. (Loops of real parents cannot be made over the network, as
	// the hub assigns ids; messaging's TestReplyLoopWithRealParents covers
	// them in the stored index.)
	a.Send(map[string]any{"type": "message", "to": "b", "payload": map[string]any{}, "reply_to": "self-loop"})
	id := a.Expect("message_sent")["id"].(string)
	if st, _ := h.Do("GET", "/api/threads/"+id, tok, nil); st != 200 {
		t.Fatalf("thread with dangling parent: %d", st)
	}
	_, sum := h.Do("GET", "/api/analytics/summary", "", nil)
	if sum["total_messages_24h"].(float64) != 4 {
		t.Fatalf("analytics summary = %v", sum)
	}
	_, ag := h.Do("GET", "/api/analytics/agents", "", nil)
	first := ag["agents"].([]any)[0].(map[string]any)
	if first["agent_id"] != "a" || first["messages_sent_24h"].(float64) != 4 || first["status"] != "active" {
		t.Fatalf("analytics agents = %v", ag)
	}
	_, hr := h.Do("GET", "/api/analytics/agents/b/hourly", "", nil)
	hourly := hr["hourly"].([]any)
	if len(hourly) != 24 || hourly[23].(map[string]any)["received"].(float64) != 4 {
		t.Fatalf("hourly = %v", hr)
	}
}
