package boltdriver

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/store"
)

func movedRow(t *testing.T, id string, version uint64, status string) storage.TaskRow {
	t.Helper()
	body, err := json.Marshal(map[string]any{"id": id, "status": status, "created_at": 1, "updated_at": version})
	if err != nil {
		t.Fatal(err)
	}
	return storage.TaskRow{ID: id, Version: version, Status: status, CreatedAt: 1, UpdatedAt: int64(version), Body: body}
}

// ready waits for the moved index's build (a test signal, not a time).
func (m *movedIndex) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		ok := m.bits != nil
		m.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("moved index never built")
}

// TestMovedIndexKeepsPutExact: once the index over the dead letter and
// the archive is built, a new task's id is known absent from both without
// a read; ids there before the build, moved after it, or reused by a new
// row are still refused by Put; a replaced archive file (a reset) drops
// the index until it is built again for the new file.
func TestMovedIndexKeepsPutExact(t *testing.T) {
	d, db := openMovedTest(t)
	ctx := context.Background()
	s := d.Tasks()
	where := func(id string) (storage.TaskTable, uint64) {
		t.Helper()
		r, table, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		return table, r.Version
	}
	// Before any build: one task archived, one dead-lettered.
	if err := s.Put(ctx, []storage.TaskRow{movedRow(t, "task-arch", 2, "completed"), movedRow(t, "task-dead", 1, "queued")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Archive(ctx, storage.ArchiveBatch{Statuses: []string{"completed"}, EndedBefore: 100, Limit: 10}); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{movedRow(t, "task-dead", 2, "dead_letter")}); err != nil {
		t.Fatal(err)
	}
	// A new task's write starts the build.
	if err := s.Put(ctx, []storage.TaskRow{movedRow(t, "task-new", 1, "queued")}, nil); err != nil {
		t.Fatal(err)
	}
	d.moved.waitReady(t)
	if d.moved.absent([]byte("task-arch")) || d.moved.absent([]byte("task-dead")) {
		t.Fatal("the build missed an id of the archive or the dead letter")
	}
	if !d.moved.absent([]byte("task-other")) {
		t.Fatal("a new id is not known absent")
	}
	// Reused ids are refused, from either table.
	if err := s.Put(ctx, []storage.TaskRow{movedRow(t, "task-arch", 1, "queued"), movedRow(t, "task-dead", 1, "queued")}, nil); err != nil {
		t.Fatal(err)
	}
	if table, v := where("task-arch"); table != storage.TasksArchive || v != 2 {
		t.Fatalf("reused archived id: %v v%d", table, v)
	}
	if table, v := where("task-dead"); table != storage.TasksDeadLetter || v != 2 {
		t.Fatalf("reused dead-letter id: %v v%d", table, v)
	}
	// A move after the build is in the index: its late snapshot stays out.
	if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{movedRow(t, "task-new", 3, "dead_letter")}); err != nil {
		t.Fatal(err)
	}
	if d.moved.absent([]byte("task-new")) {
		t.Fatal("a dead-lettered id is known absent")
	}
	if err := s.Put(ctx, []storage.TaskRow{movedRow(t, "task-new", 2, "assigned")}, nil); err != nil {
		t.Fatal(err)
	}
	if table, v := where("task-new"); table != storage.TasksDeadLetter || v != 3 {
		t.Fatalf("late snapshot: %v v%d", table, v)
	}
	// The archive file replaced: the index is dropped, Put reads, and the
	// next build knows the new file.
	if err := db.Table(store.TaskArchive).Reset(filepath.Join(t.TempDir(), "aside")); err != nil {
		t.Fatal(err)
	}
	if d.moved.absent([]byte("task-other")) {
		t.Fatal("the index answered for a replaced file")
	}
	d.moved.waitReady(t)
	if !d.moved.absent([]byte("task-arch")) {
		t.Fatal("the rebuilt index still has the reset archive's id")
	}
	if d.moved.absent([]byte("task-dead")) {
		t.Fatal("the rebuilt index lost the dead letter's id")
	}
}

// TestMovedIndexBoundsPending: the ids moved during a build's scan are
// kept for it up to a bound; past it they are dropped, the build's filter
// (which could miss them) is thrown away, and the index answers "maybe"
// for the moved ids until a later build completes and knows them.
func TestMovedIndexBoundsPending(t *testing.T) {
	d, _ := openMovedTest(t)
	ctx := context.Background()
	s := d.Tasks()
	m := d.moved
	// A build whose scan is under way (taken by the test, so no scan
	// runs): the moves below happen during it.
	m.mu.Lock()
	m.maxPending = 3
	m.building = true
	epochs := m.tableEpochs()
	m.mu.Unlock()
	for i := range 5 {
		id := fmt.Sprintf("task-%d", i)
		if err := s.Put(ctx, []storage.TaskRow{movedRow(t, id, 1, "queued")}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{movedRow(t, id, 2, "dead_letter")}); err != nil {
			t.Fatal(err)
		}
		m.mu.Lock()
		n := len(m.pending)
		m.mu.Unlock()
		if n > 3 {
			t.Fatalf("after %d moves during a build, %d ids pending (bound 3)", i+1, n)
		}
	}
	// The scan, which started before the moves, found none of them.
	m.finish(nil, nil, epochs)
	for i := range 5 {
		if m.absent(fmt.Appendf(nil, "task-%d", i)) {
			t.Fatalf("task-%d, dead-lettered during a build that dropped ids, is known absent", i)
		}
	}
	// The absent calls started a real build: it knows every moved id.
	m.waitReady(t)
	for i := range 5 {
		if m.absent(fmt.Appendf(nil, "task-%d", i)) {
			t.Fatalf("task-%d is known absent after a complete build", i)
		}
	}
	if !m.absent([]byte("task-new")) {
		t.Fatal("a new id is not known absent after a complete build")
	}
	// A late snapshot of a dead-lettered task stays out.
	if err := s.Put(ctx, []storage.TaskRow{movedRow(t, "task-4", 1, "queued")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, table, err := s.Get(ctx, "task-4"); err != nil || table != storage.TasksDeadLetter {
		t.Fatalf("late snapshot of task-4: %v %v", table, err)
	}
}

// openMovedTest opens a driver over a fresh directory, closed at cleanup.
func openMovedTest(t *testing.T) (*Driver, *store.DB) {
	t.Helper()
	d, db, err := OpenDir(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); db.Close() })
	return d, db
}
