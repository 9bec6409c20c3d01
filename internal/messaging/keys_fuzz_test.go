package messaging

import (
	"bytes"
	"testing"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/seq"
)

// FuzzMailboxKeys: a mailbox key prefix exists exactly for the ids the
// agent-id rule accepts, and no key of one agent is ever taken for a key
// of another by scanOwned's test (prefix, then exactly one sequence
// number) — whatever the two ids, including pre-rule ids with NUL that
// still sit in old tables.
func FuzzMailboxKeys(f *testing.F) {
	f.Add("a2", "a2\x00", uint64(1))
	f.Add("a", "a\x00\x00\x00\x00\x00\x00\x00", uint64(0))
	f.Add("x", "x", uint64(7))
	f.Fuzz(func(t *testing.T, a, b string, n uint64) {
		pa, err := mailboxPrefix(a)
		if (err == nil) != (protocol.CheckAgentID(a) == nil) {
			t.Fatalf("mailboxPrefix(%q) disagrees with the rule: %v", a, err)
		}
		if err != nil || a == b {
			return
		}
		// b's key as any version wrote it, valid id or not.
		kb := seq.AppendKey(append([]byte(b), 0), n)
		if bytes.HasPrefix(kb, pa) && len(kb) == len(pa)+8 {
			t.Fatalf("key of %q is read as %q's", b, a)
		}
	})
}
