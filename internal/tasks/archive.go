package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/startstop"
	"github.com/agentcom/agentcom/internal/storage"
)

// Retention of ended tasks: after it, they leave the live table (which the
// hub loads at start and scans for listings of ended tasks) for the
// archive, which GET /api/tasks/{id}, `task show` and the dashboard still
// read.
//
// What moves: completed and cancelled tasks, whose ended state no one acts
// on any more. Dead-lettered tasks stay in the dead letter, which is an
// operator's to-do list (retry or delete), whatever their age.
const (
	// DefaultRetention is how long an ended task stays live.
	DefaultRetention = 7 * 24 * time.Hour
	// MinRetention and MaxRetention bound a configured retention: under an
	// hour would archive tasks operators are still looking at, and over
	// ten years is a mistake (use RetentionForever).
	MinRetention = time.Hour
	MaxRetention = 10 * 365 * 24 * time.Hour
	// RetentionForever disables archiving.
	RetentionForever time.Duration = -1
	// DefaultArchiveInterval is how often the archive pass runs.
	DefaultArchiveInterval = 10 * time.Minute
	// DefaultArchiveBatch is how many tasks one store operation moves.
	DefaultArchiveBatch = 1000
)

// archivedStatuses are the statuses the archive takes.
func archivedStatuses() []string { return []string{string(StatusCompleted), string(StatusCancelled)} }

// ArchiveConfig tunes the archive service. Zero fields take the defaults.
type ArchiveConfig struct {
	// Retention: tasks that ended longer ago are archived.
	// RetentionForever disables the service.
	Retention time.Duration
	// Interval between passes.
	Interval time.Duration
	// BatchSize bounds one store operation (at most
	// storage.MaxArchiveBatch).
	BatchSize int
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// WithDefaults fills the zero fields.
func (c ArchiveConfig) WithDefaults() ArchiveConfig {
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.Interval == 0 {
		c.Interval = DefaultArchiveInterval
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultArchiveBatch
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Check refuses a configuration out of bounds (after WithDefaults).
func (c ArchiveConfig) Check() error {
	if c.Retention != RetentionForever && (c.Retention < MinRetention || c.Retention > MaxRetention) {
		return fmt.Errorf("task retention %s: must be between %s and %s, or forever", c.Retention, MinRetention, MaxRetention)
	}
	if c.Interval <= 0 || c.Interval > 24*time.Hour {
		return fmt.Errorf("task archive interval %s: must be positive and at most 24h", c.Interval)
	}
	if c.BatchSize <= 0 || c.BatchSize > storage.MaxArchiveBatch {
		return fmt.Errorf("task archive batch %d: must be between 1 and %d", c.BatchSize, storage.MaxArchiveBatch)
	}
	return nil
}

// Enabled reports whether tasks are archived at all.
func (c ArchiveConfig) Enabled() bool { return c.Retention != RetentionForever }

// ParseRetention reads a retention as an operator writes it: a Go
// duration ("168h"), a number of days ("7d"), or "forever"/"off", which
// disable archiving. Zero and out-of-bounds values are refused, never
// taken as "disabled".
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	switch s {
	case "forever", "off", "never":
		return RetentionForever, nil
	case "":
		return 0, errors.New("task retention: empty (give a duration such as 168h or 7d, or forever)")
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || fmt.Sprint(n) != days || n <= 0 || n > int(MaxRetention/(24*time.Hour)) {
			return 0, fmt.Errorf("task retention %q: want a whole number of days between 1 and %d, a duration, or forever", s, MaxRetention/(24*time.Hour))
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("task retention %q: %w (or give forever)", s, err)
		}
	}
	if err := (ArchiveConfig{Retention: d, Interval: 1, BatchSize: 1}).Check(); err != nil {
		return 0, err
	}
	return d, nil
}

// ArchiveResult is what one pass did.
type ArchiveResult struct {
	// Moved is how many tasks left the live table for the archive.
	Moved int
	// Batches is how many store operations the pass made.
	Batches int
	// Cutoff: tasks that ended before it (Unix ms) were taken.
	Cutoff int64
}

// Archiver is the maintenance service that archives ended tasks past
// their retention. In a cluster it runs on the leader only (the queue
// does).
type Archiver struct {
	q   *Queue
	cfg ArchiveConfig
	// svc runs the passes every Interval. The first comes an Interval
	// after start, not at once: a restarting hub's CPU goes to loading
	// and serving first.
	svc startstop.Service
	// passes receives every pass's result when a test listens (never
	// blocks the service).
	passes chan ArchiveResult
}

// NewArchiver returns the service over q. cfg must pass Check after
// WithDefaults.
func NewArchiver(q *Queue, cfg ArchiveConfig) (*Archiver, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	a := &Archiver{q: q, cfg: cfg, passes: make(chan ArchiveResult, 1)}
	a.svc = startstop.Every("task_archive", cfg.Interval, a.pass)
	return a, nil
}

// Passes delivers the result of each pass the service runs (the latest
// one when the reader is late): the test signal.
func (a *Archiver) Passes() <-chan ArchiveResult { return a.passes }

// Start implements startstop.Service: a pass every Interval.
func (a *Archiver) Start(ctx context.Context) error { return a.svc.Start(ctx) }

// Stop implements startstop.Service; it returns once no pass runs.
func (a *Archiver) Stop() { a.svc.Stop() }

// String names the service in the hub's logs.
func (a *Archiver) String() string { return "task_archive" }

func (a *Archiver) pass(ctx context.Context) {
	res, err := a.RunOnce(ctx)
	if err != nil && ctx.Err() == nil {
		a.cfg.Log.Warn("task archive pass failed", "component", "tasks", "event", "task_archive_failed", "moved", res.Moved, "err", err)
	} else if res.Moved > 0 {
		a.cfg.Log.Info("ended tasks archived", "component", "tasks", "event", "tasks_archived", "moved", res.Moved,
			"retention", a.cfg.Retention.String())
	}
	// Latest result wins: drop an unread one.
	select {
	case <-a.passes:
	default:
	}
	select {
	case a.passes <- res:
	default:
	}
}

// RunOnce archives every task that ended before now minus the retention,
// a batch per store operation, until a batch comes back short. Each
// batch is atomic; a failure stops the pass with what was moved so far.
func (a *Archiver) RunOnce(ctx context.Context) (ArchiveResult, error) {
	res := ArchiveResult{}
	if !a.cfg.Enabled() {
		return res, nil
	}
	res.Cutoff = a.cfg.Now().Add(-a.cfg.Retention).UnixMilli()
	// Keys first: no task moves without its unique key's record.
	if _, err := a.q.recordUniques(ctx); err != nil {
		return res, fmt.Errorf("archive tasks: %w", err)
	}
	if err := a.q.knowEnded(ctx); err != nil {
		return res, fmt.Errorf("archive tasks: %w", err)
	}
	for ctx.Err() == nil {
		n, more, err := a.q.archive(ctx, storage.ArchiveBatch{Statuses: archivedStatuses(), EndedBefore: res.Cutoff, Limit: a.cfg.BatchSize})
		res.Moved += n
		if more || n > 0 {
			res.Batches++
		}
		if err != nil {
			return res, fmt.Errorf("archive tasks: %w", err)
		}
		if !more {
			return res, nil
		}
	}
	return res, ctx.Err()
}

// archive moves one batch to the archive and drops the moved tasks from
// the queue's counters and dependency edges, so Stats and Dependents say
// what a reload would: ended tasks
// are counted while they are in the live table. (Ended tasks are not in
// the live set or the indexes; their unique keys outlive the move in
// their records, see archive_keys.go.)
//
// The batch's candidates come from the queue's heap of ended tasks
// (archive_due.go) when it is known, else from the store's own selection.
// more says whether another batch may find more.
func (q *Queue) archive(ctx context.Context, b storage.ArchiveBatch) (n int, more bool, err error) {
	q.mu.Lock()
	known := q.ended.known
	q.mu.Unlock()
	var due []endedEntry
	if known {
		due = q.dueEnded(b.EndedBefore, b.Limit)
		if len(due) == 0 {
			return 0, false, nil
		}
		b.IDs = make([]string, len(due))
		for i, e := range due {
			b.IDs[i] = e.id
		}
	}
	rows, err := q.st.Archive(ctx, b)
	if err != nil {
		q.giveBackEnded(due)
		return 0, false, err
	}
	if known {
		more = len(due) == b.Limit
	} else {
		more = len(rows) == b.Limit
	}
	moved := make([]string, len(rows))
	q.mu.Lock()
	for i, r := range rows {
		q.count(Status(r.Status), r.Priority, -1)
		moved[i] = r.ID
	}
	q.dropEdgesLocked(moved)
	q.mu.Unlock()
	return len(rows), more, nil
}
