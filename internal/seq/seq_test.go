package seq

import (
	"path/filepath"
	"testing"

	"github.com/agentcom/agentcom/internal/store"
)

func openMeta(t *testing.T, dir string) *store.Table {
	t.Helper()
	tbl, err := store.OpenTable(store.Meta, filepath.Join(dir, "meta.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// TestNeverBackwards: numbers continue above everything handed out before
// a restart, even when every stored use of them is gone (floor 0).
func TestNeverBackwards(t *testing.T) {
	dir := t.TempDir()
	meta := openMeta(t, dir)
	c, err := Open(meta, "mailbox", 0)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for range 5 {
		n, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if n <= last {
			t.Fatalf("%d after %d", n, last)
		}
		last = n
	}
	meta.Close()

	meta = openMeta(t, dir)
	defer meta.Close()
	c, err = Open(meta, "mailbox", 0)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := c.Next()
	if n <= last {
		t.Fatalf("after restart: %d, before: %d", n, last)
	}
	// A floor above the reservation (numbers found in a table) wins.
	c, _ = Open(meta, "other", 5000)
	if n, _ := c.Next(); n != 5001 {
		t.Fatalf("floor: got %d", n)
	}
}

func TestKeysSortNumerically(t *testing.T) {
	if string(Key(9)) >= string(Key(10)) || Decode(AppendKey([]byte("agent\x00"), 42)) != 42 {
		t.Fatal("key encoding does not sort numerically")
	}
}

// TestClaim: Claim writes nothing and returns the reservation a number
// needs; once the caller commits it, numbering after a restart continues
// above the block; after Unreserve the next Claim reserves again.
func TestClaim(t *testing.T) {
	dir := t.TempDir()
	meta := openMeta(t, dir)
	c, err := Open(meta, "history", 0)
	if err != nil {
		t.Fatal(err)
	}
	n, r := c.Claim()
	if r == nil {
		t.Fatal("first claim returned no reservation")
	}
	if _, again := c.Claim(); again != nil {
		t.Fatal("second claim in the same block returned a reservation")
	}
	c.Unreserve()
	n3, r3 := c.Claim()
	if r3 == nil || n3 <= n {
		t.Fatalf("after Unreserve: number %d (first %d), reservation %v", n3, n, r3)
	}
	if err := meta.Update(func(tx *store.Tx) error { return tx.Put(r3.Key, r3.Value) }); err != nil {
		t.Fatal(err)
	}
	meta.Close()

	meta = openMeta(t, dir)
	defer meta.Close()
	c, err = Open(meta, "history", 0)
	if err != nil {
		t.Fatal(err)
	}
	if next, _ := c.Claim(); next < n3+Block {
		t.Fatalf("after restart: %d, block reserved up to %d", next, n3+Block-1)
	}
}
