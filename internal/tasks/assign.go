package tasks

import (
	"slices"
	"sort"
)

// The task lifecycle's writes: what needs a durable write of its own and
// what does not.
//
//   - A submission is one write; when an idle agent fits the new task and
//     no ready task is ahead of it, the assignment rides in that same
//     write (assignNew): one commit between submit and task_assign.
//   - A scheduling pass writes all its assignments in one write.
//   - Acceptance is not written on its own: the assignment is already
//     durable and fenced by its generation, and acceptance changes only
//     when the attempt started (accepted_at) and updated_at. It rides in
//     the task's next write (progress, completion, failure...). A hub that
//     restarts before that sees the task assigned to the agent, not yet
//     accepted, which is what a sidecar's task_recovering expects.
//   - Completion and failure are durable before they are acknowledged.
//
// A write that fails leaves memory as it was before the change
// (undoAssign, undoEnd), with a higher version, since a failed write may
// still have landed.

// assignTo gives t to agent at now: a new generation and attempt. The
// caller counts it and bumps the version.
func (t *Task) assignTo(agent string, now int64) {
	t.Status = StatusAssigned
	t.AssignedTo, t.AssignedAt = &agent, &now
	t.Generation++
	t.UpdatedAt = now
	t.NotBefore = 0
	t.addHistory("assigned", now, map[string]any{"agent_id": agent, "generation": t.Generation})
	t.Attempts = append(t.Attempts, Attempt{Generation: t.Generation, AgentID: agent, AssignedAt: now})
	if n := len(t.Attempts) - AttemptsCap; n > 0 {
		t.Attempts = slices.Delete(t.Attempts, 0, n)
	}
}

// acceptLocked records the holder's acceptance in memory only. The
// version moves on, so the task's next write (which includes this
// change) is newer than any earlier one.
func acceptLocked(t *Task, now int64) {
	t.UpdatedAt = now
	for i := range t.Attempts {
		if a := &t.Attempts[i]; a.Generation == t.Generation && a.AcceptedAt == 0 {
			a.AcceptedAt = now
		}
	}
	t.Version++
}

// maxAheadScan bounds the ready groups assignNew looks at: with more, it
// leaves the new tasks to the next pass, which orders them properly.
const maxAheadScan = 64

// assignNew assigns new queued tasks (not yet in memory, not yet stored)
// to agents pick reserves, so their submission's write stores them
// assigned. Only a task that a pass would hand out first qualifies: no
// ready task is ahead of it in scheduling order, and its lane or
// capabilities are not paused. It returns what to write (snaps, with the
// assigned tasks' snapshots in their place) and the assigned snapshots.
func (q *Queue) assignNew(pick Pick, ts, snaps []*Task, now int64) (writes, assigned []*Task) {
	var cand []int
	for i, t := range ts {
		if t.Status == StatusQueued {
			cand = append(cand, i)
		}
	}
	if len(cand) == 0 {
		return snaps, nil
	}
	sort.Slice(cand, func(a, b int) bool { return keyOf(ts[cand[a]]).less(keyOf(ts[cand[b]])) })
	writes = snaps
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, i := range cand {
		t := ts[i]
		if q.pausedLocked(t.Priority, t.NeededCapabilities) || q.readyAheadLocked(keyOf(t)) {
			break
		}
		agent, _ := pick(t)
		if agent == "" {
			// The tasks after it wait for the pass too, so none
			// overtakes it.
			break
		}
		t.assignTo(agent, now)
		snap := t.Clone()
		if len(assigned) == 0 {
			writes = slices.Clone(snaps)
		}
		writes[i] = snap
		assigned = append(assigned, snap)
	}
	return writes, assigned
}

// readyAheadLocked reports whether a ready task that is not paused comes
// before k in scheduling order (or there are too many groups to tell
// cheaply). Caller holds q.mu.
func (q *Queue) readyAheadLocked(k key) bool {
	if len(q.idx.groups) > maxAheadScan {
		return true
	}
	for _, g := range q.idx.groups {
		if q.idx.head(g) && g.items[0].key.less(k) && !q.pausedLocked(g.pri, g.needed) {
			return true
		}
	}
	return false
}

// undoAssign puts back in the queue the tasks of a pass whose write
// failed. prevHist holds each task's history before its assignment. A
// task changed since (cancelled, say) keeps that change. The generation
// stays where the assignment put it: it was never handed out, and a write
// that landed after all is fenced by the next assignment's.
func (q *Queue) undoAssign(snaps []*Task, prevHist [][]Event, now int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, s := range snaps {
		t := q.live[s.ID]
		if t == nil || t.Version != s.Version || t.Status != StatusAssigned {
			continue
		}
		q.dropHeld(t)
		q.count(StatusAssigned, t.Priority, -1)
		q.count(StatusQueued, t.Priority, +1)
		t.Status = StatusQueued
		t.AssignedTo, t.AssignedAt = nil, nil
		gen := t.Generation
		t.Attempts = slices.DeleteFunc(slices.Clone(t.Attempts), func(a Attempt) bool { return a.Generation == gen })
		t.History = prevHist[i]
		t.Version++
		q.idx.add(t, now)
	}
}

// endLocked takes an assigned task out of memory as it ends (to status
// to), while its end is written. Caller holds q.mu.
func (q *Queue) endLocked(t *Task, to Status) {
	delete(q.live, t.ID)
	q.dropSubmitter(t)
	q.dropHeld(t)
	q.count(StatusAssigned, t.Priority, -1)
	q.count(to, t.Priority, +1)
}

// undoEnd puts back a task endLocked took out, unchanged, when the write
// of its end failed. The version goes above the failed write's (ver),
// which may have landed all the same: the task's next write must win.
func (q *Queue) undoEnd(t *Task, to Status, ver uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.live[t.ID]; ok {
		return // back by another way (cannot happen while it is in the live table)
	}
	q.count(to, t.Priority, -1)
	q.count(StatusAssigned, t.Priority, +1)
	q.live[t.ID] = t
	q.perSubmitter[t.SubmittedBy]++
	addHeld(q.held, t)
	t.Version = max(t.Version, ver) + 1
}
