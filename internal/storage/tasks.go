package storage

import (
	"context"
	"errors"
	"fmt"
)

// TaskTable names one of the tasks domain's two tables.
type TaskTable int

const (
	// TasksLive holds every task that is not dead-lettered: queued,
	// assigned, waiting, scheduled, and the ended ones (completed,
	// cancelled).
	TasksLive TaskTable = iota + 1
	// TasksDeadLetter holds the dead-lettered tasks.
	TasksDeadLetter
	// TasksArchive holds ended tasks past their retention, moved out of
	// the live table by Archive so that the live table (and the load at
	// start) stays the size of recent work. Get and List still read it;
	// Load does not.
	TasksArchive
)

func (t TaskTable) String() string {
	switch t {
	case TasksLive:
		return "live"
	case TasksDeadLetter:
		return "dead letter"
	case TasksArchive:
		return "archive"
	}
	return "unknown task table"
}

// TaskRow is one stored task: the columns a driver may index, and Body,
// the domain's encoding of the whole task (JSON), which is the truth.
// The domain fills every column on writes; Get and List fill them all
// on reads (Load: see TaskLoad).
type TaskRow struct {
	ID string
	// Version orders the writes of one task: a row is only ever replaced
	// by a row with a higher version (see TaskStore.Put).
	Version     uint64
	Status      string
	Priority    int
	SubmittedBy string
	AssignedTo  string // "" when not assigned
	CreatedAt   int64  // Unix ms
	UpdatedAt   int64  // Unix ms
	Body        []byte
}

// WorkflowRecord is one of the tasks domain's workflow records (pauses,
// periodic schedules): an opaque value under a key of the domain's
// choosing. In a write, a nil Value deletes the record.
type WorkflowRecord struct {
	Key   string
	Value []byte
}

// TaskFilter narrows a listing by the indexed columns. Zero values match
// everything. The domain applies its finer filters (text, capabilities,
// attempts) and its order to the rows returned.
type TaskFilter struct {
	Status      string
	Priority    *int
	AssignedTo  string
	SubmittedBy string
	// CreatedFrom and CreatedTo bound CreatedAt, inclusive; 0 is no
	// bound.
	CreatedFrom, CreatedTo int64
	// ColumnsOnly: List leaves Body nil (a driver need not read or send
	// the bodies). A listing that pages by the columns and reads its
	// page back by id (Get) uses it, so a request over a deep table does
	// not carry every body.
	ColumnsOnly bool
}

// Matches reports whether r passes f. Drivers that cannot filter in
// their query use it.
func (f TaskFilter) Matches(r *TaskRow) bool {
	switch {
	case f.Status != "" && r.Status != f.Status,
		f.Priority != nil && r.Priority != *f.Priority,
		f.AssignedTo != "" && r.AssignedTo != f.AssignedTo,
		f.SubmittedBy != "" && r.SubmittedBy != f.SubmittedBy,
		f.CreatedFrom > 0 && r.CreatedAt < f.CreatedFrom,
		f.CreatedTo > 0 && r.CreatedAt > f.CreatedTo:
		return false
	}
	return true
}

// TaskLoad receives the whole state at Load. Rows and records handed to
// the functions (their Body and Value slices included) are valid only
// during the call: a driver may hand out its own buffers. Load's rows
// carry ID, Version and Body only (the other columns may be zero): the
// domain decodes every body at load anyway, and a driver that keeps no
// separate columns would otherwise decode each body twice.
type TaskLoad struct {
	Task     func(table TaskTable, r TaskRow) error
	Workflow func(r WorkflowRecord) error
}

// ArchiveBatch selects the tasks one Archive call moves.
type ArchiveBatch struct {
	// Statuses are the statuses that may move (the domain's ended ones
	// that no operator still acts on).
	Statuses []string
	// EndedBefore: only rows whose UpdatedAt (Unix ms) is before it move.
	// An ended task is never updated again, so UpdatedAt is its end.
	EndedBefore int64
	// Limit bounds the batch (positive), so one call holds the tables
	// for a bounded time.
	Limit int
	// IDs, when not nil (at most Limit), restrict the batch to these
	// tasks: the caller (the tasks domain, which keeps its ended tasks
	// and their end times in memory) names the candidates, and the driver
	// reads those rows instead of scanning the live table. A row still
	// moves only when Statuses and EndedBefore select it; unknown ids are
	// ignored.
	IDs []string
}

// MaxArchiveBatch bounds ArchiveBatch.Limit.
const MaxArchiveBatch = 10_000

// ErrReservedTaskID refuses a task id a driver cannot store (empty, too
// long, or colliding with the embedded driver's workflow keys).
var ErrReservedTaskID = errors.New("storage: task id is empty, too long or reserved")

// MaxTaskIDLen bounds a task id.
const MaxTaskIDLen = 256

// ValidTaskID reports whether a driver accepts id.
func ValidTaskID(id string) bool {
	return id != "" && len(id) <= MaxTaskIDLen && !(len(id) >= 3 && id[:3] == "wf:")
}

// TaskStore is the tasks domain's storage: a live table, a dead letter,
// and the workflow records. Every method is atomic. The queue runs in one
// process at a time (in a cluster, on the elected leader), but its
// writers run concurrently, so the version rules below hold under
// concurrent calls.
type TaskStore interface {
	// Load hands every task of the live table and the dead letter (never
	// the archive) and every workflow record to
	// l, each task once. A task found in both tables (a crash in an
	// older hub's two-step move, or one table restored from a backup)
	// keeps the copy with the higher version, and the other is removed.
	Load(ctx context.Context, l TaskLoad) error

	// Put writes task rows to the live table and workflow records, in
	// one commit. A task row is skipped (and the call still succeeds)
	// when the live table holds the task at the row's version or above
	// (a later change committed first), or when the dead letter or the
	// archive does (a snapshot older than the task's move there must not
	// bring it back).
	Put(ctx context.Context, rows []TaskRow, recs []WorkflowRecord) error

	// Delete removes tasks from every table; missing ids are ignored.
	Delete(ctx context.Context, ids []string) error

	// Get returns a task and the table holding it (live first, then the
	// dead letter, then the archive), or ErrNotFound.
	Get(ctx context.Context, id string) (TaskRow, TaskTable, error)

	// List calls fn for every row of table that f matches, in id order,
	// until fn returns an error (which List returns). Rows are valid
	// only during the call.
	List(ctx context.Context, table TaskTable, f TaskFilter, fn func(TaskRow) error) error

	// MoveToDeadLetter puts rows in the dead letter and removes the
	// tasks from the live table, all in one commit. A row is skipped in
	// the dead letter when it holds the task at the row's version or
	// above.
	MoveToDeadLetter(ctx context.Context, rows []TaskRow) error

	// RetryFromDeadLetter moves a task back: it removes the dead-letter
	// row and puts row in the live table, in one commit, provided the
	// dead letter holds row.ID at a version below row.Version. Otherwise
	// nothing changes and it returns ErrNotFound, so of two concurrent
	// retries of one task exactly one succeeds.
	RetryFromDeadLetter(ctx context.Context, row TaskRow) error

	// Archive moves up to b.Limit rows of the live table that b selects
	// to the archive, in one atomic step (a crash leaves each task in
	// exactly one table, never none), and returns the moved rows' columns
	// (Body nil). A row is skipped in the archive when it holds the task
	// at the row's version or above, and a live row is only removed at
	// the version moved (a change committed meanwhile stays live, to be
	// moved by a later call).
	Archive(ctx context.Context, b ArchiveBatch) ([]TaskRow, error)
}

// Check refuses a batch that is not bounded.
func (b ArchiveBatch) Check() error {
	if b.Limit <= 0 || b.Limit > MaxArchiveBatch {
		return fmt.Errorf("archive tasks: batch limit %d not in 1..%d", b.Limit, MaxArchiveBatch)
	}
	if len(b.Statuses) == 0 {
		return errors.New("archive tasks: no status selected")
	}
	if len(b.IDs) > b.Limit {
		return fmt.Errorf("archive tasks: %d candidates over the batch limit %d", len(b.IDs), b.Limit)
	}
	return nil
}
