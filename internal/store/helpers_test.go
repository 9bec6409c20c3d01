package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.VerifyNone(m)
}

// openTemp opens a fresh table in a temp dir and closes it at cleanup.
func openTemp(t testing.TB, opts Options) *Table {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "t"+FileExt), opts)
}

func openAt(t testing.TB, path string, opts Options) *Table {
	t.Helper()
	tb, err := OpenTable("t", path, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = tb.Close() })
	return tb
}

func key(i int) []byte { return fmt.Appendf(nil, "k%08d", i) }

// val makes a value of about size bytes that names its key, so a record's
// bytes can be found in the file.
func val(i, size int) []byte {
	v := fmt.Appendf(nil, "value-%08d-", i)
	for len(v) < size {
		v = append(v, byte('a'+i%26))
	}
	return v
}

// fill writes n records in batches.
func fill(t testing.TB, tb *Table, from, n, size int) {
	t.Helper()
	const batch = 5000
	for lo := from; lo < from+n; lo += batch {
		hi := min(lo+batch, from+n)
		err := tb.Update(func(tx *Tx) error {
			for i := lo; i < hi; i++ {
				if err := tx.Put(key(i), val(i, size)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("fill: %v", err)
		}
	}
}

// mustGet reads one record.
func mustGet(t testing.TB, tb *Table, k []byte) []byte {
	t.Helper()
	var out []byte
	if err := tb.View(func(tx *Tx) error {
		out = bytes.Clone(tx.Get(k))
		return nil
	}); err != nil {
		t.Fatalf("get %s: %v", k, err)
	}
	return out
}

// patchFile overwrites bytes of a file at off.
func patchFile(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// offsetOf finds the byte offset of needle in a file.
func offsetOf(t testing.TB, path string, needle []byte) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, needle)
	if i < 0 {
		t.Fatalf("%q not found in %s", needle, path)
	}
	return int64(i)
}

// flipAt inverts n bytes of a file at off.
func flipAt(t testing.TB, path string, off int64, n int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(data[off : off+int64(n)])
	for i := range b {
		b[i] ^= 0xff
	}
	patchFile(t, path, off, b)
}
