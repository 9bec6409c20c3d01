package tasks_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
	"github.com/agentcom/agentcom/internal/tasks"
)

// countingStore counts the task bodies read one by one.
type countingStore struct {
	storage.TaskStore
	gets atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, id string) (storage.TaskRow, storage.TaskTable, error) {
	s.gets.Add(1)
	return s.TaskStore.Get(ctx, id)
}

// listRef is what a listing test knows of a stored task, for its own
// sort of every match.
type listRef struct {
	id               string
	status           tasks.Status
	pri              int
	created, updated int64
	needle           bool
}

// sortRefs sorts a copy of refs as a listing orders tasks: lane, creation
// and id, or (newest) last update first, then id.
func sortRefs(refs []listRef, newest bool) []listRef {
	out := slices.Clone(refs)
	slices.SortFunc(out, func(a, b listRef) int {
		if newest {
			if a.updated != b.updated {
				return -cmp.Compare(a.updated, b.updated)
			}
			return strings.Compare(a.id, b.id)
		}
		if a.pri != b.pri {
			return cmp.Compare(a.pri, b.pri)
		}
		if a.created != b.created {
			return cmp.Compare(a.created, b.created)
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}

// pageOf is the part of want a page at off showing lim (0: all) holds.
func pageOf(want []string, off, lim int) []string {
	exp := want[min(off, len(want)):]
	if lim > 0 {
		exp = exp[:min(lim, len(exp))]
	}
	return exp
}

// TestListArchivePages: a page of the archive is the same slice of the
// same order as a sort of every archived match would give, in both
// orders, with and without a filter on the body (text), on both drivers;
// and only the page's tasks are read whole.
func TestListArchivePages(t *testing.T) {
	for _, drv := range storagetest.Drivers() {
		t.Run(drv.Name, func(t *testing.T) {
			d := drv.Open(t)()
			t.Cleanup(func() { d.Close() })
			cs := &countingStore{TaskStore: d.Tasks()}
			q, err := tasks.New(cs, bus.New(), noBackoff())
			if err != nil {
				t.Fatal(err)
			}
			start := time.UnixMilli(1_750_000_000_000)
			var all []listRef
			var rows []storage.TaskRow
			for i := range 23 {
				// Ties on creation and on update, so the id decides.
				r := listRef{id: fmt.Sprintf("task-%02d", (i*7)%23), pri: i % 4, created: start.UnixMilli() + int64(i%5),
					updated: start.UnixMilli() + int64(i%3), needle: i%3 == 0}
				desc := "plain"
				if r.needle {
					desc = "has a NEEDLE"
				}
				task := &tasks.Task{ID: r.id, Description: desc, Metadata: map[string]any{}, Priority: r.pri, Status: tasks.StatusCompleted,
					SubmittedBy: "s", CreatedAt: r.created, UpdatedAt: r.updated, Attempts: []tasks.Attempt{}, NeededCapabilities: []string{}, Version: 3}
				row, err := tasks.RowOf(task)
				if err != nil {
					t.Fatal(err)
				}
				rows, all = append(rows, row), append(all, r)
			}
			if err := d.Tasks().Put(context.Background(), rows, nil); err != nil {
				t.Fatal(err)
			}
			arch, err := tasks.NewArchiver(q, tasks.ArchiveConfig{Now: func() time.Time { return start.Add(30 * 24 * time.Hour) }})
			if err != nil {
				t.Fatal(err)
			}
			if res, err := arch.RunOnce(context.Background()); err != nil || res.Moved != len(rows) {
				t.Fatalf("archive: %+v %v", res, err)
			}
			for _, newest := range []bool{false, true} {
				for _, text := range []string{"", "needle"} {
					var want []string
					for _, r := range sortRefs(all, newest) {
						if text == "" || r.needle {
							want = append(want, r.id)
						}
					}
					for _, pg := range [][2]int{{0, 5}, {5, 5}, {len(want) - 2, 5}, {len(want) + 3, 5}, {0, 0}} {
						f := tasks.Filter{Newest: newest, Text: text, Offset: pg[0], Limit: pg[1]}
						cs.gets.Store(0)
						got, total, err := q.ListArchive(f)
						if err != nil {
							t.Fatal(err)
						}
						exp := pageOf(want, pg[0], pg[1])
						var ids []string
						for _, tk := range got {
							if !tk.Archived {
								t.Fatalf("%+v: %s not marked archived", f, tk.ID)
							}
							ids = append(ids, tk.ID)
						}
						if total != len(want) || !slices.Equal(ids, exp) {
							t.Fatalf("%+v: %v of %d, want %v of %d", f, ids, total, exp, len(want))
						}
						if n := cs.gets.Load(); n != int64(len(exp)) {
							t.Fatalf("%+v: %d tasks read whole for a page of %d", f, n, len(exp))
						}
					}
				}
			}
		})
	}
}

// bodyCountingStore counts the task bodies a listing streams and the ones
// read one by one.
type bodyCountingStore struct {
	countingStore
	listed atomic.Int64
}

func (s *bodyCountingStore) List(ctx context.Context, table storage.TaskTable, f storage.TaskFilter, fn func(storage.TaskRow) error) error {
	return s.TaskStore.List(ctx, table, f, func(r storage.TaskRow) error {
		if r.Body != nil {
			s.listed.Add(1)
		}
		return fn(r)
	})
}

// TestStoredListingsPage: the dead-letter listing, a search of both tables
// and a listing of the live table's ended tasks give the slice of the
// order a sort of every match would give, on both drivers, and stream no
// task body when the filter needs none: only the page's tasks are read
// whole. (They decoded every stored match per request, then sliced.)
func TestStoredListingsPage(t *testing.T) {
	for _, drv := range storagetest.Drivers() {
		t.Run(drv.Name, func(t *testing.T) {
			d := drv.Open(t)()
			t.Cleanup(func() { d.Close() })
			cs := &bodyCountingStore{countingStore: countingStore{TaskStore: d.Tasks()}}
			start := int64(1_750_000_000_000)
			var all []listRef
			var live, dead []storage.TaskRow
			for i := range 30 {
				r := listRef{id: fmt.Sprintf("task-%02d", (i*7)%30), pri: i % 4, created: start + int64(i%5), updated: start + int64(i%3), needle: i%4 == 0}
				r.status = []tasks.Status{tasks.StatusCompleted, tasks.StatusDeadLetter, tasks.StatusCancelled}[i%3]
				desc := "plain"
				if r.needle {
					desc = "has a NEEDLE"
				}
				task := &tasks.Task{ID: r.id, Description: desc, Metadata: map[string]any{"i": i}, Priority: r.pri, Status: r.status,
					SubmittedBy: "s", CreatedAt: r.created, UpdatedAt: r.updated, Attempts: []tasks.Attempt{}, NeededCapabilities: []string{}, Version: 3}
				row, err := tasks.RowOf(task)
				if err != nil {
					t.Fatal(err)
				}
				if r.status == tasks.StatusDeadLetter {
					dead = append(dead, row)
				} else {
					live = append(live, row)
				}
				all = append(all, r)
			}
			ctx := context.Background()
			if err := d.Tasks().Put(ctx, live, nil); err != nil {
				t.Fatal(err)
			}
			if err := d.Tasks().MoveToDeadLetter(ctx, dead); err != nil {
				t.Fatal(err)
			}
			q, err := tasks.New(cs, bus.New(), noBackoff())
			if err != nil {
				t.Fatal(err)
			}
			listings := []struct {
				name string
				list func(tasks.Filter) ([]*tasks.Task, int, error)
				keep func(listRef) bool
			}{
				{"dead letter", q.ListDeadLetter, func(r listRef) bool { return r.status == tasks.StatusDeadLetter }},
				{"search", q.Search, func(listRef) bool { return true }},
				{"search dead letter", func(f tasks.Filter) ([]*tasks.Task, int, error) {
					f.Status = tasks.StatusDeadLetter
					return q.Search(f)
				}, func(r listRef) bool { return r.status == tasks.StatusDeadLetter }},
				{"completed", func(f tasks.Filter) ([]*tasks.Task, int, error) {
					f.Status = tasks.StatusCompleted
					return q.List(f)
				}, func(r listRef) bool { return r.status == tasks.StatusCompleted }},
			}
			for _, l := range listings {
				for _, newest := range []bool{false, true} {
					for _, text := range []string{"", "needle"} {
						var want []string
						for _, r := range sortRefs(all, newest) {
							if l.keep(r) && (text == "" || r.needle) {
								want = append(want, r.id)
							}
						}
						for _, pg := range [][2]int{{0, 4}, {4, 4}, {len(want) - 2, 4}, {len(want) + 3, 4}, {0, 0}} {
							f := tasks.Filter{Newest: newest, Text: text, Offset: pg[0], Limit: pg[1]}
							cs.gets.Store(0)
							cs.listed.Store(0)
							got, total, err := l.list(f)
							if err != nil {
								t.Fatal(err)
							}
							exp := pageOf(want, pg[0], pg[1])
							var ids []string
							for _, tk := range got {
								ids = append(ids, tk.ID)
							}
							if total != len(want) || !slices.Equal(ids, exp) {
								t.Fatalf("%s %+v: %v of %d, want %v of %d", l.name, f, ids, total, exp, len(want))
							}
							if n := cs.gets.Load(); n != int64(len(exp)) {
								t.Fatalf("%s %+v: %d tasks read whole for a page of %d", l.name, f, n, len(exp))
							}
							if n := cs.listed.Load(); text == "" && n != 0 {
								t.Fatalf("%s %+v: %d bodies streamed for a filter on columns", l.name, f, n)
							}
						}
					}
				}
			}
		})
	}
}
