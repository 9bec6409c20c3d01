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
