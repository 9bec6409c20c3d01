package boltdriver

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/store"
)

func openDB(t *testing.T, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.AllTables(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// record is a stored task record: version, then the JSON body.
func record(version uint64, body string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, version), body...)
}

func put(t *testing.T, db *store.DB, table, key string, v []byte) {
	t.Helper()
	if err := db.MustTable(table).Update(func(tx *store.Tx) error { return tx.Put([]byte(key), v) }); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, db *store.DB, table, key string) []byte {
	t.Helper()
	var out []byte
	if err := db.MustTable(table).View(func(tx *store.Tx) error {
		out = slices.Clone(tx.Get([]byte(key)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTaskMoveFinishedAfterCrash: a dead-letter move whose journal record
// is durable but whose application a crash cut short (here: not applied
// at all) is finished when the driver next opens, before any read.
func TestTaskMoveFinishedAfterCrash(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	live := record(3, `{"id":"task-1","status":"assigned","assigned_to":"agent"}`)
	put(t, db, store.TaskQueue, "task-1", live)
	dead := record(4, `{"id":"task-1","status":"dead_letter"}`)
	// What MoveToDeadLetter journals, written as the crash left it.
	ws := []write{
		{table: store.TaskDeadLetter, key: []byte("task-1"), value: dead, versioned: true},
		{table: store.TaskQueue, key: []byte("task-1"), del: true},
	}
	key := binary.BigEndian.AppendUint64(slices.Clone(journalPrefix), 7)
	put(t, db, store.Meta, string(key), encodeWrites(ws))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, dir)
	defer db.Close()
	d, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	if v := get(t, db, store.TaskQueue, "task-1"); v != nil {
		t.Fatalf("task_queue still holds the moved task: %q", v)
	}
	if v := get(t, db, store.TaskDeadLetter, "task-1"); string(v) != string(dead) {
		t.Fatalf("task_dead_letter holds %q", v)
	}
	if v := get(t, db, store.Meta, string(key)); v != nil {
		t.Fatal("the journal record was kept after the replay")
	}
	r, table, err := d.Tasks().Get(context.Background(), "task-1")
	if err != nil || table != storage.TasksDeadLetter || r.Version != 4 || r.Status != "dead_letter" {
		t.Fatalf("get: %+v %v %v", r, table, err)
	}
	// The sequence goes on after the replayed record.
	if d.journalNext != 7 {
		t.Fatalf("journal sequence at %d", d.journalNext)
	}
}

// TestLoadSettlesTaskInBothTables: a data directory from an older hub,
// whose two-step move a crash interrupted, or whose task_queue was
// restored from a backup, can hold a task in both tables. Load hands out
// the newer copy only and removes the other.
func TestLoadSettlesTaskInBothTables(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	// task-old: moved to the dead letter (v5), stale copy left in the queue.
	put(t, db, store.TaskQueue, "task-old", record(4, `{"id":"task-old","status":"assigned"}`))
	put(t, db, store.TaskDeadLetter, "task-old", record(5, `{"id":"task-old","status":"dead_letter"}`))
	// task-new: retried (v7), stale dead-letter copy left.
	put(t, db, store.TaskQueue, "task-new", record(7, `{"id":"task-new","status":"queued"}`))
	put(t, db, store.TaskDeadLetter, "task-new", record(6, `{"id":"task-new","status":"dead_letter"}`))
	put(t, db, store.TaskQueue, "wf:schedule:x", []byte(`{"name":"x"}`))
	d, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]storage.TaskTable{}
	var wf []string
	err = d.Tasks().Load(context.Background(), storage.TaskLoad{
		Task: func(table storage.TaskTable, r storage.TaskRow) error {
			if _, dup := got[r.ID]; dup {
				t.Errorf("%s loaded twice", r.ID)
			}
			got[r.ID] = table
			return nil
		},
		Workflow: func(r storage.WorkflowRecord) error {
			wf = append(wf, r.Key+"="+string(r.Value))
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got["task-old"] != storage.TasksDeadLetter || got["task-new"] != storage.TasksLive || len(got) != 2 {
		t.Fatalf("loaded %v", got)
	}
	if !slices.Equal(wf, []string{`schedule:x={"name":"x"}`}) {
		t.Fatalf("workflow records %v", wf)
	}
	if get(t, db, store.TaskQueue, "task-old") != nil || get(t, db, store.TaskDeadLetter, "task-new") != nil {
		t.Fatal("the stale copies were kept")
	}
}

// TestTaskRetryFinishedAfterCrash: a retry from the dead letter cut short
// after its first table (the task back in task_queue, the dead-letter
// copy still there) is finished at the next open: replaying the whole
// record is harmless, the versioned put skips the row already written.
func TestTaskRetryFinishedAfterCrash(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	back := record(5, `{"id":"task-2","status":"queued"}`)
	put(t, db, store.TaskQueue, "task-2", back)
	put(t, db, store.TaskDeadLetter, "task-2", record(4, `{"id":"task-2","status":"dead_letter"}`))
	ws := []write{
		{table: store.TaskQueue, key: []byte("task-2"), value: back, versioned: true},
		{table: store.TaskDeadLetter, key: []byte("task-2"), del: true},
	}
	put(t, db, store.Meta, string(binary.BigEndian.AppendUint64(slices.Clone(journalPrefix), 1)), encodeWrites(ws))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, dir)
	defer db.Close()
	d, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	if v := get(t, db, store.TaskDeadLetter, "task-2"); v != nil {
		t.Fatalf("the dead letter still holds the retried task: %q", v)
	}
	r, table, err := d.Tasks().Get(context.Background(), "task-2")
	if err != nil || table != storage.TasksLive || r.Version != 5 || r.Status != "queued" {
		t.Fatalf("get: %+v %v %v", r, table, err)
	}
}

// TestTaskMoveNeverInvisible: a reader looking a task up while it moves
// to the dead letter finds it in one table or the other, never in
// neither (the move puts the dead-letter copy before it deletes the live
// one, and Get reads task_queue first).
func TestTaskMoveNeverInvisible(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	d, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 100
	for i := range n {
		id := "task-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		put(t, db, store.TaskQueue, id, record(1, `{"id":"`+id+`","status":"assigned"}`))
	}
	for i := range n {
		id := "task-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		done := make(chan error, 1)
		go func() {
			done <- d.Tasks().MoveToDeadLetter(ctx, []storage.TaskRow{{ID: id, Version: 2,
				Body: []byte(`{"id":"` + id + `","status":"dead_letter"}`)}})
		}()
		for moving := true; moving; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				moving = false
			default:
			}
			if _, _, err := d.Tasks().Get(ctx, id); err != nil {
				t.Fatalf("task %s invisible during its move: %v", id, err)
			}
		}
	}
}

// TestTaskArchiveFinishedAfterCrash: an archive pass whose journal record
// is durable but whose application a crash cut short (not applied at all,
// or applied to task_archive only) is finished at the next open: every
// task ends in the archive exactly once, none is lost. A task written at
// a newer version after the pass read it stays live (the delete is
// versioned, at replay too).
func TestTaskArchiveFinishedAfterCrash(t *testing.T) {
	for _, partly := range []bool{false, true} {
		dir := t.TempDir()
		d, db, err := OpenDir(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s := taskStore{d}
		for _, id := range []string{"task-1", "task-2", "task-3"} {
			put(t, db, store.TaskQueue, id, record(2, `{"id":"`+id+`","status":"completed","updated_at":10}`))
		}
		b := storage.ArchiveBatch{Statuses: []string{"completed"}, EndedBefore: 100, Limit: 10}
		ws, moved, err := s.archiveWrites(b, [][]byte{[]byte(`"status":"completed"`)})
		if err != nil || len(moved) != 3 {
			t.Fatalf("batch %v: %v", moved, err)
		}
		key := binary.BigEndian.AppendUint64(slices.Clone(journalPrefix), 9)
		put(t, db, store.Meta, string(key), encodeWrites(ws))
		if partly {
			if err := d.apply(store.TaskArchive, ws); err != nil {
				t.Fatal(err)
			}
		}
		// A change after the pass read task-3 (the crash came before the
		// deletes).
		newer := record(3, `{"id":"task-3","status":"completed","updated_at":11}`)
		put(t, db, store.TaskQueue, "task-3", newer)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		d, db, err = OpenDir(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"task-1", "task-2"} {
			if v := get(t, db, store.TaskQueue, id); v != nil {
				t.Fatalf("partly=%v: task_queue still holds %s", partly, id)
			}
			r, table, err := d.Tasks().Get(context.Background(), id)
			if err != nil || table != storage.TasksArchive || r.Version != 2 {
				t.Fatalf("partly=%v: %s: %+v in %v, %v", partly, id, r, table, err)
			}
		}
		if v := get(t, db, store.TaskQueue, "task-3"); string(v) != string(newer) {
			t.Fatalf("partly=%v: the newer task-3 was removed by the replay: %q", partly, v)
		}
		if v := get(t, db, store.Meta, string(key)); v != nil {
			t.Fatal("the journal record was kept after the replay")
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
