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
			type ref struct {
				id               string
				pri              int
				created, updated int64
				needle           bool
			}
			var all []ref
			var rows []storage.TaskRow
			for i := range 23 {
				// Ties on creation and on update, so the id decides.
				r := ref{id: fmt.Sprintf("task-%02d", (i*7)%23), pri: i % 4, created: start.UnixMilli() + int64(i%5),
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
					sorted := slices.Clone(all)
					slices.SortFunc(sorted, func(a, b ref) int {
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
					for _, r := range sorted {
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
						exp := want[min(pg[0], len(want)):]
						if pg[1] > 0 {
							exp = exp[:min(pg[1], len(exp))]
						}
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
