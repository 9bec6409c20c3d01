package boltdriver

import (
	"bytes"
	"testing"

	"github.com/agentcom/agentcom/internal/seq"
	"github.com/agentcom/agentcom/internal/storage"
)

// FuzzOwnedKeys: no key of one owner (mailbox agent or channel) is ever
// taken for a key of another by scanOwned's test (prefix, then exactly one
// sequence number), whatever the two names, including pre-rule ids with
// NUL that still sit in old tables, as long as the reader's name is one
// the store accepts.
func FuzzOwnedKeys(f *testing.F) {
	f.Add("a2", "a2\x00", uint64(1))
	f.Add("a", "a\x00\x00\x00\x00\x00\x00\x00", uint64(0))
	f.Add("x", "x", uint64(7))
	f.Fuzz(func(t *testing.T, a, b string, n uint64) {
		if storage.CheckName(a) != nil || a == b {
			return
		}
		pa := ownerPrefix(a)
		// b's key as any version wrote it, valid name or not.
		kb := seq.AppendKey(ownerPrefix(b), n)
		if bytes.HasPrefix(kb, pa) && len(kb) == len(pa)+8 {
			t.Fatalf("key of %q is read as %q's", b, a)
		}
	})
}
