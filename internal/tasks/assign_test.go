package tasks_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
	"github.com/agentcom/agentcom/internal/tasks"
)

// TestLifecycleWritesOnEveryDriver: a task submitted while an agent is
// idle is stored assigned by its submission's write; its acceptance is
// not written on its own, so a restart right after it finds the task
// assigned and not accepted, at the same generation (what the sidecar's
// task_recovering continues); the completion is durable and carries the
// acceptance.
func TestLifecycleWritesOnEveryDriver(t *testing.T) {
	for _, drv := range storagetest.Drivers() {
		t.Run(drv.Name, func(t *testing.T) {
			restart := restarter(t, drv)
			q := restart()
			picked := 0
			sub, as, _, err := q.SubmitAssign(tasks.SubmitParams{Description: "d"}, func(*tasks.Task) (string, bool) {
				picked++
				return "a1", false
			})
			if err != nil || as == nil || picked != 1 {
				t.Fatalf("submit+assign: %v %v %d", as, err, picked)
			}
			// The answer to the submitter is the task as submitted.
			if sub.Status != tasks.StatusQueued || sub.Generation != 0 || as.Status != tasks.StatusAssigned || as.Holder() != "a1" || as.Generation != 1 {
				t.Fatalf("submitted %s/%d, assigned %s/%d to %q", sub.Status, sub.Generation, as.Status, as.Generation, as.Holder())
			}
			if _, err := q.Accept(as.ID, "a1"); err != nil {
				t.Fatal(err)
			}
			if got, _ := q.Get(as.ID); got.Attempts[0].AcceptedAt == 0 {
				t.Fatal("acceptance not in memory")
			}

			q = restart()
			got, err := q.Get(as.ID)
			if err != nil || got.Status != tasks.StatusAssigned || got.Holder() != "a1" || got.Generation != 1 || got.Attempts[0].AcceptedAt != 0 {
				t.Fatalf("after restart: %+v %v", got, err)
			}
			if gen, ok := q.Recover(as.ID, "a1"); !ok || gen != 1 {
				t.Fatalf("recover: %d %v", gen, ok)
			}
			if _, err := q.Accept(as.ID, "a1"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := q.Complete(as.ID, "a1", 1, "done", nil); err != nil {
				t.Fatal(err)
			}
			q = restart()
			got, err = q.Get(as.ID)
			if err != nil || got.Status != tasks.StatusCompleted || got.Attempts[0].AcceptedAt == 0 || got.Attempts[0].Outcome != "completed" {
				t.Fatalf("completed after restart: %+v %v", got, err)
			}
			if evs := historyEvents(got); len(evs) != 3 || evs[0] != "queued" || evs[1] != "assigned" || evs[2] != "completed" {
				t.Fatalf("history %v", evs)
			}
		})
	}
}

// A new task is assigned in its submission only when a pass would hand
// it out first: not with a ready task ahead of it, nor in a paused lane.
func TestSubmitAssignOnlyFirstInLine(t *testing.T) {
	e := newEnv(t, noBackoff())
	never := func(*tasks.Task) (string, bool) { t.Fatal("pick asked"); return "", false }
	ahead := e.submit(tasks.SubmitParams{Description: "old", Priority: tasks.PriorityNormal, NeededCapabilities: []string{"gpu"}})
	e.clk.Advance(time.Millisecond)
	_, as, _, err := e.Q.SubmitAssign(tasks.SubmitParams{Description: "new", Priority: tasks.PriorityNormal}, never)
	if err != nil || as != nil {
		t.Fatalf("with a ready task ahead: %v %v", as, err)
	}
	// A lower lane's task is not ahead of an urgent one.
	_, as, _, err = e.Q.SubmitAssign(tasks.SubmitParams{Description: "urgent", Priority: tasks.PriorityUrgent},
		func(*tasks.Task) (string, bool) { return "a1", false })
	if err != nil || as == nil || as.Holder() != "a1" {
		t.Fatalf("urgent: %v %v", as, err)
	}
	if _, err := e.Q.Pause(tasks.PauseLane, "urgent", "admin"); err != nil {
		t.Fatal(err)
	}
	_, as, _, err = e.Q.SubmitAssign(tasks.SubmitParams{Description: "paused", Priority: tasks.PriorityUrgent}, never)
	if err != nil || as != nil {
		t.Fatalf("paused lane: %v %v", as, err)
	}
	// No agent fits: the task is queued, behind the one ahead.
	_, as, _, err = e.Q.SubmitAssign(tasks.SubmitParams{Description: "x", Priority: tasks.PriorityHigh},
		func(*tasks.Task) (string, bool) { return "", true })
	if err != nil || as != nil {
		t.Fatalf("no agent: %v %v", as, err)
	}
	if st := e.Q.Stats(); st.ByStatus["queued"] != 4 || st.ByStatus["assigned"] != 1 {
		t.Fatalf("stats %+v (ahead %s)", st, ahead.ID)
	}

	// A batch: queued tasks in scheduling order, assigned while agents
	// are found; the rest wait for a pass.
	e2 := newEnv(t, noBackoff())
	agentsLeft := []string{"b1", "b2"}
	items := []tasks.BatchItem{{Key: "a", Params: tasks.SubmitParams{Description: "a"}},
		{Key: "b", Params: tasks.SubmitParams{Description: "b"}}, {Key: "c", Params: tasks.SubmitParams{Description: "c"}}}
	subs, assigned, err := e2.Q.SubmitBatchAssign(items, func(*tasks.Task) (string, bool) {
		if len(agentsLeft) == 0 {
			return "", true
		}
		a := agentsLeft[0]
		agentsLeft = agentsLeft[1:]
		return a, false
	})
	if err != nil || len(subs) != 3 || len(assigned) != 2 {
		t.Fatalf("batch: %d submitted, %d assigned, %v", len(subs), len(assigned), err)
	}
	e2.reopen()
	if st := e2.Q.Stats(); st.ByStatus["queued"] != 1 || st.ByStatus["assigned"] != 2 {
		t.Fatalf("batch after restart: %+v", st)
	}
	if held := e2.Q.HeldBy("b2"); len(held) != 1 {
		t.Fatalf("b2 holds %d", len(held))
	}
}

// failingStore fails every Put and dead-letter move while fail is set.
type failingStore struct {
	storage.TaskStore
	fail atomic.Bool
}

var errDisk = errors.New("disk on fire")

func (s *failingStore) Put(ctx context.Context, rows []storage.TaskRow, recs []storage.WorkflowRecord) error {
	if s.fail.Load() {
		return errDisk
	}
	return s.TaskStore.Put(ctx, rows, recs)
}

func (s *failingStore) MoveToDeadLetter(ctx context.Context, rows []storage.TaskRow) error {
	if s.fail.Load() {
		return errDisk
	}
	return s.TaskStore.MoveToDeadLetter(ctx, rows)
}

// A write that fails leaves memory as before the change: an assignment
// pass's tasks are queued again (and assignable), a completion's task is
// assigned again (and completable), a submission is not there; what
// memory holds afterwards is written over whatever the failed write left.
func TestFailedWritesLeaveMemoryAsBefore(t *testing.T) {
	e := newEnv(t, noBackoff())
	e.close()
	d := storagetest.OpenDriver(t, "bolt")
	fs := &failingStore{TaskStore: d.Tasks()}
	q, err := tasks.New(fs, bus.New(), noBackoff())
	if err != nil {
		t.Fatal(err)
	}
	task, err := q.Submit(tasks.SubmitParams{Description: "d"})
	if err != nil {
		t.Fatal(err)
	}
	fs.fail.Store(true)
	got, err := q.AssignBatch(func(*tasks.Task) (string, bool) { return "a1", false }, 10)
	if !errors.Is(err, errDisk) || len(got) != 0 {
		t.Fatalf("failed assign: %v %v", got, err)
	}
	after, _ := q.Get(task.ID)
	if after.Status != tasks.StatusQueued || len(after.Attempts) != 0 || len(q.HeldBy("a1")) != 0 || q.Stats().ByStatus["queued"] != 1 {
		t.Fatalf("after a failed assign: %+v", after)
	}
	if _, _, _, err := q.SubmitAssign(tasks.SubmitParams{Description: "e"}, nil); !errors.Is(err, errDisk) {
		t.Fatalf("failed submit: %v", err)
	}
	if st := q.Stats(); st.ByStatus["queued"] != 1 {
		t.Fatalf("a failed submission is in memory: %+v", st)
	}

	fs.fail.Store(false)
	as, err := q.AssignBatch(func(*tasks.Task) (string, bool) { return "a2", false }, 10)
	if err != nil || len(as) != 1 || as[0].Generation <= 1 {
		t.Fatalf("assign after the failure: %v %v", as, err)
	}
	gen := as[0].Generation
	fs.fail.Store(true)
	if _, _, err := q.Complete(task.ID, "a2", gen, "r", nil); !errors.Is(err, errDisk) {
		t.Fatalf("failed complete: %v", err)
	}
	after, _ = q.Get(task.ID)
	if after.Status != tasks.StatusAssigned || after.Holder() != "a2" || len(q.HeldBy("a2")) != 1 || q.Stats().ByStatus["assigned"] != 1 {
		t.Fatalf("after a failed complete: %+v", after)
	}
	fs.fail.Store(false)
	if _, dup, err := q.Complete(task.ID, "a2", gen, "r", nil); err != nil || dup {
		t.Fatalf("complete after the failure: %v %v", dup, err)
	}
	row, _, err := d.Tasks().Get(context.Background(), task.ID)
	if err != nil || row.Status != string(tasks.StatusCompleted) {
		t.Fatalf("stored: %+v %v", row, err)
	}
}

// A completion can hand the agent its next task in the same write; when
// that write fails, both changes are undone.
func TestCompleteAssignsNext(t *testing.T) {
	d := storagetest.OpenDriver(t, "bolt")
	fs := &failingStore{TaskStore: d.Tasks()}
	q, err := tasks.New(fs, bus.New(), noBackoff())
	if err != nil {
		t.Fatal(err)
	}
	first, _ := q.Submit(tasks.SubmitParams{Description: "first"})
	second, _ := q.Submit(tasks.SubmitParams{Description: "second", NeededCapabilities: []string{"gpu"}})
	third, _ := q.Submit(tasks.SubmitParams{Description: "third"})
	as := []*tasks.Task{assignOnly(t, q, first.ID, "a1")}
	// a1 has no gpu: it gets the third task, not the second.
	next := func(t *tasks.Task) (string, bool) {
		if len(t.NeededCapabilities) > 0 {
			return "", true
		}
		return "a1", false
	}
	fs.fail.Store(true)
	if _, _, _, err := q.CompleteAssign(first.ID, "a1", as[0].Generation, nil, nil, nil, next); !errors.Is(err, errDisk) {
		t.Fatalf("failed write: %v", err)
	}
	if held := q.HeldBy("a1"); len(held) != 1 || held[0].ID != first.ID {
		t.Fatalf("after a failed write a1 holds %v", held)
	}
	if st := q.Stats(); st.ByStatus["queued"] != 2 || st.ByStatus["assigned"] != 1 || st.ByStatus["completed"] != 0 {
		t.Fatalf("stats after a failed write %+v", st)
	}
	fs.fail.Store(false)
	done, got, dup, err := q.CompleteAssign(first.ID, "a1", as[0].Generation, nil, nil, nil, next)
	if err != nil || dup || done.Status != tasks.StatusCompleted || got == nil || got.ID != third.ID || got.Holder() != "a1" {
		t.Fatalf("complete+assign: %v %v %v %v", done, got, dup, err)
	}
	for id, want := range map[string]string{first.ID: "completed", second.ID: "queued", third.ID: "assigned"} {
		row, _, err := d.Tasks().Get(context.Background(), id)
		if err != nil || row.Status != want {
			t.Fatalf("%s stored as %s (%v), want %s", id, row.Status, err, want)
		}
	}
}

// A failure whose write fails leaves the task assigned to its holder, at
// its generation, whether it would have been retried or dead-lettered;
// the holder's resend then applies.
func TestFailedFailWriteLeavesTaskHeld(t *testing.T) {
	d := storagetest.OpenDriver(t, "bolt")
	fs := &failingStore{TaskStore: d.Tasks()}
	q, err := tasks.New(fs, bus.New(), noBackoff())
	if err != nil {
		t.Fatal(err)
	}
	for _, maxRetries := range []int{3, 1} {
		task, _ := q.Submit(tasks.SubmitParams{Description: "d", MaxRetries: intp(maxRetries)})
		gen := assignOnly(t, q, task.ID, "a1").Generation
		fs.fail.Store(true)
		_, _, _, err = q.Fail(task.ID, "a1", gen, "boom", nil)
		fs.fail.Store(false)
		if !errors.Is(err, errDisk) {
			t.Fatalf("max %d: failed write: %v", maxRetries, err)
		}
		got, _ := q.Get(task.ID)
		if got.Status != tasks.StatusAssigned || got.Holder() != "a1" || got.Generation != gen || got.RetryCount != 0 || len(q.HeldBy("a1")) != 1 {
			t.Fatalf("max %d: after a failed write: %+v", maxRetries, got)
		}
		want := tasks.OutcomeRetried
		if maxRetries == 1 {
			want = tasks.OutcomeDeadLetter
		}
		if _, oc, dup, err := q.Fail(task.ID, "a1", gen, "boom", nil); err != nil || dup || oc != want {
			t.Fatalf("max %d: resent failure: %s %v %v", maxRetries, oc, dup, err)
		}
		if st := q.Stats(); st.ByStatus["assigned"] != 0 {
			t.Fatalf("max %d: stats %+v", maxRetries, st)
		}
	}
	if st := q.Stats(); st.ByStatus["queued"] != 1 || st.DeadLetter != 1 {
		t.Fatalf("stats %+v", st)
	}
}
