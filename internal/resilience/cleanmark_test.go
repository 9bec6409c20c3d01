package resilience

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/agentcom/agentcom/internal/store"
)

// A clean close lets the next start skip the full check of every table
// (the data is all there); while the tables are open no marker exists, so
// a crash then leaves none and the next start checks in full.
func TestCleanCloseSkipsTheStartupCheck(t *testing.T) {
	e := newEnv(t, Config{})
	for _, st := range e.rep.Tables {
		if st.Skipped {
			t.Fatalf("a new table skipped its check: %+v", st)
		}
	}
	e.putAll(40)
	e.reopen()
	for _, st := range e.rep.Tables {
		if st.Action != "ok" || !st.Skipped {
			t.Fatalf("after a clean close: %+v", st)
		}
	}
	for _, name := range store.AllTables() {
		e.expect(name, 40)
		if _, err := os.Stat(store.CleanMarkerPath(store.TablePath(e.dir, name))); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: a clean-close marker exists while the table is open (%v)", name, err)
		}
	}
}

// A marker that does not name the file as it is now (left from an earlier
// clean close, as a crash after a marker survived would leave it) never
// skips the check: undamaged tables are checked and counted, damaged ones
// are still found and restored from their backup.
func TestStaleCleanMarkerRunsTheFullCheck(t *testing.T) {
	for _, damaged := range []bool{false, true} {
		name := "undamaged"
		if damaged {
			name = "damaged"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.putAll(40)
			if _, err := e.c.Backup(context.Background()); err != nil {
				t.Fatal(err)
			}
			e.close()
			stale := map[string][]byte{}
			for _, name := range store.AllTables() {
				b, err := os.ReadFile(store.CleanMarkerPath(store.TablePath(e.dir, name)))
				if err != nil {
					t.Fatalf("%s: no marker after a clean close: %v", name, err)
				}
				stale[name] = b
			}
			e.open()
			e.putAll(60)
			e.close()
			for _, name := range store.AllTables() {
				path := store.TablePath(e.dir, name)
				if damaged {
					damages["flipped bytes in a data page"](t, path, name)
				}
				if err := os.WriteFile(store.CleanMarkerPath(path), stale[name], 0o600); err != nil {
					t.Fatal(err)
				}
			}
			e.open()
			for _, st := range e.rep.Tables {
				switch {
				case st.Skipped:
					t.Fatalf("a stale marker skipped the check: %+v", st)
				case damaged && (st.Action != "restored" || st.Records != 40):
					t.Fatalf("damage behind a stale marker: %+v", st)
				case !damaged && (st.Action != "ok" || st.Records != 60):
					t.Fatalf("full check behind a stale marker: %+v", st)
				}
			}
		})
	}
}
