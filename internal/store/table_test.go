package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestGroupCommitEveryAcknowledgedWritePresent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	tb, err := OpenTable("t", path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 32, 100
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Appendf(nil, "w%02d-%04d", w, i)
				if err := tb.Update(func(tx *Tx) error { return tx.Put(k, k) }); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("update: %v", err)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen: every acknowledged write is on disk.
	tb = openAt(t, path, Options{})
	n, err := tb.Count()
	if err != nil || n != writers*each {
		t.Fatalf("count = %d, %v; want %d", n, err, writers*each)
	}
	for w := range writers {
		for i := range each {
			k := fmt.Appendf(nil, "w%02d-%04d", w, i)
			if got := mustGet(t, tb, k); !bytes.Equal(got, k) {
				t.Fatalf("%s = %q", k, got)
			}
		}
	}
	if err := tb.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestFailingFnDoesNotDiscardOthers(t *testing.T) {
	tb := openTemp(t, Options{})
	errBad := errors.New("bad input")
	const n = 400
	var wg sync.WaitGroup
	results := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = tb.Update(func(tx *Tx) error {
				if err := tx.Put(key(i), val(i, 20)); err != nil {
					return err
				}
				if i%3 == 0 {
					return errBad // after a write: the write must be rolled back
				}
				return nil
			})
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		got := mustGet(t, tb, key(i))
		if i%3 == 0 {
			if !errors.Is(results[i], errBad) {
				t.Fatalf("update %d: err = %v, want errBad", i, results[i])
			}
			if got != nil {
				t.Fatalf("failed update %d left its write", i)
			}
			continue
		}
		if results[i] != nil || !bytes.Equal(got, val(i, 20)) {
			t.Fatalf("update %d: err=%v value=%q", i, results[i], got)
		}
	}
}

func TestPanickingFnReraisedInCallerOnly(t *testing.T) {
	tb := openTemp(t, Options{})
	var wg sync.WaitGroup
	const n = 100
	panics := make([]any, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			<-start
			errs[i] = tb.Update(func(tx *Tx) error {
				_ = tx.Put(key(i), []byte("x"))
				if i%10 == 0 {
					panic(fmt.Sprintf("boom %d", i))
				}
				return nil
			})
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if i%10 == 0 {
			if panics[i] != fmt.Sprintf("boom %d", i) {
				t.Fatalf("caller %d: recovered %v", i, panics[i])
			}
			if mustGet(t, tb, key(i)) != nil {
				t.Fatalf("panicking update %d left its write", i)
			}
			continue
		}
		if panics[i] != nil || errs[i] != nil || mustGet(t, tb, key(i)) == nil {
			t.Fatalf("update %d: panic=%v err=%v", i, panics[i], errs[i])
		}
	}
	// View re-raises too, and the table stays usable.
	func() {
		defer func() {
			if r := recover(); r != "view boom" {
				t.Fatalf("view recovered %v", r)
			}
		}()
		_ = tb.View(func(*Tx) error { panic("view boom") })
	}()
	if _, err := tb.Count(); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateAfterCloseReturnsErrClosed(t *testing.T) {
	tb := openTemp(t, Options{})
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tb.Update(func(tx *Tx) error { return tx.Put([]byte("a"), nil) }); !errors.Is(err, ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}
	if err := tb.View(func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("view after close: %v", err)
	}
	if err := tb.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// Updates racing Close either commit or fail with ErrClosed; none hangs.
func TestUpdateRacingCloseNeverHangs(t *testing.T) {
	for range 20 {
		tb, err := OpenTable("t", filepath.Join(t.TempDir(), "t.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := 0; ; i++ {
					err := tb.Update(func(tx *Tx) error { return tx.Put(fmt.Appendf(nil, "%d-%d", g, i), nil) })
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("update: %v", err)
						return
					}
				}
			})
		}
		if err := tb.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}

func TestTxOperations(t *testing.T) {
	tb := openTemp(t, Options{})
	err := tb.Update(func(tx *Tx) error {
		for _, k := range []string{"a/1", "a/2", "a/3", "b/1", "c"} {
			if err := tx.Put([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		return tx.Put([]byte("empty"), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = tb.View(func(tx *Tx) error {
		if got := tx.Get([]byte("a/2")); string(got) != "va/2" {
			t.Errorf("get = %q", got)
		}
		if got := tx.Get([]byte("empty")); got == nil || len(got) != 0 {
			t.Errorf("empty value = %#v, want non-nil empty", got)
		}
		if got := tx.Get([]byte("nope")); got != nil {
			t.Errorf("missing = %q", got)
		}
		if v := tx.Get([]byte("c")); cap(v) != len(v) {
			t.Errorf("value capacity %d > length %d: an append would write into the map", cap(v), len(v))
		}
		var keys []string
		_ = tx.Scan([]byte("a/"), func(k, v []byte) error { keys = append(keys, string(k)); return nil })
		if fmt.Sprint(keys) != "[a/1 a/2 a/3]" {
			t.Errorf("scan = %v", keys)
		}
		keys = nil
		_ = tx.ScanFrom([]byte("a/3"), func(k, v []byte) error { keys = append(keys, string(k)); return nil })
		if fmt.Sprint(keys) != "[a/3 b/1 c empty]" {
			t.Errorf("scanFrom = %v", keys)
		}
		if k, v := tx.Last([]byte("a/")); string(k) != "a/3" || string(v) != "va/3" {
			t.Errorf("last = %q %q", k, v)
		}
		if k, _ := tx.First([]byte("b")); string(k) != "b/1" {
			t.Errorf("first = %q", k)
		}
		if k, _ := tx.Last(nil); string(k) != "empty" {
			t.Errorf("last(nil) = %q", k)
		}
		if k, _ := tx.First([]byte("zz")); k != nil {
			t.Errorf("first(zz) = %q", k)
		}
		if n := tx.Count(); n != 6 {
			t.Errorf("count = %d", n)
		}
		stop := errors.New("stop")
		if err := tx.ForEach(func(k, v []byte) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("forEach stop = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Update(func(tx *Tx) error { return tx.Delete([]byte("a/2")) }); err != nil {
		t.Fatal(err)
	}
	if mustGet(t, tb, []byte("a/2")) != nil {
		t.Fatal("delete did not delete")
	}
}

func TestPutCopiesValue(t *testing.T) {
	tb := openTemp(t, Options{})
	buf := []byte("first")
	if err := tb.Update(func(tx *Tx) error {
		err := tx.Put([]byte("k"), buf)
		copy(buf, "XXXXX") // reuse before commit
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, tb, []byte("k")); string(got) != "first" {
		t.Fatalf("got %q", got)
	}
}

func TestDBOpenAndTables(t *testing.T) {
	dir := t.TempDir()
	var reported []string
	var mu sync.Mutex
	db, err := Open(dir, AllTables(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetOnError(func(table string, err error) {
		mu.Lock()
		reported = append(reported, table)
		mu.Unlock()
	})
	if len(db.Names()) != len(AllTables()) || db.Table(DashboardSeries) == nil || db.Table(TaskQueue) == nil || db.Table("nope") != nil {
		t.Fatalf("names %v", db.Names())
	}
	if db.MustTable(Tokens).Path() != TablePath(dir, Tokens) {
		t.Fatal("path")
	}
	// A storage error reaches the hook installed after open.
	tq := db.Table(TaskQueue)
	flipAt(t, tq.Path(), 0, 2*os.Getpagesize()) // both meta pages
	if err := tq.View(func(*Tx) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("view = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || reported[0] != TaskQueue {
		t.Fatalf("reported %v", reported)
	}
}
