package tasks

import (
	"context"
	"testing"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
)

// TestLateWriteDoesNotResurrect: a write of a task snapshot taken before
// the task was dead-lettered (an Accept or Progress whose commit was still
// queued) must not put the task back in the live table after the move
// took it out.
func TestLateWriteDoesNotResurrect(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.AllTables(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := boltdriver.New(db)
	if err != nil {
		t.Fatal(err)
	}
	q, err := New(d.Tasks(), bus.New(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
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
	// ...and then the Accept's write reaches the store.
	if err := q.persist(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if got, table, err := q.load(ctx, task.ID); err != nil || table != storage.TasksDeadLetter || got.Status != StatusDeadLetter {
		t.Fatalf("after the late write the store holds %+v in %v (%v)", got, table, err)
	}
	got, err := q.Get(task.ID)
	if err != nil || got.Status != StatusDeadLetter {
		t.Fatalf("get: %+v %v", got, err)
	}
	// A retry from the dead letter still writes the task back.
	if _, err := q.RetryDeadLetter(task.ID); err != nil {
		t.Fatal(err)
	}
	if got, table, err := q.load(ctx, task.ID); err != nil || table != storage.TasksLive || got.Status != StatusQueued {
		t.Fatalf("after retry: %+v in %v (%v)", got, table, err)
	}
}
