package hub_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/store"
)

// The audit's attack: an agent id "a2\x00" scanned the keys of a2's
// mailbox, so its holder read a2's messages and its ack deleted them.
// Every way to that id is now refused, and even a token that already
// carries such an id (stored before the rule) reaches nothing of a2's.
func TestNULAgentIDCannotReachAnotherMailbox(t *testing.T) {
	const secret = "join-secret-for-test"
	h := hubtest.Start(t, "", func(c *hub.Config) { c.JoinSecret = secret })
	h.Token("a1", auth.RoleAgent)
	a2tok := h.Token("a2", auth.RoleAgent)
	a1 := h.Agent("a1")
	a1.Send(map[string]any{"type": "message", "to": "a2", "payload": map[string]any{"secret": "for a2 only"}})
	a1.Expect("message_sent")

	// Registration with the join secret refuses the id.
	status, body := h.Do("POST", "/api/onboard/register", "", map[string]any{"agent_id": "a2\x00", "join_secret": secret})
	if status != http.StatusBadRequest {
		t.Fatalf("register a2\\x00: %d %v", status, body)
	}
	// So does an admin creating a token.
	status, body = h.Do("POST", "/admin/tokens", h.AdminToken, map[string]any{"agent_id": "a2\x00"})
	if status != http.StatusBadRequest || body["error"] != "validation_failed" {
		t.Fatalf("admin token for a2\\x00: %d %v", status, body)
	}
	// A token stored with that id before the rule existed.
	legacy := storeLegacyToken(t, h, "a2\x00")
	for _, tok := range []string{legacy, h.AdminToken} {
		status, body = h.Do("GET", "/api/mailbox/a2%00", tok, nil)
		if status == http.StatusOK {
			t.Fatalf("poll a2\\x00 answered %d %v", status, body)
		}
		status, body = h.Do("POST", "/api/mailbox/a2%00/ack", tok, map[string]any{"seq": 1 << 40})
		if status == http.StatusOK {
			t.Fatalf("ack a2\\x00 answered %d %v", status, body)
		}
	}
	// The legacy token cannot identify as that id either.
	c := hubtest.Dial(t, h.WSURL())
	c.Send(map[string]any{"type": "identify", "agent_id": "a2\x00", "token": legacy})
	if f := c.Expect("error"); f["error"] != "validation_failed" {
		t.Fatalf("identify a2\\x00: %v", f)
	}
	// a2 still has its message.
	status, body = h.Do("GET", "/api/mailbox/a2", a2tok, nil)
	if status != http.StatusOK || body["count"].(float64) != 1 {
		t.Fatalf("a2's mailbox after the attack: %d %v", status, body)
	}
}

// Records written before the rule under an id containing NUL sort inside
// a valid agent's key range; they must not show up in its mailbox, nor be
// trimmed or acknowledged as its own. Records of valid ids, in the format
// earlier versions wrote, read unchanged after a restart.
func TestLegacyMailboxKeysAfterUpgrade(t *testing.T) {
	h := hubtest.Start(t, "")
	a2tok := h.Token("a2", auth.RoleAgent)
	h.Token("a1", auth.RoleAgent)
	a1 := h.Agent("a1")
	a1.Send(map[string]any{"type": "message", "to": "a2", "payload": map[string]any{"n": 1}})
	a1.Expect("message_sent")
	a1.Close()

	// A pre-rule mailbox record of the id "a2\x00": key "a2\x00" NUL seq.
	key := binary.BigEndian.AppendUint64([]byte("a2\x00\x00"), 1<<50)
	val, _ := json.Marshal(map[string]any{"seq": 1 << 50, "agent_id": "a2\x00", "stored_at": 1,
		"message": map[string]any{"id": "legacy", "from": "x", "to": "a2\x00", "type": "chat", "payload": map[string]any{}}})
	if err := h.DB.MustTable(store.AgentMailbox).Update(func(tx *store.Tx) error { return tx.Put(key, val) }); err != nil {
		t.Fatal(err)
	}
	h.Restart()

	status, body := h.Do("GET", "/api/mailbox/a2", a2tok, nil)
	if status != http.StatusOK || body["count"].(float64) != 1 {
		t.Fatalf("a2's mailbox after restart: %d %v", status, body)
	}
	msgs := body["messages"].([]any)
	if msgs[0].(map[string]any)["payload"].(map[string]any)["n"].(float64) != 1 {
		t.Fatalf("a2's message: %v", msgs)
	}
	// Acknowledging everything of a2's leaves the other record alone.
	if status, body = h.Do("POST", "/api/mailbox/a2/ack", a2tok, map[string]any{"seq": 1 << 60}); status != http.StatusOK {
		t.Fatalf("ack: %d %v", status, body)
	}
	var kept bool
	if err := h.DB.MustTable(store.AgentMailbox).View(func(tx *store.Tx) error {
		kept = tx.Get(key) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !kept {
		t.Fatal("a2's ack deleted a record of another id")
	}
}

// Every place an agent id enters refuses one that breaks the rule, with
// the structured validation error.
func TestAgentIDRuleAtEveryEntry(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.OpenRegistration = true })
	h.Token("a1", auth.RoleAgent)
	tok := h.Token("a1", auth.RoleAgent)
	bad := []string{"", "../../escape-dir", "a b", "a\nExecStartPre=/bin/sh", "-flag", ".hidden", "broadcast",
		strings.Repeat("x", 129), "é"}
	for _, id := range bad {
		if status, body := h.Do("POST", "/admin/tokens", h.AdminToken, map[string]any{"agent_id": id}); status != http.StatusBadRequest {
			t.Errorf("POST /admin/tokens %q: %d %v", id, status, body)
		}
		if status, body := h.Do("POST", "/api/onboard/register", "", map[string]any{"agent_id": id}); status != http.StatusBadRequest {
			t.Errorf("register %q: %d %v", id, status, body)
		}
		if status, body := h.Do("POST", "/api/admin/push-task", h.AdminToken, map[string]any{"agent_id": id, "description": "x"}); status != http.StatusBadRequest {
			t.Errorf("push-task %q: %d %v", id, status, body)
		}
		if status, body := h.Do("POST", "/api/tasks", tok, map[string]any{"description": "x", "target_agent": id}); status != http.StatusBadRequest {
			t.Errorf("task target %q: %d %v", id, status, body)
		}
		if id != "broadcast" {
			if status, body := h.Do("POST", "/api/message", tok, map[string]any{"to": id, "payload": map[string]any{}}); status != http.StatusBadRequest {
				t.Errorf("message to %q: %d %v", id, status, body)
			}
		}
		if _, err := h.Tokens.Create(id, auth.RoleAgent); err == nil {
			t.Errorf("Tokens.Create(%q) accepted", id)
		}
	}
	c := hubtest.Dial(t, h.WSURL())
	c.Send(map[string]any{"type": "identify", "agent_id": "../x", "token": tok})
	if f := c.Expect("error"); f["error"] != "validation_failed" {
		t.Fatalf("identify ../x: %v", f)
	}
	// The longest valid id works end to end.
	long := "a" + strings.Repeat("b", 127)
	if status, body := h.Do("POST", "/api/onboard/register", "", map[string]any{"agent_id": long}); status != http.StatusCreated {
		t.Fatalf("register a 128-character id: %d %v", status, body)
	}
}

// A direct message to an id that never existed creates no mailbox: HTTP
// answers 404 unknown_recipient, the socket an error frame.
func TestMessageToUnknownAgentRefused(t *testing.T) {
	h := hubtest.Start(t, "")
	tok := h.Token("a1", auth.RoleAgent)
	a1 := h.Agent("a1")
	status, body := h.Do("POST", "/api/message", tok, map[string]any{"to": "ghost", "payload": map[string]any{}})
	if status != http.StatusNotFound || body["error"] != "unknown_recipient" {
		t.Fatalf("HTTP message to ghost: %d %v", status, body)
	}
	a1.Send(map[string]any{"type": "message", "to": "ghost", "payload": map[string]any{}})
	if f := a1.Expect("error"); f["error"] != "unknown_recipient" {
		t.Fatalf("socket message to ghost: %v", f)
	}
	status, body = h.Do("GET", "/api/mailbox/ghost", h.AdminToken, nil)
	if status != http.StatusOK || body["count"].(float64) != 0 {
		t.Fatalf("ghost's mailbox: %d %v", status, body)
	}
	_, body = h.Do("GET", "/api/analytics/agents", "", nil)
	for _, a := range body["agents"].([]any) {
		if a.(map[string]any)["agent_id"] == "ghost" {
			t.Fatalf("analytics tracks ghost: %v", body)
		}
	}
	// A connected agent without a token of its own (an admin token acting
	// as it) is a known recipient.
	op := h.Connect("op-7", h.AdminToken)
	if status, body = h.Do("POST", "/api/message", tok, map[string]any{"to": "op-7", "payload": map[string]any{"hi": 1}}); status != http.StatusOK {
		t.Fatalf("message to a connected agent: %d %v", status, body)
	}
	op.Expect("message")
}

// storeLegacyToken writes a token for agent straight into the token table,
// as a version without the agent-id rule could have, and returns it.
func storeLegacyToken(t *testing.T, h *hubtest.Hub, agent string) string {
	t.Helper()
	seed := sha256.Sum256([]byte("legacy:" + agent))
	tok := hex.EncodeToString(seed[:])
	sum := sha256.Sum256([]byte(tok))
	rec, _ := json.Marshal(map[string]any{"agent_id": agent, "role": "agent", "prefix": tok[:8], "created_at": 1})
	if err := h.DB.MustTable(store.Tokens).Update(func(tx *store.Tx) error {
		return tx.Put([]byte(hex.EncodeToString(sum[:])), rec)
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.Tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	return tok
}

// A token kept from before the rule, for an id that breaks it, does not
// break broadcasts or channel publishing for everyone else, and the hub
// names such ids at start.
func TestLegacyBadIDTokenDoesNotBreakMessaging(t *testing.T) {
	var logs syncBuffer
	h := hubtest.Start(t, "", hubtest.WithJSONLog(&logs))
	tok := h.Token("sender", auth.RoleAgent)
	h.Token("offline", auth.RoleAgent)
	storeLegacyToken(t, h, "my agent")
	if status, body := h.Do("POST", "/api/message", tok, map[string]any{"to": "broadcast", "payload": map[string]any{"n": 1}}); status != http.StatusOK {
		t.Fatalf("broadcast with a legacy id around: %d %v", status, body)
	}
	if _, body := h.Do("GET", "/api/mailbox/offline", h.AdminToken, nil); body["count"].(float64) != 1 {
		t.Fatalf("offline agent's copy: %v", body)
	}
	h.Restart()
	if !strings.Contains(logs.String(), `"event":"nonconforming_agent_ids"`) || !strings.Contains(logs.String(), "my agent") {
		t.Fatalf("no start-up warning naming the legacy id:\n%s", logs.String())
	}
}
