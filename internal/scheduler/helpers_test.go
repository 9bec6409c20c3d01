package scheduler_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/scheduler"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasks"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }

type schedCfg = scheduler.Config

// push is one assignment delivered to an agent.
type push struct {
	agent string
	task  string
	gen   int64
}

// fakePusher stands in for the socket layer: an agent is reachable while
// it is online, and every delivery is recorded.
type fakePusher struct {
	mu     sync.Mutex
	online map[string]bool
	pushes []push
	fresh  chan push
}

func newPusher() *fakePusher {
	return &fakePusher{online: map[string]bool{}, fresh: make(chan push, 1<<16)}
}

func (p *fakePusher) PushAssign(agent string, t *tasks.Task) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.online[agent] {
		return false
	}
	ps := push{agent: agent, task: t.ID, gen: t.Generation}
	p.pushes = append(p.pushes, ps)
	select {
	case p.fresh <- ps:
	default:
	}
	return true
}

func (p *fakePusher) setOnline(agent string, on bool) {
	p.mu.Lock()
	p.online[agent] = on
	p.mu.Unlock()
}

// next waits for the next delivery.
func (p *fakePusher) next(t *testing.T, d time.Duration) push {
	t.Helper()
	select {
	case ps := <-p.fresh:
		return ps
	case <-time.After(d):
		t.Fatalf("no assignment within %v", d)
		return push{}
	}
}

// none asserts nothing is delivered within d.
func (p *fakePusher) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ps := <-p.fresh:
		t.Fatalf("unexpected assignment %+v", ps)
	case <-time.After(d):
	}
}

// world is the task engine without sockets: queue, agents and scheduler
// over a temporary store, with a fake pusher.
type world struct {
	t     testing.TB
	db    *store.DB
	Q     *tasks.Queue
	Reg   *agents.Registry
	S     *scheduler.Scheduler
	P     *fakePusher
	conns map[string]uint64
	next  uint64
	stop  func()
}

type config struct {
	queue  tasks.Config
	sched  scheduler.Config
	accept time.Duration
	busy   time.Duration
	run    bool // run the scheduler's loop (kicks, timers, sweeps)
	// zeroSched passes sched to the scheduler as is (no test defaults).
	zeroSched bool
	dataDir   string
}

func newWorld(t testing.TB, c config) *world {
	t.Helper()
	dir := c.dataDir
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := store.Open(dir, store.AllTables(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := boltdriver.New(db)
	if err != nil {
		t.Fatal(err)
	}
	b := bus.New()
	q, err := tasks.New(d.Tasks(), b, c.queue)
	if err != nil {
		t.Fatal(err)
	}
	if c.sched.LeaseTTL == 0 && !c.zeroSched {
		c.sched.LeaseTTL = time.Hour
	}
	if c.sched.SweepInterval == 0 && !c.zeroSched {
		c.sched.SweepInterval = time.Hour
	}
	w := &world{t: t, db: db, Q: q, P: newPusher(), conns: map[string]uint64{}}
	var s *scheduler.Scheduler
	w.Reg = agents.New(b, agents.Config{AcceptTimeout: c.accept, BusyHold: c.busy,
		OnAcceptTimeout: func(a, tk string) { s.AcceptTimeout(a, tk) },
		OnBusyOver:      func(string) { s.Kick() }})
	s = scheduler.New(q, w.Reg, c.sched, slog.New(slog.DiscardHandler))
	s.SetPusher(w.P)
	w.S = s
	w.stop = func() {}
	if c.run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		w.stop = func() { cancel(); <-done }
	}
	t.Cleanup(w.close)
	return w
}

func (w *world) close() {
	if w.db == nil {
		return
	}
	w.stop()
	w.Reg.Stop()
	if err := w.db.Close(); err != nil {
		w.t.Errorf("close: %v", err)
	}
	w.db = nil
}

// connect brings an agent online on a new connection.
func (w *world) connect(agent string, caps ...string) {
	w.next++
	w.conns[agent] = w.next
	w.P.setOnline(agent, true)
	w.S.Connect(agent, agent, caps, w.next)
}

// drop takes an agent's connection away.
func (w *world) drop(agent string) {
	w.P.setOnline(agent, false)
	w.S.Disconnect(agent, w.conns[agent])
	delete(w.conns, agent)
}

func (w *world) submit(p tasks.SubmitParams) *tasks.Task {
	w.t.Helper()
	task, err := w.S.Submit(p)
	if err != nil {
		w.t.Fatalf("submit: %v", err)
	}
	return task
}

func (w *world) get(id string) *tasks.Task {
	w.t.Helper()
	task, err := w.Q.Get(id)
	if err != nil {
		w.t.Fatalf("get %s: %v", id, err)
	}
	return task
}

func (w *world) agent(id string) agents.Agent {
	w.t.Helper()
	a, ok := w.Reg.Get(id)
	if !ok {
		w.t.Fatalf("agent %s not registered", id)
	}
	return a
}

// holders maps each assigned task to its holder.
func (w *world) holders() map[string]string {
	out := map[string]string{}
	for _, t := range w.Q.Assigned() {
		out[t.ID] = t.Holder()
	}
	return out
}
