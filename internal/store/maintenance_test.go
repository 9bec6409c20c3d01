package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// pairWriters runs n writers that each write a pair of keys (a/… and b/…)
// with the same value in one transaction, until stop is closed. It returns
// a wait function giving the number of pairs written.
func pairWriters(t testing.TB, tb *Table, n int, stop <-chan struct{}) func() int64 {
	var wg sync.WaitGroup
	var total atomic.Int64
	for w := range n {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%d/%06d", w, i%500)
				v := fmt.Appendf(nil, "%d-%d", w, i)
				err := tb.Update(func(tx *Tx) error {
					if err := tx.Put([]byte("a/"+id), v); err != nil {
						return err
					}
					return tx.Put([]byte("b/"+id), v)
				})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				total.Add(1)
			}
		})
	}
	return func() int64 { wg.Wait(); return total.Load() }
}

// checkPairs opens a table file and checks it never holds half a pair and
// holds nothing else besides other records.
func checkPairs(t *testing.T, path string, other int) int {
	t.Helper()
	tb, err := OpenTable("check", path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	pairs := 0
	err = tb.View(func(tx *Tx) error {
		return tx.Scan([]byte("a/"), func(k, v []byte) error {
			other := tx.Get(append([]byte("b/"), k[2:]...))
			if !bytes.Equal(other, v) {
				return fmt.Errorf("half a pair: %s=%q but b=%q", k, v, other)
			}
			pairs++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := tb.mustCount(t); n != other+2*pairs {
		t.Fatalf("%d records for %d pairs", n, pairs)
	}
	return pairs
}

func (t *Table) mustCount(tb testing.TB) int {
	n, err := t.Count()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestBackupWhileWritersRunIsConsistent(t *testing.T) {
	tb := openTemp(t, Options{})
	fill(t, tb, 0, 20000, 80) // something to copy besides the pairs
	stop := make(chan struct{})
	wait := pairWriters(t, tb, 8, stop)
	dir := t.TempDir()
	for i := range 5 {
		time.Sleep(20 * time.Millisecond)
		path := filepath.Join(dir, fmt.Sprintf("b%d.db", i))
		info, err := tb.BackupVerified(path)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := CheckFile(path); err != nil || n != info.Records {
			t.Fatalf("backup %d: CheckFile = %d, %v; info %+v", i, n, err, info)
		}
		if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("temp file left: %v", err)
		}
		pairs := checkPairs(t, path, 20000)
		if pairs == 0 && i > 0 {
			t.Fatalf("backup %d holds no pairs", i)
		}
	}
	// The io.Writer form produces a complete table file too.
	var buf bytes.Buffer
	if _, err := tb.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if n := wait(); n == 0 {
		t.Fatal("writers made no progress")
	}
	path := filepath.Join(dir, "stream.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	checkPairs(t, path, 20000)
}

func TestCompactionAfterDeletingHalf(t *testing.T) {
	if testing.Short() {
		t.Skip("100k records")
	}
	tb := openTemp(t, Options{})
	const n = 100_000
	fill(t, tb, 0, n, 100)
	err := tb.Update(func(tx *Tx) error {
		for i := 0; i < n; i += 2 {
			if err := tx.Delete(key(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := tb.Stats()
	if err != nil {
		t.Fatal(err)
	}
	before, after, err := tb.Compact()
	if err != nil {
		t.Fatal(err)
	}
	st2, err := tb.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before: %+v", st)
	t.Logf("after:  %+v", st2)
	if after >= before || st2.FileBytes >= st.FileBytes || before != st.FileBytes {
		t.Fatalf("file did not shrink: %d -> %d", before, after)
	}
	if st2.Records != n/2 {
		t.Fatalf("records %d", st2.Records)
	}
	err = tb.View(func(tx *Tx) error {
		for i := range n {
			got := tx.Get(key(i))
			if i%2 == 0 && got != nil {
				return fmt.Errorf("deleted %d is back", i)
			}
			if i%2 == 1 && !bytes.Equal(got, val(i, 100)) {
				return fmt.Errorf("record %d = %.20q", i, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestStatsFragmentationIsReal(t *testing.T) {
	tb := openTemp(t, Options{})
	fill(t, tb, 0, 20000, 100)
	full, _ := tb.Stats()
	if full.Fragmentation > 0.05 {
		t.Fatalf("fresh table fragmentation %.3f", full.Fragmentation)
	}
	err := tb.Update(func(tx *Tx) error {
		for i := range 15000 {
			if err := tx.Delete(key(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	holey, _ := tb.Stats()
	if holey.Fragmentation < 0.4 || holey.FreeBytes <= full.FreeBytes {
		t.Fatalf("after deleting 75%%: %+v", holey)
	}
	if _, _, err := tb.Compact(); err != nil {
		t.Fatal(err)
	}
	compact, _ := tb.Stats()
	if compact.Fragmentation > 0.05 || compact.Records != 5000 {
		t.Fatalf("after compaction: %+v", compact)
	}
	if compact.UsedBytes+compact.FreeBytes != compact.DataBytes ||
		compact.DataBytes+compact.PreallocBytes != compact.FileBytes {
		t.Fatalf("byte accounting: %+v", compact)
	}
	t.Logf("full %.3f, after deletes %.3f, compacted %.3f", full.Fragmentation, holey.Fragmentation, compact.Fragmentation)
}

// Writes (puts and deletes) and reads made while a compaction copies the
// table all survive the swap.
func TestCompactionWhileWritersRun(t *testing.T) {
	tb := openTemp(t, Options{})
	fill(t, tb, 0, 30000, 100)
	type state struct {
		mu   sync.Mutex
		keys map[string]string // "" = deleted
	}
	st := &state{keys: map[string]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w%d-%d", w, i%300)
				v := fmt.Sprintf("%d", i)
				var err error
				if i%5 == 4 {
					err = tb.Update(func(tx *Tx) error { return tx.Delete([]byte(k)) })
					v = ""
				} else {
					err = tb.Update(func(tx *Tx) error { return tx.Put([]byte(k), []byte(v)) })
				}
				if err != nil {
					t.Errorf("write: %v", err)
					return
				}
				st.mu.Lock()
				st.keys[k] = v
				st.mu.Unlock()
			}
		})
	}
	wg.Go(func() { // a reader that must never fail
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if got := mustGet(t, tb, key(i%30000)); !bytes.Equal(got, val(i%30000, 100)) {
				t.Errorf("reader: %d = %.20q", i%30000, got)
				return
			}
		}
	})
	for range 3 {
		if _, _, err := tb.Compact(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, want := range st.keys {
		got := mustGet(t, tb, []byte(k))
		if (want == "" && got != nil) || (want != "" && string(got) != want) {
			t.Fatalf("%s = %q, want %q", k, got, want)
		}
	}
	if err := tb.Check(); err != nil {
		t.Fatal(err)
	}
	if n := tb.mustCount(t); n < 30000 {
		t.Fatalf("count %d", n)
	}
}

func TestRestoreAndReset(t *testing.T) {
	dir := t.TempDir()
	tb := openAt(t, filepath.Join(dir, "t.db"), Options{})
	fill(t, tb, 0, 1000, 50)
	bk := filepath.Join(dir, "backups", "t.db")
	if _, err := tb.BackupVerified(bk); err != nil {
		t.Fatal(err)
	}
	fill(t, tb, 1000, 500, 50) // newer data the restore rolls back

	// A damaged backup is refused and nothing changes.
	bad := filepath.Join(dir, "bad.db")
	data, _ := os.ReadFile(bk)
	data[len(data)/2] ^= 0xff
	_ = os.WriteFile(bad, append(data[:0:0], data[:3*os.Getpagesize()]...), 0o600)
	if _, err := tb.Restore(bad, filepath.Join(dir, "aside0.db")); err == nil {
		t.Fatal("restore from a damaged backup succeeded")
	}
	if n := tb.mustCount(t); n != 1500 {
		t.Fatalf("refused restore changed the table: %d", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "aside0.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("refused restore moved the file aside")
	}

	aside := filepath.Join(dir, "corrupt", "t-1.db")
	n, err := tb.Restore(bk, aside)
	if err != nil || n != 1000 || tb.mustCount(t) != 1000 {
		t.Fatalf("restore = %d, %v", n, err)
	}
	if got, err := CheckFile(aside); err != nil || got != 1500 {
		t.Fatalf("aside copy = %d, %v", got, err)
	}
	if got, err := CheckFile(bk); err != nil || got != 1000 {
		t.Fatalf("backup changed by restore: %d, %v", got, err)
	}
	aside2 := filepath.Join(dir, "corrupt", "t-2.db")
	if err := tb.Reset(aside2); err != nil {
		t.Fatal(err)
	}
	if n := tb.mustCount(t); n != 0 {
		t.Fatalf("reset left %d records", n)
	}
	if got, err := CheckFile(aside2); err != nil || got != 1000 {
		t.Fatalf("aside after reset = %d, %v", got, err)
	}
	if err := tb.Update(func(tx *Tx) error { return tx.Put([]byte("x"), []byte("y")) }); err != nil {
		t.Fatal(err)
	}
	if err := tb.Reopen(); err != nil || tb.mustCount(t) != 1 {
		t.Fatalf("reopen: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		for _, s := range leftoverSuffixes {
			if strings.HasSuffix(e.Name(), s) {
				t.Fatalf("temp file left: %s", e.Name())
			}
		}
	}
}

func TestMaintenanceOnClosedTable(t *testing.T) {
	tb := openTemp(t, Options{})
	_ = tb.Close()
	if _, err := tb.Stats(); !errors.Is(err, ErrClosed) {
		t.Fatalf("stats: %v", err)
	}
	if _, _, err := tb.Compact(); !errors.Is(err, ErrClosed) {
		t.Fatalf("compact: %v", err)
	}
	if err := tb.Check(); !errors.Is(err, ErrClosed) {
		t.Fatalf("check: %v", err)
	}
	if _, err := tb.BackupVerified(filepath.Join(t.TempDir(), "b.db")); !errors.Is(err, ErrClosed) {
		t.Fatalf("backup: %v", err)
	}
	if err := tb.Reset(""); !errors.Is(err, ErrClosed) {
		t.Fatalf("reset: %v", err)
	}
}

// White-box: writes made between the copy's snapshot and the pause are
// tracked and re-applied, and the record count comes out right without a
// walk of the table.
func TestCompactionCatchUp(t *testing.T) {
	tb := openTemp(t, Options{})
	fill(t, tb, 0, 1000, 50)
	tmp := tb.path + ".compact"
	dst, err := openBolt(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	copied, err := tb.compactCopy(dst)
	if err != nil || copied != 1000 {
		t.Fatalf("copy: %d, %v", copied, err)
	}
	err = tb.Update(func(tx *Tx) error {
		for i := 1000; i < 1005; i++ { // 5 new
			if err := tx.Put(key(i), val(i, 50)); err != nil {
				return err
			}
		}
		for i := range 3 { // 3 deleted
			if err := tx.Delete(key(i)); err != nil {
				return err
			}
		}
		_ = tx.Delete([]byte("never-existed"))
		_ = tx.Put([]byte("tmp"), []byte("x")) // added then removed: net nothing
		_ = tx.Delete([]byte("tmp"))
		return tx.Put(key(500), []byte("changed"))
	})
	if err != nil {
		t.Fatal(err)
	}
	tb.swap.Lock()
	records, err := tb.catchUp(dst, copied)
	tb.dirty = nil
	tb.swap.Unlock()
	if err != nil || records != 1002 || tb.mustCount(t) != 1002 {
		t.Fatalf("catch-up: %d, %v (live %d)", records, err, tb.mustCount(t))
	}
	err = dst.View(func(btx *bolt.Tx) error {
		b := btx.Bucket(bucketName)
		if n := b.Stats().KeyN; n != 1002 {
			return fmt.Errorf("dst holds %d", n)
		}
		if v, err := unseal(key(500), b.Get(key(500))); err != nil || string(v) != "changed" {
			return fmt.Errorf("overwrite not applied: %q %v", v, err)
		}
		if b.Get(key(0)) != nil || b.Get([]byte("tmp")) != nil || b.Get(key(1004)) == nil {
			return errors.New("deletes or puts not applied")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
