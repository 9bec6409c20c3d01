package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// errorLog collects what a table reports to its error hook.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) hook(_ string, err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errorLog) corruptReports() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, err := range l.errs {
		if errors.Is(err, ErrCorrupt) {
			n++
		}
	}
	return n
}

// closedTableFile writes n records of size bytes into a table file and
// closes it, returning the path.
func closedTableFile(t *testing.T, n, size int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.db")
	tb, err := OpenTable("t", path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, tb, 0, n, size)
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckFileAcceptsHealthyFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := map[string]func(tb *Table){
		"empty":  func(*Table) {},
		"inline": func(tb *Table) { fill(t, tb, 0, 3, 10) },
		"many":   func(tb *Table) { fill(t, tb, 0, 30000, 60) },
		"overflow values": func(tb *Table) {
			fill(t, tb, 0, 50, 20000)
		},
		"churn": func(tb *Table) {
			fill(t, tb, 0, 20000, 80)
			for round := range 5 {
				err := tb.Update(func(tx *Tx) error {
					for range 3000 {
						i := rng.IntN(20000)
						if rng.IntN(2) == 0 {
							if err := tx.Delete(key(i)); err != nil {
								return err
							}
						} else if err := tx.Put(key(i), val(i, 10+rng.IntN(300)+round)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		},
		"compacted": func(tb *Table) {
			fill(t, tb, 0, 20000, 80)
			if err := tb.Update(func(tx *Tx) error {
				for i := 0; i < 20000; i += 2 {
					if err := tx.Delete(key(i)); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := tb.Compact(); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			tb := openAt(t, path, Options{})
			build(tb)
			want, err := tb.Count()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := tb.CheckCount(); err != nil || got != want {
				t.Fatalf("live check: %d, %v; want %d", got, err, want)
			}
			bk := filepath.Join(t.TempDir(), "b.db")
			info, err := tb.BackupVerified(bk)
			if err != nil || info.Records != want {
				t.Fatalf("backup: %+v, %v", info, err)
			}
			if err := tb.Close(); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{path, bk} {
				if got, err := CheckFile(p); err != nil || got != want {
					t.Fatalf("CheckFile(%s) = %d, %v; want %d", filepath.Base(p), got, err, want)
				}
			}
		})
	}
}

func TestCorruptRecordBytesDetected(t *testing.T) {
	path := closedTableFile(t, 2000, 100)
	flipAt(t, path, offsetOf(t, path, []byte("value-00001234-")), 3)

	if _, err := CheckFile(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("CheckFile = %v, want ErrCorrupt", err)
	}
	var log errorLog
	tb := openAt(t, path, Options{OnError: log.hook}) // the header is fine: it opens
	if err := tb.Check(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check = %v", err)
	}
	var got []byte
	err := tb.View(func(tx *Tx) error { got = tx.Get(key(1234)); return nil })
	if !errors.Is(err, ErrCorrupt) || got != nil {
		t.Fatalf("View(get damaged) = %q, %v", got, err)
	}
	if mustGet(t, tb, key(1233)) == nil {
		t.Fatal("an intact record is unreadable")
	}
	err = tb.View(func(tx *Tx) error { return tx.ForEach(func(k, v []byte) error { return nil }) })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ForEach = %v", err)
	}
	// An update that reads the damaged record fails and writes nothing.
	err = tb.Update(func(tx *Tx) error {
		if tx.Get(key(1234)) == nil {
			return tx.Put([]byte("derived"), []byte("from a damaged read"))
		}
		return nil
	})
	if !errors.Is(err, ErrCorrupt) || mustGet(t, tb, []byte("derived")) != nil {
		t.Fatalf("update on damaged read: %v", err)
	}
	if log.corruptReports() < 4 {
		t.Fatalf("reported %d corruptions", log.corruptReports())
	}
}

func TestCorruptPageStructureDetected(t *testing.T) {
	path := closedTableFile(t, 3000, 100)
	ps := int64(os.Getpagesize())
	off := offsetOf(t, path, []byte("value-00002000-"))
	page := off - off%ps
	flipAt(t, path, page+8, 4) // flags and element count of a leaf page

	if _, err := CheckFile(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("CheckFile = %v", err)
	}
	tb := openAt(t, path, Options{})
	if err := tb.Check(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check = %v", err)
	}
	// Reading through the damaged page reports instead of crashing.
	err := tb.View(func(tx *Tx) error { return tx.ForEach(func(k, v []byte) error { return nil }) })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ForEach = %v", err)
	}
}

func TestTruncatedFileDetected(t *testing.T) {
	for _, size := range []int64{0, 100, 3 * int64(os.Getpagesize()), -1} {
		path := closedTableFile(t, 5000, 100)
		if size < 0 {
			fi, _ := os.Stat(path)
			size = fi.Size() / 3
		}
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
		if _, err := CheckFile(path); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("size %d: CheckFile = %v", size, err)
		}
		if _, err := OpenTable("t", path, Options{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("size %d: OpenTable = %v", size, err)
		}
	}
}

func TestZeroedHeaderDetected(t *testing.T) {
	ps := os.Getpagesize()
	path := closedTableFile(t, 500, 100)
	patchFile(t, path, 0, make([]byte, 2*ps))
	if _, err := CheckFile(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("CheckFile = %v", err)
	}
	if _, err := OpenTable("t", path, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("OpenTable = %v", err)
	}
}

// One zeroed meta page is what a power loss during a meta write leaves;
// bbolt falls back to the other meta page by design, so it is not damage.
func TestOneZeroedMetaPageFallsBack(t *testing.T) {
	ps := os.Getpagesize()
	for slot := range 2 {
		path := closedTableFile(t, 500, 100)
		patchFile(t, path, int64(slot*ps), make([]byte, ps))
		if _, err := CheckFile(path); err != nil {
			t.Fatalf("slot %d: CheckFile = %v", slot, err)
		}
		tb := openAt(t, path, Options{})
		if err := tb.Check(); err != nil {
			t.Fatalf("slot %d: Check = %v", slot, err)
		}
	}
}

// Damage made to the file under an open table is reported by the next
// operation that meets it, never crashes or hangs the process, and a
// restore brings the table back.
func TestLiveCorruptionThenRestore(t *testing.T) {
	ps := int64(os.Getpagesize())
	damages := map[string]func(t *testing.T, path string){
		"flipped record": func(t *testing.T, path string) {
			flipAt(t, path, offsetOf(t, path, []byte("value-00004321-")), 2)
		},
		"flipped page header": func(t *testing.T, path string) {
			off := offsetOf(t, path, []byte("value-00004321-"))
			flipAt(t, path, off-off%ps+8, 4)
		},
		"zeroed header": func(t *testing.T, path string) {
			patchFile(t, path, 0, make([]byte, 2*ps))
		},
		"truncated": func(t *testing.T, path string) {
			if err := os.Truncate(path, 4*ps); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			var log errorLog
			dir := t.TempDir()
			tb := openAt(t, filepath.Join(dir, "t.db"), Options{OnError: log.hook})
			fill(t, tb, 0, 10000, 100)
			bk := filepath.Join(dir, "backup.db")
			if _, err := tb.BackupVerified(bk); err != nil {
				t.Fatal(err)
			}
			damage(t, tb.Path())

			err := tb.View(func(tx *Tx) error {
				return tx.ForEach(func(k, v []byte) error { return nil })
			})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ForEach after damage = %v", err)
			}
			if err := tb.Check(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Check after damage = %v", err)
			}
			if log.corruptReports() == 0 {
				t.Fatal("damage not reported")
			}
			aside := filepath.Join(dir, "aside", "t.db")
			n, err := tb.Restore(bk, aside)
			if err != nil || n != 10000 {
				t.Fatalf("restore = %d, %v", n, err)
			}
			if err := tb.Check(); err != nil {
				t.Fatalf("check after restore: %v", err)
			}
			if err := tb.Update(func(tx *Tx) error { return tx.Put([]byte("after"), []byte("x")) }); err != nil {
				t.Fatalf("update after restore: %v", err)
			}
			if !bytes.Equal(mustGet(t, tb, key(4321)), val(4321, 100)) {
				t.Fatal("record lost by restore")
			}
			if _, err := os.Stat(aside); err != nil {
				t.Fatalf("damaged file not kept: %v", err)
			}
		})
	}
}

// Random damage anywhere in a file: the verifier never panics, and a file
// it accepts can be opened and read in full.
func TestRandomDamageNeverPanics(t *testing.T) {
	base := closedTableFile(t, 3000, 60)
	orig, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newestMeta(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	used := int(m.hwm) * m.pageSize // damage the pages, not the preallocated tail
	rng := rand.New(rand.NewPCG(7, 9))
	dir := t.TempDir()
	accepted, rejected := 0, 0
	iterations := 200
	if raceEnabled {
		iterations = 60
	}
	for i := range iterations {
		data := bytes.Clone(orig)
		for range 1 + rng.IntN(4) {
			data[rng.IntN(used)] ^= byte(1 + rng.IntN(255))
		}
		path := filepath.Join(dir, "d.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		n, err := CheckFile(path)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("iteration %d: non-damage error %v", i, err)
			}
			rejected++
			continue
		}
		accepted++
		tb, err := OpenTable("t", path, Options{})
		if err != nil {
			t.Fatalf("iteration %d: verified file fails to open: %v", i, err)
		}
		cnt := 0
		err = tb.View(func(tx *Tx) error { return tx.ForEach(func(k, v []byte) error { cnt++; return nil }) })
		if cerr := tb.Close(); err == nil {
			err = cerr
		}
		if err != nil || cnt != n {
			t.Fatalf("iteration %d: verified file reads %d of %d: %v", i, cnt, n, err)
		}
	}
	t.Logf("accepted %d, rejected %d", accepted, rejected)
}

func FuzzCheckFile(f *testing.F) {
	// Small seeds keep the fuzzer fast: 1 KiB pages, a few records, one
	// file with a branch level and one with an inline bucket.
	seed := smallTableFile(f, 60)
	f.Add(seed)
	f.Add(smallTableFile(f, 3))
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		n, err := CheckFile(path)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("non-damage error: %v", err)
			}
			return
		}
		tb, err := OpenTable("t", path, Options{})
		if err != nil {
			t.Fatalf("verified file fails to open: %v", err)
		}
		defer tb.Close()
		cnt := 0
		if err := tb.View(func(tx *Tx) error { return tx.ForEach(func(k, v []byte) error { cnt++; return nil }) }); err != nil || cnt != n {
			t.Fatalf("verified file reads %d of %d: %v", cnt, n, err)
		}
	})
}

// smallTableFile builds a table file of n records with 1 KiB pages, the
// smallest bbolt allows, and returns its bytes.
func smallTableFile(f *testing.F, n int) []byte {
	path := filepath.Join(f.TempDir(), "seed.db")
	b, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: 1024})
	if err != nil {
		f.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucket(bucketName)
		if err != nil {
			return err
		}
		for i := range n {
			if err := bk.Put(key(i), seal(key(i), val(i, 30))); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	m, err := newestMeta(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		f.Fatal(err)
	}
	return data[:int(m.hwm)*m.pageSize]
}
