package tasks_test

import (
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasks"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }

// clock is a settable time source shared by a queue under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_750_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Ms() int64 { return c.Now().UnixMilli() }

// env is a queue over a temporary data directory that can be reopened to
// check what survives a restart.
type env struct {
	t   testing.TB
	dir string
	cfg tasks.Config
	clk *clock
	db  *store.DB
	Bus *bus.Bus
	Q   *tasks.Queue
}

func newEnv(t testing.TB, cfg tasks.Config) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), cfg: cfg, clk: newClock()}
	e.open()
	t.Cleanup(func() { e.close() })
	return e
}

func (e *env) open() {
	e.t.Helper()
	db, err := store.Open(e.dir, store.AllTables(), store.Options{})
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	e.db, e.Bus = db, bus.New()
	// The clock must be in place before New: Reload reads it.
	q, err := newQueueWithClock(db, e.Bus, e.cfg, e.clk)
	if err != nil {
		db.Close()
		e.t.Fatalf("open queue: %v", err)
	}
	e.Q = q
}

func newQueueWithClock(db *store.DB, b *bus.Bus, cfg tasks.Config, clk *clock) (*tasks.Queue, error) {
	d, err := boltdriver.New(db)
	if err != nil {
		return nil, err
	}
	q, err := tasks.New(d.Tasks(), b, cfg)
	if err != nil {
		return nil, err
	}
	q.SetClock(clk.Now)
	// Reload again on the test clock so backoff due times are judged by it.
	return q, q.Reload()
}

func (e *env) close() {
	if e.db != nil {
		if err := e.db.Close(); err != nil {
			e.t.Errorf("close store: %v", err)
		}
		e.db = nil
	}
}

// reopen simulates a hub restart over the same files.
func (e *env) reopen() {
	e.t.Helper()
	e.close()
	e.open()
}

func (e *env) submit(p tasks.SubmitParams) *tasks.Task {
	e.t.Helper()
	task, err := e.Q.Submit(p)
	if err != nil {
		e.t.Fatalf("submit: %v", err)
	}
	return task
}

// assignTo runs one assignment batch that gives the first ready task any
// agent would take to agent, and returns it (nil when none).
func (e *env) assignTo(agent string) *tasks.Task {
	e.t.Helper()
	got, err := e.Q.AssignBatch(func(*tasks.Task) (string, bool) { return agent, false }, 1)
	if err != nil {
		e.t.Fatalf("assign: %v", err)
	}
	if len(got) == 0 {
		return nil
	}
	return got[0]
}

// assignID assigns exactly task id to agent (other tasks are skipped).
func (e *env) assignID(id, agent string) *tasks.Task {
	e.t.Helper()
	got, err := e.Q.AssignBatch(func(t *tasks.Task) (string, bool) {
		if t.ID == id {
			return agent, false
		}
		return "", false
	}, 1)
	if err != nil {
		e.t.Fatalf("assign: %v", err)
	}
	if len(got) != 1 {
		e.t.Fatalf("task %s was not assignable", id)
	}
	return got[0]
}

func (e *env) get(id string) *tasks.Task {
	e.t.Helper()
	task, err := e.Q.Get(id)
	if err != nil {
		e.t.Fatalf("get %s: %v", id, err)
	}
	return task
}

func intp(n int) *int     { return &n }
func i64p(n int64) *int64 { return &n }

// historyEvents lists a task's history event names, oldest first.
func historyEvents(t *tasks.Task) []string {
	out := make([]string, len(t.History))
	for i, h := range t.History {
		out[len(t.History)-1-i] = h.Event
	}
	return out
}

// countEvent counts history entries named ev.
func countEvent(t *tasks.Task, ev string) int {
	n := 0
	for _, h := range t.History {
		if h.Event == ev {
			n++
		}
	}
	return n
}
