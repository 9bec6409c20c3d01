package tasks

import "container/heap"

// undoChange puts back a task whose change was applied in memory before
// its write, when that write failed: memory must say what the store says,
// or a task shown cancelled stays queued on disk, or a reclaimed task is
// queued in memory while the store still has it assigned (and a restart
// brings back the other story).
//
// before is a clone taken before the change, ver the version of the
// failed write. The task is restored as before (in the live set, its
// lane, its holder's set, a timer, and the counters) unless it changed
// again since (its version moved on, or another task took its place):
// that later change's write carries it. The version goes above ver,
// because the failed write may have landed all the same and the task's
// next write must win over it.
//
// It covers the live-to-live changes (progress, reject, reclaim, give
// back) and the ends that leave the live set (cancel). The changes that
// end a task through endLocked or fail it have their own undo (undoEnd,
// undoFail).
func (q *Queue) undoChange(lt, before *Task, ver uint64, now int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if lt.Version != ver {
		return
	}
	if cur, ok := q.live[lt.ID]; ok {
		if cur != lt {
			return
		}
		q.unplaceLocked(lt)
	} else {
		// It left the live set (cancelled): it comes back.
		q.live[lt.ID] = lt
		q.perSubmitter[lt.SubmittedBy]++
	}
	q.count(lt.Status, lt.Priority, -1)
	q.count(before.Status, before.Priority, +1)
	*lt = *before
	lt.Version = ver + 1
	q.placeLocked(lt, now)
}

// unplaceLocked takes a live task out of the structure its status puts it
// in (a lane, its holder's set; a scheduled task's timer entry goes stale
// by itself). Caller holds q.mu.
func (q *Queue) unplaceLocked(t *Task) {
	switch t.Status {
	case StatusQueued:
		q.idx.remove(t.ID)
	case StatusAssigned:
		q.dropHeld(t)
	}
}

// placeLocked puts a live task in the structure its status calls for.
// Caller holds q.mu.
func (q *Queue) placeLocked(t *Task, now int64) {
	switch t.Status {
	case StatusQueued:
		q.idx.add(t, now)
	case StatusAssigned:
		addHeld(q.held, t)
	case StatusScheduled:
		heap.Push(&q.timers, delayed{due: t.RunAt, id: t.ID})
	}
}
