package boltdriver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/store"
)

// The tasks domain's on-disk format, unchanged from the hub's first
// release:
//   - task_queue holds the live tasks under their id, and the workflow
//     records under "wf:" and the record's key (task ids never start
//     with "wf:");
//   - task_dead_letter holds the dead-lettered tasks under their id;
//   - task_archive holds the archived tasks under their id (created empty
//     in a data directory that predates it);
//   - a task record is its version (8 bytes, big-endian) followed by the
//     body, the task's JSON. The columns of storage.TaskRow are read back
//     from the body's fields of the same names.
//
// Put and the dead-letter moves keep every task in one table at a time:
// a move is one journaled commit over both tables (commitAcross), and a
// Put reads the dead letter inside its task_queue transaction, so a
// snapshot older than a move can never land after it.

// wfPrefix keys the workflow records in task_queue.
const wfPrefix = "wf:"

// Tasks implements storage.Driver.
func (d *Driver) Tasks() storage.TaskStore { return taskStore{d} }

type taskStore struct{ d *Driver }

func (s taskStore) live() *store.Table { return s.d.table(store.TaskQueue) }
func (s taskStore) dead() *store.Table { return s.d.table(store.TaskDeadLetter) }
func (s taskStore) archive() *store.Table {
	return s.d.table(store.TaskArchive)
}

func (s taskStore) tableOf(t storage.TaskTable) (*store.Table, error) {
	switch t {
	case storage.TasksLive:
		return s.live(), nil
	case storage.TasksDeadLetter:
		return s.dead(), nil
	case storage.TasksArchive:
		return s.archive(), nil
	}
	return nil, fmt.Errorf("tasks: no table %d", t)
}

// encodeTask is the stored record of r.
func encodeTask(r *storage.TaskRow) ([]byte, error) {
	if !storage.ValidTaskID(r.ID) {
		return nil, fmt.Errorf("task %.64q: %w", r.ID, storage.ErrReservedTaskID)
	}
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(r.Body)), r.Version), r.Body...), nil
}

// taskColumns are the body's fields that fill a row's columns.
type taskColumns struct {
	Status      string  `json:"status"`
	Priority    int     `json:"priority"`
	SubmittedBy string  `json:"submitted_by"`
	AssignedTo  *string `json:"assigned_to"`
	CreatedAt   int64   `json:"created_at"`
	UpdatedAt   int64   `json:"updated_at"`
}

// splitTask turns a stored record into a row without its columns. The
// body aliases v.
func splitTask(k, v []byte) (storage.TaskRow, error) {
	if len(v) < 8 {
		return storage.TaskRow{}, fmt.Errorf("task %.64q: record too short", k)
	}
	return storage.TaskRow{ID: string(k), Version: binary.BigEndian.Uint64(v), Body: v[8:]}, nil
}

// decodeTask turns a stored record into a row, columns read from the
// body. The body aliases v.
func decodeTask(k, v []byte) (storage.TaskRow, error) {
	r, err := splitTask(k, v)
	if err != nil {
		return r, err
	}
	var c taskColumns
	if err := json.Unmarshal(r.Body, &c); err != nil {
		return storage.TaskRow{}, fmt.Errorf("task %.64q: %w", k, err)
	}
	r.Status, r.Priority, r.SubmittedBy, r.CreatedAt, r.UpdatedAt = c.Status, c.Priority, c.SubmittedBy, c.CreatedAt, c.UpdatedAt
	if c.AssignedTo != nil {
		r.AssignedTo = *c.AssignedTo
	}
	return r, nil
}

func isWorkflowKey(k []byte) bool { return bytes.HasPrefix(k, []byte(wfPrefix)) }

func storedVersion(v []byte) (uint64, bool) {
	if len(v) < 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// Load implements storage.TaskStore.
func (s taskStore) Load(ctx context.Context, l storage.TaskLoad) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The dead letter's versions first, to settle tasks found in both
	// tables as the live table is read.
	deadVer := map[string]uint64{}
	err := s.dead().View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			if ver, ok := storedVersion(v); ok {
				deadVer[string(k)] = ver
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load dead letter: %w", err)
	}
	var staleLive []string
	staleDead := map[string]bool{}
	err = s.live().View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			if isWorkflowKey(k) {
				if l.Workflow == nil {
					return nil
				}
				return l.Workflow(storage.WorkflowRecord{Key: string(k[len(wfPrefix):]), Value: v})
			}
			r, err := splitTask(k, v)
			if err != nil {
				return err
			}
			if dv, ok := deadVer[r.ID]; ok {
				if dv >= r.Version {
					staleLive = append(staleLive, r.ID)
					return nil
				}
				staleDead[r.ID] = true
			}
			if l.Task == nil {
				return nil
			}
			return l.Task(storage.TasksLive, r)
		})
	})
	if err != nil {
		return fmt.Errorf("load tasks: %w", err)
	}
	err = s.dead().View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			if staleDead[string(k)] {
				return nil
			}
			r, err := splitTask(k, v)
			if err != nil {
				return err
			}
			if l.Task == nil {
				return nil
			}
			return l.Task(storage.TasksDeadLetter, r)
		})
	})
	if err != nil {
		return fmt.Errorf("load dead letter: %w", err)
	}
	var ws []write
	for _, id := range staleLive {
		ws = append(ws, write{table: store.TaskQueue, key: []byte(id), del: true})
	}
	for id := range staleDead {
		ws = append(ws, write{table: store.TaskDeadLetter, key: []byte(id), del: true})
	}
	if err := s.d.commitAcross(ctx, ws); err != nil {
		return fmt.Errorf("settle tasks found in both tables: %w", err)
	}
	return nil
}

// Put implements storage.TaskStore.
func (s taskStore) Put(ctx context.Context, rows []storage.TaskRow, recs []storage.WorkflowRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(rows) == 0 && len(recs) == 0 {
		return nil
	}
	vals := make([][]byte, len(rows))
	for i := range rows {
		v, err := encodeTask(&rows[i])
		if err != nil {
			return err
		}
		vals[i] = v
	}
	dead, archive := s.dead(), s.archive()
	err := s.live().Update(func(tx *store.Tx) error {
		// A row goes in when the live table holds no newer version and
		// the dead letter holds no version at or above it. The dead
		// letter is read inside this transaction, and only for tasks the
		// live table lacks: a move commits the dead letter before it
		// deletes from task_queue, so a Put that commits after the
		// delete finds the moved row there, and one that commits before
		// it is undone by the delete.
		skip := make([]bool, len(rows))
		var absent []int
		for i := range rows {
			old, ok := storedVersion(tx.Get([]byte(rows[i].ID)))
			switch {
			case !ok && s.d.moved.absent([]byte(rows[i].ID)):
				// In neither other table (moved.go): nothing to read.
			case !ok:
				absent = append(absent, i)
			case old >= rows[i].Version:
				skip[i] = true
			}
		}
		// The archive likewise (Archive puts there before it deletes
		// here).
		for _, other := range []*store.Table{dead, archive} {
			if len(absent) == 0 {
				break
			}
			err := other.View(func(dtx *store.Tx) error {
				for _, i := range absent {
					if ver, ok := storedVersion(dtx.Get([]byte(rows[i].ID))); ok && ver >= rows[i].Version {
						skip[i] = true
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("read dead letter or archive: %w", err)
			}
		}
		for i := range rows {
			k := []byte(rows[i].ID)
			if skip[i] {
				continue
			}
			// Again, for a task twice in rows.
			if old, ok := storedVersion(tx.Get(k)); ok && old >= rows[i].Version {
				continue
			}
			if err := tx.Put(k, vals[i]); err != nil {
				return err
			}
		}
		for _, r := range recs {
			k := []byte(wfPrefix + r.Key)
			var err error
			if r.Value == nil {
				err = tx.Delete(k)
			} else {
				err = tx.Put(k, r.Value)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put tasks: %w", err)
	}
	return nil
}

// Delete implements storage.TaskStore.
func (s taskStore) Delete(ctx context.Context, ids []string) error {
	var ws []write
	for _, table := range []string{store.TaskQueue, store.TaskDeadLetter, store.TaskArchive} {
		for _, id := range ids {
			if storage.ValidTaskID(id) {
				ws = append(ws, write{table: table, key: []byte(id), del: true})
			}
		}
	}
	if err := s.d.commitAcross(ctx, ws); err != nil {
		return fmt.Errorf("delete tasks: %w", err)
	}
	return nil
}

// Get implements storage.TaskStore.
func (s taskStore) Get(ctx context.Context, id string) (storage.TaskRow, storage.TaskTable, error) {
	if err := ctx.Err(); err != nil {
		return storage.TaskRow{}, 0, err
	}
	if !storage.ValidTaskID(id) {
		return storage.TaskRow{}, 0, storage.ErrNotFound
	}
	for _, table := range []storage.TaskTable{storage.TasksLive, storage.TasksDeadLetter, storage.TasksArchive} {
		tbl, _ := s.tableOf(table)
		var r storage.TaskRow
		found := false
		err := tbl.View(func(tx *store.Tx) error {
			v := tx.Get([]byte(id))
			if v == nil {
				return nil
			}
			var err error
			if r, err = decodeTask([]byte(id), v); err != nil {
				return err
			}
			r.Body, found = slices.Clone(r.Body), true
			return nil
		})
		if err != nil {
			return storage.TaskRow{}, 0, fmt.Errorf("get task: %w", err)
		}
		if found {
			return r, table, nil
		}
	}
	return storage.TaskRow{}, 0, storage.ErrNotFound
}

// List implements storage.TaskStore.
func (s taskStore) List(ctx context.Context, table storage.TaskTable, f storage.TaskFilter, fn func(storage.TaskRow) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tbl, err := s.tableOf(table)
	if err != nil {
		return err
	}
	return tbl.View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			if isWorkflowKey(k) {
				return nil
			}
			r, err := decodeTask(k, v)
			if err != nil {
				return err
			}
			if !f.Matches(&r) {
				return nil
			}
			if f.ColumnsOnly {
				r.Body = nil
			}
			return fn(r)
		})
	})
}

// MoveToDeadLetter implements storage.TaskStore. The dead-letter puts
// come first in the write set, so they are applied before the deletes
// from task_queue (see Put).
func (s taskStore) MoveToDeadLetter(ctx context.Context, rows []storage.TaskRow) error {
	ws := make([]write, 0, 2*len(rows))
	for i := range rows {
		v, err := encodeTask(&rows[i])
		if err != nil {
			return err
		}
		ws = append(ws, write{table: store.TaskDeadLetter, key: []byte(rows[i].ID), value: v, versioned: true})
	}
	for _, r := range rows {
		ws = append(ws, write{table: store.TaskQueue, key: []byte(r.ID), del: true})
	}
	s.d.taskMoves.Lock()
	defer s.d.taskMoves.Unlock()
	s.d.moved.add(keysOf(ws[:len(rows)])...) // before the move can be seen
	if err := s.d.commitAcross(ctx, ws); err != nil {
		return fmt.Errorf("move to dead letter: %w", err)
	}
	return nil
}

// RetryFromDeadLetter implements storage.TaskStore. The check and the
// move run under taskMoves, so nothing else moves the task in between.
func (s taskStore) RetryFromDeadLetter(ctx context.Context, row storage.TaskRow) error {
	v, err := encodeTask(&row)
	if err != nil {
		return err
	}
	s.d.taskMoves.Lock()
	defer s.d.taskMoves.Unlock()
	var ver uint64
	found := false
	err = s.dead().View(func(tx *store.Tx) error {
		ver, found = storedVersion(tx.Get([]byte(row.ID)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("retry from dead letter: %w", err)
	}
	if !found || ver >= row.Version {
		return storage.ErrNotFound
	}
	err = s.d.commitAcross(ctx, []write{
		{table: store.TaskQueue, key: []byte(row.ID), value: v, versioned: true},
		{table: store.TaskDeadLetter, key: []byte(row.ID), del: true},
	})
	if err != nil {
		return fmt.Errorf("retry from dead letter: %w", err)
	}
	return nil
}

// Archive implements storage.TaskStore. It scans task_queue for the
// batch (a body is only decoded when it names one of the statuses), then
// moves it as one journaled commit: the archive puts first, so Get, which
// reads task_queue first, never misses a task in flight, and a Put that
// commits after the deletes finds the archived row (see Put). The deletes
// are versioned: a change committed since the scan stays live.
func (s taskStore) Archive(ctx context.Context, b storage.ArchiveBatch) ([]storage.TaskRow, error) {
	if err := b.Check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	marks := make([][]byte, len(b.Statuses))
	for i, st := range b.Statuses {
		m, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("archive tasks: %w", err)
		}
		marks[i] = append([]byte(`"status":`), m...)
	}
	s.d.taskMoves.Lock()
	defer s.d.taskMoves.Unlock()
	ws, moved, err := s.archiveWrites(b, marks)
	if err != nil {
		return nil, err
	}
	s.d.moved.add(keysOf(ws[:len(moved)])...) // before the move can be seen
	if err := s.d.commitAcross(ctx, ws); err != nil {
		return nil, fmt.Errorf("archive tasks: %w", err)
	}
	return moved, nil
}

// archiveWrites finds Archive's batch and returns the journaled writes
// that move it, and the moved rows. marks are the statuses' JSON fields.
func (s taskStore) archiveWrites(b storage.ArchiveBatch, marks [][]byte) ([]write, []storage.TaskRow, error) {
	var moved []storage.TaskRow
	ws := make([]write, 0, 2*b.Limit)
	errFull := errors.New("batch full")
	err := s.live().View(func(tx *store.Tx) error {
		each := tx.ForEach
		if b.IDs != nil {
			// The caller's candidates: read them, not the whole table.
			each = func(fn func(k, v []byte) error) error {
				seen := make(map[string]bool, len(b.IDs))
				for _, id := range b.IDs {
					if seen[id] {
						continue // moved once
					}
					seen[id] = true
					k := []byte(id)
					if v := tx.Get(k); v != nil {
						if err := fn(k, v); err != nil {
							return err
						}
					}
				}
				return nil
			}
		}
		return each(func(k, v []byte) error {
			if isWorkflowKey(k) || len(v) < 8 {
				return nil
			}
			// A cheap test first: a body of another status does not hold
			// `"status":"<one of them>"` (in a string value the quotes
			// would be escaped; a metadata key may match, and the decode
			// below settles it).
			if !slices.ContainsFunc(marks, func(m []byte) bool { return bytes.Contains(v[8:], m) }) {
				return nil
			}
			r, err := decodeTask(k, v)
			if err != nil {
				return err
			}
			if r.UpdatedAt >= b.EndedBefore || !slices.Contains(b.Statuses, r.Status) {
				return nil
			}
			ws = append(ws, write{table: store.TaskArchive, key: slices.Clone(k), value: slices.Clone(v), versioned: true})
			r.Body = nil
			moved = append(moved, r)
			if len(moved) == b.Limit {
				return errFull
			}
			return nil
		})
	})
	if err != nil && !errors.Is(err, errFull) {
		return nil, nil, fmt.Errorf("archive tasks: scan: %w", err)
	}
	for i := range moved {
		ws = append(ws, write{table: store.TaskQueue, key: ws[i].key, value: ws[i].value[:8], del: true, versioned: true})
	}
	return ws, moved, nil
}

// keysOf returns the keys of ws.
func keysOf(ws []write) [][]byte {
	out := make([][]byte, len(ws))
	for i, w := range ws {
		out[i] = w.key
	}
	return out
}
