package tasks_test

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
	"github.com/agentcom/agentcom/internal/tasks"
)

// A change whose write fails leaves memory as the store has it, for every
// change applied in memory before its write (progress, reject, reclaim,
// a disconnect's reclaim, give back, cancel): the task as memory shows it
// is the task a restart loads, and the counters agree. Once the store is
// back, the same change applies.
func TestFailedChangeWritesLeaveMemoryAsStored(t *testing.T) {
	d := storagetest.OpenDriver(t, "bolt")
	fs := &failingStore{TaskStore: d.Tasks()}
	clk := newClock()
	cfg := noBackoff()
	cfg.Now = clk.Now
	q, err := tasks.New(fs, bus.New(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	task, err := q.Submit(tasks.SubmitParams{Description: "d"})
	if err != nil {
		t.Fatal(err)
	}
	as, err := q.AssignBatch(func(*tasks.Task) (string, bool) { return "a1", false }, 1)
	if err != nil || len(as) != 1 {
		t.Fatal(as, err)
	}
	id := task.ID
	// agree compares the task and the counters in memory with what a
	// restart over the same store loads.
	agree := func(step string) *tasks.Task {
		t.Helper()
		mem, err := q.Get(id)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		fresh, err := tasks.New(d.Tasks(), bus.New(), noBackoff())
		if err != nil {
			t.Fatalf("%s: reload: %v", step, err)
		}
		disk, err := fresh.Get(id)
		if err != nil {
			t.Fatalf("%s: reloaded: %v", step, err)
		}
		if mem.Status != disk.Status || mem.Holder() != disk.Holder() || mem.Generation != disk.Generation ||
			mem.UpdatedAt != disk.UpdatedAt || len(mem.History) != len(disk.History) || len(mem.Attempts) != len(disk.Attempts) ||
			len(mem.RejectedBy) != len(disk.RejectedBy) {
			t.Fatalf("%s: memory has %s/%q/gen %d/updated %d/%d events, the store %s/%q/gen %d/updated %d/%d events", step,
				mem.Status, mem.Holder(), mem.Generation, mem.UpdatedAt, len(mem.History),
				disk.Status, disk.Holder(), disk.Generation, disk.UpdatedAt, len(disk.History))
		}
		if m, s := q.Stats().ByStatus, fresh.Stats().ByStatus; !maps.Equal(m, s) {
			t.Fatalf("%s: memory counts %v, the store %v", step, m, s)
		}
		if held := len(q.HeldBy("a1")); (mem.Status == tasks.StatusAssigned) != (held == 1) {
			t.Fatalf("%s: a1 holds %d in memory, task held by %q", step, held, mem.Holder())
		}
		return mem
	}
	failing := func(step string, op func() error) {
		t.Helper()
		clk.Advance(time.Second)
		fs.fail.Store(true)
		err := op()
		fs.fail.Store(false)
		if !errors.Is(err, errDisk) {
			t.Fatalf("%s: %v, want the store's error", step, err)
		}
		agree(step + " failed")
	}
	gen := as[0].Generation
	failing("progress", func() error { _, err := q.Progress(id, "a1"); return err })
	failing("reject", func() error { _, err := q.Reject(id, "a1", gen, "busy"); return err })
	failing("reclaim", func() error { _, err := q.Reclaim(id, "a1", gen, "lease"); return err })
	failing("reclaim on disconnect", func() error { _, err := q.ReclaimAgent("a1", tasks.ReasonDisconnect); return err })
	failing("cancel assigned", func() error { _, _, err := q.Cancel(id, "admin", true, "no"); return err })
	if got := agree("still assigned"); got.Status != tasks.StatusAssigned || got.Generation != gen {
		t.Fatalf("after the failed changes: %s gen %d", got.Status, got.Generation)
	}

	// The store back, each change applies.
	if _, err := q.Progress(id, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Reclaim(id, "a1", gen, tasks.ReasonDisconnect); err != nil {
		t.Fatal(err)
	}
	if got := agree("reclaimed"); got.Status != tasks.StatusQueued {
		t.Fatalf("reclaimed: %s", got.Status)
	}
	failing("give back", func() error { _, err := q.GiveBack(id, "a1", nil); return err })
	if got := agree("give back failed"); got.Status != tasks.StatusQueued || q.Stats().QueuedIndexSize != 1 {
		t.Fatalf("after a failed give back: %s, %d in the lanes", got.Status, q.Stats().QueuedIndexSize)
	}
	if _, err := q.GiveBack(id, "a1", nil); err != nil {
		t.Fatal(err)
	}
	failing("cancel given back", func() error { _, _, err := q.Cancel(id, "admin", true, "no"); return err })
	if _, _, err := q.Cancel(id, "admin", true, "no"); err != nil {
		t.Fatal(err)
	}
	if got := agree("cancelled"); got.Status != tasks.StatusCancelled {
		t.Fatalf("cancelled: %s", got.Status)
	}
}
