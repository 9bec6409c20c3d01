package tasks

import (
	"testing"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/store"
)

// TestLateWriteDoesNotResurrect: a write of a task snapshot taken before
// the task was dead-lettered (an Accept or Progress whose commit was still
// queued) must not put the task back in task_queue after the move
// deleted it there.
func TestLateWriteDoesNotResurrect(t *testing.T) {
	db, err := store.Open(t.TempDir(), []string{store.TaskQueue, store.TaskDeadLetter}, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := New(db.MustTable(store.TaskQueue), db.MustTable(store.TaskDeadLetter), bus.New(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	past := int64(1)
	task, err := q.Submit(SubmitParams{CompleteBy: &past})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.AssignBatch(func(*Task) (string, bool) { return "a", false }, 1); err != nil {
		t.Fatal(err)
	}
	// The first half of an Accept: the snapshot is taken under the lock...
	q.mu.Lock()
	lt := q.live[task.ID]
	lt.Version++
	stale := lt.Clone()
	q.mu.Unlock()
	// ...the deadline sweep dead-letters the task meanwhile...
	if _, _, err := q.Expire(task.ID); err != nil {
		t.Fatal(err)
	}
	// ...and then the Accept's write reaches the commit loop.
	if err := q.persist(q.active, stale); err != nil {
		t.Fatal(err)
	}
	if got, err := load(q.active, task.ID); err != nil || got != nil {
		t.Fatalf("task_queue holds %+v (%v) after the task was dead-lettered", got, err)
	}
	got, err := q.Get(task.ID)
	if err != nil || got.Status != StatusDeadLetter {
		t.Fatalf("get: %+v %v", got, err)
	}
	// A retry from the dead letter still writes the task back.
	if _, err := q.RetryDeadLetter(task.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := load(q.active, task.ID); err != nil || got == nil || got.Status != StatusQueued {
		t.Fatalf("after retry: %+v %v", got, err)
	}
}
