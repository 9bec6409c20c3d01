package scheduler_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/tasks"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestCapabilityMatching(t *testing.T) {
	w := newWorld(t, config{})
	w.connect("reviewer", "review")
	code := w.submit(tasks.SubmitParams{NeededCapabilities: []string{"code"}})
	both := w.submit(tasks.SubmitParams{NeededCapabilities: []string{"code", "review"}})
	if n := w.S.Pass(); n != 0 {
		t.Fatalf("a reviewer got %d code tasks", n)
	}
	w.connect("coder", "code", "go")
	w.connect("full", "review", "code")
	w.S.Pass()
	h := w.holders()
	if h[code.ID] != "coder" || h[both.ID] != "full" {
		t.Fatalf("holders %v", h)
	}
	open := w.submit(tasks.SubmitParams{})
	w.S.Pass()
	if got := w.holders()[open.ID]; got != "reviewer" {
		t.Fatalf("a task needing nothing went to %q", got)
	}
}

// TestOneTaskPerAgentAndLanes: each idle agent gets one task per pass,
// urgent before low, and never a second while it holds one.
func TestOneTaskPerAgentAndLanes(t *testing.T) {
	w := newWorld(t, config{})
	var low, urgent []string
	for range 3 {
		low = append(low, w.submit(tasks.SubmitParams{Priority: tasks.PriorityLow}).ID)
	}
	for range 2 {
		urgent = append(urgent, w.submit(tasks.SubmitParams{Priority: tasks.PriorityUrgent}).ID)
	}
	w.connect("a")
	w.connect("b")
	w.connect("c")
	if n := w.S.Pass(); n != 3 {
		t.Fatalf("assigned %d", n)
	}
	if n := w.S.Pass(); n != 0 {
		t.Fatalf("second pass assigned %d to busy agents", n)
	}
	h := w.holders()
	if h[urgent[0]] == "" || h[urgent[1]] == "" {
		t.Fatalf("urgent tasks waiting: %v", h)
	}
	lowsAssigned := 0
	for _, id := range low {
		if h[id] != "" {
			lowsAssigned++
		}
	}
	if lowsAssigned != 1 {
		t.Fatalf("%d low tasks assigned with 3 agents and 2 urgent tasks: %v", lowsAssigned, h)
	}
	per := map[string]int{}
	for _, a := range h {
		per[a]++
	}
	if len(per) != 3 {
		t.Fatalf("per agent: %v", per)
	}
	// Completing gives the agent the next task in line, in the
	// completion's write (no agent is idle).
	var done string
	for id, a := range h {
		if a == "a" {
			done = id
		}
	}
	if _, err := w.S.Complete("a", done, w.get(done).Generation, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	held := w.Q.HeldBy("a")
	if len(held) != 1 || held[0].Priority != tasks.PriorityLow || w.agent("a").State != agents.Assigned || w.agent("a").CurrentTask != held[0].ID {
		t.Fatalf("after completing, a holds %v as %+v", held, w.agent("a"))
	}
}

// TestUnmatchableTaskDoesNotBlock: an urgent task nobody can run leaves
// every other task free to go.
func TestUnmatchableTaskDoesNotBlock(t *testing.T) {
	w := newWorld(t, config{})
	gpu := w.submit(tasks.SubmitParams{Priority: tasks.PriorityUrgent, NeededCapabilities: []string{"gpu"}})
	ghost := w.submit(tasks.SubmitParams{Priority: tasks.PriorityUrgent, TargetAgent: "nobody"})
	for range 4 {
		w.submit(tasks.SubmitParams{Priority: tasks.PriorityLow})
	}
	w.connect("a", "cpu")
	w.connect("b", "cpu")
	if n := w.S.Pass(); n != 2 {
		t.Fatalf("assigned %d", n)
	}
	h := w.holders()
	if len(h) != 2 || h[gpu.ID] != "" || h[ghost.ID] != "" {
		t.Fatalf("holders %v", h)
	}
	w.connect("g", "gpu")
	w.S.Pass()
	if w.holders()[gpu.ID] != "g" {
		t.Fatal("gpu task not assigned to the gpu agent")
	}
}

func TestTargetAgent(t *testing.T) {
	w := newWorld(t, config{})
	w.connect("a")
	w.connect("b")
	target := w.submit(tasks.SubmitParams{TargetAgent: "b", Priority: tasks.PriorityLow})
	free := w.submit(tasks.SubmitParams{Priority: tasks.PriorityLow})
	w.S.Pass()
	h := w.holders()
	if h[target.ID] != "b" || h[free.ID] != "a" {
		t.Fatalf("holders %v", h)
	}
	// Offline target: the task waits for it.
	later := w.submit(tasks.SubmitParams{TargetAgent: "c"})
	w.S.Pass()
	if w.holders()[later.ID] != "" {
		t.Fatal("task for c given to someone else")
	}
	w.connect("c")
	w.S.Pass()
	if w.holders()[later.ID] != "c" {
		t.Fatal("task not given to its target")
	}
}

// TestRejectedTaskComesBack: a declined task goes to another agent first,
// and back to the one that declined it when no other can take it (a
// targeted task declined by its busy target is not stranded).
func TestRejectedTaskComesBack(t *testing.T) {
	w := newWorld(t, config{busy: 50 * time.Millisecond, run: true})
	w.connect("a")
	task := w.submit(tasks.SubmitParams{TargetAgent: "a"})
	first := w.P.next(t, 5*time.Second)
	if err := w.S.Reject("a", task.ID, -1, "busy"); err != nil {
		t.Fatal(err)
	}
	if got := w.agent("a"); got.State != agents.Blocked {
		t.Fatalf("busy agent: %+v", got)
	}
	again := w.P.next(t, 5*time.Second)
	if again.agent != "a" || again.task != task.ID || again.gen != first.gen+2 {
		t.Fatalf("after the hold: %+v (first %+v)", again, first)
	}

	// Another agent that fits is preferred over the one that declined.
	w.connect("b")
	open := w.submit(tasks.SubmitParams{Priority: tasks.PriorityUrgent})
	got := w.P.next(t, 5*time.Second)
	if got.agent != "b" || got.task != open.ID {
		t.Fatalf("assignment %+v", got)
	}
	if _, err := w.S.Complete("a", task.ID, again.gen, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.S.Reject("b", open.ID, -1, "state_write_failed"); err != nil {
		t.Fatal(err)
	}
	got = w.P.next(t, 5*time.Second)
	if got.agent != "a" || got.task != open.ID {
		t.Fatalf("declined task went to %+v, want a", got)
	}
}

// TestDeclinerGetsOtherWorkFirst: an agent that declined a task is given
// other work it fits before the declined task comes back to it.
func TestDeclinerGetsOtherWorkFirst(t *testing.T) {
	w := newWorld(t, config{})
	w.connect("a")
	declined := w.submit(tasks.SubmitParams{Priority: tasks.PriorityUrgent})
	w.S.Pass()
	if err := w.S.Reject("a", declined.ID, -1, "busy"); err != nil {
		t.Fatal(err)
	}
	fresh := w.submit(tasks.SubmitParams{Priority: tasks.PriorityLow})
	w.S.Pass()
	if h := w.holders(); h[fresh.ID] != "a" || h[declined.ID] != "" {
		t.Fatalf("holders %v: want the fresh task first", h)
	}
	if _, err := w.S.Complete("a", fresh.ID, w.get(fresh.ID).Generation, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	w.S.Pass()
	if h := w.holders(); h[declined.ID] != "a" {
		t.Fatalf("holders %v: the declined task should come back when nothing else is left", h)
	}
}

// TestDeclineHoldsAgent: whatever the reason given, an agent that
// declined a task sits out the busy hold, so a task only it can run is
// not bounced between it and the queue.
func TestDeclineHoldsAgent(t *testing.T) {
	w := newWorld(t, config{busy: time.Hour})
	w.connect("a")
	task := w.submit(tasks.SubmitParams{})
	w.S.Pass()
	if err := w.S.Reject("a", task.ID, -1, "state_write_failed"); err != nil {
		t.Fatal(err)
	}
	if a := w.agent("a"); a.State != agents.Blocked {
		t.Fatalf("after declining: %+v", a)
	}
	if n := w.S.Pass(); n != 0 {
		t.Fatal("declined task offered straight back")
	}
	if err := w.S.Reject("a", task.ID, -1, "busy"); !errors.Is(err, tasks.ErrInvalidState) {
		t.Fatalf("second decline of a queued task: %v", err)
	}
	// Reconnecting ends the hold.
	w.connect("a")
	if n := w.S.Pass(); n != 1 {
		t.Fatal("not offered after reconnect")
	}
}

// TestPushFailureDropsAgent: when an assignment cannot be delivered
// because the agent's socket is gone, the task goes back once and the
// agent is not offered work again until it reconnects.
func TestPushFailureDropsAgent(t *testing.T) {
	w := newWorld(t, config{})
	w.connect("a")
	w.P.setOnline("a", false) // the socket closed; its cleanup has not run yet
	task := w.submit(tasks.SubmitParams{})
	w.S.Pass()
	if got := w.get(task.ID); got.Status != tasks.StatusQueued || got.Generation != 2 {
		t.Fatalf("after failed delivery: %+v", got)
	}
	for range 3 {
		w.S.Pass()
	}
	if got := w.get(task.ID); got.Generation != 2 {
		t.Fatalf("task churned on a vanished agent: generation %d", got.Generation)
	}
	w.drop("a") // the late cleanup is harmless
	w.connect("a")
	w.S.Pass()
	if got := w.get(task.ID); got.Holder() != "a" || got.Generation != 3 {
		t.Fatalf("after reconnect: %+v", got)
	}
}

func TestDisconnectReclaims(t *testing.T) {
	w := newWorld(t, config{})
	w.connect("a")
	task := w.submit(tasks.SubmitParams{})
	w.S.Pass()
	if err := w.S.Accepted("a", task.ID); err != nil {
		t.Fatal(err)
	}
	w.drop("a")
	got := w.get(task.ID)
	if got.Status != tasks.StatusQueued || got.Generation != 2 || got.History[0].Details != tasks.ReasonDisconnect || got.RetryCount != 0 {
		t.Fatalf("after disconnect: %+v", got)
	}
	w.connect("b")
	w.S.Pass()
	if _, err := w.S.Complete("a", task.ID, 1, nil, nil, nil); err == nil {
		t.Fatal("old holder completed")
	}
	if _, err := w.S.Complete("b", task.ID, 3, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestAcceptTimeoutAndContinue(t *testing.T) {
	w := newWorld(t, config{accept: 300 * time.Millisecond, run: true})
	w.connect("a")
	task := w.submit(tasks.SubmitParams{})
	first := w.P.next(t, 5*time.Second)
	// Not accepted: reclaimed, flagged, and (being the only agent) handed
	// the task again with a new generation.
	again := w.P.next(t, 5*time.Second)
	if again.task != task.ID || again.gen != first.gen+2 {
		t.Fatalf("re-assignment %+v after %+v", again, first)
	}
	got := w.get(task.ID)
	if !slices.ContainsFunc(got.History, func(e tasks.Event) bool { return e.Details == tasks.ReasonAcceptTimeout }) {
		t.Fatalf("history: %+v", got.History)
	}
	if a := w.agent("a"); !slices.Contains(a.Flags, agents.FlagUnresponsive) {
		t.Fatalf("flags: %v", a.Flags)
	}
	// task_recovering answers continue with the generation and stops the
	// timer: the task stays with the agent past the timeout.
	gen, ok := w.S.Recover("a", task.ID)
	if !ok || gen != again.gen {
		t.Fatalf("recover: %d %v", gen, ok)
	}
	if _, ok := w.S.Recover("b", task.ID); ok {
		t.Fatal("another agent may continue the task")
	}
	w.P.none(t, 600*time.Millisecond)
	if got := w.get(task.ID); got.Holder() != "a" || got.Generation != again.gen {
		t.Fatalf("continued task reclaimed: %+v", got)
	}
	// A reconnect (new connection while the hub still shows the task as
	// the agent's) keeps the task; recovering stops the new timer too.
	w.connect("a")
	if a := w.agent("a"); a.State != agents.Assigned || a.CurrentTask != task.ID {
		t.Fatalf("after reconnect: %+v", a)
	}
	if gen, ok := w.S.Recover("a", task.ID); !ok || gen != again.gen {
		t.Fatal("recover after reconnect")
	}
	w.P.none(t, 600*time.Millisecond)
	if _, err := w.S.Complete("a", task.ID, again.gen, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
}

// TestLeases: a holder that keeps being heard keeps its task past the
// lease; one that goes silent loses it with reason lease_expired.
func TestLeases(t *testing.T) {
	const ttl = 150 * time.Millisecond
	w := newWorld(t, config{sched: leaseCfg(ttl)})
	w.connect("a")
	w.connect("b")
	ta := w.submit(tasks.SubmitParams{})
	tb := w.submit(tasks.SubmitParams{})
	w.S.Pass()
	w.S.Accepted("a", w.Q.HeldBy("a")[0].ID)
	w.S.Accepted("b", w.Q.HeldBy("b")[0].ID)
	start := time.Now()
	for time.Since(start) < 3*ttl {
		w.S.Heard("a")
		w.S.Sweep()
		time.Sleep(ttl / 5)
	}
	for _, id := range []string{ta.ID, tb.ID} {
		got := w.get(id)
		switch got.Holder() {
		case "a":
			if got.Status != tasks.StatusAssigned {
				t.Fatalf("heard holder lost its task: %+v", got)
			}
		default:
			if got.Status != tasks.StatusQueued || got.History[0].Event != "reclaimed" || got.History[0].Details != tasks.ReasonLeaseExpired {
				t.Fatalf("silent holder's task: %+v", got)
			}
		}
	}
	if a := w.agent("b"); a.State != agents.Idle {
		t.Fatalf("silent holder still %s", a.State)
	}
	if len(w.Q.HeldBy("a")) != 1 || len(w.Q.HeldBy("b")) != 0 {
		t.Fatal("holders after sweep")
	}
}

// TestDeadlineSweep: past its deadline, a held task is reclaimed
// ("deadline") and dead-lettered; its holder is free again.
func TestDeadlineSweep(t *testing.T) {
	w := newWorld(t, config{})
	w.connect("a")
	soon := time.Now().Add(300 * time.Millisecond).UnixMilli()
	task := w.submit(tasks.SubmitParams{CompleteBy: &soon})
	w.S.Pass()
	w.S.Sweep()
	if got := w.get(task.ID); got.Status != tasks.StatusAssigned {
		t.Fatal("expired before its deadline")
	}
	testenv.Eventually(t, "deadline", func() bool { return time.Now().UnixMilli() > soon }, testenv.Within(5*time.Second))
	w.S.Sweep()
	got := w.get(task.ID)
	if got.Status != tasks.StatusDeadLetter || got.LastError != "deadline exceeded" || got.History[1].Details != tasks.ReasonDeadline {
		t.Fatalf("after deadline: %+v", got)
	}
	if a := w.agent("a"); a.State != agents.Idle || a.CurrentTask != "" {
		t.Fatalf("holder: %+v", a)
	}
	if _, err := w.S.Complete("a", task.ID, got.Generation-1, nil, nil, nil); !errors.Is(err, tasks.ErrNotFound) {
		t.Fatalf("late completion: %v", err)
	}
}

// TestBackoffDelaysRetry: a failed task is offered again only after its
// backoff, and then at once.
func TestBackoffDelaysRetry(t *testing.T) {
	const base = 150 * time.Millisecond
	w := newWorld(t, config{queue: tasks.Config{BackoffBase: base, BackoffMax: time.Second}, run: true})
	w.connect("a")
	task := w.submit(tasks.SubmitParams{})
	first := w.P.next(t, 5*time.Second)
	failed := time.Now()
	if _, _, err := w.S.Fail("a", task.ID, first.gen, "boom", nil, nil); err != nil {
		t.Fatal(err)
	}
	again := w.P.next(t, 5*time.Second)
	if waited := time.Since(failed); waited < base-2*time.Millisecond {
		t.Fatalf("re-offered after %v, backoff %v", waited, base)
	}
	if again.gen != first.gen+2 {
		t.Fatalf("generation %d after %d", again.gen, first.gen)
	}
	failed = time.Now()
	if _, _, err := w.S.Fail("a", task.ID, again.gen, "boom", nil, nil); err != nil {
		t.Fatal(err)
	}
	w.P.next(t, 5*time.Second)
	if waited := time.Since(failed); waited < 2*base-2*time.Millisecond {
		t.Fatalf("second retry after %v, want >= %v", waited, 2*base)
	}
}

func TestCancelHeldTask(t *testing.T) {
	w := newWorld(t, config{})
	w.connect("a")
	task := w.submit(tasks.SubmitParams{SubmittedBy: "alice"})
	w.S.Pass()
	if _, _, err := w.S.Cancel(task.ID, "mallory", false, ""); !errors.Is(err, tasks.ErrForbidden) {
		t.Fatalf("cancel by a stranger: %v", err)
	}
	got, holder, err := w.S.Cancel(task.ID, "alice", false, "changed my mind")
	if err != nil || holder != "a" || got.Status != tasks.StatusCancelled {
		t.Fatalf("cancel: %+v %q %v", got, holder, err)
	}
	if a := w.agent("a"); a.State != agents.Idle {
		t.Fatalf("holder after cancel: %+v", a)
	}
	if _, err := w.S.Complete("a", task.ID, 1, nil, nil, nil); err == nil {
		t.Fatal("completion of a cancelled task accepted")
	}
}

func leaseCfg(ttl time.Duration) (c schedCfg) {
	c.LeaseTTL = ttl
	c.SweepInterval = time.Hour
	return c
}

// TestZeroConfigTakesDefaults: a scheduler built with a zero config runs
// and does not treat every held task as expired.
func TestZeroConfigTakesDefaults(t *testing.T) {
	w := newWorld(t, config{sched: schedCfg{}, run: true, zeroSched: true})
	w.connect("a")
	task := w.submit(tasks.SubmitParams{})
	w.P.next(t, 5*time.Second)
	w.S.Sweep()
	if got := w.get(task.ID); got.Status != tasks.StatusAssigned {
		t.Fatalf("held task after a sweep: %+v", got)
	}
}

// TestRecoverGivesBackTheDisconnectedAgentsTask: the agent's socket
// dropped (its task went back to the queue) and it returns still working:
// task_recovering gets the task back to it before any pass gives it
// away; another agent's recovery of the task is refused.
func TestRecoverGivesBackTheDisconnectedAgentsTask(t *testing.T) {
	w := newWorld(t, config{})
	w.connect("a", "code")
	w.connect("b", "code")
	task := w.submit(tasks.SubmitParams{NeededCapabilities: []string{"code"}, TargetAgent: "a"})
	w.S.Pass()
	if err := w.S.Accepted("a", task.ID); err != nil {
		t.Fatal(err)
	}
	first := w.get(task.ID).Generation
	w.drop("a")
	if w.get(task.ID).Status != tasks.StatusQueued {
		t.Fatal("not reclaimed on disconnect")
	}
	w.connect("a", "code") // no pass runs: the loop is off
	if _, ok := w.S.Recover("b", task.ID); ok {
		t.Fatal("another agent recovered the task")
	}
	gen, ok := w.S.Recover("a", task.ID)
	if !ok || gen != first+2 {
		t.Fatalf("recover = %d, %v", gen, ok)
	}
	if got := w.get(task.ID); got.Holder() != "a" || got.Status != tasks.StatusAssigned || w.agent("a").State != agents.Working {
		t.Fatalf("task %+v, agent %+v", got, w.agent("a"))
	}
	if _, err := w.S.Complete("a", task.ID, gen, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
}

// TestFullLeaseAfterRestart: README says tasks held by agents stay
// assigned across a hub restart and the agents get a full lease (5 min)
// to come back. The hub here restarts ten minutes after the task was last
// updated; the lease runs from the restart, to the millisecond.
func TestFullLeaseAfterRestart(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t, config{dataDir: dir, sched: leaseCfg(5 * time.Minute /* README */)})
	w.connect("a")
	task := w.submit(tasks.SubmitParams{})
	w.S.Pass()
	w.S.Accepted("a", task.ID)
	held := w.get(task.ID)
	w.close() // the hub stops; the agent never disconnected cleanly

	restart := time.UnixMilli(held.UpdatedAt).Add(10 * time.Minute)
	clk := testenv.NewClock(restart)
	cfg := leaseCfg(5 * time.Minute /* README */)
	cfg.Now = clk.Now
	w2 := newWorld(t, config{dataDir: dir, sched: cfg})
	w2.S.Sweep()
	if got := w2.get(task.ID); got.Status != tasks.StatusAssigned || got.Holder() != "a" {
		t.Fatalf("right after the restart: %+v", got)
	}
	clk.Set(restart.Add(5 * time.Minute))
	w2.S.Sweep()
	if got := w2.get(task.ID); got.Status != tasks.StatusAssigned {
		t.Fatalf("5 min after the restart (a full lease): %+v", got)
	}
	clk.Set(restart.Add(5*time.Minute + time.Millisecond))
	w2.S.Sweep()
	got := w2.get(task.ID)
	if got.Status != tasks.StatusQueued || got.History[0].Details != tasks.ReasonLeaseExpired {
		t.Fatalf("past the full lease: %+v", got)
	}
}
