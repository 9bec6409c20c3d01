package tasks

import (
	"context"
	"fmt"
)

// Unique keys of archived tasks.
//
// The queue finds a unique key's holder in q.uniq, which a load builds
// from the live table's tasks. The archive is never loaded (it grows
// without bound: loading it would make a start as slow as the whole
// history), so a completed task whose unique_for window is still open
// when it is archived would lose its key at the next restart, and a
// duplicate would run.
//
// Such a key is kept in a workflow record (wfUnique + key: the task id and
// the window's end), loaded at start with the other workflow records. It
// costs one small record per key whose archived holder's window is still
// open, not one per archived task: a key's record is replaced when
// another task takes the key, and deleted once the window passes. A load
// reads those records only, never an archived task's body.
//
// The archive pass writes the records before it moves anything
// (recordUniques): every ended task that holds an open window then has
// its record, and a task ending during the pass is too recent to move
// (the retention is at least MinRetention), so no task reaches the
// archive without its key's record. The pass also forgets (in memory and
// on disk) the keys whose holder ended and whose window passed: those keys
// are free, so q.uniq stays the size of the keys still held.
//
// Dependencies need no index: a dependency that is not live is read from
// the tables (statusOf, which Get serves from the archive too), and the
// tasks that wait on a dependency are live, so their edges are loaded.
// The edges of archived tasks are dropped at their move, so Dependents
// names the same tasks before a restart as after it.

// uniqueRecord is the stored form of an archived task's unique key.
type uniqueRecord struct {
	ID    string `json:"id"`
	Until int64  `json:"until"`
}

// archivedUniques is the unique keys the workflow records keep, the
// start of a load's q.uniq.
func archivedUniques(wf workflowState) map[string]uniqEntry {
	uniq := make(map[string]uniqEntry, len(wf.uniques))
	for k, e := range wf.uniques {
		uniq[k] = e
	}
	return uniq
}

// maxUniqueRecords bounds one write of unique key records.
const maxUniqueRecords = 1000

// recordUniques writes the record of every key held by an ended task
// whose window is open, deletes the records of keys whose holder ended
// and whose window passed, and forgets those keys in memory. It returns
// how many records it wrote or deleted.
func (q *Queue) recordUniques(ctx context.Context) (int, error) {
	// Serialized with unique submissions, so no key changes holder
	// between the look and the write.
	q.uniqMu.Lock()
	defer q.uniqMu.Unlock()
	now := q.now().UnixMilli()
	var recs []wfRecord
	var keys []string
	q.mu.Lock()
	for k, e := range q.uniq {
		if _, active := q.live[e.id]; active {
			continue
		}
		switch {
		case e.until > now && e.rec != e.id:
			r, err := putRecord(wfUnique+k, uniqueRecord{ID: e.id, Until: e.until})
			if err != nil {
				q.mu.Unlock()
				return 0, err
			}
			recs, keys = append(recs, r), append(keys, k)
		case e.until <= now && e.rec == "":
			delete(q.uniq, k) // free, and nothing on disk
		case e.until <= now:
			recs, keys = append(recs, deleteRecord(wfUnique+k)), append(keys, k)
		}
	}
	q.mu.Unlock()
	done := 0
	for len(recs) > 0 {
		n := min(len(recs), maxUniqueRecords)
		if err := q.write(ctx, recs[:n], nil); err != nil {
			return 0, fmt.Errorf("record unique keys: %w", err)
		}
		q.mu.Lock()
		for i, k := range keys[:n] {
			if recs[i].val == nil {
				delete(q.uniq, k)
				continue
			}
			e := q.uniq[k]
			e.rec = e.id
			q.uniq[k] = e
		}
		q.mu.Unlock()
		recs, keys, done = recs[n:], keys[n:], done+n
	}
	return done, nil
}
