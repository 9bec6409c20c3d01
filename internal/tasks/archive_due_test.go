package tasks_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
	"github.com/agentcom/agentcom/internal/tasks"
)

// passStore records how archive passes reach the store: the listings of
// the live table and the candidates of each batch.
type passStore struct {
	storage.TaskStore
	mu    sync.Mutex
	lists int
	ids   [][]string
}

func (s *passStore) List(ctx context.Context, table storage.TaskTable, f storage.TaskFilter, fn func(storage.TaskRow) error) error {
	if table == storage.TasksLive {
		s.mu.Lock()
		s.lists++
		s.mu.Unlock()
	}
	return s.TaskStore.List(ctx, table, f, fn)
}

func (s *passStore) Archive(ctx context.Context, b storage.ArchiveBatch) ([]storage.TaskRow, error) {
	s.mu.Lock()
	s.ids = append(s.ids, slices.Sorted(slices.Values(b.IDs)))
	s.mu.Unlock()
	return s.TaskStore.Archive(ctx, b)
}

// take returns and clears what was recorded.
func (s *passStore) take() (lists int, ids [][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lists, ids = s.lists, s.ids
	s.lists, s.ids = 0, nil
	return lists, ids
}

// TestArchivePassPicksFromMemory: the first pass lists the live table's
// ended tasks once; from then on each pass names its candidates (the tasks
// that ended before its cutoff, and no other), on both drivers, without
// listing the live table again; a reload starts over.
func TestArchivePassPicksFromMemory(t *testing.T) {
	for _, drv := range storagetest.Drivers() {
		t.Run(drv.Name, func(t *testing.T) {
			ps, clk, cfg := passSetup(t, drv)
			q, err := tasks.New(ps, bus.New(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			arch, err := tasks.NewArchiver(q, tasks.ArchiveConfig{Retention: time.Hour, BatchSize: 2, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			run := func(desc string) string { return completeOne(t, q, desc) }
			early := []string{run("one"), run("two")}
			// Ended before the first pass: the listing finds it.
			res, err := arch.RunOnce(context.Background())
			if lists, _ := ps.take(); err != nil || res.Moved != 0 || lists != 1 {
				t.Fatalf("first pass: %+v %v, %d listings", res, err, lists)
			}
			clk.Advance(30 * time.Minute)
			late := run("three")
			cancelled, _ := q.Submit(tasks.SubmitParams{Description: "cancelled", TargetAgent: "nobody"})
			if _, _, err := q.Cancel(cancelled.ID, "admin", true, ""); err != nil {
				t.Fatal(err)
			}
			queued, _ := q.Submit(tasks.SubmitParams{Description: "queued", TargetAgent: "nobody"})

			clk.Advance(45 * time.Minute) // past the first two's retention only
			res, err = arch.RunOnce(context.Background())
			lists, ids := ps.take()
			if err != nil || res.Moved != 2 || lists != 0 || len(ids) != 1 || !slices.Equal(ids[0], sorted(early...)) {
				t.Fatalf("second pass: %+v %v, %d listings, candidates %v, want %v", res, err, lists, ids, early)
			}
			clk.Advance(time.Hour)
			res, err = arch.RunOnce(context.Background())
			lists, ids = ps.take()
			if err != nil || res.Moved != 2 || lists != 0 || len(ids) != 1 || !slices.Equal(ids[0], sorted(late, cancelled.ID)) {
				t.Fatalf("third pass: %+v %v, %d listings, candidates %v", res, err, lists, ids)
			}
			if got, _ := q.Get(queued.ID); got.Archived || got.Status != tasks.StatusQueued {
				t.Fatalf("the queued task: %+v", got)
			}
			// Nothing due: no batch at all.
			if res, err = arch.RunOnce(context.Background()); err != nil || res.Moved != 0 {
				t.Fatalf("idle pass: %+v %v", res, err)
			}
			if lists, ids = ps.take(); lists != 0 || len(ids) != 0 {
				t.Fatalf("idle pass: %d listings, batches %v", lists, ids)
			}
			// A reload lists again.
			if err := q.Reload(); err != nil {
				t.Fatal(err)
			}
			if _, err := arch.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if lists, _ = ps.take(); lists != 1 {
				t.Fatalf("after a reload: %d listings", lists)
			}
		})
	}
}

// assignOnly assigns task id, and no other, to agent.
func assignOnly(t *testing.T, q *tasks.Queue, id, agent string) *tasks.Task {
	t.Helper()
	as, err := q.AssignBatch(func(tk *tasks.Task) (string, bool) {
		if tk.ID == id {
			return agent, false
		}
		return "", false
	}, 1)
	if err != nil || len(as) != 1 {
		t.Fatal(as, err)
	}
	return as[0]
}

// TestArchiveFirstPassFromLoad: a queue told that an archive runs
// (TrackEnded) knows its ended tasks from its load, so even its first pass
// (and the first after a reload) names its candidates without listing the
// live table, on both drivers.
func TestArchiveFirstPassFromLoad(t *testing.T) {
	for _, drv := range storagetest.Drivers() {
		t.Run(drv.Name, func(t *testing.T) {
			ps, clk, cfg := passSetup(t, drv)
			before, err := tasks.New(ps, bus.New(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			run := func(q *tasks.Queue, desc string) string { return completeOne(t, q, desc) }
			early := []string{run(before, "one"), run(before, "two")}
			cancelled, err := before.Submit(tasks.SubmitParams{Description: "cancelled", TargetAgent: "nobody"})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := before.Cancel(cancelled.ID, "admin", true, ""); err != nil {
				t.Fatal(err)
			}
			early = append(early, cancelled.ID)
			queued, err := before.Submit(tasks.SubmitParams{Description: "queued", TargetAgent: "nobody"})
			if err != nil {
				t.Fatal(err)
			}
			// The restart.
			cfg.TrackEnded = true
			q, err := tasks.New(ps, bus.New(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			arch, err := tasks.NewArchiver(q, tasks.ArchiveConfig{Retention: time.Hour, BatchSize: 10, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(30 * time.Minute)
			late := run(q, "three")
			ps.take()
			clk.Advance(45 * time.Minute) // past the loaded ones' retention only
			res, err := arch.RunOnce(context.Background())
			lists, ids := ps.take()
			if err != nil || res.Moved != 3 || lists != 0 || len(ids) != 1 || !slices.Equal(ids[0], sorted(early...)) {
				t.Fatalf("first pass: %+v %v, %d listings, candidates %v, want %v", res, err, lists, ids, early)
			}
			if got, _ := q.Get(queued.ID); got.Archived || got.Status != tasks.StatusQueued {
				t.Fatalf("the queued task: %+v", got)
			}
			// A reload knows the ended tasks from its load too.
			if err := q.Reload(); err != nil {
				t.Fatal(err)
			}
			ps.take()
			clk.Advance(time.Hour)
			res, err = arch.RunOnce(context.Background())
			lists, ids = ps.take()
			if err != nil || res.Moved != 1 || lists != 0 || len(ids) != 1 || !slices.Equal(ids[0], []string{late}) {
				t.Fatalf("pass after a reload: %+v %v, %d listings, candidates %v", res, err, lists, ids)
			}
		})
	}
}

// TestDependentsSameAfterRestart: a task's dependents listing names its
// dependents in the live table and the dead letter, not the archived ones,
// and the same before and after a restart, on both drivers. (Before, a
// restart forgot the dead-lettered dependents and a running hub kept the
// archived ones.)
func TestDependentsSameAfterRestart(t *testing.T) {
	for _, drv := range storagetest.Drivers() {
		t.Run(drv.Name, func(t *testing.T) {
			d := drv.Open(t)()
			t.Cleanup(func() { d.Close() })
			clk := newClock()
			cfg := noBackoff()
			cfg.Now = clk.Now
			q, err := tasks.New(d.Tasks(), bus.New(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			submit := func(desc string, p tasks.SubmitParams) string {
				t.Helper()
				p.Description = desc
				task, err := q.Submit(p)
				if err != nil {
					t.Fatal(err)
				}
				return task.ID
			}
			up := submit("upstream", tasks.SubmitParams{})
			zero := 0
			done := submit("done", tasks.SubmitParams{DependsOn: []string{up}})
			dead := submit("dead", tasks.SubmitParams{DependsOn: []string{up}, MaxRetries: &zero})
			open := submit("open", tasks.SubmitParams{DependsOn: []string{up}, TargetAgent: "nobody"})
			as := assignOnly(t, q, up, "a1")
			if _, _, err := q.Complete(up, "a1", as.Generation, nil, nil); err != nil {
				t.Fatal(err)
			}
			as = assignOnly(t, q, done, "a1")
			if _, _, err := q.Complete(done, "a1", as.Generation, nil, nil); err != nil {
				t.Fatal(err)
			}
			as = assignOnly(t, q, dead, "a1")
			if _, oc, _, err := q.Fail(dead, "a1", as.Generation, "boom", nil); err != nil || oc != tasks.OutcomeDeadLetter {
				t.Fatalf("fail: %s %v", oc, err)
			}
			arch, err := tasks.NewArchiver(q, tasks.ArchiveConfig{Retention: time.Hour, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(2 * time.Hour)
			if res, err := arch.RunOnce(context.Background()); err != nil || res.Moved != 2 {
				t.Fatalf("archive pass: %+v %v", res, err) // upstream and done
			}
			want := sorted(dead, open)
			if got := q.Dependents(up); !slices.Equal(got, want) {
				t.Fatalf("dependents before a restart: %v, want %v", got, want)
			}
			restarted, err := tasks.New(d.Tasks(), bus.New(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := restarted.Dependents(up); !slices.Equal(got, want) {
				t.Fatalf("dependents after a restart: %v, want %v", got, want)
			}
		})
	}
}

// passSetup opens drv with its task store counted by a passStore, and a
// queue config on a test clock.
func passSetup(t *testing.T, drv storagetest.DriverKind) (*passStore, *clock, tasks.Config) {
	t.Helper()
	d := drv.Open(t)()
	t.Cleanup(func() { d.Close() })
	clk := newClock()
	cfg := noBackoff()
	cfg.Now = clk.Now
	return &passStore{TaskStore: d.Tasks()}, clk, cfg
}

// completeOne submits a task, assigns it to a1 and completes it; its id.
func completeOne(t *testing.T, q *tasks.Queue, desc string) string {
	t.Helper()
	task, err := q.Submit(tasks.SubmitParams{Description: desc})
	if err != nil {
		t.Fatal(err)
	}
	as := assignOnly(t, q, task.ID, "a1")
	if _, _, err := q.Complete(task.ID, "a1", as.Generation, nil, nil); err != nil {
		t.Fatal(err)
	}
	return task.ID
}
