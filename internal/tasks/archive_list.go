package tasks

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/agentcom/agentcom/internal/storage"
)

// Listing the stored tables (the live table's ended tasks, the dead
// letter, the archive).
//
// A listing never holds a table in memory: the store streams the columns
// of the rows its filter selects (storage.TaskFilter.ColumnsOnly: no
// bodies), in id order, and the listing keeps only the sort keys of the
// best Offset+Limit matches (a bounded heap) and counts the rest. Bodies
// are read back by id for the page only, unless the filter needs a body
// to match (agent, capability, text), in which case each candidate is
// read and decoded once and dropped.

// pageKey is what orders a task in a listing.
type pageKey struct {
	pri              int
	created, updated int64
	id               string
	table            storage.TaskTable // where the listing found it
}

func pageKeyOf(r *storage.TaskRow) pageKey {
	return pageKey{pri: r.Priority, created: r.CreatedAt, updated: r.UpdatedAt, id: r.ID}
}

// before says whether a comes before b in f's order (as order sorts).
func (f Filter) before(a, b pageKey) bool {
	if f.Newest {
		if a.updated != b.updated {
			return a.updated > b.updated
		}
		return a.id < b.id
	}
	return key{a.pri, a.created, a.id}.less(key{b.pri, b.created, b.id})
}

// needsBody says whether f matches on more than the store's columns.
func (f Filter) needsBody() bool { return f.Agent != "" || f.Capability != "" || f.Text != "" }

// topKeys keeps the first n keys in f's order among those offered: a heap
// with the last of them on top, so a better key replaces it.
type topKeys struct {
	f    Filter
	n    int // 0: keep every key
	keys []pageKey
}

func (h *topKeys) Len() int           { return len(h.keys) }
func (h *topKeys) Less(i, j int) bool { return h.f.before(h.keys[j], h.keys[i]) }
func (h *topKeys) Swap(i, j int)      { h.keys[i], h.keys[j] = h.keys[j], h.keys[i] }
func (h *topKeys) Push(x any)         { h.keys = append(h.keys, x.(pageKey)) }
func (h *topKeys) Pop() any {
	k := h.keys[len(h.keys)-1]
	h.keys = h.keys[:len(h.keys)-1]
	return k
}

func (h *topKeys) offer(k pageKey) {
	switch {
	case h.n == 0 || len(h.keys) < h.n:
		heap.Push(h, k)
	case h.f.before(k, h.keys[0]):
		h.keys[0] = k
		heap.Fix(h, 0)
	}
}

// sorted returns the kept keys in f's order.
func (h *topKeys) sorted() []pageKey {
	out := slices.Clone(h.keys)
	slices.SortFunc(out, func(a, b pageKey) int {
		switch {
		case h.f.before(a, b):
			return -1
		case h.f.before(b, a):
			return 1
		}
		return 0
	})
	return out
}

// ListArchive returns archived tasks matching f, in f's order, and the
// number of matches before Offset/Limit, like List for the live table.
func (q *Queue) ListArchive(f Filter) ([]*Task, int, error) {
	out, total, err := q.listStored(context.Background(), f, storage.TasksArchive)
	if err != nil {
		return nil, 0, fmt.Errorf("list archived tasks: %w", err)
	}
	return out, total, nil
}

// listStored returns the tasks of tables that f matches, in f's order,
// and the number of matches before Offset/Limit. It holds Offset+Limit
// sort keys and Limit tasks at most (see above). f's status does not
// apply to the dead letter, where every task is dead-lettered.
func (q *Queue) listStored(ctx context.Context, f Filter, tables ...storage.TaskTable) ([]*Task, int, error) {
	top := &topKeys{f: f}
	if f.Limit > 0 {
		// An offset so large that the sum overflows keeps every key
		// (as many as the tables hold).
		top.n = f.Offset + f.Limit
		if top.n < f.Offset {
			top.n = math.MaxInt
		}
	}
	total := 0
	for _, table := range tables {
		g := f
		if table == storage.TasksDeadLetter {
			g.Status = ""
		}
		cols := g.columns()
		cols.ColumnsOnly = !g.needsBody()
		err := q.st.List(ctx, table, cols, func(r storage.TaskRow) error {
			if g.needsBody() {
				t, err := taskOf(r)
				if err != nil {
					return err
				}
				if !g.match(t) {
					return nil
				}
			}
			total++
			k := pageKeyOf(&r)
			k.table = table
			top.offer(k)
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	keys := top.sorted()
	keys = keys[min(f.Offset, len(keys)):]
	out := make([]*Task, 0, len(keys))
	for _, k := range keys {
		t, table, err := q.getFrom(ctx, k.id)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // deleted since the scan
		case err != nil:
			return nil, 0, err
		case table != k.table:
			continue // moved to another table since the scan
		}
		out = append(out, t)
	}
	return out, total, nil
}
