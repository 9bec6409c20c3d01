// Package resilience keeps the hub's tables safe: verified backups on a
// schedule, compaction, corruption detection with automatic restore (or a
// loud degraded mode when no good backup exists), manual restore, restore
// drills, and the storage health view.
//
// One Coordinator serializes backup, compaction, restore and drill (one
// operation at a time, one table at a time), so they never compete for a
// table. Health is read without waiting for them. Methods that answer an
// admin request return the JSON response itself (see the *Response and
// *Result types); errors callers act on are sentinels.
//
// Startup order: OpenDB (checks every table, restores or degrades the
// damaged ones) → New → domain packages load and RegisterReloader →
// NoteStartup (publishes what OpenDB did) → Start (schedules).
package resilience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/store"
)

// Errors callers test for.
var (
	// ErrUnknownTable: the table id is not one of the hub's tables. The
	// returned error is an *UnknownTableError listing the valid ids.
	ErrUnknownTable = store.ErrUnknownTable
	// ErrNoBackup: a restore found no verified backup; nothing was touched.
	ErrNoBackup = errors.New("no verified backup")
	// ErrBackupNotFound: the named backup does not exist for that table.
	ErrBackupNotFound = errors.New("backup not found")
	// ErrBackupUnusable: the named backup fails verification; nothing was
	// touched.
	ErrBackupUnusable = errors.New("backup fails verification")
	// ErrNotDegraded: AcknowledgeDegraded on a table that is not degraded.
	ErrNotDegraded = errors.New("table is not in degraded mode")
)

// UnknownTableError is returned for a table id the hub does not have.
type UnknownTableError struct {
	Table string   `json:"table"`
	Valid []string `json:"valid_tables"`
}

func (e *UnknownTableError) Error() string {
	return fmt.Sprintf("unknown table %q (valid: %v)", e.Table, e.Valid)
}

// Unwrap makes errors.Is(err, ErrUnknownTable) true.
func (e *UnknownTableError) Unwrap() error { return ErrUnknownTable }

// Config tunes the coordinator. Zero fields take the defaults noted.
type Config struct {
	// BackupDir holds the backups, one subdirectory per table. Default
	// <data>/backups. It is deliberately not stored in any table.
	BackupDir string
	// ScratchDir is where restore drills open backup copies. Default
	// <data>/drill.
	ScratchDir string
	// FirstBackupDelay: the first scheduled backup runs this long after
	// Start (default 1 min), so a fresh hub is protected within minutes.
	FirstBackupDelay time.Duration
	// BackupInterval between scheduled backups (default 24 h).
	BackupInterval time.Duration
	// Retention: verified backups kept per table (default 3).
	Retention int
	// CompactionInterval between scheduled compactions (default 6 h); the
	// first runs one interval after Start.
	CompactionInterval time.Duration
	// CompactThreshold: a table whose fragmentation is below it is skipped
	// unless forced (default 0.10).
	CompactThreshold float64
	// MinWasteBytes: a table wasting less than this is never compacted
	// unless forced and never counts as highly fragmented (default 1 MiB).
	// A small bbolt file always has a few free pages (each commit frees the
	// previous freelist page), which is a large share of a tiny file:
	// without this floor an empty table would read as 25 % fragmented.
	MinWasteBytes int64
	// HighFragmentation: ratio above which health warns (default 0.5).
	HighFragmentation float64
	// StaleBackupAfter: a newest backup older than this is stale (48 h).
	StaleBackupAfter time.Duration
	// DrillInterval: after a scheduled backup, a restore drill runs when
	// the last one is at least this old (default 24 h, i.e. daily).
	DrillInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.FirstBackupDelay, time.Minute)
	def(&c.BackupInterval, 24*time.Hour)
	def(&c.CompactionInterval, 6*time.Hour)
	def(&c.StaleBackupAfter, 48*time.Hour)
	def(&c.DrillInterval, 24*time.Hour)
	if c.Retention <= 0 {
		c.Retention = 3
	}
	if c.CompactThreshold <= 0 {
		c.CompactThreshold = 0.10
	}
	if c.MinWasteBytes <= 0 {
		c.MinWasteBytes = 1 << 20
	}
	if c.HighFragmentation <= 0 {
		c.HighFragmentation = 0.5
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Coordinator runs backups, compaction, restores and drills for one DB.
type Coordinator struct {
	db     *store.DB
	bus    *bus.Bus
	cfg    Config
	log    *slog.Logger
	layout layout
	names  []string

	op chan struct{} // one-slot semaphore: one maintenance operation at a time

	mu          sync.Mutex // guards the fields below; never held across store calls
	started     time.Time
	tables      map[string]*tableState
	history     []CompactionRun // newest first
	lastBackup  *BackupResponse
	lastCompact int64
	lastDrill   int64
	reloaders   map[string][]func(context.Context) error
	gates       map[string][]sync.Locker
	pending     map[string]error // corruption reports not yet handled
	wake        chan struct{}
	running     bool

	wg sync.WaitGroup
}

// tableState is what the coordinator remembers per table.
type tableState struct {
	lastBackupAt     int64 // ms; 0 = none
	lastBackupFile   string
	lastVerifiedAt   int64
	lastBackupError  string
	lastCompactionAt int64
	lastDrillAt      int64
	lastDrillError   string
	lastError        string
	lastErrorAt      int64
	lastRecovery     *RecoveryInfo
	degraded         *marker
}

// RecoveryInfo is the last restore of a table, as shown in health.
type RecoveryInfo struct {
	At           int64    `json:"at"`
	Status       string   `json:"status"` // restored | failed | degraded
	Trigger      string   `json:"trigger"`
	BackupUsed   string   `json:"backup_used,omitempty"`
	Reason       string   `json:"reason,omitempty"`
	ReloadErrors []string `json:"reload_errors,omitempty"`
}

// New returns a coordinator for db, publishing on b (nil: no events) and
// logging to logger (nil: discard). It installs itself as db's storage
// error hook and reads what the backup directory and degraded markers
// already record.
func New(db *store.DB, b *bus.Bus, cfg Config, logger *slog.Logger) *Coordinator {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{
		db: db, bus: b, cfg: cfg, log: logger.With("component", "resilience"),
		layout:    newLayout(db.Dir(), cfg),
		names:     db.Names(),
		op:        make(chan struct{}, 1),
		started:   cfg.Now(),
		tables:    map[string]*tableState{},
		reloaders: map[string][]func(context.Context) error{},
		gates:     map[string][]sync.Locker{},
		pending:   map[string]error{},
		wake:      make(chan struct{}, 1),
	}
	for _, n := range c.names {
		st := &tableState{}
		if files, err := c.layout.listBackups(n); err == nil && len(files) > 0 {
			// A file under a final backup name was verified when written.
			st.lastBackupAt = files[0].Time.UnixMilli()
			st.lastVerifiedAt = st.lastBackupAt
			st.lastBackupFile = files[0].Name
		}
		if m, err := c.layout.readMarker(n); err == nil {
			st.degraded = m
		}
		c.tables[n] = st
	}
	db.SetOnError(c.ReportError)
	return c
}

// BackupDir is the directory holding the backups.
func (c *Coordinator) BackupDir() string { return c.layout.backups }

// Tables lists the table ids the coordinator manages, in DB order.
func (c *Coordinator) Tables() []string { return slices.Clone(c.names) }

// RegisterReloader adds fn to the functions run after table's file was
// replaced (restore, degraded reset): it rebuilds the in-memory state the
// caller derived from the table and reconciles it with the live system
// (tasks held by connected agents, mailbox cursors, subscriptions). It
// runs while the table's gates are held (see RegisterGate).
func (c *Coordinator) RegisterReloader(table string, fn func(ctx context.Context) error) {
	c.mu.Lock()
	c.reloaders[table] = append(c.reloaders[table], fn)
	c.mu.Unlock()
}

// RegisterGate adds a lock that users of table hold around their work
// (e.g. the write side of a package's state lock). A restore locks every
// gate of the table before the file is replaced and unlocks them after the
// reloaders ran, so users pause through the swap and rebuild. A reloader
// must therefore not lock its own table's gates.
func (c *Coordinator) RegisterGate(table string, gate sync.Locker) {
	c.mu.Lock()
	c.gates[table] = append(c.gates[table], gate)
	c.mu.Unlock()
}

// ReportError is the store's error hook: it records a storage error and,
// for damage (store.ErrCorrupt), queues an automatic restore of the table.
// It is called from inside store operations, so it only records and wakes
// the worker started by Start; it never blocks or calls the store.
func (c *Coordinator) ReportError(table string, err error) {
	if err == nil || errors.Is(err, store.ErrClosed) {
		return
	}
	now := c.now().UnixMilli()
	c.mu.Lock()
	if st := c.tables[table]; st != nil {
		st.lastError, st.lastErrorAt = err.Error(), now
	}
	corrupt := errors.Is(err, store.ErrCorrupt)
	if corrupt {
		if _, queued := c.pending[table]; !queued {
			c.pending[table] = err
		}
	}
	c.mu.Unlock()
	if corrupt {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.log.Warn("storage error", "event", "storage_error", "table", table, "error", err.Error(), "corrupt", corrupt)
}

// Start runs the schedules and the corruption worker until ctx is
// cancelled; Wait returns once they stopped. Calling Start twice is an
// error-free no-op.
func (c *Coordinator) Start(ctx context.Context) {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return
	}
	c.running = true
	c.started = c.now()
	c.mu.Unlock()
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.worker(ctx) }()
	go func() { defer c.wg.Done(); c.schedule(ctx) }()
}

// Wait blocks until the goroutines started by Start have returned.
func (c *Coordinator) Wait() { c.wg.Wait() }

// worker handles corruption reports one at a time.
func (c *Coordinator) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		for {
			table, err, ok := c.nextReport()
			if !ok {
				break
			}
			c.handleCorruption(ctx, table, err)
			if ctx.Err() != nil {
				return
			}
		}
	}
}

func (c *Coordinator) nextReport() (string, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.names {
		if err, ok := c.pending[n]; ok {
			delete(c.pending, n)
			return n, err, true
		}
	}
	return "", nil, false
}

// HandlePending handles the corruption reports queued so far, without
// Start: for tools and tests that drive the coordinator directly.
func (c *Coordinator) HandlePending(ctx context.Context) {
	for {
		table, err, ok := c.nextReport()
		if !ok {
			return
		}
		c.handleCorruption(ctx, table, err)
	}
}

// schedule runs the timed backups (each followed by a drill when one is
// due) and compactions. Timers are re-armed after each run.
func (c *Coordinator) schedule(ctx context.Context) {
	backup := time.NewTimer(c.cfg.FirstBackupDelay)
	compact := time.NewTimer(c.cfg.CompactionInterval)
	defer backup.Stop()
	defer compact.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-backup.C:
			if _, err := c.backup(ctx, TriggerScheduled); err != nil && ctx.Err() == nil {
				c.log.Error("scheduled backup", "event", "scheduled_backup", "error", err.Error())
			}
			c.mu.Lock()
			due := c.cfg.Now().Sub(time.UnixMilli(c.lastDrill)) >= c.cfg.DrillInterval
			c.mu.Unlock()
			if due && ctx.Err() == nil {
				if _, err := c.Drill(ctx); err != nil && ctx.Err() == nil {
					c.log.Error("scheduled restore drill", "event", "scheduled_restore_drill", "error", err.Error())
				}
			}
			backup.Reset(c.cfg.BackupInterval)
		case <-compact.C:
			if _, err := c.compactAll(ctx, false, TriggerScheduled); err != nil && ctx.Err() == nil {
				c.log.Error("scheduled compaction", "event", "scheduled_compaction", "error", err.Error())
			}
			compact.Reset(c.cfg.CompactionInterval)
		}
	}
}

// lockOp takes the maintenance slot, or gives up when ctx ends.
func (c *Coordinator) lockOp(ctx context.Context) error {
	select {
	case c.op <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Coordinator) unlockOp() { <-c.op }

// table returns the store table for a known id.
func (c *Coordinator) table(name string) (*store.Table, error) {
	if t := c.db.Table(name); t != nil {
		return t, nil
	}
	return nil, &UnknownTableError{Table: name, Valid: c.Tables()}
}

func (c *Coordinator) state(name string) *tableState { return c.tables[name] }

func (c *Coordinator) now() time.Time { return c.cfg.Now() }

// reason renders an error as the plain string events and results carry.
func reason(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func ms(d time.Duration) int64 { return d.Milliseconds() }
