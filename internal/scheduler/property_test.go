package scheduler_test

import (
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/tasks"
)

// TestRandomizedInvariants drives agents and tasks through random
// connects, reconnects, disconnects, acceptances, completions, failures,
// declines, stale and resent reports, cancels, deadline sweeps and retries
// from the dead letter, and checks the engine's invariants after every
// step. The run is single-threaded and timer-free (the queue runs on a
// test clock; acceptance timers, busy holds and leases are off), so a seed
// always means the same kind of run.
func TestRandomizedInvariants(t *testing.T) {
	steps := 700
	if testing.Short() {
		steps = 200
	}
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			newSim(t, seed).run(steps)
		})
	}
}

// simClock is the queue's clock, advanced by the simulation.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *simClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type doneReport struct {
	agent, task string
	gen         int64
}

// held is what an agent's client believes it is working on.
type held struct {
	task string
	gen  int64
}

type sim struct {
	t     *testing.T
	rng   *rand.Rand
	w     *world
	clk   *simClock
	ids   []string // agent ids
	caps  map[string][]string
	conn  map[string]uint64 // online agents' connection
	next  uint64
	views map[string]held // client side
	tasks []string        // every task submitted
	gens  map[string]int64
	done  []doneReport   // applied completions, for resends
	acks  map[string]int // successful, non-duplicate completions per task
	// status and last are each task's status and record at the last check.
	status map[string]tasks.Status
	last   map[string]*tasks.Task
	step   int
	what   string
}

var capNames = []string{"x", "y", "z"}

func newSim(t *testing.T, seed int64) *sim {
	clk := &simClock{t: time.Now()}
	w := newWorld(t, config{queue: tasks.Config{BackoffBase: 500 * time.Millisecond, BackoffMax: 2 * time.Second},
		sched: schedCfg{LeaseTTL: 24 * time.Hour, SweepInterval: time.Hour}})
	w.Q.SetClock(clk.now)
	s := &sim{t: t, rng: rand.New(rand.NewSource(seed)), w: w, clk: clk, caps: map[string][]string{},
		conn: map[string]uint64{}, views: map[string]held{}, gens: map[string]int64{}, acks: map[string]int{},
		status: map[string]tasks.Status{}, last: map[string]*tasks.Task{}}
	for i := range 8 {
		id := fmt.Sprintf("agent-%d", i)
		s.ids = append(s.ids, id)
		for _, c := range capNames {
			if s.rng.Intn(2) == 0 {
				s.caps[id] = append(s.caps[id], c)
			}
		}
	}
	return s
}

func (s *sim) run(steps int) {
	for s.step = 0; s.step < steps; s.step++ {
		s.act()
		s.observePushes()
		s.check()
	}
	// Drain: everyone online, no more failures; all live work must finish.
	for _, id := range s.ids {
		if _, on := s.conn[id]; !on {
			s.connect(id)
		}
	}
	for round := 0; round < 200; round++ {
		s.what = "drain"
		s.clk.advance(3 * time.Second)
		s.w.S.Sweep()
		s.w.Q.PromoteDue()
		s.w.S.Pass()
		s.observePushes()
		for _, id := range s.ids {
			if v, ok := s.views[id]; ok {
				s.complete(id, v)
			}
		}
		// A completion may hand its agent the next task in the same
		// write: see that push now, as the steps above do after each
		// action, before the next round's sweep may take it back.
		s.observePushes()
		s.check()
		if st := s.w.Q.Stats(); st.ByStatus["queued"] == 0 && st.ByStatus["assigned"] == 0 {
			break
		}
	}
	s.checkTables()
	st := s.w.Q.Stats()
	if st.ByStatus["queued"] != 0 || st.ByStatus["assigned"] != 0 {
		// Only tasks no agent can ever take may be left.
		for _, task := range s.w.Q.Queued(0) {
			if s.anyAgentFits(task) {
				s.t.Fatalf("task %s never finished: %+v", task.ID, task)
			}
		}
	}
	s.t.Logf("%d tasks; final stats %+v", len(s.tasks), st)
}

func (s *sim) anyAgentFits(t *tasks.Task) bool {
	for _, id := range s.ids {
		if fits(t, id, s.caps[id]) {
			return true
		}
	}
	return false
}

func fits(t *tasks.Task, agent string, caps []string) bool {
	if tg := t.Target(); tg != "" && tg != agent {
		return false
	}
	return tasks.MatchesCapabilities(t.NeededCapabilities, caps)
}

func (s *sim) pickAgent(online bool) (string, bool) {
	var c []string
	for _, id := range s.ids {
		if _, on := s.conn[id]; on == online {
			c = append(c, id)
		}
	}
	if len(c) == 0 {
		return "", false
	}
	return c[s.rng.Intn(len(c))], true
}

func (s *sim) pickView() (string, held, bool) {
	var c []string
	for _, id := range s.ids {
		if _, ok := s.views[id]; ok {
			if _, on := s.conn[id]; on {
				c = append(c, id)
			}
		}
	}
	if len(c) == 0 {
		return "", held{}, false
	}
	id := c[s.rng.Intn(len(c))]
	return id, s.views[id], true
}

func (s *sim) connect(id string) {
	s.next++
	s.conn[id] = s.next
	s.w.P.setOnline(id, true)
	s.w.S.Connect(id, id, s.caps[id], s.next)
}

func (s *sim) act() {
	r := s.rng.Intn(100)
	switch {
	case r < 14:
		s.what = "submit"
		p := tasks.SubmitParams{Priority: s.rng.Intn(tasks.Lanes), MaxRetries: intp(1 + s.rng.Intn(4)), SubmittedBy: "op"}
		for _, c := range capNames {
			if s.rng.Intn(4) == 0 {
				p.NeededCapabilities = append(p.NeededCapabilities, c)
			}
		}
		if s.rng.Intn(10) == 0 {
			p.TargetAgent = s.ids[s.rng.Intn(len(s.ids))]
		}
		if s.rng.Intn(10) == 0 {
			cb := s.clk.now().Add(time.Duration(s.rng.Intn(4000)) * time.Millisecond).UnixMilli()
			p.CompleteBy = &cb
		}
		task, err := s.w.S.Submit(p)
		if err != nil {
			s.fail("submit: %v", err)
		}
		s.tasks = append(s.tasks, task.ID)
	case r < 22:
		s.what = "connect"
		if id, ok := s.pickAgent(false); ok {
			s.connect(id)
			if v, has := s.views[id]; has && s.rng.Intn(2) == 0 {
				s.recover(id, v) // a sidecar that kept its task asks about it
			} else {
				delete(s.views, id)
			}
		}
	case r < 27:
		s.what = "disconnect"
		if id, ok := s.pickAgent(true); ok {
			s.w.P.setOnline(id, false)
			s.w.S.Disconnect(id, s.conn[id])
			delete(s.conn, id)
			if a, ok := s.w.Reg.Get(id); ok {
				s.fail("agent %s still registered after disconnect: %+v", id, a)
			}
		}
	case r < 30:
		s.what = "replace connection"
		if id, ok := s.pickAgent(true); ok {
			old := s.conn[id]
			s.connect(id)
			s.w.S.Disconnect(id, old) // the replaced socket's late cleanup
			if _, ok := s.w.Reg.Get(id); !ok {
				s.fail("the replaced connection's cleanup removed %s", id)
			}
			if v, has := s.views[id]; has {
				s.recover(id, v)
			}
		}
	case r < 40:
		s.what = "accept"
		if id, v, ok := s.pickView(); ok {
			before := s.snapshot(v.task)
			err := s.w.S.Accepted(id, v.task)
			s.expect(before, id, v, err, anyGen)
			if err == nil {
				if a := s.w.agent(id); a.State != agents.Working {
					s.fail("accepted but %s", a.State)
				}
			}
		}
	case r < 44:
		s.what = "progress"
		if id, v, ok := s.pickView(); ok {
			before := s.snapshot(v.task)
			s.expect(before, id, v, s.w.S.Progress(id, v.task), anyGen)
		}
	case r < 56:
		s.what = "complete"
		if id, v, ok := s.pickView(); ok {
			s.complete(id, v)
		}
	case r < 63:
		s.what = "fail"
		if id, v, ok := s.pickView(); ok {
			before := s.snapshot(v.task)
			outcome, _, err := s.w.S.Fail(id, v.task, v.gen, fmt.Sprint("err@", s.step), nil, nil)
			s.expect(before, id, v, err, failure)
			if err == nil {
				after := s.w.get(v.task)
				want := tasks.OutcomeRetried
				if before.RetryCount+1 >= before.MaxRetries {
					want = tasks.OutcomeDeadLetter
				}
				if outcome != want || after.RetryCount != before.RetryCount+1 {
					s.fail("fail outcome %s, retry_count %d->%d of %d", outcome, before.RetryCount, after.RetryCount, before.MaxRetries)
				}
			}
			delete(s.views, id)
		}
	case r < 66:
		s.what = "decline"
		if id, v, ok := s.pickView(); ok {
			before := s.snapshot(v.task)
			err := s.w.S.Reject(id, v.task, v.gen, "busy")
			s.expect(before, id, v, err, decline)
			if err == nil && s.w.agent(id).State != agents.Idle {
				s.fail("decliner not idle without a busy hold")
			}
			delete(s.views, id)
		}
	case r < 70:
		s.what = "stale report"
		if id, v, ok := s.pickView(); ok {
			before := s.snapshot(v.task)
			switch s.rng.Intn(3) {
			case 0:
				stale := held{task: v.task, gen: v.gen - 1}
				_, err := s.w.S.Complete(id, v.task, stale.gen, nil, nil, nil)
				s.expect(before, id, stale, err, complete)
			case 1:
				stale := held{task: v.task, gen: v.gen + 1}
				_, _, err := s.w.S.Fail(id, v.task, stale.gen, "x", nil, nil)
				s.expect(before, id, stale, err, failure)
			default:
				other := s.ids[s.rng.Intn(len(s.ids))]
				_, err := s.w.S.Complete(other, v.task, v.gen, nil, nil, nil)
				s.expect(before, other, v, err, complete)
				if err == nil {
					s.record(other, v)
					delete(s.views, id)
				}
			}
		}
	case r < 73:
		s.what = "resend completion"
		if len(s.done) > 0 {
			d := s.done[s.rng.Intn(len(s.done))]
			before := s.snapshot(d.task)
			dup, err := s.w.S.Complete(d.agent, d.task, d.gen, nil, nil, nil)
			if err != nil || !dup {
				s.fail("resent completion of %s by %s: dup %v err %v", d.task, d.agent, dup, err)
			}
			if after := s.snapshot(d.task); after.Version != before.Version || after.UpdatedAt != before.UpdatedAt {
				s.fail("resent completion changed %s", d.task)
			}
		}
	case r < 76:
		s.what = "cancel"
		if len(s.tasks) > 0 {
			id := s.tasks[s.rng.Intn(len(s.tasks))]
			before := s.snapshot(id)
			_, holder, err := s.w.S.Cancel(id, "root", true, "")
			live := before.Status == tasks.StatusQueued || before.Status == tasks.StatusAssigned
			if live != (err == nil) || holder != before.Holder() && err == nil {
				s.fail("cancel of %s task: holder %q err %v", before.Status, holder, err)
			}
			if holder != "" {
				if a, ok := s.w.Reg.Get(holder); ok && a.CurrentTask == id {
					s.fail("holder still on a cancelled task")
				}
				if s.views[holder].task == id {
					delete(s.views, holder) // it is sent task_cancelled
				}
			}
		}
	case r < 79:
		s.what = "retry dead letter"
		if dl, _, err := s.w.Q.ListDeadLetter(tasks.Filter{}); err == nil && len(dl) > 0 {
			id := dl[s.rng.Intn(len(dl))].ID
			got, err := s.w.S.RetryDeadLetter(id)
			if err != nil || got.Status != tasks.StatusQueued || got.RetryCount != 0 {
				s.fail("retry %s: %+v %v", id, got, err)
			}
		}
	case r < 86:
		s.what = "time passes"
		s.clk.advance(time.Duration(s.rng.Intn(2500)) * time.Millisecond)
		s.w.S.Sweep()
		s.w.Q.PromoteDue()
	default:
		s.what = "pass"
		s.w.Q.PromoteDue()
		s.w.S.Pass()
		s.checkWorkConserving()
	}
}

// complete reports the client's task done and checks the answer against
// what the queue said before.
func (s *sim) complete(id string, v held) {
	before := s.snapshot(v.task)
	dup, err := s.w.S.Complete(id, v.task, v.gen, map[string]any{"by": id}, nil, nil)
	s.expect(before, id, v, err, complete)
	if err == nil && !dup {
		s.record(id, v)
		// Idle, or handed its next task in the completion's write.
		if a := s.w.agent(id); a.State != agents.Idle && (a.State != agents.Assigned || s.snapshot(a.CurrentTask).Holder() != id) {
			s.fail("completed but %s (%s)", a.State, a.CurrentTask)
		}
	}
	delete(s.views, id)
}

// record counts an applied completion.
func (s *sim) record(agent string, v held) {
	s.acks[v.task]++
	s.done = append(s.done, doneReport{agent: agent, task: v.task, gen: v.gen})
}

func (s *sim) recover(id string, v held) {
	before := s.snapshot(v.task)
	idle := s.w.agent(id).State == agents.Idle
	gen, ok := s.w.S.Recover(id, v.task)
	holds := before.Status == tasks.StatusAssigned && before.Holder() == id
	// A task taken from this agent on disconnect, and given to no one
	// since, comes back to it (at a new generation) when it is idle and fits.
	givenBack := false
	if n := len(before.Attempts); !holds && n > 0 && before.Status == tasks.StatusQueued {
		last := before.Attempts[n-1]
		givenBack = idle && last.AgentID == id && last.Outcome == "reclaimed" && last.Reason == tasks.ReasonDisconnect &&
			fits(before, id, s.caps[id])
	}
	want := before.Generation
	if givenBack {
		want++
	}
	if ok != (holds || givenBack) || ok && gen != want {
		s.fail("recover %s: %d %v (given back %v), task %+v", v.task, gen, ok, givenBack, before)
	}
	if !ok {
		delete(s.views, id)
		return
	}
	s.views[id] = held{task: v.task, gen: gen}
	if a := s.w.agent(id); a.State != agents.Working || a.CurrentTask != v.task {
		s.fail("continued but %+v", a)
	}
}

// report kinds, for expect.
const (
	anyGen   = iota // accept, progress: the holder, any generation
	decline         // the holder at the current generation
	complete        // the holder at the current generation, or a resend
	failure
)

// expect checks a report was accepted exactly when, before it, the agent
// held the task (at the reported generation for completions and
// failures), or it resent a report that had been applied.
func (s *sim) expect(before *tasks.Task, agent string, v held, err error, kind int) {
	s.t.Helper()
	ok := before.Status == tasks.StatusAssigned && before.Holder() == agent
	if kind == decline {
		ok = ok && before.Generation == v.gen
	}
	if kind == complete || kind == failure {
		ok = ok && before.Generation == v.gen
		outcome := "completed"
		if kind == failure {
			outcome = "failed"
		}
		for _, a := range before.Attempts {
			if a.Generation == v.gen && a.AgentID == agent && a.Outcome == outcome {
				ok = true // a resend
			}
		}
	}
	if ok != (err == nil) {
		s.fail("report by %s on %s gen %d: err %v; before: %s held by %q at gen %d", agent, v.task, v.gen, err,
			before.Status, before.Holder(), before.Generation)
	}
	if err != nil {
		if !errors.Is(err, tasks.ErrStaleGeneration) && !errors.Is(err, tasks.ErrNotHolder) &&
			!errors.Is(err, tasks.ErrInvalidState) && !errors.Is(err, tasks.ErrNotFound) {
			s.fail("report error: %v", err)
		}
		if after := s.snapshot(v.task); after.Version != before.Version {
			s.fail("a refused report changed %s", v.task)
		}
	}
}

func (s *sim) snapshot(id string) *tasks.Task {
	task, err := s.w.Q.Get(id)
	if err != nil {
		s.fail("get %s: %v", id, err)
	}
	return task
}

// observePushes turns deliveries into client views and checks each one
// matches the queue.
func (s *sim) observePushes() {
	for {
		select {
		case p := <-s.w.P.fresh:
			task := s.snapshot(p.task)
			if task.Status != tasks.StatusAssigned || task.Holder() != p.agent || task.Generation != p.gen {
				s.fail("pushed %+v but task is %s/%s/%d", p, task.Status, task.Holder(), task.Generation)
			}
			// The client may still think it has a task the hub took back
			// without telling it (deadline); never one the hub still
			// gives it.
			if old, busy := s.views[p.agent]; busy && old.task != p.task {
				if ot := s.snapshot(old.task); ot.Status == tasks.StatusAssigned && ot.Holder() == p.agent {
					s.fail("%s got %s while it holds %s", p.agent, p.task, old.task)
				}
			}
			s.views[p.agent] = held{task: p.task, gen: p.gen}
		default:
			return
		}
	}
}

// check verifies the invariants. Terminal tasks do not change (a
// dead-letter task comes back only through a retry, which makes it live),
// so each step reads only live tasks and tasks that just left the live
// set; every 100 steps the tables are scanned in full and compared.
func (s *sim) check() {
	live := map[string]*tasks.Task{}
	for _, t := range s.w.Q.Queued(0) {
		live[t.ID] = t
	}
	holder := map[string]string{}
	for _, t := range s.w.Q.Assigned() {
		if live[t.ID] != nil {
			s.fail("%s both queued and assigned", t.ID)
		}
		live[t.ID] = t
		// Each agent holds at most one task, and the agent's state agrees.
		h := t.Holder()
		if prev, dup := holder[h]; dup {
			s.fail("%s holds %s and %s", h, prev, t.ID)
		}
		holder[h] = t.ID
		a, ok := s.w.Reg.Get(h)
		if !ok {
			s.fail("%s held by %s, which is not connected", t.ID, h)
		}
		if (a.State != agents.Assigned && a.State != agents.Working) || a.CurrentTask != t.ID {
			s.fail("%s holds %s but is %s on %q", h, t.ID, a.State, a.CurrentTask)
		}
	}
	for _, a := range s.w.Reg.List() {
		if _, on := s.conn[a.ID]; !on {
			s.fail("offline %s registered", a.ID)
		}
		if a.State == agents.Idle && holder[a.ID] != "" {
			s.fail("idle %s holds %s", a.ID, holder[a.ID])
		}
		if a.CurrentTask != "" && holder[a.ID] != a.CurrentTask {
			s.fail("%s works on %s, which the queue does not give it", a.ID, a.CurrentTask)
		}
	}
	byStatus, byPri := map[string]int{}, map[string]int{}
	dead := 0
	for _, id := range s.tasks {
		t := live[id]
		if t == nil {
			switch s.status[id] {
			case tasks.StatusCompleted, tasks.StatusCancelled, tasks.StatusDeadLetter:
				t = s.last[id] // unchanged since it ended
			default:
				t = s.snapshot(id) // just ended
				if t.Status == tasks.StatusQueued || t.Status == tasks.StatusAssigned {
					s.fail("%s is %s but not in the live set", id, t.Status)
				}
			}
		}
		s.status[id], s.last[id] = t.Status, t
		if t.Status == tasks.StatusDeadLetter {
			dead++
		} else {
			byStatus[string(t.Status)]++
			byPri[fmt.Sprint(t.Priority)]++
		}
		// Generations only grow.
		if t.Generation < s.gens[id] {
			s.fail("%s generation went back %d -> %d", id, s.gens[id], t.Generation)
		}
		s.gens[id] = t.Generation
		// Completed once at most, and exactly when acknowledged once.
		if n := countCompleted(t); n > 1 || (t.Status == tasks.StatusCompleted) != (n == 1) || n != s.acks[id] {
			s.fail("%s: %d completed entries, %d acks, status %s", id, n, s.acks[id], t.Status)
		}
	}
	// Stats match the tables.
	st := s.w.Q.Stats()
	if !mapsEqual(st.ByStatus, byStatus) || !mapsEqual(st.ByPriority, byPri) || st.DeadLetter != dead ||
		st.QueuedIndexSize != byStatus["queued"] {
		s.fail("stats %+v; tasks by_status %v by_priority %v dead %d", st, byStatus, byPri, dead)
	}
	if s.step%100 == 0 {
		s.checkTables()
	}
}

// checkTables scans both tables: each task is stored once, in the table
// of its status, as memory has it.
func (s *sim) checkTables() {
	active, _, err := s.w.Q.List(tasks.Filter{})
	if err != nil {
		s.fail("list: %v", err)
	}
	dead, _, err := s.w.Q.ListDeadLetter(tasks.Filter{})
	if err != nil {
		s.fail("dead letter: %v", err)
	}
	where := map[string]*tasks.Task{}
	for _, t := range append(active, dead...) {
		if where[t.ID] != nil {
			s.fail("%s stored twice", t.ID)
		}
		where[t.ID] = t
	}
	for _, t := range active {
		if t.Status == tasks.StatusDeadLetter {
			s.fail("dead-letter task %s in task_queue", t.ID)
		}
	}
	for _, t := range dead {
		if t.Status != tasks.StatusDeadLetter {
			s.fail("%s in the dead letter as %s", t.ID, t.Status)
		}
	}
	if len(where) != len(s.tasks) {
		s.fail("%d tasks stored, %d submitted", len(where), len(s.tasks))
	}
	for _, id := range s.tasks {
		disk, mem := where[id], s.last[id]
		if disk == nil {
			s.fail("task %s lost", id)
		}
		// Acceptance is kept in memory until the task's next write
		// (tasks/assign.go), so memory may be ahead of the disk by
		// version, but never by status or generation.
		if mem.Status != disk.Status || mem.Generation != disk.Generation || mem.Version < disk.Version {
			s.fail("%s: memory %s/%d v%d, disk %s/%d v%d", id, mem.Status, mem.Generation, mem.Version, disk.Status, disk.Generation, disk.Version)
		}
	}
}

// checkWorkConserving: after a pass, no idle agent fits a ready task.
func (s *sim) checkWorkConserving() {
	now := s.clk.now().UnixMilli()
	for _, a := range s.w.Reg.Idle() {
		for _, t := range s.w.Q.Queued(0) {
			if t.NotBefore <= now && fits(t, a.ID, a.Capabilities) {
				s.fail("after a pass, idle %s fits ready %s (needs %v, target %q)", a.ID, t.ID, t.NeededCapabilities, t.Target())
			}
		}
	}
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("step %d (%s): %s", s.step, s.what, fmt.Sprintf(format, args...))
}

func countCompleted(t *tasks.Task) int {
	n := 0
	for _, a := range t.Attempts {
		if a.Outcome == "completed" {
			n++
		}
	}
	h := 0
	for _, e := range t.History {
		if e.Event == "completed" {
			h++
		}
	}
	return max(n, h)
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func intp(n int) *int { return &n }
