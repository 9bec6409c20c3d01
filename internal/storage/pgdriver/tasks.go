package pgdriver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/agentcom/agentcom/internal/storage"
)

// The tasks domain's tables (migrations/0002_tasks.sql): agentcom_tasks
// (live), agentcom_task_dead_letter, agentcom_task_workflow, and
// agentcom_task_archive (0006_task_archive.sql).
//
// Versions: a write never replaces a row with an older one. Put's upsert
// skips rows the dead letter holds at the same version or above, and then,
// in the same transaction, deletes any of its rows the dead letter holds:
// under READ COMMITTED the first statement may not see a move that
// commits while it waits on the row's lock, the second (a new snapshot)
// does. Multi-row statements take their rows in id order, so concurrent
// operations lock in one order and cannot deadlock.

const taskColumns = "id, version, status, priority, submitted_by, assigned_to, created_at, updated_at, body"

// taskColumnsOnly is taskColumns with a NULL body, for
// TaskFilter.ColumnsOnly (scanTask reads it as a nil Body).
const taskColumnsOnly = "id, version, status, priority, submitted_by, assigned_to, created_at, updated_at, NULL::bytea"

// Tasks implements storage.Driver.
func (d *Driver) Tasks() storage.TaskStore { return taskStore{d} }

type taskStore struct{ d *Driver }

func taskTableName(t storage.TaskTable) (string, error) {
	switch t {
	case storage.TasksLive:
		return "agentcom_tasks", nil
	case storage.TasksDeadLetter:
		return "agentcom_task_dead_letter", nil
	case storage.TasksArchive:
		return "agentcom_task_archive", nil
	}
	return "", fmt.Errorf("tasks: no table %d", t)
}

// taskArrays are rows as column arrays, for unnest.
type taskArrays struct {
	ids, statuses, submitters, holders []string
	versions, created, updated         []int64
	priorities                         []int32
	bodies                             [][]byte
}

// arraysOf checks rows and returns them as arrays in id order, one row
// per task (the highest version of any repeated id).
func arraysOf(rows []storage.TaskRow) (*taskArrays, error) {
	sorted := slices.Clone(rows)
	slices.SortStableFunc(sorted, func(a, b storage.TaskRow) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		switch {
		case a.Version > b.Version:
			return -1
		case a.Version < b.Version:
			return 1
		}
		return 0
	})
	sorted = slices.CompactFunc(sorted, func(a, b storage.TaskRow) bool { return a.ID == b.ID })
	a := &taskArrays{}
	for i := range sorted {
		r := &sorted[i]
		if err := checkTaskRow(r); err != nil {
			return nil, err
		}
		body := r.Body
		if body == nil {
			body = []byte{}
		}
		a.ids = append(a.ids, r.ID)
		a.versions = append(a.versions, int64(r.Version))
		a.statuses = append(a.statuses, r.Status)
		a.priorities = append(a.priorities, int32(r.Priority))
		a.submitters = append(a.submitters, r.SubmittedBy)
		a.holders = append(a.holders, r.AssignedTo)
		a.created = append(a.created, r.CreatedAt)
		a.updated = append(a.updated, r.UpdatedAt)
		a.bodies = append(a.bodies, body)
	}
	return a, nil
}

// checkTaskRow rejects a row the tables cannot hold.
func checkTaskRow(r *storage.TaskRow) error {
	if !storage.ValidTaskID(r.ID) {
		return fmt.Errorf("task %.64q: %w", r.ID, storage.ErrReservedTaskID)
	}
	if r.Version > math.MaxInt64 || r.Priority > math.MaxInt32 || r.Priority < math.MinInt32 {
		return fmt.Errorf("task %s: version or priority out of range", r.ID)
	}
	return nil
}

func (a *taskArrays) args() []any {
	return []any{a.ids, a.versions, a.statuses, a.priorities, a.submitters, a.holders, a.created, a.updated, a.bodies}
}

// The versioned upserts from the unnested arrays $1..$9 (see arraysOf):
// an existing row is only replaced by a newer version.
const (
	taskUnnest = `SELECT r.* FROM unnest($1::text[], $2::bigint[], $3::text[], $4::integer[], $5::text[], $6::text[],
			$7::bigint[], $8::bigint[], $9::bytea[]) AS r(` + taskColumns + `)`
	taskUpsert = ` ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, status = EXCLUDED.status,
			priority = EXCLUDED.priority, submitted_by = EXCLUDED.submitted_by, assigned_to = EXCLUDED.assigned_to,
			created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, body = EXCLUDED.body
		WHERE t.version < EXCLUDED.version`
	// putLive skips rows the dead letter or the archive holds at their
	// version or above.
	putLive = `INSERT INTO agentcom_tasks AS t (` + taskColumns + `) ` + taskUnnest + `
		WHERE NOT EXISTS (SELECT 1 FROM agentcom_task_dead_letter d WHERE d.id = r.id AND d.version >= r.version)
		AND NOT EXISTS (SELECT 1 FROM agentcom_task_archive a WHERE a.id = r.id AND a.version >= r.version)
		ORDER BY r.id` + taskUpsert
	// dropMoved deletes, after putLive, the rows a move committed while
	// putLive waited (see the top of the file).
	dropMoved = `DELETE FROM agentcom_tasks t WHERE t.id = ANY($1) AND (
		EXISTS (SELECT 1 FROM agentcom_task_dead_letter d WHERE d.id = t.id AND d.version >= t.version)
		OR EXISTS (SELECT 1 FROM agentcom_task_archive a WHERE a.id = t.id AND a.version >= t.version))`
	// putRetried follows the removal of the dead-letter row.
	putRetried = `INSERT INTO agentcom_tasks AS t (` + taskColumns + `) ` + taskUnnest + ` ORDER BY r.id` + taskUpsert
	putDead    = `INSERT INTO agentcom_task_dead_letter AS t (` + taskColumns + `) ` + taskUnnest + ` ORDER BY r.id` + taskUpsert
)

func scanTask(row pgx.Row) (storage.TaskRow, error) {
	var r storage.TaskRow
	var ver int64
	var pri int32
	err := row.Scan(&r.ID, &ver, &r.Status, &pri, &r.SubmittedBy, &r.AssignedTo, &r.CreatedAt, &r.UpdatedAt, &r.Body)
	r.Version, r.Priority = uint64(ver), int(pri)
	return r, err
}

// Load implements storage.TaskStore. It reads one snapshot. The tables
// never hold a task twice here: every move is one transaction.
func (s taskStore) Load(ctx context.Context, l storage.TaskLoad) error {
	err := pgx.BeginTxFunc(ctx, s.d.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		for _, table := range []storage.TaskTable{storage.TasksLive, storage.TasksDeadLetter} {
			if err := listTasks(ctx, tx, table, storage.TaskFilter{}, func(r storage.TaskRow) error {
				if l.Task == nil {
					return nil
				}
				return l.Task(table, r)
			}); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, "SELECT key, value FROM agentcom_task_workflow ORDER BY key")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r storage.WorkflowRecord
			if err := rows.Scan(&r.Key, &r.Value); err != nil {
				return err
			}
			if l.Workflow != nil {
				if err := l.Workflow(r); err != nil {
					return err
				}
			}
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("load tasks: %w", err)
	}
	return nil
}

// Put implements storage.TaskStore. Concurrent Puts share transactions
// (group.go): rows and records are checked here, per caller, and
// putTasks writes everyone's together.
func (s taskStore) Put(ctx context.Context, rows []storage.TaskRow, recs []storage.WorkflowRecord) error {
	if len(rows) == 0 && len(recs) == 0 {
		return nil
	}
	for i := range rows {
		if err := checkTaskRow(&rows[i]); err != nil {
			return err
		}
	}
	for _, r := range recs {
		if r.Key == "" {
			return errors.New("put tasks: workflow record without a key")
		}
	}
	if err := s.d.taskPuts.do(ctx, taskPut{rows: rows, recs: recs}); err != nil {
		return fmt.Errorf("put tasks: %w", err)
	}
	return nil
}

// taskPut is one Put call's arguments.
type taskPut struct {
	rows []storage.TaskRow
	recs []storage.WorkflowRecord
}

// putTasks writes puts in one transaction, as if one after the other in
// their order: a task's highest version wins (the upsert's version guard
// makes the order of rows irrelevant), and a workflow key's last record.
func (d *Driver) putTasks(ctx context.Context, puts []taskPut) error {
	var rows []storage.TaskRow
	var recs []storage.WorkflowRecord
	for _, p := range puts {
		rows = append(rows, p.rows...)
		recs = append(recs, p.recs...)
	}
	a, err := arraysOf(rows)
	if err != nil {
		return err
	}
	last := map[string]int{}
	for i, r := range recs {
		last[r.Key] = i
	}
	var putKeys, delKeys []string
	var putVals [][]byte
	for i, r := range recs {
		switch {
		case last[r.Key] != i:
		case r.Value == nil:
			delKeys = append(delKeys, r.Key)
		default:
			putKeys, putVals = append(putKeys, r.Key), append(putVals, r.Value)
		}
	}
	slices.Sort(delKeys)
	// One round trip: the statements go as one pipelined batch, which the
	// server runs as one implicit transaction (all or nothing, committed
	// at the batch's end), instead of BEGIN, each statement and COMMIT
	// waiting for the server in turn while every caller of the group
	// waits too. The statements only write, so none needs an earlier
	// one's answer.
	b := &pgx.Batch{}
	if len(a.ids) > 0 {
		b.Queue(putLive, a.args()...)
		b.Queue(dropMoved, a.ids)
	}
	if len(putKeys) > 0 {
		b.Queue(`INSERT INTO agentcom_task_workflow (key, value)
			SELECT * FROM unnest($1::text[], $2::bytea[]) ORDER BY 1
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, putKeys, putVals)
	}
	if len(delKeys) > 0 {
		b.Queue("DELETE FROM agentcom_task_workflow WHERE key = ANY($1)", delKeys)
	}
	return d.pool.SendBatch(ctx, b).Close()
}

// Delete implements storage.TaskStore.
func (s taskStore) Delete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ids = slices.Sorted(slices.Values(ids))
	err := pgx.BeginFunc(ctx, s.d.pool, func(tx pgx.Tx) error {
		for _, table := range []string{"agentcom_task_archive", "agentcom_task_dead_letter", "agentcom_tasks"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE id = ANY($1)", ids); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete tasks: %w", err)
	}
	return nil
}

// Get implements storage.TaskStore. One statement reads every table, so
// a task moving between them is found in one.
func (s taskStore) Get(ctx context.Context, id string) (storage.TaskRow, storage.TaskTable, error) {
	if !storage.ValidTaskID(id) {
		return storage.TaskRow{}, 0, storage.ErrNotFound
	}
	row := s.d.pool.QueryRow(ctx, `SELECT `+taskColumns+`, 1 FROM agentcom_tasks WHERE id = $1
		UNION ALL SELECT `+taskColumns+`, 2 FROM agentcom_task_dead_letter WHERE id = $1
		UNION ALL SELECT `+taskColumns+`, 3 FROM agentcom_task_archive WHERE id = $1
		ORDER BY 10 LIMIT 1`, id)
	var r storage.TaskRow
	var ver int64
	var pri int32
	var table int
	err := row.Scan(&r.ID, &ver, &r.Status, &pri, &r.SubmittedBy, &r.AssignedTo, &r.CreatedAt, &r.UpdatedAt, &r.Body, &table)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.TaskRow{}, 0, storage.ErrNotFound
	}
	if err != nil {
		return storage.TaskRow{}, 0, fmt.Errorf("get task: %w", err)
	}
	r.Version, r.Priority = uint64(ver), int(pri)
	return r, storage.TaskTable(table), nil
}

// List implements storage.TaskStore.
func (s taskStore) List(ctx context.Context, table storage.TaskTable, f storage.TaskFilter, fn func(storage.TaskRow) error) error {
	if err := listTasks(ctx, s.d.pool, table, f, fn); err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func listTasks(ctx context.Context, q querier, table storage.TaskTable, f storage.TaskFilter, fn func(storage.TaskRow) error) error {
	name, err := taskTableName(table)
	if err != nil {
		return err
	}
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if f.Status != "" {
		add("status = $%d", f.Status)
	}
	if f.Priority != nil {
		add("priority = $%d", int64(*f.Priority))
	}
	if f.AssignedTo != "" {
		add("assigned_to = $%d", f.AssignedTo)
	}
	if f.SubmittedBy != "" {
		add("submitted_by = $%d", f.SubmittedBy)
	}
	if f.CreatedFrom > 0 {
		add("created_at >= $%d", f.CreatedFrom)
	}
	if f.CreatedTo > 0 {
		add("created_at <= $%d", f.CreatedTo)
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	cols := taskColumns
	if f.ColumnsOnly {
		cols = taskColumnsOnly
	}
	rows, err := q.Query(ctx, "SELECT "+cols+" FROM "+name+where+" ORDER BY id", args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanTask(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// MoveToDeadLetter implements storage.TaskStore. The dead-letter rows
// are locked before the live ones, as in RetryFromDeadLetter.
func (s taskStore) MoveToDeadLetter(ctx context.Context, rows []storage.TaskRow) error {
	if len(rows) == 0 {
		return nil
	}
	a, err := arraysOf(rows)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, putDead, a.args()...); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM agentcom_tasks WHERE id = ANY($1)", a.ids)
		return err
	})
	if err != nil {
		return fmt.Errorf("move to dead letter: %w", err)
	}
	return nil
}

// RetryFromDeadLetter implements storage.TaskStore. The conditional
// delete locks the dead-letter row: a concurrent retry waits for it and
// then finds nothing to delete.
func (s taskStore) RetryFromDeadLetter(ctx context.Context, row storage.TaskRow) error {
	a, err := arraysOf([]storage.TaskRow{row})
	if err != nil {
		return err
	}
	errGone := errors.New("gone")
	err = pgx.BeginFunc(ctx, s.d.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM agentcom_task_dead_letter WHERE id = $1 AND version < $2", a.ids[0], a.versions[0])
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errGone
		}
		_, err = tx.Exec(ctx, putRetried, a.args()...)
		return err
	})
	if errors.Is(err, errGone) {
		return storage.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("retry from dead letter: %w", err)
	}
	return nil
}

// archiveTasks moves a batch in one statement: the live rows are picked
// by end time (agentcom_tasks_ended), or among the caller's candidates by
// primary key ($4, when not null), in no order (a sort would read every
// candidate, and LIMIT stops at the batch) and locked (SKIP LOCKED: no wait, so no lock-order deadlock; a
// row a writer holds is left for the next pass), deleted, and upserted
// into the archive by version.
const archiveTasks = `WITH moved AS (
		DELETE FROM agentcom_tasks WHERE id IN (
			SELECT id FROM agentcom_tasks WHERE status = ANY($1) AND updated_at < $2
				AND ($4::text[] IS NULL OR id = ANY($4))
			LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING ` + taskColumns + `),
	ins AS (
		INSERT INTO agentcom_task_archive AS t (` + taskColumns + `) SELECT ` + taskColumns + ` FROM moved ORDER BY id` + taskUpsert + `)
	SELECT id, version, status, priority, submitted_by, assigned_to, created_at, updated_at FROM moved ORDER BY id`

// Archive implements storage.TaskStore.
func (s taskStore) Archive(ctx context.Context, b storage.ArchiveBatch) ([]storage.TaskRow, error) {
	if err := b.Check(); err != nil {
		return nil, err
	}
	rows, err := s.d.pool.Query(ctx, archiveTasks, b.Statuses, b.EndedBefore, b.Limit, b.IDs)
	if err != nil {
		return nil, fmt.Errorf("archive tasks: %w", err)
	}
	defer rows.Close()
	var out []storage.TaskRow
	for rows.Next() {
		var r storage.TaskRow
		var ver int64
		var pri int32
		if err := rows.Scan(&r.ID, &ver, &r.Status, &pri, &r.SubmittedBy, &r.AssignedTo, &r.CreatedAt, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("archive tasks: %w", err)
		}
		r.Version, r.Priority = uint64(ver), int(pri)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive tasks: %w", err)
	}
	return out, nil
}
