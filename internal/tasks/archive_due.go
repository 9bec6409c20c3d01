package tasks

import (
	"container/heap"
	"context"
	"fmt"
	"slices"

	"github.com/agentcom/agentcom/internal/storage"
)

// Archive candidates from memory.
//
// An archive pass wants the live table's tasks that ended (completed,
// cancelled) before its cutoff. Read from the table, that is a scan of
// the whole live table every pass on the embedded store, which has no
// index on the end time. The queue knows when the tasks it ends end, so
// it keeps them in a heap by end time (endedState) and hands each batch
// its candidates by id (storage.ArchiveBatch.IDs): a pass reads the rows
// it moves and no others.
//
// A queue told that an archive runs (Config.TrackEnded) fills the heap at
// load, from the rows the load reads anyway. Otherwise (a hub that never
// archives keeps nothing) the heap starts at the first pass: one listing
// of the live table's completed and cancelled tasks fills it. From then
// on every end the queue writes is pushed after its write. An end written before tracking started is in the listing
// (which starts after), one written after is pushed, so the heap misses
// none. Entries can be stale (a task undone after its end's write failed,
// deleted, or archived already): the store moves a row only when the
// batch's statuses and cutoff still select it, so a stale entry costs a
// read. A reload (after a restore) starts over.
//
// Memory: one entry (an id and a time) per ended task still within the
// retention, the tasks the live table holds anyway.

// endedEntry is an ended task in the heap: delayed's due is its end
// (updated_at), and token is unused.
type endedEntry = delayed

// endedState is the queue's heap of ended tasks, guarded by q.mu.
type endedState struct {
	h delayedHeap
	// tracking: ends are pushed. known: the heap holds every ended task
	// of the live table (the first listing is done).
	tracking, known bool
	// gen tells a listing that a reload came in between.
	gen uint64
}

// noteEnded pushes a completed or cancelled task whose end was written.
func (q *Queue) noteEnded(t *Task) {
	if t.Status != StatusCompleted && t.Status != StatusCancelled {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended.tracking {
		heap.Push(&q.ended.h, endedEntry{due: t.UpdatedAt, id: t.ID})
	}
}

// forgetEnded starts over (a reload: the tables may have changed under
// the queue). Caller holds q.mu.
func (q *Queue) forgetEnded() {
	q.ended = endedState{gen: q.ended.gen + 1}
}

// knowLoadedEnded starts the heap with the ended tasks a load found: the
// load read the whole live table, and the queue's writes start after it.
// Caller holds q.mu.
func (q *Queue) knowLoadedEnded(found delayedHeap) {
	heap.Init(&found)
	q.ended.h, q.ended.tracking, q.ended.known = found, true, true
}

// knowEnded fills the heap from the live table the first time.
func (q *Queue) knowEnded(ctx context.Context) error {
	q.mu.Lock()
	if q.ended.known {
		q.mu.Unlock()
		return nil
	}
	q.ended.tracking = true
	gen := q.ended.gen
	q.mu.Unlock()
	var found delayedHeap
	statuses := archivedStatuses()
	// One listing for both statuses: the embedded store reads every row
	// of a listing whatever its filter.
	err := q.st.List(ctx, storage.TasksLive, storage.TaskFilter{}, func(r storage.TaskRow) error {
		if slices.Contains(statuses, r.Status) {
			found = append(found, endedEntry{due: r.UpdatedAt, id: r.ID})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list ended tasks: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended.gen != gen {
		return nil // reloaded meanwhile: the next pass lists again
	}
	q.ended.h = append(q.ended.h, found...)
	heap.Init(&q.ended.h)
	q.ended.known = true
	return nil
}

// dueEnded takes up to n distinct ids that ended before cutoff off the
// heap. The caller gives them back (giveBack) when its move fails.
func (q *Queue) dueEnded(cutoff int64, n int) []endedEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []endedEntry
	seen := map[string]bool{}
	for len(out) < n && len(q.ended.h) > 0 && q.ended.h[0].due < cutoff {
		e := heap.Pop(&q.ended.h).(endedEntry)
		if !seen[e.id] {
			seen[e.id] = true
			out = append(out, e)
		}
	}
	return out
}

// giveBackEnded puts entries back on the heap.
func (q *Queue) giveBackEnded(es []endedEntry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.ended.known {
		return // reloaded: the next listing finds them
	}
	for _, e := range es {
		heap.Push(&q.ended.h, e)
	}
}
