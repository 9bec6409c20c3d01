package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
)

// taskRow builds a row whose body is a task's JSON carrying the columns
// under the domain's field names (the embedded driver reads them back
// from the body) and a note that tells versions apart.
func taskRow(t *testing.T, id string, version uint64, status string, priority int, submitter, holder string, created int64) storage.TaskRow {
	t.Helper()
	var assigned *string
	if holder != "" {
		assigned = &holder
	}
	body, err := json.Marshal(map[string]any{"id": id, "status": status, "priority": priority, "submitted_by": submitter,
		"assigned_to": assigned, "created_at": created, "updated_at": created + int64(version), "note": fmt.Sprintf("%s v%d", id, version)})
	if err != nil {
		t.Fatal(err)
	}
	return storage.TaskRow{ID: id, Version: version, Status: status, Priority: priority, SubmittedBy: submitter,
		AssignedTo: holder, CreatedAt: created, UpdatedAt: created + int64(version), Body: body}
}

// sameRow fails unless got is want, body byte for byte.
func sameRow(t *testing.T, got, want storage.TaskRow) {
	t.Helper()
	if got.ID != want.ID || got.Version != want.Version || got.Status != want.Status || got.Priority != want.Priority ||
		got.SubmittedBy != want.SubmittedBy || got.AssignedTo != want.AssignedTo || got.CreatedAt != want.CreatedAt ||
		got.UpdatedAt != want.UpdatedAt || string(got.Body) != string(want.Body) {
		t.Fatalf("row\n got %+v (%s)\nwant %+v (%s)", got, got.Body, want, want.Body)
	}
}

// where returns the row of id and its table, or table 0 when absent.
func where(t *testing.T, s storage.TaskStore, id string) (storage.TaskRow, storage.TaskTable) {
	t.Helper()
	r, table, err := s.Get(context.Background(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.TaskRow{}, 0
	}
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return r, table
}

// loaded is everything Load handed out.
type loaded struct {
	live, dead map[string]storage.TaskRow
	wf         map[string]string
}

func load(t *testing.T, s storage.TaskStore) loaded {
	t.Helper()
	l := loaded{live: map[string]storage.TaskRow{}, dead: map[string]storage.TaskRow{}, wf: map[string]string{}}
	err := s.Load(context.Background(), storage.TaskLoad{
		Task: func(table storage.TaskTable, r storage.TaskRow) error {
			r.Body = slices.Clone(r.Body)
			m := l.live
			if table == storage.TasksDeadLetter {
				m = l.dead
			}
			if _, dup := l.live[r.ID]; dup {
				return fmt.Errorf("task %s loaded twice", r.ID)
			}
			if _, dup := l.dead[r.ID]; dup {
				return fmt.Errorf("task %s loaded twice", r.ID)
			}
			m[r.ID] = r
			return nil
		},
		Workflow: func(r storage.WorkflowRecord) error {
			l.wf[r.Key] = string(r.Value)
			return nil
		},
	})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return l
}

func list(t *testing.T, s storage.TaskStore, table storage.TaskTable, f storage.TaskFilter) []string {
	t.Helper()
	var ids []string
	err := s.List(context.Background(), table, f, func(r storage.TaskRow) error {
		ids = append(ids, r.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return ids
}

func runTasks(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("PutGetLoad", func(t *testing.T) {
		s := open(t).Tasks()
		if _, _, err := s.Get(ctx, "task-none"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get of a missing task: %v", err)
		}
		a := taskRow(t, "task-a", 1, "queued", 2, "alice", "", 100)
		b := taskRow(t, "task-b", 1, "assigned", 0, "bob", "agent-1", 200)
		if err := s.Put(ctx, []storage.TaskRow{a, b}, []storage.WorkflowRecord{{Key: "pause:lane:low", Value: []byte(`{"by":"op"}`)}}); err != nil {
			t.Fatal(err)
		}
		r, table := where(t, s, "task-b")
		if table != storage.TasksLive {
			t.Fatalf("task-b in table %v", table)
		}
		sameRow(t, r, b)
		l := load(t, s)
		if len(l.live) != 2 || len(l.dead) != 0 || l.wf["pause:lane:low"] != `{"by":"op"}` || len(l.wf) != 1 {
			t.Fatalf("load: %+v", l)
		}
		if r := l.live["task-a"]; r.ID != a.ID || r.Version != a.Version || string(r.Body) != string(a.Body) {
			t.Fatalf("loaded %+v", r)
		}
		// Workflow records are not tasks.
		if _, table := where(t, s, "pause:lane:low"); table != 0 {
			t.Fatal("a workflow record was found as a task")
		}
		if ids := list(t, s, storage.TasksLive, storage.TaskFilter{}); !slices.Equal(ids, []string{"task-a", "task-b"}) {
			t.Fatalf("list: %v", ids)
		}
	})

	t.Run("VersionGuard", func(t *testing.T) {
		s := open(t).Tasks()
		v3 := taskRow(t, "task-a", 3, "assigned", 1, "alice", "agent-1", 100)
		if err := s.Put(ctx, []storage.TaskRow{v3}, nil); err != nil {
			t.Fatal(err)
		}
		// An older snapshot and another one at the same version lose.
		same := v3
		same.Body = []byte(`{"id":"task-a","status":"queued","note":"same version"}`)
		if err := s.Put(ctx, []storage.TaskRow{taskRow(t, "task-a", 2, "queued", 1, "alice", "", 100), same}, nil); err != nil {
			t.Fatal(err)
		}
		r, _ := where(t, s, "task-a")
		sameRow(t, r, v3)
		v4 := taskRow(t, "task-a", 4, "completed", 1, "alice", "", 100)
		if err := s.Put(ctx, []storage.TaskRow{v4}, nil); err != nil {
			t.Fatal(err)
		}
		r, _ = where(t, s, "task-a")
		sameRow(t, r, v4)
		// One call with two snapshots of a task keeps the newer.
		v6 := taskRow(t, "task-a", 6, "queued", 1, "alice", "", 100)
		if err := s.Put(ctx, []storage.TaskRow{v6, taskRow(t, "task-a", 5, "assigned", 1, "alice", "x", 100)}, nil); err != nil {
			t.Fatal(err)
		}
		r, _ = where(t, s, "task-a")
		sameRow(t, r, v6)
		// So does one for a task not stored yet.
		n2 := taskRow(t, "task-n", 2, "assigned", 0, "alice", "x", 100)
		if err := s.Put(ctx, []storage.TaskRow{n2, taskRow(t, "task-n", 1, "queued", 0, "alice", "", 100)}, nil); err != nil {
			t.Fatal(err)
		}
		r, _ = where(t, s, "task-n")
		sameRow(t, r, n2)
	})

	t.Run("WorkflowRecords", func(t *testing.T) {
		s := open(t).Tasks()
		task := taskRow(t, "task-s", 1, "queued", 1, "sched", "", 100)
		recs := []storage.WorkflowRecord{{Key: "schedule:nightly", Value: []byte(`{"v":1}`)}, {Key: "pause:cap:gpu", Value: []byte(`{}`)}}
		if err := s.Put(ctx, []storage.TaskRow{task}, recs); err != nil {
			t.Fatal(err)
		}
		// Overwrite one, delete the other; the last write of a key wins.
		if err := s.Put(ctx, nil, []storage.WorkflowRecord{{Key: "schedule:nightly", Value: []byte(`{"v":2}`)},
			{Key: "pause:cap:gpu"}, {Key: "pause:lane:high", Value: []byte(`{}`)}, {Key: "pause:lane:high"}}); err != nil {
			t.Fatal(err)
		}
		l := load(t, s)
		if len(l.wf) != 1 || l.wf["schedule:nightly"] != `{"v":2}` || len(l.live) != 1 {
			t.Fatalf("load: %+v", l)
		}
		if ids := list(t, s, storage.TasksLive, storage.TaskFilter{}); !slices.Equal(ids, []string{"task-s"}) {
			t.Fatalf("list shows workflow records: %v", ids)
		}
	})

	t.Run("ReservedIDs", func(t *testing.T) {
		s := open(t).Tasks()
		for _, id := range []string{"", "wf:schedule:x", string(make([]byte, storage.MaxTaskIDLen+1))} {
			r := taskRow(t, id, 1, "queued", 0, "a", "", 1)
			if err := s.Put(ctx, []storage.TaskRow{r}, nil); !errors.Is(err, storage.ErrReservedTaskID) {
				t.Errorf("put %.16q: %v", id, err)
			}
			if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{r}); !errors.Is(err, storage.ErrReservedTaskID) {
				t.Errorf("move %.16q: %v", id, err)
			}
		}
		if l := load(t, s); len(l.live)+len(l.dead)+len(l.wf) != 0 {
			t.Fatalf("refused writes stored something: %+v", l)
		}
	})

	t.Run("DeadLetterMove", func(t *testing.T) {
		s := open(t).Tasks()
		other := taskRow(t, "task-o", 1, "queued", 1, "a", "", 50)
		if err := s.Put(ctx, []storage.TaskRow{taskRow(t, "task-d", 3, "assigned", 1, "a", "agent", 100), other}, nil); err != nil {
			t.Fatal(err)
		}
		dead := taskRow(t, "task-d", 5, "dead_letter", 1, "a", "", 100)
		if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{dead}); err != nil {
			t.Fatal(err)
		}
		r, table := where(t, s, "task-d")
		if table != storage.TasksDeadLetter {
			t.Fatalf("after the move task-d is in %v", table)
		}
		sameRow(t, r, dead)
		// A snapshot taken before the move, written after it, must not
		// bring the task back to the live table.
		if err := s.Put(ctx, []storage.TaskRow{taskRow(t, "task-d", 4, "assigned", 1, "a", "agent", 100)}, nil); err != nil {
			t.Fatal(err)
		}
		if _, table := where(t, s, "task-d"); table != storage.TasksDeadLetter {
			t.Fatalf("a late snapshot moved task-d to %v", table)
		}
		l := load(t, s)
		if len(l.live) != 1 || len(l.dead) != 1 {
			t.Fatalf("load after move: %+v", l)
		}
		if r := l.dead["task-d"]; r.Version != dead.Version || string(r.Body) != string(dead.Body) {
			t.Fatalf("loaded %+v", r)
		}
		if ids := list(t, s, storage.TasksDeadLetter, storage.TaskFilter{}); !slices.Equal(ids, []string{"task-d"}) {
			t.Fatalf("dead letter lists %v", ids)
		}
		if ids := list(t, s, storage.TasksLive, storage.TaskFilter{}); !slices.Equal(ids, []string{"task-o"}) {
			t.Fatalf("live lists %v", ids)
		}
		// An older copy never replaces the dead-letter row.
		if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{taskRow(t, "task-d", 4, "dead_letter", 1, "a", "", 100)}); err != nil {
			t.Fatal(err)
		}
		r, _ = where(t, s, "task-d")
		sameRow(t, r, dead)
	})

	t.Run("RetryFromDeadLetter", func(t *testing.T) {
		s := open(t).Tasks()
		if err := s.Put(ctx, []storage.TaskRow{taskRow(t, "task-r", 2, "assigned", 3, "a", "agent", 100)}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{taskRow(t, "task-r", 3, "dead_letter", 3, "a", "", 100)}); err != nil {
			t.Fatal(err)
		}
		// Not newer than the dead-letter row: refused.
		if err := s.RetryFromDeadLetter(ctx, taskRow(t, "task-r", 3, "queued", 3, "a", "", 100)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("retry at the same version: %v", err)
		}
		back := taskRow(t, "task-r", 4, "queued", 3, "a", "", 100)
		if err := s.RetryFromDeadLetter(ctx, back); err != nil {
			t.Fatal(err)
		}
		r, table := where(t, s, "task-r")
		if table != storage.TasksLive {
			t.Fatalf("after the retry task-r is in %v", table)
		}
		sameRow(t, r, back)
		if err := s.RetryFromDeadLetter(ctx, taskRow(t, "task-r", 5, "queued", 3, "a", "", 100)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second retry: %v", err)
		}
		if err := s.RetryFromDeadLetter(ctx, taskRow(t, "task-none", 9, "queued", 3, "a", "", 100)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("retry of a missing task: %v", err)
		}
		// The retried task moves on, and can be dead-lettered again.
		if err := s.Put(ctx, []storage.TaskRow{taskRow(t, "task-r", 5, "assigned", 3, "a", "agent", 100)}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{taskRow(t, "task-r", 6, "dead_letter", 3, "a", "", 100)}); err != nil {
			t.Fatal(err)
		}
		if l := load(t, s); len(l.live) != 0 || len(l.dead) != 1 || l.dead["task-r"].Version != 6 {
			t.Fatalf("load: %+v", l)
		}
	})

	t.Run("ConcurrentRetries", func(t *testing.T) {
		s := open(t).Tasks()
		if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{taskRow(t, "task-c", 2, "dead_letter", 0, "a", "", 100)}); err != nil {
			t.Fatal(err)
		}
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		back := taskRow(t, "task-c", 3, "queued", 0, "a", "", 100)
		for i := range n {
			wg.Go(func() { errs[i] = s.RetryFromDeadLetter(ctx, back) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, storage.ErrNotFound):
				t.Fatalf("retry: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent retries succeeded", ok, n)
		}
		if _, table := where(t, s, "task-c"); table != storage.TasksLive {
			t.Fatalf("task-c in %v", table)
		}
	})

	t.Run("LateWritesRaceMoves", func(t *testing.T) {
		// Snapshots older than a concurrent move are written while the
		// move commits; whatever the interleaving, the task ends in the
		// dead letter only.
		s := open(t).Tasks()
		const n = 20
		var rows []storage.TaskRow
		for i := range n {
			rows = append(rows, taskRow(t, fmt.Sprintf("task-%02d", i), 2, "assigned", 0, "a", "agent", int64(i)))
		}
		if err := s.Put(ctx, rows, nil); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range n {
			id := rows[i].ID
			dead := taskRow(t, id, 4, "dead_letter", 0, "a", "", int64(i))
			late := taskRow(t, id, 3, "assigned", 0, "a", "agent", int64(i))
			wg.Go(func() {
				if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{dead}); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				if err := s.Put(ctx, []storage.TaskRow{late}, nil); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		l := load(t, s)
		if len(l.live) != 0 || len(l.dead) != n {
			t.Fatalf("after racing moves: %d live, %d dead", len(l.live), len(l.dead))
		}
	})

	t.Run("Archive", func(t *testing.T) {
		s := open(t).Tasks()
		// updated_at is created + version (taskRow).
		old1 := taskRow(t, "task-a1", 2, "completed", 1, "a", "", 100)
		old2 := taskRow(t, "task-a2", 2, "cancelled", 0, "a", "", 110)
		old3 := taskRow(t, "task-a3", 2, "completed", 2, "b", "", 120)
		recent := taskRow(t, "task-r", 2, "completed", 0, "a", "", 5000)
		queued := taskRow(t, "task-q", 1, "queued", 0, "a", "", 10)
		failed := taskRow(t, "task-f", 1, "failed", 0, "a", "", 10)
		if err := s.Put(ctx, []storage.TaskRow{old1, old2, old3, recent, queued, failed}, nil); err != nil {
			t.Fatal(err)
		}
		b := storage.ArchiveBatch{Statuses: []string{"completed", "cancelled"}, EndedBefore: 1000, Limit: 2}
		for _, bad := range []storage.ArchiveBatch{{Statuses: b.Statuses, EndedBefore: 1}, {Statuses: b.Statuses, Limit: storage.MaxArchiveBatch + 1}, {Limit: 1}} {
			if _, err := s.Archive(ctx, bad); err == nil {
				t.Fatalf("unbounded batch %+v accepted", bad)
			}
		}
		var moved []string
		for {
			rows, err := s.Archive(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) > b.Limit {
				t.Fatalf("batch of %d over its limit", len(rows))
			}
			if len(rows) == 0 {
				break
			}
			for _, r := range rows {
				if r.Status == "" || r.Version != 2 {
					t.Fatalf("moved row without its columns: %+v", r)
				}
				moved = append(moved, r.ID)
			}
		}
		slices.Sort(moved)
		if !slices.Equal(moved, []string{"task-a1", "task-a2", "task-a3"}) {
			t.Fatalf("archived %v", moved)
		}
		r, table := where(t, s, "task-a3")
		if table != storage.TasksArchive {
			t.Fatalf("task-a3 in %v after archiving", table)
		}
		sameRow(t, r, old3)
		if ids := list(t, s, storage.TasksArchive, storage.TaskFilter{SubmittedBy: "a"}); !slices.Equal(ids, []string{"task-a1", "task-a2"}) {
			t.Fatalf("archive lists %v", ids)
		}
		if ids := list(t, s, storage.TasksLive, storage.TaskFilter{}); !slices.Equal(ids, []string{"task-f", "task-q", "task-r"}) {
			t.Fatalf("live lists %v", ids)
		}
		// The archive is not loaded.
		if l := load(t, s); len(l.live) != 3 || len(l.dead) != 0 {
			t.Fatalf("load after archiving: %d live, %d dead", len(l.live), len(l.dead))
		}
		// A snapshot older than the move does not bring the task back.
		if err := s.Put(ctx, []storage.TaskRow{taskRow(t, "task-a1", 1, "assigned", 1, "a", "agent", 100)}, nil); err != nil {
			t.Fatal(err)
		}
		if _, table := where(t, s, "task-a1"); table != storage.TasksArchive {
			t.Fatalf("a late snapshot moved task-a1 to %v", table)
		}
		// Delete reaches the archive.
		if err := s.Delete(ctx, []string{"task-a2"}); err != nil {
			t.Fatal(err)
		}
		if _, table := where(t, s, "task-a2"); table != 0 {
			t.Fatalf("deleted task-a2 still in %v", table)
		}
	})

	t.Run("ArchiveByID", func(t *testing.T) {
		// With candidates named, only they move, still only when the
		// batch's statuses and cutoff select them; unknown and repeated
		// ids are ignored.
		s := open(t).Tasks()
		rows := []storage.TaskRow{taskRow(t, "task-1", 2, "completed", 0, "a", "", 100), taskRow(t, "task-2", 2, "completed", 0, "a", "", 100),
			taskRow(t, "task-3", 2, "completed", 0, "a", "", 5000), taskRow(t, "task-4", 1, "queued", 0, "a", "", 100)}
		if err := s.Put(ctx, rows, nil); err != nil {
			t.Fatal(err)
		}
		b := storage.ArchiveBatch{Statuses: []string{"completed"}, EndedBefore: 1000, Limit: 5,
			IDs: []string{"task-2", "task-3", "task-4", "task-none", "task-2"}}
		moved, err := s.Archive(ctx, b)
		if err != nil || len(moved) != 1 || moved[0].ID != "task-2" {
			t.Fatalf("archive by id: %+v %v", moved, err)
		}
		for id, want := range map[string]storage.TaskTable{"task-1": storage.TasksLive, "task-2": storage.TasksArchive,
			"task-3": storage.TasksLive, "task-4": storage.TasksLive} {
			if _, table := where(t, s, id); table != want {
				t.Fatalf("%s in %v, want %v", id, table, want)
			}
		}
		b.Limit = 2
		if _, err := s.Archive(ctx, b); err == nil {
			t.Fatal("more candidates than the batch limit accepted")
		}
	})

	t.Run("ArchiveRacesWrites", func(t *testing.T) {
		// Every task ends in exactly one table, whatever the interleaving
		// of archive passes and writes of newer versions.
		s := open(t).Tasks()
		const n = 20
		var rows []storage.TaskRow
		for i := range n {
			rows = append(rows, taskRow(t, fmt.Sprintf("task-%02d", i), 2, "completed", 0, "a", "", int64(i)))
		}
		if err := s.Put(ctx, rows, nil); err != nil {
			t.Fatal(err)
		}
		b := storage.ArchiveBatch{Statuses: []string{"completed"}, EndedBefore: 1 << 40, Limit: 3}
		var wg sync.WaitGroup
		wg.Go(func() {
			for range n {
				if _, err := s.Archive(ctx, b); err != nil {
					t.Error(err)
				}
			}
		})
		for i := range n {
			newer := taskRow(t, rows[i].ID, 3, "completed", 0, "a", "", int64(i))
			wg.Go(func() {
				if err := s.Put(ctx, []storage.TaskRow{newer}, nil); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for {
			rows, err := s.Archive(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 {
				break
			}
		}
		if ids := list(t, s, storage.TasksLive, storage.TaskFilter{}); len(ids) != 0 {
			t.Fatalf("still live: %v", ids)
		}
		if ids := list(t, s, storage.TasksArchive, storage.TaskFilter{}); len(ids) != n {
			t.Fatalf("%d archived, want %d", len(ids), n)
		}
		for i := range n {
			if r, table := where(t, s, rows[i].ID); table != storage.TasksArchive || r.Version != 3 {
				t.Fatalf("%s: version %d in %v", rows[i].ID, r.Version, table)
			}
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t).Tasks()
		if err := s.Put(ctx, []storage.TaskRow{taskRow(t, "task-1", 1, "queued", 0, "a", "", 1), taskRow(t, "task-2", 1, "queued", 0, "a", "", 2)},
			[]storage.WorkflowRecord{{Key: "schedule:x", Value: []byte("{}")}}); err != nil {
			t.Fatal(err)
		}
		if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{taskRow(t, "task-2", 2, "dead_letter", 0, "a", "", 2)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, []string{"task-1", "task-2", "task-missing"}); err != nil {
			t.Fatal(err)
		}
		if l := load(t, s); len(l.live)+len(l.dead) != 0 || len(l.wf) != 1 {
			t.Fatalf("after delete: %+v", l)
		}
	})

	t.Run("ListFilters", func(t *testing.T) {
		s := open(t).Tasks()
		rows := []storage.TaskRow{
			taskRow(t, "task-1", 1, "queued", 0, "alice", "", 100),
			taskRow(t, "task-2", 1, "assigned", 1, "alice", "agent-x", 200),
			taskRow(t, "task-3", 1, "completed", 1, "bob", "", 300),
			taskRow(t, "task-4", 1, "completed", 3, "bob", "", 400),
		}
		if err := s.Put(ctx, rows, nil); err != nil {
			t.Fatal(err)
		}
		one := 1
		for _, c := range []struct {
			f    storage.TaskFilter
			want []string
		}{
			{storage.TaskFilter{Status: "completed"}, []string{"task-3", "task-4"}},
			{storage.TaskFilter{Priority: &one}, []string{"task-2", "task-3"}},
			{storage.TaskFilter{AssignedTo: "agent-x"}, []string{"task-2"}},
			{storage.TaskFilter{SubmittedBy: "bob", Status: "completed", Priority: &one}, []string{"task-3"}},
			{storage.TaskFilter{CreatedFrom: 200, CreatedTo: 300}, []string{"task-2", "task-3"}},
			{storage.TaskFilter{CreatedTo: 100}, []string{"task-1"}},
			{storage.TaskFilter{Status: "cancelled"}, nil},
		} {
			if got := list(t, s, storage.TasksLive, c.f); !slices.Equal(got, c.want) {
				t.Errorf("filter %+v: got %v, want %v", c.f, got, c.want)
			}
		}
		if err := s.MoveToDeadLetter(ctx, []storage.TaskRow{taskRow(t, "task-1", 2, "dead_letter", 0, "alice", "", 100)}); err != nil {
			t.Fatal(err)
		}
		if got := list(t, s, storage.TasksDeadLetter, storage.TaskFilter{SubmittedBy: "alice"}); !slices.Equal(got, []string{"task-1"}) {
			t.Errorf("dead letter by submitter: %v", got)
		}
		if got := list(t, s, storage.TasksDeadLetter, storage.TaskFilter{SubmittedBy: "bob"}); got != nil {
			t.Errorf("dead letter by another submitter: %v", got)
		}
		// ColumnsOnly: every column, no body, in every table.
		for _, table := range []storage.TaskTable{storage.TasksLive, storage.TasksDeadLetter} {
			var got []storage.TaskRow
			err := s.List(ctx, table, storage.TaskFilter{SubmittedBy: "alice", ColumnsOnly: true}, func(r storage.TaskRow) error {
				got = append(got, r)
				return nil
			})
			want := rows[1]
			if table == storage.TasksDeadLetter {
				want = taskRow(t, "task-1", 2, "dead_letter", 0, "alice", "", 100)
			}
			if err != nil || len(got) != 1 {
				t.Fatalf("%v, columns only: %+v %v", table, got, err)
			}
			if got[0].Body != nil {
				t.Errorf("%v, columns only: body %q", table, got[0].Body)
			}
			want.Body = nil
			sameRow(t, got[0], want)
		}
		// An error from the callback stops the listing and is returned.
		stop := errors.New("stop")
		calls := 0
		err := s.List(ctx, storage.TasksLive, storage.TaskFilter{}, func(storage.TaskRow) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("list stopped with %v after %d calls", err, calls)
		}
	})
}
