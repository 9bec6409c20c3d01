package resilience

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.VerifyNone(m)
}

// env is a hub data directory opened through OpenDB with a coordinator.
type env struct {
	t   *testing.T
	dir string
	cfg Config
	db  *store.DB
	bus *bus.Bus
	sub *bus.Sub
	c   *Coordinator
	rep *StartupReport
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), cfg: cfg, bus: bus.New()}
	e.open()
	t.Cleanup(e.close)
	return e
}

// open runs the startup path: OpenDB, New, NoteStartup.
func (e *env) open() {
	e.t.Helper()
	db, rep, err := OpenDB(context.Background(), e.dir, store.AllTables(), e.cfg, nil)
	if err != nil {
		e.t.Fatalf("OpenDB: %v", err)
	}
	e.db, e.rep = db, rep
	e.sub = e.bus.Subscribe(1000, bus.TopicStorage)
	e.c = New(db, e.bus, e.cfg, nil)
	e.c.NoteStartup(rep)
}

func (e *env) close() {
	if e.db != nil {
		_ = e.db.Close()
		e.db = nil
	}
	if e.sub != nil {
		e.sub.Close()
		e.sub = nil
	}
}

func (e *env) reopen() {
	e.t.Helper()
	e.close()
	e.open()
}

func recKey(i int) []byte { return fmt.Appendf(nil, "k%06d", i) }

// recVal names its table and index, so a record can be found in a file.
func recVal(table string, i int) []byte {
	return fmt.Appendf(nil, "val-%s-%06d-payload-payload", table, i)
}

// put writes records from..from+n-1 into table.
func (e *env) put(table string, from, n int) {
	e.t.Helper()
	err := e.db.Table(table).Update(func(tx *store.Tx) error {
		for i := from; i < from+n; i++ {
			if err := tx.Put(recKey(i), recVal(table, i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("put %s: %v", table, err)
	}
}

// putAll writes n records into every table.
func (e *env) putAll(n int) {
	for _, name := range e.db.Names() {
		e.put(name, 0, n)
	}
}

// expect checks that table holds exactly records 0..n-1 with their values.
func (e *env) expect(table string, n int) {
	e.t.Helper()
	count := 0
	err := e.db.Table(table).View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			var i int
			if _, err := fmt.Sscanf(string(k), "k%06d", &i); err != nil || i >= n || !bytes.Equal(v, recVal(table, i)) {
				return fmt.Errorf("unexpected record %q=%q", k, v)
			}
			count++
			return nil
		})
	})
	if err != nil || count != n {
		e.t.Fatalf("%s: %d records (want %d): %v", table, count, n, err)
	}
}

// waitEvent reads storage events until one of type typ matching pred
// arrives (pred nil: any), and returns it.
func (e *env) waitEvent(typ string, pred func(bus.Event) bool) bus.Event {
	e.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-e.sub.C:
			if ev.Type() == typ && (pred == nil || pred(ev)) {
				return ev
			}
		case <-timeout:
			e.t.Fatalf("no %s event", typ)
		}
	}
}

// drain returns the events published so far.
func (e *env) drain() []bus.Event {
	var out []bus.Event
	for {
		select {
		case ev := <-e.sub.C:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// jsonKeys marshals v and returns its top-level object.
func jsonKeys(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// damage kinds applied to a table file.
var damages = map[string]func(t *testing.T, path, table string){
	"flipped bytes in a data page": func(t *testing.T, path, table string) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// Every copy: older versions of the record sit in free pages.
		needle, found := recVal(table, 3), 0
		for off := 0; ; {
			i := bytes.Index(data[off:], needle)
			if i < 0 {
				break
			}
			i += off
			patch(t, path, int64(i+4), []byte{^data[i+4], ^data[i+5]})
			found++
			off = i + len(needle)
		}
		if found == 0 {
			t.Fatalf("record not found in %s", path)
		}
	},
	"truncation": func(t *testing.T, path, _ string) {
		if err := os.Truncate(path, int64(3*os.Getpagesize())); err != nil {
			t.Fatal(err)
		}
	},
	"zeroed header": func(t *testing.T, path, _ string) {
		patch(t, path, 0, make([]byte, 2*os.Getpagesize()))
	},
}

func patch(t *testing.T, path string, off int64, b []byte) {
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

// asideFiles lists the damaged files kept for table (under corrupt/).
func (e *env) asideFiles(table string) []string { return e.keptFiles("corrupt", table) }

// replacedFiles lists the files a manual restore kept for table (under
// replaced/).
func (e *env) replacedFiles(table string) []string { return e.keptFiles("replaced", table) }

func (e *env) keptFiles(dir, table string) []string {
	m, _ := filepath.Glob(filepath.Join(e.dir, dir, table+"_*.db"))
	return m
}

// recorder is a reloader and gate that checks the gate is held while the
// reloader runs.
type recorder struct {
	gate    sync.Mutex
	mu      sync.Mutex
	calls   int
	gateErr error
}

func (r *recorder) reload(context.Context) error {
	if r.gate.TryLock() {
		r.gate.Unlock()
		r.mu.Lock()
		r.gateErr = fmt.Errorf("gate not held during reload")
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	return nil
}

func (r *recorder) count() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.gateErr
}

func (e *env) register(table string) *recorder {
	r := &recorder{}
	e.c.RegisterGate(table, &r.gate)
	e.c.RegisterReloader(table, r.reload)
	return r
}
