package tasks

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/timeid"
)

// Errors callers test for. The wire names of the original protocol are in
// WireReason.
var (
	ErrNotFound        = errors.New("not_found")
	ErrStaleGeneration = errors.New("stale_generation")
	ErrInvalidState    = errors.New("invalid_state")
	ErrNotHolder       = errors.New("not_holder")
	ErrForbidden       = errors.New("forbidden")
	// ErrTooLarge is a submission with a field over its limit (see
	// *LimitError).
	ErrTooLarge = errors.New("too_large")
	// ErrQuota is a submission by a submitter that already holds
	// Config.MaxQueuedPerSubmitter unfinished tasks.
	ErrQuota = errors.New(protocol.CodeQueueQuota)
)

// LimitError names the field of a submission over its limit.
type LimitError struct {
	Field string
	Limit int
	Got   int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %d over the limit of %d", e.Field, e.Got, e.Limit)
}

// Unwrap makes errors.Is(err, ErrTooLarge) hold.
func (e *LimitError) Unwrap() error { return ErrTooLarge }

// StateError refuses an action on a task that exists but is not in a
// state the action applies to (a retry of a task that is not
// dead-lettered, a cancel of one that already ended). It names the state
// the task was found in, so the refusal can say it without a second
// lookup that might see a later state.
type StateError struct {
	TaskID string
	Status Status
	// CancelledBy is who cancelled the task, when it is cancelled.
	CancelledBy string
}

func (e *StateError) Error() string { return fmt.Sprintf("task %s is %s", e.TaskID, e.Status) }

// Unwrap makes errors.Is(err, ErrInvalidState) hold.
func (e *StateError) Unwrap() error { return ErrInvalidState }

// stateError builds the refusal for an action on id that is not live
// (queued or assigned) and not where the action looked: ErrNotFound when
// the task does not exist, else a *StateError with its state.
func (q *Queue) stateError(id string) error {
	t, err := q.Get(id)
	if err != nil {
		return err
	}
	return &StateError{TaskID: id, Status: t.Status, CancelledBy: t.CancelledBy}
}

// WireReason maps an error onto the reason text the original protocol
// puts after "task_complete_failed: ". A report from an agent that does
// not hold the task is stale from that agent's point of view.
func WireReason(err error) string {
	switch {
	case errors.Is(err, ErrStaleGeneration), errors.Is(err, ErrNotHolder):
		return "stale_generation"
	case errors.Is(err, ErrInvalidState):
		return "invalid_state"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	}
	return "internal_error"
}

// Event types published on bus.TopicTasks.
const (
	EventSubmitted  = "task_submitted"
	EventAssigned   = "task_assigned"
	EventAccepted   = "task_accepted"
	EventProgress   = "task_progress"
	EventCompleted  = "task_completed"
	EventFailed     = "task_failed"
	EventRetried    = "task_retried"
	EventReclaimed  = "task_reclaimed"
	EventDeadLetter = "task_dead_letter"
	EventCancelled  = "task_cancelled"
	EventRejected   = "task_rejected"
	EventRecovering = "task_recovering"
	EventVerified   = "task_verified" // a verification check was recorded
)

// EventData is the payload of every task event. One struct serves every
// kind, so it carries its kind in Type (not encoded: the kind is the
// event's type).
type EventData struct {
	Type        string `json:"-"` // EventSubmitted, EventAssigned, ...
	TaskID      string `json:"task_id"`
	AgentID     string `json:"agent_id,omitempty"`
	Generation  int64  `json:"generation"`
	Priority    int    `json:"priority"`
	Status      Status `json:"status"`
	Description string `json:"description,omitempty"`
	Reason      string `json:"reason,omitempty"`
	// WaitMs is queue time for assignments; RunMs is assignment-to-end
	// time for completions and failures.
	WaitMs     int64  `json:"wait_ms,omitempty"`
	RunMs      int64  `json:"run_ms,omitempty"`
	TokensUsed *int64 `json:"tokens_used,omitempty"`
	// Usage is what the agent reported with this completion or failure.
	Usage *protocol.Usage `json:"usage,omitempty"`
}

// Topic is bus.TopicTasks.
func (EventData) Topic() string { return bus.TopicTasks }

// EventType is the kind the queue published it as.
func (d EventData) EventType() string { return d.Type }

// Config tunes the queue.
type Config struct {
	// BackoffBase is the wait before the first retry after a failure; each
	// later failure doubles it, up to BackoffMax. Zero disables backoff.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxDisconnectReclaims dead-letters a task reclaimed this many times
	// because its holder disconnected: a task that kills or cuts off
	// every agent that runs it must not loop forever. Zero disables.
	MaxDisconnectReclaims int
	// MaxMetadataBytes bounds a submitted task's metadata, as JSON.
	MaxMetadataBytes int
	// MaxCapabilities bounds how many needed capabilities a task lists
	// (each at most MaxCapabilityLen bytes).
	MaxCapabilities int
	// MaxQueuedPerSubmitter bounds the unfinished (queued or assigned)
	// tasks one submitter (the agent id of the submitting token) holds.
	MaxQueuedPerSubmitter int
	// Now is the queue's clock (tests); nil is time.Now.
	Now func() time.Time
	// Loaded, when set, counts the stored tasks a load has read so far,
	// for a hub that serves while it loads (GET /health says how far).
	Loaded *atomic.Int64
	// TrackEnded: an archive runs (ArchiveConfig.Enabled). A load then
	// keeps the end times of the live table's ended tasks, which it reads
	// anyway, for the archive passes (archive_due.go); without it the
	// first pass lists the live table for them.
	TrackEnded bool
}

// Default limits of a submission. The description's limit (10,000
// characters) is the protocol's field limit.
const (
	DefaultMaxMetadataBytes      = 64 << 10
	DefaultMaxCapabilities       = 32
	MaxCapabilityLen             = 128
	DefaultMaxQueuedPerSubmitter = 10_000
)

// DefaultConfig is the documented default.
func DefaultConfig() Config {
	return Config{BackoffBase: 5 * time.Second, BackoffMax: 5 * time.Minute, MaxDisconnectReclaims: 5,
		MaxMetadataBytes: DefaultMaxMetadataBytes, MaxCapabilities: DefaultMaxCapabilities,
		MaxQueuedPerSubmitter: DefaultMaxQueuedPerSubmitter}
}

// Queue is the task store and its indexes.
type Queue struct {
	st  storage.TaskStore
	bus *bus.Bus
	cfg Config
	now func() time.Time

	mu   sync.Mutex
	live map[string]*Task // queued and assigned tasks
	// perSubmitter counts the live tasks of each submitter, for
	// MaxQueuedPerSubmitter.
	perSubmitter map[string]int
	// held indexes the assigned tasks by holder, so what an agent holds
	// is found without scanning every live task (a reconnect storm over a
	// deep queue would otherwise hold the lock for seconds).
	held   map[string]map[string]*Task
	idx    *index
	counts map[Status][Lanes]int // records per status and lane, both tables

	// moveMu serializes moves between the live table and the dead letter
	// (each one atomic in the store), so a retry that does not find the
	// task in the dead letter knows it is not there (rather than on its
	// way in) and says where it is.
	moveMu sync.Mutex

	// Workflow state (workflow.go, schedules.go), guarded by mu.
	// dependents: dependency id -> ids of the tasks naming it, and
	// dependsOn the reverse (task id -> its depends_on), over the tasks of
	// the live table and the dead letter: what a load finds, so Dependents
	// answers the same before and after a restart. An archived task's
	// edges are dropped at its move (the archive is not loaded).
	dependents map[string][]string
	dependsOn  map[string][]string
	uniq       map[string]uniqEntry
	paused     map[pauseID]pauseRecord
	timers     delayedHeap // scheduled tasks by run_at
	ended      endedState  // ended tasks by end time, for the archive (archive_due.go)
	// schedules is guarded by wfMu.
	schedules map[string]*Schedule

	// loadedUsage holds the usage reports of the last load until
	// StoredUsage takes them.
	loadedUsage []StoredUsage

	// uniqMu serializes submissions that carry a unique key, from the
	// check to the task being in memory, so concurrent duplicates find
	// the first one. wfMu serializes pause and schedule changes (each is
	// stored, then applied in memory). Lock order: uniqMu, wfMu, mu.
	uniqMu sync.Mutex
	wfMu   sync.Mutex

	ids timeid.Gen // new tasks' ids (id.go)
}

// New opens the queue over st and loads its state.
func New(st storage.TaskStore, b *bus.Bus, cfg Config) (*Queue, error) {
	return NewContext(context.Background(), st, b, cfg)
}

// NewContext is New with a load that stops when ctx ends (a hub shut
// down while it still loads).
func NewContext(ctx context.Context, st storage.TaskStore, b *bus.Bus, cfg Config) (*Queue, error) {
	q := &Queue{st: st, bus: b, cfg: cfg, now: time.Now}
	if cfg.Now != nil {
		q.now = cfg.Now
	}
	if err := q.reload(ctx); err != nil {
		return nil, err
	}
	return q, nil
}

// SetClock replaces the queue's clock (tests).
func (q *Queue) SetClock(now func() time.Time) { q.now = now }

// Reload rebuilds the in-memory state from the store: at start and after
// either table was restored from a backup. (The store settles a task
// found in both tables, which an older hub's crash or a restore of one
// table leaves, by version.)
func (q *Queue) Reload() error {
	return q.reload(context.Background())
}

func (q *Queue) reload(ctx context.Context) error {
	counts := map[Status][Lanes]int{}
	bump := func(s Status, p int) {
		c := counts[s]
		c[min(max(p, 0), Lanes-1)]++
		counts[s] = c
	}
	var live map[string]*Task
	wf := workflowState{pauses: map[pauseID]pauseRecord{}, schedules: map[string]*Schedule{}}
	var withDeps, withKeys []summary
	var usage []StoredUsage
	var ended delayedHeap
	// note counts a task and records its key and dependencies.
	note := func(table storage.TaskTable, s summary) {
		if table == storage.TasksDeadLetter {
			// Counted, and their edges kept: dead-letter tasks are
			// read on demand.
			bump(StatusDeadLetter, s.Priority)
			if len(s.DependsOn) > 0 {
				withDeps = append(withDeps, summary{ID: s.ID, Priority: s.Priority, CreatedAt: s.CreatedAt, DependsOn: s.DependsOn})
			}
			return
		}
		bump(s.Status, s.Priority)
		if q.cfg.TrackEnded && (s.Status == StatusCompleted || s.Status == StatusCancelled) {
			ended = append(ended, endedEntry{due: s.UpdatedAt, id: s.ID})
		}
		if len(s.DependsOn) > 0 {
			withDeps = append(withDeps, summary{ID: s.ID, Priority: s.Priority, CreatedAt: s.CreatedAt, DependsOn: s.DependsOn})
		}
		if s.UniqueKey != "" {
			withKeys = append(withKeys, summary{ID: s.ID, CreatedAt: s.CreatedAt, UniqueKey: s.UniqueKey, UniqueUntil: s.UniqueUntil})
		}
	}
	dec := startLoadDecoder(q.cfg.Loaded)
	defer dec.stop()
	err := q.st.Load(ctx, storage.TaskLoad{
		Workflow: func(r storage.WorkflowRecord) error { return loadWorkflowRecord(&wf, r.Key, r.Value) },
		Task: func(table storage.TaskTable, r storage.TaskRow) error {
			return dec.add(ctx, table, r) // summarized or decoded on every core (reload_decode.go)
		},
	})
	if err != nil {
		return fmt.Errorf("load tasks: %w", err)
	}
	decoded, err := dec.wait()
	if err != nil {
		return fmt.Errorf("load tasks: %w", err)
	}
	active := 0
	for _, d := range decoded {
		if d.t != nil {
			active++
		}
	}
	live = make(map[string]*Task, active)
	now := q.now().UnixMilli()
	var lastID uint64 // the highest stored id new ones must stay above (id.go)
	for _, d := range decoded {
		lastID = max(lastID, followed(d.s.ID, now))
		if t := d.t; t != nil {
			if d.table == storage.TasksLive && t.Status.Active() {
				live[t.ID] = t
			}
			if t.Usage != nil {
				usage = append(usage, usageOf(t))
			}
		}
		note(d.table, d.s)
	}
	q.ids.Raise(lastID)
	held := map[string]map[string]*Task{}
	var timers delayedHeap
	var waiting []string
	queued := make([]*Task, 0, len(live))
	for _, t := range live {
		switch t.Status {
		case StatusQueued:
			queued = append(queued, t)
		case StatusAssigned:
			addHeld(held, t)
		case StatusScheduled:
			timers = append(timers, delayed{due: t.RunAt, id: t.ID})
		case StatusWaiting:
			waiting = append(waiting, t.ID)
		}
	}
	heap.Init(&timers)
	idx := loadIndex(queued, now)
	dependents, dependsOn := map[string][]string{}, make(map[string][]string, len(withDeps))
	// In scheduling order (lane, creation, id), as sortTasks would.
	slices.SortFunc(withDeps, func(a, b summary) int {
		ka, kb := key{a.Priority, a.CreatedAt, a.ID}, key{b.Priority, b.CreatedAt, b.ID}
		switch {
		case ka.less(kb):
			return -1
		case kb.less(ka):
			return 1
		}
		return 0
	})
	for _, t := range withDeps {
		dependsOn[t.ID] = t.DependsOn
		for _, d := range t.DependsOn {
			dependents[d] = append(dependents[d], t.ID)
		}
	}
	// The newest task of a key holds it (dead-letter tasks never do).
	// Archived tasks' keys come from their records; a live task of the
	// same key is newer (it could only take the key once the archived
	// one's window passed).
	uniq := archivedUniques(wf)
	// By creation, then id: the decoders hand tasks back in no set order.
	sort.Slice(withKeys, func(i, j int) bool {
		a, b := withKeys[i], withKeys[j]
		return a.CreatedAt < b.CreatedAt || a.CreatedAt == b.CreatedAt && a.ID < b.ID
	})
	for _, t := range withKeys {
		uniq[t.UniqueKey] = uniqEntry{id: t.ID, until: t.UniqueUntil, rec: uniq[t.UniqueKey].rec}
	}
	perSubmitter := make(map[string]int)
	for _, t := range live {
		perSubmitter[t.SubmittedBy]++
	}
	q.wfMu.Lock()
	q.mu.Lock()
	q.live, q.held, q.idx, q.counts = live, held, idx, counts
	q.perSubmitter = perSubmitter
	q.dependents, q.dependsOn, q.uniq, q.paused, q.timers = dependents, dependsOn, uniq, wf.pauses, timers
	q.schedules = wf.schedules
	q.loadedUsage = usage
	q.forgetEnded()
	if q.cfg.TrackEnded {
		q.knowLoadedEnded(ended)
	}
	q.mu.Unlock()
	q.wfMu.Unlock()
	// Waiting tasks whose dependencies ended while the hub was down (or
	// between a dependency's write and its dependents' release) move on.
	slices.Sort(waiting)
	return q.resolve(waiting...)
}

// StoredUsage is the usage report of one stored task (either table), as
// the metrics take it: the agent of its last attempt, its last update.
type StoredUsage struct {
	Agent string
	At    time.Time
	Usage protocol.Usage
}

func usageOf(t *Task) StoredUsage {
	u := StoredUsage{At: time.UnixMilli(t.UpdatedAt), Usage: *t.Usage}
	if n := len(t.Attempts); n > 0 {
		u.Agent = t.Attempts[n-1].AgentID
	}
	return u
}

// StoredUsage returns the usage reports of every stored task, found by
// the last load (New or Reload), and forgets them: a hub seeds its usage
// metrics from them once at start, without listing (and decoding) every
// stored task again.
func (q *Queue) StoredUsage() []StoredUsage {
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.loadedUsage
	q.loadedUsage = nil
	return u
}

// SubmitParams describe a new task.
type SubmitParams struct {
	Description        string
	Metadata           map[string]any
	Priority           int
	MaxRetries         *int
	CompleteBy         *int64
	NeededCapabilities []string
	TargetAgent        string
	SubmittedBy        string

	// Workflow parameters (see workflow.go). Callers validate formats;
	// the queue checks what needs its state (dependencies).
	UniqueKey string
	// UniqueFor is the key's window from submission; zero with a key:
	// while the task is active.
	UniqueFor           time.Duration
	RunAt               int64 // Unix ms; in the past or zero: at once
	DependsOn           []string
	OnDependencyFailure string
	Schedule            string
	ScheduleTick        int64
}

// Submit stores a new task. When it returns, the task is on disk.
func (q *Queue) Submit(p SubmitParams) (*Task, error) {
	t, _, err := q.SubmitTask(p)
	return t, err
}

// SubmitTask stores a new task and returns it. When p carries a unique key
// held by another task (see uniqueHolder), nothing is stored and that task
// is returned with dup set. A dependency list naming unknown tasks is
// refused with an InputError.
func (q *Queue) SubmitTask(p SubmitParams) (t *Task, dup bool, err error) {
	t, _, dup, err = q.SubmitAssign(p, nil)
	return t, dup, err
}

// SubmitAssign is SubmitTask that may also assign the new task in the
// same store write (see assignNew): t is the task as submitted
// (queued), assigned its snapshot as assigned, or nil. pick (nil: never
// assign) is asked as AssignBatch asks it; on an error the agent it
// reserved was not given the task.
func (q *Queue) SubmitAssign(p SubmitParams, pick Pick) (t, assigned *Task, dup bool, err error) {
	if p.UniqueKey != "" {
		q.uniqMu.Lock()
		defer q.uniqMu.Unlock()
		held, err := q.uniqueHolder(p.UniqueKey, q.now().UnixMilli())
		if err != nil {
			return nil, nil, false, fmt.Errorf("submit: %w", err)
		}
		if held != nil {
			return held, nil, true, nil
		}
	}
	p.DependsOn = dedupe(p.DependsOn)
	statuses, err := q.checkDependencies("depends_on", p.DependsOn, nil)
	if err != nil {
		return nil, nil, false, err
	}
	now := q.now().UnixMilli()
	t = q.newTask(p, now)
	st, reason := initialStatus(t, func(d string) Status { return statuses[d] }, now)
	if st == StatusCancelled {
		return nil, nil, false, inputErr("depends_on", "%s: nothing would run (set on_dependency_failure to \"run\" to run anyway)", reason)
	}
	t.Status = st
	snaps, as, err := q.store(now, pick, t)
	if err != nil {
		return nil, nil, false, err
	}
	if len(as) > 0 {
		assigned = as[0]
	}
	return snaps[0], assigned, false, nil
}

// dedupe drops repeated ids, keeping the first of each.
func dedupe(ids []string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// store writes new tasks in one store operation, then puts them in memory,
// announces them and resolves those that wait on dependencies. With pick,
// queued tasks may be assigned in the same write (assignNew); it returns
// the tasks as submitted and the snapshots of those it assigned.
func (q *Queue) store(now int64, pick Pick, ts ...*Task) (snaps, assigned []*Task, err error) {
	snaps = make([]*Task, len(ts))
	for i, t := range ts {
		if err := q.checkSize(t); err != nil {
			return nil, nil, err
		}
		t.History = []Event{{Event: string(t.Status), Timestamp: now, Details: "submitted"}}
		t.Version = 1
		snaps[i] = t.Clone()
	}
	// The submitters' slots are taken before the write, so concurrent
	// submissions cannot overrun the quota, and given back if it fails.
	if err := q.reserveSubmitters(ts); err != nil {
		return nil, nil, err
	}
	writes := snaps
	if pick != nil {
		writes, assigned = q.assignNew(pick, ts, snaps, now)
	}
	if err := q.persist(context.Background(), writes...); err != nil {
		q.mu.Lock()
		for _, t := range ts {
			q.dropSubmitter(t)
		}
		q.mu.Unlock()
		return nil, nil, fmt.Errorf("submit: %w", err)
	}
	var waiting []string
	q.mu.Lock()
	for _, t := range ts {
		q.insertLocked(t, now)
		if t.Status == StatusWaiting {
			waiting = append(waiting, t.ID)
		}
	}
	q.mu.Unlock()
	for _, t := range snaps {
		q.emit(EventSubmitted, t, "", 0, 0)
	}
	for _, t := range assigned {
		q.emit(EventAssigned, t, t.Holder(), 0, 0)
	}
	// A dependency that ended between the check and the insert did not
	// see this task's edge: look again.
	_ = q.resolve(waiting...)
	return snaps, assigned, nil
}

// reserveSubmitters takes one quota slot per task for its submitter, all
// or none.
func (q *Queue) reserveSubmitters(ts []*Task) error {
	need := map[string]int{}
	for _, t := range ts {
		need[t.SubmittedBy]++
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if limit := q.cfg.MaxQueuedPerSubmitter; limit > 0 {
		for who, n := range need {
			if q.perSubmitter[who]+n > limit {
				return fmt.Errorf("%w: %s already holds %d unfinished tasks (limit %d)", ErrQuota, who, q.perSubmitter[who], limit)
			}
		}
	}
	for who, n := range need {
		q.perSubmitter[who] += n
	}
	return nil
}

// newTask builds a task from p (status and history are set by the caller).
func (q *Queue) newTask(p SubmitParams, now int64) *Task {
	t := &Task{
		ID: newID(&q.ids, now), Description: p.Description, Metadata: p.Metadata, Priority: p.Priority,
		Status: StatusQueued, MaxRetries: DefaultMaxRetries, NeededCapabilities: p.NeededCapabilities,
		CompleteBy: p.CompleteBy, SubmittedBy: p.SubmittedBy, CreatedAt: now, UpdatedAt: now,
		Attempts: []Attempt{}, UniqueKey: p.UniqueKey, RunAt: p.RunAt, DependsOn: p.DependsOn,
		OnDependencyFailure: p.OnDependencyFailure, Schedule: p.Schedule, ScheduleTick: p.ScheduleTick,
	}
	if p.UniqueKey != "" && p.UniqueFor > 0 {
		t.UniqueUntil = now + p.UniqueFor.Milliseconds()
	}
	if t.Metadata == nil {
		t.Metadata = map[string]any{}
	}
	if t.NeededCapabilities == nil {
		t.NeededCapabilities = []string{}
	}
	if p.MaxRetries != nil {
		t.MaxRetries = *p.MaxRetries
	}
	if t.SubmittedBy == "" {
		t.SubmittedBy = "unknown"
	}
	if p.TargetAgent != "" {
		ta := p.TargetAgent
		t.TargetAgent = &ta
	}
	return t
}

// checkSize refuses a submission whose metadata or capability list is over
// its configured limit.
func (q *Queue) checkSize(t *Task) error {
	if max := q.cfg.MaxCapabilities; max > 0 && len(t.NeededCapabilities) > max {
		return &LimitError{Field: "needed_capabilities", Limit: max, Got: len(t.NeededCapabilities)}
	}
	for _, c := range t.NeededCapabilities {
		if len(c) > MaxCapabilityLen {
			return &LimitError{Field: "needed_capabilities", Limit: MaxCapabilityLen, Got: len(c)}
		}
	}
	if max := q.cfg.MaxMetadataBytes; max > 0 {
		b, err := appendMap(nil, t.Metadata, 0)
		if err != nil {
			return fmt.Errorf("submit: metadata: %w", err)
		}
		if len(b) > max {
			return &LimitError{Field: "metadata", Limit: max, Got: len(b)}
		}
	}
	return nil
}

// dropSubmitter gives back a live task's submitter slot; the caller holds
// q.mu.
func (q *Queue) dropSubmitter(t *Task) {
	if q.perSubmitter[t.SubmittedBy] <= 1 {
		delete(q.perSubmitter, t.SubmittedBy)
		return
	}
	q.perSubmitter[t.SubmittedBy]--
}

// Get returns a task from the live set, the queue table, the dead letter
// or the archive.
func (q *Queue) Get(id string) (*Task, error) {
	t, _, err := q.getFrom(context.Background(), id)
	return t, err
}

// getFrom is Get, which also says the task's table.
func (q *Queue) getFrom(ctx context.Context, id string) (*Task, storage.TaskTable, error) {
	q.mu.Lock()
	if t, ok := q.live[id]; ok {
		cp := t.Clone()
		cp.Paused = cp.Status == StatusQueued && q.pausedLocked(cp.Priority, cp.NeededCapabilities)
		q.mu.Unlock()
		return cp, storage.TasksLive, nil
	}
	q.mu.Unlock()
	t, table, err := q.load(ctx, id)
	if t != nil {
		t.Archived = table == storage.TasksArchive
	}
	return t, table, err
}

// Filter selects tasks for listings. Zero values select everything.
type Filter struct {
	Status     Status
	Priority   *int
	AssignedTo string
	// Agent matches the holder or the agent of any attempt.
	Agent string
	// Capability matches tasks needing that capability (exact name).
	Capability  string
	SubmittedBy string
	// Text matches, case-insensitively, the id, description or last error.
	Text string
	// CreatedFrom and CreatedTo bound created_at (Unix ms, inclusive); 0
	// is no bound.
	CreatedFrom, CreatedTo int64
	// Newest orders the result by last update, newest first, instead of
	// scheduling order.
	Newest bool
	Offset int
	Limit  int // 0: no limit
}

// List returns the main table's tasks (never dead letter) matching f,
// sorted by lane, creation time and id, and the number of matches before
// Offset/Limit. Active tasks come from memory; the other statuses page
// through the table (listStored).
func (q *Queue) List(f Filter) ([]*Task, int, error) {
	if !f.Status.Active() {
		out, total, err := q.listStored(context.Background(), f, storage.TasksLive)
		if err != nil {
			return nil, 0, fmt.Errorf("list tasks: %w", err)
		}
		return out, total, nil
	}
	var out []*Task
	q.mu.Lock()
	for _, t := range q.live {
		if f.match(t) {
			cp := t.Clone()
			cp.Paused = cp.Status == StatusQueued && q.pausedLocked(cp.Priority, cp.NeededCapabilities)
			out = append(out, cp)
		}
	}
	q.mu.Unlock()
	return paginate(order(out, f), f)
}

// ListDeadLetter returns dead-letter tasks in the same order, paged
// through the table (listStored).
func (q *Queue) ListDeadLetter(f Filter) ([]*Task, int, error) {
	out, total, err := q.listStored(context.Background(), f, storage.TasksDeadLetter)
	if err != nil {
		return nil, 0, fmt.Errorf("list dead letter: %w", err)
	}
	return out, total, nil
}

// columns is the part of f the store can select on.
func (f Filter) columns() storage.TaskFilter {
	return storage.TaskFilter{Status: string(f.Status), Priority: f.Priority, AssignedTo: f.AssignedTo,
		SubmittedBy: f.SubmittedBy, CreatedFrom: f.CreatedFrom, CreatedTo: f.CreatedTo}
}

// Queued returns up to limit queued tasks in scheduling order (ready ones
// first by key; tasks waiting out a backoff are included in key order).
func (q *Queue) Queued(limit int) []*Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*Task
	for _, t := range q.live {
		if t.Status == StatusQueued {
			out = append(out, t)
		}
	}
	sortTasks(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	for i, t := range out {
		out[i] = t.Clone()
		out[i].Paused = q.pausedLocked(t.Priority, t.NeededCapabilities)
	}
	return out
}

func (f Filter) match(t *Task) bool {
	if f.Status != "" && t.Status != f.Status {
		return false
	}
	if f.Priority != nil && t.Priority != *f.Priority {
		return false
	}
	if f.AssignedTo != "" && t.Holder() != f.AssignedTo {
		return false
	}
	if f.Agent != "" && t.Holder() != f.Agent && !slices.ContainsFunc(t.Attempts, func(a Attempt) bool { return a.AgentID == f.Agent }) {
		return false
	}
	if f.Capability != "" && !slices.Contains(t.NeededCapabilities, f.Capability) {
		return false
	}
	if f.SubmittedBy != "" && t.SubmittedBy != f.SubmittedBy {
		return false
	}
	if f.CreatedFrom > 0 && t.CreatedAt < f.CreatedFrom {
		return false
	}
	if f.CreatedTo > 0 && t.CreatedAt > f.CreatedTo {
		return false
	}
	if f.Text != "" && !containsFold(t.ID, f.Text) && !containsFold(t.Description, f.Text) &&
		!(t.LastError != nil && containsFold(fmt.Sprint(t.LastError), f.Text)) {
		return false
	}
	return true
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func sortTasks(ts []*Task) []*Task {
	sort.Slice(ts, func(i, j int) bool { return keyOf(ts[i]).less(keyOf(ts[j])) })
	return ts
}

// order sorts as f asks: scheduling order, or newest update first.
func order(ts []*Task, f Filter) []*Task {
	if !f.Newest {
		return sortTasks(ts)
	}
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].UpdatedAt != ts[j].UpdatedAt {
			return ts[i].UpdatedAt > ts[j].UpdatedAt
		}
		return ts[i].ID < ts[j].ID
	})
	return ts
}

// Search lists tasks of both tables (the queue and the dead letter)
// matching f, in f's order, and the number of matches before
// Offset/Limit. A status of dead_letter reads only the dead letter; a
// live status only the queue table.
func (q *Queue) Search(f Filter) ([]*Task, int, error) {
	switch f.Status {
	case StatusDeadLetter:
		return q.ListDeadLetter(f)
	case "":
		out, total, err := q.listStored(context.Background(), f, storage.TasksLive, storage.TasksDeadLetter)
		if err != nil {
			return nil, 0, fmt.Errorf("search tasks: %w", err)
		}
		return out, total, nil
	}
	return q.List(f)
}

func paginate(ts []*Task, f Filter) ([]*Task, int, error) {
	total := len(ts)
	if f.Offset > 0 {
		ts = ts[min(f.Offset, len(ts)):]
	}
	if f.Limit > 0 && len(ts) > f.Limit {
		ts = ts[:f.Limit]
	}
	if ts == nil {
		ts = []*Task{}
	}
	return ts, total, nil
}

// Stats counts tasks: those in the live table (by status and lane) and
// the dead letter. Archived tasks (ended longer ago than the retention,
// see archive.go) are not counted.
type Stats struct {
	ByStatus        map[string]int `json:"by_status"`
	ByPriority      map[string]int `json:"by_priority"`
	DeadLetter      int            `json:"dead_letter"`
	QueuedIndexSize int            `json:"queued_index_size"`
}

// Stats returns counts per status and lane. Only non-zero keys appear,
// as in the original.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{ByStatus: map[string]int{}, ByPriority: map[string]int{}, QueuedIndexSize: q.idx.size()}
	for st, lanes := range q.counts {
		n := 0
		for p, c := range lanes {
			n += c
			if st != StatusDeadLetter && c > 0 {
				s.ByPriority[fmt.Sprint(p)] += c
			}
		}
		if st == StatusDeadLetter {
			s.DeadLetter = n
		} else if n > 0 {
			s.ByStatus[string(st)] = n
		}
	}
	return s
}

// LaneCounts returns the number of queued tasks per lane.
func (q *Queue) LaneCounts() [Lanes]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.counts[StatusQueued]
}

// Pick chooses an agent for a ready task during AssignBatch. It returns the
// agent, or "" with groupBlocked true when no agent can take any task of
// the task's group (same needs and target), or "" with false to skip only
// this task. A returned agent must already be reserved by the picker.
type Pick func(t *Task) (agent string, groupBlocked bool)

// AssignBatch walks the ready tasks in scheduling order, asks pick for an
// agent for each, and assigns up to max tasks. One unmatchable task never
// blocks the others: only its own group is skipped. The assignments are on
// disk when it returns; it returns snapshots of the assigned tasks.
func (q *Queue) AssignBatch(pick Pick, max int) ([]*Task, error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	assigned, prevHist := q.assignReadyLocked(pick, max, now)
	q.mu.Unlock()
	if len(assigned) == 0 {
		return nil, nil
	}
	if err := q.persist(context.Background(), assigned...); err != nil {
		q.undoAssign(assigned, prevHist, now)
		return nil, fmt.Errorf("assign: %w", err)
	}
	for _, t := range assigned {
		q.emit(EventAssigned, t, t.Holder(), now-t.CreatedAt, 0)
	}
	return assigned, nil
}

// assignReadyLocked is AssignBatch's walk in memory: it assigns up to max
// ready tasks as pick says and returns their snapshots and each one's
// history before (for undoAssign). Caller holds q.mu and writes them.
func (q *Queue) assignReadyLocked(pick Pick, max int, now int64) (assigned []*Task, prevHist [][]Event) {
	var gh groupHeap
	for sig, g := range q.idx.groups {
		if q.idx.head(g) {
			if !q.pausedLocked(g.pri, g.needed) {
				gh = append(gh, g)
			}
		} else {
			delete(q.idx.groups, sig)
		}
	}
	heap.Init(&gh)
	var skipped []entry
	for gh.Len() > 0 && len(assigned) < max {
		g := gh[0]
		e := g.items[0]
		t := q.live[e.id]
		agent, blocked := "", false
		if t != nil && t.Status == StatusQueued {
			agent, blocked = pick(t)
		}
		if blocked {
			heap.Pop(&gh)
			continue
		}
		heap.Pop(&g.items)
		if t != nil && agent == "" {
			skipped = append(skipped, e)
		}
		if agent != "" {
			q.idx.remove(t.ID)
			prevHist = append(prevHist, t.History)
			q.assignLocked(t, agent, now)
			assigned = append(assigned, t.Clone())
		}
		if q.idx.head(g) {
			heap.Fix(&gh, 0)
		} else {
			heap.Pop(&gh)
		}
	}
	for _, e := range skipped {
		if g, ok := q.idx.groups[q.live[e.id].signature()]; ok && q.idx.live(e.id, e.token) {
			heap.Push(&g.items, e)
		}
	}
	return assigned, prevHist
}

func (q *Queue) assignLocked(t *Task, agent string, now int64) {
	q.count(StatusQueued, t.Priority, -1)
	q.count(StatusAssigned, t.Priority, +1)
	t.assignTo(agent, now)
	addHeld(q.held, t)
	t.Version++
}

// held returns the live task id if agent holds it at generation gen (gen
// < 0: any generation), or the error the protocol reports.
func (q *Queue) heldLocked(id, agent string, gen int64) (*Task, error) {
	t, ok := q.live[id]
	if !ok {
		return nil, ErrNotFound
	}
	if t.Status != StatusAssigned {
		return t, ErrInvalidState
	}
	if gen >= 0 && t.Generation != gen {
		return t, ErrStaleGeneration
	}
	if agent != "" && t.Holder() != agent {
		return t, ErrNotHolder
	}
	return t, nil
}

// Accept records that agent started the task it holds. It is not
// written to the store on its own (see acceptLocked).
func (q *Queue) Accept(id, agent string) (*Task, error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	t, err := q.heldLocked(id, agent, -1)
	if err != nil {
		q.mu.Unlock()
		return nil, err
	}
	acceptLocked(t, now)
	snap := t.Clone()
	q.mu.Unlock()
	q.emit(EventAccepted, snap, agent, 0, 0)
	return snap, nil
}

// Progress refreshes a held task's updated_at (its lease on disk).
func (q *Queue) Progress(id, agent string) (*Task, error) {
	return q.touch(id, agent, "progress", EventProgress, nil)
}

// touch refreshes updated_at of a task agent holds, applies change, and
// persists it before publishing event.
func (q *Queue) touch(id, agent, op, event string, change func(t *Task, now int64)) (*Task, error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	t, err := q.heldLocked(id, agent, -1)
	if err != nil {
		q.mu.Unlock()
		return nil, err
	}
	before := t.Clone() // for undoChange
	t.UpdatedAt = now
	if change != nil {
		change(t, now)
	}
	t.Version++
	snap := t.Clone()
	q.mu.Unlock()
	if err := q.persist(context.Background(), snap); err != nil {
		q.undoChange(t, before, snap.Version, now)
		return nil, fmt.Errorf("%s %s: %w", op, id, err)
	}
	q.emit(event, snap, agent, 0, 0)
	return snap, nil
}

// Complete finishes a task held by agent at generation gen. A repeat of a
// completion that was already applied (a sidecar resending from its
// outbox) returns the task with dup set and changes nothing.
func (q *Queue) Complete(id, agent string, gen int64, result any, tokens *int64) (t *Task, dup bool, err error) {
	return q.CompleteWithUsage(id, agent, gen, result, tokens, nil)
}

// CompleteWithUsage is Complete with what the agent reported it spent,
// added to the task's usage.
func (q *Queue) CompleteWithUsage(id, agent string, gen int64, result any, tokens *int64, usage *protocol.Usage) (t *Task, dup bool, err error) {
	t, _, dup, err = q.CompleteAssign(id, agent, gen, result, tokens, usage, nil)
	return t, dup, err
}

// CompleteAssign is CompleteWithUsage that may also hand the agent its
// next task in the completion's write: next (nil: never) is asked as
// AssignBatch asks a pick, for at most one ready task. assigned is that
// task's snapshot, or nil.
func (q *Queue) CompleteAssign(id, agent string, gen int64, result any, tokens *int64, usage *protocol.Usage, next Pick) (t, assigned *Task, dup bool, err error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	lt, err := q.heldLocked(id, agent, gen)
	if err != nil {
		q.mu.Unlock()
		if d, ok := q.duplicate(id, agent, gen, "completed"); ok {
			return d, nil, true, nil
		}
		return nil, nil, false, q.refineNotFound(id, err)
	}
	// The completed task is built on a copy: the live task stays as it
	// was, out of the live set while the write runs, and comes back if
	// the write fails (undoEnd).
	q.endLocked(lt, StatusCompleted)
	snap := lt.Clone()
	if result == nil {
		result = map[string]any{}
	}
	snap.Status = StatusCompleted
	snap.Result, snap.TokensUsed, snap.UpdatedAt = result, tokens, now
	snap.addUsage(usage)
	snap.addHistory("completed", now, map[string]any{"tokens_used": tokens})
	snap.endAttempt(gen, now, "completed", "")
	snap.Version++
	var nexts []*Task
	var prevHist [][]Event
	if next != nil {
		nexts, prevHist = q.assignReadyLocked(next, 1, now)
	}
	q.mu.Unlock()
	if err := q.persist(context.Background(), append([]*Task{snap}, nexts...)...); err != nil {
		q.undoEnd(lt, StatusCompleted, snap.Version)
		q.undoAssign(nexts, prevHist, now)
		return nil, nil, false, fmt.Errorf("complete %s: %w", id, err)
	}
	q.noteEnded(snap)
	q.emitUsage(EventCompleted, snap, agent, runMs(snap, now), usage)
	for _, n := range nexts {
		assigned = n
		q.emit(EventAssigned, n, n.Holder(), now-n.CreatedAt, 0)
	}
	q.wake(id)
	return snap, assigned, false, nil
}

// Outcomes of Fail.
const (
	OutcomeRetried    = "retried"
	OutcomeDeadLetter = "dead_letter"
)

// Fail records a failed attempt. The task is requeued (after a backoff)
// unless this failure brings retry_count to max_retries, which
// dead-letters it keeping the error and the output. A repeat of an applied
// failure returns the earlier outcome with dup set.
func (q *Queue) Fail(id, agent string, gen int64, errText string, output any) (t *Task, outcome string, dup bool, err error) {
	return q.FailWithUsage(id, agent, gen, errText, output, nil)
}

// FailWithUsage is Fail with what the agent reported it spent, added to
// the task's usage.
func (q *Queue) FailWithUsage(id, agent string, gen int64, errText string, output any, usage *protocol.Usage) (t *Task, outcome string, dup bool, err error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	lt, err := q.heldLocked(id, agent, gen)
	if err != nil {
		q.mu.Unlock()
		if d, ok := q.duplicate(id, agent, gen, "failed"); ok {
			oc := OutcomeRetried
			if d.Status == StatusDeadLetter {
				oc = OutcomeDeadLetter
			}
			return d, oc, true, nil
		}
		return nil, "", false, q.refineNotFound(id, err)
	}
	before := lt.Clone() // for undoFail
	lt.RetryCount++
	lt.addUsage(usage)
	lt.LastError = errText
	if output != nil {
		lt.LastOutput = output
	}
	lt.UpdatedAt = now
	lt.endAttempt(gen, now, "failed", errText)
	if lt.RetryCount >= lt.MaxRetries {
		delete(q.live, id)
		q.dropSubmitter(lt)
		q.dropHeld(lt)
		q.count(StatusAssigned, lt.Priority, -1)
		q.count(StatusDeadLetter, lt.Priority, +1)
		lt.Status = StatusDeadLetter
		lt.addHistory("dead_letter", now, errText)
		lt.Version++
		snap := lt.Clone()
		q.mu.Unlock()
		if err := q.moveToDeadLetter(context.Background(), snap); err != nil {
			q.undoFail(lt, before, StatusDeadLetter, snap.Version)
			return nil, "", false, fmt.Errorf("fail %s: %w", id, err)
		}
		q.emitUsage(EventFailed, snap, agent, runMs(snap, now), usage)
		q.emit(EventDeadLetter, snap, agent, 0, 0)
		q.wake(id)
		return snap, OutcomeDeadLetter, false, nil
	}
	q.requeueLocked(lt, now)
	lt.NotBefore = q.backoff(lt.RetryCount, now)
	lt.addHistory("retry", now, errText)
	q.idx.add(lt, now)
	snap := lt.Clone()
	q.mu.Unlock()
	if err := q.persist(context.Background(), snap); err != nil {
		q.undoFail(lt, before, StatusQueued, snap.Version)
		return nil, "", false, fmt.Errorf("fail %s: %w", id, err)
	}
	q.emitUsage(EventFailed, snap, agent, runMs(snap, now), usage)
	q.emit(EventRetried, snap, agent, 0, 0)
	return snap, OutcomeRetried, false, nil
}

// duplicate finds an already-applied report of the same kind.
func (q *Queue) duplicate(id, agent string, gen int64, outcome string) (*Task, bool) {
	t, err := q.Get(id)
	if err != nil {
		return nil, false
	}
	a, ok := t.finishedAttempt(gen, agent)
	if !ok || a.Outcome != outcome {
		return nil, false
	}
	return t, true
}

// refineNotFound turns "not live" into the original's answer: a task
// that ended but is still in the active table (completed, cancelled) is in
// the wrong state; an unknown or dead-lettered one is not found.
func (q *Queue) refineNotFound(id string, err error) error {
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	if _, table, lerr := q.load(context.Background(), id); lerr == nil && (table == storage.TasksLive || table == storage.TasksArchive) {
		return ErrInvalidState
	}
	return err
}

// requeueLocked returns an assigned task to queued with a new generation.
// The caller adds the history entry and re-indexes it.
func (q *Queue) requeueLocked(t *Task, now int64) {
	if t.Status == StatusAssigned {
		q.dropHeld(t)
		q.count(StatusAssigned, t.Priority, -1)
		q.count(StatusQueued, t.Priority, +1)
	}
	t.Status = StatusQueued
	t.AssignedTo, t.AssignedAt = nil, nil
	t.Generation++
	t.UpdatedAt = now
	t.Version++
}

func (q *Queue) backoff(failures int, now int64) int64 {
	if q.cfg.BackoffBase <= 0 {
		return 0
	}
	d := q.cfg.BackoffBase
	for i := 1; i < failures && d < q.cfg.BackoffMax; i++ {
		d *= 2
	}
	if q.cfg.BackoffMax > 0 {
		d = min(d, q.cfg.BackoffMax)
	}
	return now + d.Milliseconds()
}

// Reject returns a task its holder declined to the queue. The agent is
// remembered so the scheduler offers the task to others first. gen is the
// generation the agent declined, or negative when it did not say; a
// decline of an earlier generation is stale.
func (q *Queue) Reject(id, agent string, gen int64, reason string) (*Task, error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	t, err := q.heldLocked(id, agent, gen)
	if err != nil {
		q.mu.Unlock()
		return nil, err
	}
	before := t.Clone() // for undoChange
	t.endAttempt(t.Generation, now, "rejected", reason)
	q.requeueLocked(t, now)
	if !slices.Contains(t.RejectedBy, agent) {
		t.RejectedBy = append(t.RejectedBy, agent)
	}
	t.addHistory("rejected", now, map[string]any{"agent_id": agent, "reason": reason})
	q.idx.add(t, now)
	snap := t.Clone()
	q.mu.Unlock()
	if err := q.persist(context.Background(), snap); err != nil {
		q.undoChange(t, before, snap.Version, now)
		return nil, fmt.Errorf("reject %s: %w", id, err)
	}
	q.emit(EventRejected, snap, agent, 0, 0)
	return snap, nil
}

// Reclaim returns a task held by agent at generation gen to the queue
// (agent "" matches any holder, a negative gen any generation), so a
// decision taken on an older look at the task (a lease sweep) never takes
// back a newer assignment. Reclaims never count as failures.
func (q *Queue) Reclaim(id, agent string, gen int64, reason string) (*Task, error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	t, err := q.heldLocked(id, agent, gen)
	if err != nil {
		q.mu.Unlock()
		return nil, err
	}
	holder := t.Holder()
	before := t.Clone() // for undoChange
	q.reclaimLocked(t, reason, now)
	snap := t.Clone()
	q.mu.Unlock()
	if err := q.persist(context.Background(), snap); err != nil {
		q.undoChange(t, before, snap.Version, now)
		return nil, fmt.Errorf("reclaim %s: %w", id, err)
	}
	q.emitReason(EventReclaimed, snap, holder, reason)
	return snap, nil
}

func (q *Queue) reclaimLocked(t *Task, reason string, now int64) {
	t.endAttempt(t.Generation, now, "reclaimed", reason)
	q.requeueLocked(t, now)
	t.addHistory("reclaimed", now, reason)
	q.idx.add(t, now)
}

// ReclaimAgent returns every task agent holds to the queue. A task
// reclaimed on disconnect once too often goes to the dead letter instead.
func (q *Queue) ReclaimAgent(agent, reason string) ([]*Task, error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	var snaps, dead []*Task
	// For undoChange: each task's live copy and its state before.
	type change struct{ lt, before *Task }
	changed := map[string]change{}
	for _, t := range sortedHeld(q.held[agent]) {
		changed[t.ID] = change{t, t.Clone()}
		q.reclaimLocked(t, reason, now)
		if reason == ReasonDisconnect {
			t.DisconnectReclaims++
			if n := q.cfg.MaxDisconnectReclaims; n > 0 && t.DisconnectReclaims >= n {
				q.deadLetterLocked(t, fmt.Sprintf("%s: reclaimed %d times after its agent disconnected", ReasonPoison, t.DisconnectReclaims), now)
				dead = append(dead, t.Clone())
				continue
			}
		}
		snaps = append(snaps, t.Clone())
	}
	q.mu.Unlock()
	var errs []error
	undo := func(ts ...*Task) {
		for _, t := range ts {
			c := changed[t.ID]
			q.undoChange(c.lt, c.before, t.Version, now)
		}
	}
	if len(snaps) > 0 {
		if err := q.persist(context.Background(), snaps...); err != nil {
			undo(snaps...)
			snaps, errs = nil, append(errs, err)
		}
	}
	kept := dead[:0]
	for _, t := range dead {
		if err := q.moveToDeadLetter(context.Background(), t); err != nil {
			undo(t)
			errs = append(errs, err)
			continue
		}
		kept = append(kept, t)
	}
	dead = kept
	if err := errors.Join(errs...); err != nil {
		// What was written stands and is announced; the rest is back
		// with agent, as the store has it.
		q.announceReclaimed(agent, reason, snaps, dead)
		return append(snaps, dead...), fmt.Errorf("reclaim tasks of %s: %w", agent, err)
	}
	q.announceReclaimed(agent, reason, snaps, dead)
	return append(snaps, dead...), nil
}

// announceReclaimed publishes what ReclaimAgent wrote, and moves on the
// dependents of the tasks it dead-lettered (as a failed report's dead
// letter does): a task that can no longer complete must not leave them
// waiting.
func (q *Queue) announceReclaimed(agent, reason string, snaps, dead []*Task) {
	for _, t := range snaps {
		q.emitReason(EventReclaimed, t, agent, reason)
	}
	for _, t := range dead {
		q.emitReason(EventReclaimed, t, agent, reason)
		q.emitReason(EventDeadLetter, t, agent, fmt.Sprint(t.LastError))
		q.wake(t.ID)
	}
}

// Recover answers a sidecar's task_recovering: the task's generation and
// true when agent still holds it, false when it should drop it.
func (q *Queue) Recover(id, agent string) (int64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, err := q.heldLocked(id, agent, -1)
	if err != nil {
		return 0, false
	}
	return t.Generation, true
}

// GiveBack assigns a queued task back to the agent it was taken from when
// that agent disconnected, for a sidecar that comes back still working on
// it (task_recovering). Only that case qualifies: the task's last attempt
// must be the agent's, reclaimed on disconnect, and the agent must still
// fit the task (target, capabilities). The task gets a new generation.
func (q *Queue) GiveBack(id, agent string, caps []string) (*Task, error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	t, ok := q.live[id]
	if !ok {
		q.mu.Unlock()
		return nil, ErrNotFound
	}
	n := len(t.Attempts)
	if t.Status != StatusQueued || n == 0 {
		q.mu.Unlock()
		return nil, ErrInvalidState
	}
	last := t.Attempts[n-1]
	if last.AgentID != agent || last.Outcome != "reclaimed" || last.Reason != ReasonDisconnect ||
		(t.Target() != "" && t.Target() != agent) || !MatchesCapabilities(t.NeededCapabilities, caps) {
		q.mu.Unlock()
		return nil, ErrNotHolder
	}
	before := t.Clone() // for undoChange
	q.idx.remove(t.ID)
	q.assignLocked(t, agent, now)
	snap := t.Clone()
	q.mu.Unlock()
	if err := q.persist(context.Background(), snap); err != nil {
		q.undoChange(t, before, snap.Version, now)
		return nil, fmt.Errorf("give back %s: %w", id, err)
	}
	q.emit(EventAssigned, snap, agent, now-snap.CreatedAt, 0)
	return snap, nil
}

// HeldBy returns the tasks agent holds, oldest assignment first.
func (q *Queue) HeldBy(agent string) []*Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := sortedHeld(q.held[agent])
	for i, t := range out {
		out[i] = t.Clone()
	}
	return out
}

// Assigned returns every assigned task.
func (q *Queue) Assigned() []*Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*Task
	for _, ts := range q.held {
		for _, t := range ts {
			out = append(out, t.Clone())
		}
	}
	return out
}

// addHeld indexes an assigned task under its holder.
func addHeld(held map[string]map[string]*Task, t *Task) {
	h := t.Holder()
	if held[h] == nil {
		held[h] = map[string]*Task{}
	}
	held[h][t.ID] = t
}

// dropHeld removes an assigned task from the holder index; call it while
// the task still names its holder. Caller holds q.mu.
func (q *Queue) dropHeld(t *Task) {
	h := t.Holder()
	delete(q.held[h], t.ID)
	if len(q.held[h]) == 0 {
		delete(q.held, h)
	}
}

// sortedHeld lists tasks by assignment time, then id.
func sortedHeld(m map[string]*Task) []*Task {
	out := make([]*Task, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if *out[i].AssignedAt != *out[j].AssignedAt {
			return *out[i].AssignedAt < *out[j].AssignedAt
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// RetryDeadLetter moves a dead-letter task back to the queue with its
// failures forgotten. A deadline that has passed is cleared: the operator
// asked for the work again. Of two concurrent retries of one task, one
// succeeds and the other finds it queued. A task that is not in the dead
// letter is refused with a *StateError naming its state (ErrNotFound
// when there is no such task).
func (q *Queue) RetryDeadLetter(id string) (*Task, error) {
	ctx := context.Background()
	q.moveMu.Lock()
	defer q.moveMu.Unlock()
	t, table, err := q.load(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if t == nil || table != storage.TasksDeadLetter {
		// Under moveMu nothing enters or leaves the dead letter, so
		// the state found is not dead_letter.
		return nil, q.stateError(id)
	}
	now := q.now().UnixMilli()
	t.Status = StatusQueued
	t.RetryCount = 0
	t.DisconnectReclaims = 0
	t.AssignedTo, t.AssignedAt = nil, nil
	t.Generation++
	t.LastError = nil
	t.NotBefore = 0
	t.RejectedBy = nil
	t.UpdatedAt = now
	if t.CompleteBy != nil && *t.CompleteBy < now {
		t.CompleteBy = nil
	}
	t.addHistory("queued", now, "retried from dead-letter")
	t.Version++
	snap := t.Clone()
	row, err := rowOf(snap)
	if err != nil {
		return nil, err
	}
	if err := q.st.RetryFromDeadLetter(ctx, row); errors.Is(err, storage.ErrNotFound) {
		return nil, q.stateError(id)
	} else if err != nil {
		return nil, fmt.Errorf("retry %s: %w", id, err)
	}
	q.mu.Lock()
	q.count(StatusDeadLetter, t.Priority, -1)
	q.count(StatusQueued, t.Priority, +1)
	q.live[id] = t
	q.perSubmitter[t.SubmittedBy]++
	q.idx.add(t, now)
	q.mu.Unlock()
	q.emit(EventRetried, snap, "", 0, 0)
	return snap, nil
}

// Cancel ends a task that has not ended (queued, assigned, waiting or
// scheduled). by is who asked; canAny says whether they may cancel tasks
// they did not submit (admins). A task that already ended is refused
// with a *StateError naming its state.
func (q *Queue) Cancel(id, by string, canAny bool, reason string) (*Task, string, error) {
	for range cancelLookups - 1 {
		t, holder, err := q.cancel(id, by, canAny, reason)
		var se *StateError
		if errors.As(err, &se) && se.Status.Active() {
			// The task moved between the live set and the tables while
			// we looked (a retry from the dead letter, a dead-letter
			// move in progress): look again.
			continue
		}
		return t, holder, err
	}
	return q.cancel(id, by, canAny, reason)
}

// cancelLookups bounds how often Cancel looks again at a task that moved
// while it looked.
const cancelLookups = 3

func (q *Queue) cancel(id, by string, canAny bool, reason string) (*Task, string, error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	t, ok := q.live[id]
	if !ok {
		q.mu.Unlock()
		return nil, "", q.stateError(id)
	}
	if !canAny && t.SubmittedBy != by {
		q.mu.Unlock()
		return nil, "", ErrForbidden
	}
	before := t.Clone() // for undoChange
	holder := q.cancelLocked(t, by, reason, now)
	snap := t.Clone()
	q.mu.Unlock()
	if err := q.persist(context.Background(), snap); err != nil {
		q.undoChange(t, before, snap.Version, now)
		return nil, "", fmt.Errorf("cancel %s: %w", id, err)
	}
	q.noteEnded(snap)
	q.emitReason(EventCancelled, snap, holder, reason)
	q.wake(id)
	return snap, holder, nil
}

// cancelLocked ends a live task as cancelled and returns its holder.
func (q *Queue) cancelLocked(t *Task, by, reason string, now int64) string {
	holder := t.Holder()
	if t.Status == StatusAssigned {
		t.endAttempt(t.Generation, now, "cancelled", reason)
		q.dropHeld(t)
	}
	q.count(t.Status, t.Priority, -1)
	q.count(StatusCancelled, t.Priority, +1)
	delete(q.live, t.ID)
	q.dropSubmitter(t)
	q.idx.remove(t.ID)
	t.Status = StatusCancelled
	t.CancelledBy = by
	t.UpdatedAt = now
	t.Generation++ // fences out the holder's late reports
	t.addHistory("cancelled", now, map[string]any{"by": by, "reason": reason})
	t.Version++
	return holder
}

// PromoteDue moves tasks whose backoff ended into the ready set, queues
// scheduled tasks whose run_at has come, enqueues the periodic schedules'
// due ticks, and reports how many tasks became ready.
func (q *Queue) PromoteDue() (int, error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	n := len(q.idx.due(now, func(id string) *Task {
		t := q.live[id]
		if t == nil || t.Status != StatusQueued {
			return nil
		}
		return t
	}))
	q.mu.Unlock()
	m, err := q.promoteScheduled(now)
	k, err2 := q.fireSchedules(q.now())
	return n + m + k, errors.Join(err, err2)
}

// NextDue is when the next backoff ends, scheduled task is due or
// schedule ticks (zero time: none pending).
func (q *Queue) NextDue() time.Time {
	q.mu.Lock()
	next := q.idx.nextDue()
	if d := q.nextTimerLocked(); d != 0 && (next == 0 || d < next) {
		next = d
	}
	q.mu.Unlock()
	if d := q.nextTick(); d != 0 && (next == 0 || d < next) {
		next = d
	}
	if next == 0 {
		return time.Time{}
	}
	return time.UnixMilli(next)
}

// Overdue returns live tasks whose complete_by has passed.
func (q *Queue) Overdue() []*Task {
	now := q.now().UnixMilli()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*Task
	for _, t := range q.live {
		if t.CompleteBy != nil && *t.CompleteBy < now {
			out = append(out, t.Clone())
		}
	}
	return out
}

// Expire dead-letters a live task whose deadline passed. An assigned task
// is first reclaimed from its holder (history "reclaimed: deadline").
func (q *Queue) Expire(id string) (*Task, string, error) {
	now := q.now().UnixMilli()
	q.mu.Lock()
	t, ok := q.live[id]
	if !ok {
		q.mu.Unlock()
		return nil, "", ErrNotFound
	}
	holder := t.Holder()
	if t.Status == StatusAssigned {
		t.endAttempt(t.Generation, now, "reclaimed", ReasonDeadline)
		q.requeueLocked(t, now)
		t.addHistory("reclaimed", now, ReasonDeadline)
	}
	q.deadLetterLocked(t, "deadline exceeded", now)
	snap := t.Clone()
	q.mu.Unlock()
	if err := q.moveToDeadLetter(context.Background(), snap); err != nil {
		return nil, "", fmt.Errorf("expire %s: %w", id, err)
	}
	if holder != "" {
		q.emitReason(EventReclaimed, snap, holder, ReasonDeadline)
	}
	q.emitReason(EventDeadLetter, snap, holder, "deadline exceeded")
	q.wake(id)
	return snap, holder, nil
}

// deadLetterLocked moves a queued task to the dead-letter status in
// memory; the caller persists it with moveToDeadLetter. Caller holds q.mu.
func (q *Queue) deadLetterLocked(t *Task, reason string, now int64) {
	delete(q.live, t.ID)
	q.dropSubmitter(t)
	q.idx.remove(t.ID)
	q.count(t.Status, t.Priority, -1)
	q.count(StatusDeadLetter, t.Priority, +1)
	t.Status = StatusDeadLetter
	t.LastError = reason
	t.UpdatedAt = now
	t.addHistory("dead_letter", now, reason)
	t.Version++
}

// moveToDeadLetter moves t to the dead letter in one store operation. A
// snapshot of t taken before the move and written after it is dropped by
// the store (the dead letter holds a newer version), so it never brings
// the task back to the live table.
func (q *Queue) moveToDeadLetter(ctx context.Context, t *Task) error {
	row, err := rowOf(t)
	if err != nil {
		return err
	}
	q.moveMu.Lock()
	defer q.moveMu.Unlock()
	return q.st.MoveToDeadLetter(ctx, []storage.TaskRow{row})
}

// count adjusts a status/lane counter; caller holds q.mu.
func (q *Queue) count(s Status, p, d int) {
	c := q.counts[s]
	c[min(max(p, 0), Lanes-1)] += d
	q.counts[s] = c
}

func (q *Queue) emit(typ string, t *Task, agent string, waitMs, runMs int64) {
	bus.Publish(q.bus, EventData{Type: typ,
		TaskID: t.ID, AgentID: agent, Generation: t.Generation, Priority: t.Priority, Status: t.Status,
		Description: t.Description, WaitMs: waitMs, RunMs: runMs, TokensUsed: t.TokensUsed})
}

// emitUsage publishes a completion or failure with the usage of that
// report (not the task's running total), so sums over events count each
// report once.
func (q *Queue) emitUsage(typ string, t *Task, agent string, runMs int64, usage *protocol.Usage) {
	d := EventData{Type: typ, TaskID: t.ID, AgentID: agent, Generation: t.Generation, Priority: t.Priority, Status: t.Status,
		Description: t.Description, RunMs: runMs, TokensUsed: t.TokensUsed}
	if usage != nil {
		u := usage.Normalize()
		d.Usage = &u
	}
	bus.Publish(q.bus, d)
}

// RecordCheck adds a verification check reported by the task's holder to
// its history (event "verify"). It extends the lease like progress.
func (q *Queue) RecordCheck(id, agent string, c protocol.VerifyCheck) (*Task, error) {
	return q.touch(id, agent, "record check", EventVerified, func(t *Task, now int64) {
		t.addHistory("verify", now, c)
	})
}

func (q *Queue) emitReason(typ string, t *Task, agent, reason string) {
	bus.Publish(q.bus, EventData{Type: typ,
		TaskID: t.ID, AgentID: agent, Generation: t.Generation, Priority: t.Priority, Status: t.Status,
		Description: t.Description, Reason: reason})
}

func runMs(t *Task, now int64) int64 {
	for i := len(t.Attempts) - 1; i >= 0; i-- {
		if t.Attempts[i].EndedAt == now {
			return now - t.Attempts[i].AssignedAt
		}
	}
	return 0
}

// persist writes task snapshots in one store operation. A task the store
// holds at the snapshot's version or above, in either table, is newer
// (written by a later change that committed first, or moved to the dead
// letter) and is kept.
func (q *Queue) persist(ctx context.Context, ts ...*Task) error {
	return q.write(ctx, nil, ts)
}

// write is persist plus workflow records, in one store operation.
func (q *Queue) write(ctx context.Context, recs []wfRecord, ts []*Task) error {
	rows := make([]storage.TaskRow, len(ts))
	for i, t := range ts {
		r, err := rowOf(t)
		if err != nil {
			return err
		}
		rows[i] = r
	}
	var wrs []storage.WorkflowRecord
	for _, r := range recs {
		wrs = append(wrs, storage.WorkflowRecord{Key: r.key, Value: r.val})
	}
	return q.st.Put(ctx, rows, wrs)
}

// load reads a task from the store and names the table holding it;
// ErrNotFound when neither does.
func (q *Queue) load(ctx context.Context, id string) (*Task, storage.TaskTable, error) {
	r, table, err := q.st.Get(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load task %s: %w", id, err)
	}
	t, err := taskOf(r)
	if err != nil {
		return nil, 0, err
	}
	return t, table, nil
}

// rowOf is the stored form of t: its record's JSON as the body, and the
// columns the store indexes.
func rowOf(t *Task) (storage.TaskRow, error) {
	b, err := encodeRecord(t)
	if err != nil {
		return storage.TaskRow{}, fmt.Errorf("encode task %s: %w", t.ID, err)
	}
	return storage.TaskRow{ID: t.ID, Version: t.Version, Status: string(t.Status), Priority: t.Priority,
		SubmittedBy: t.SubmittedBy, AssignedTo: t.Holder(), CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Body: b}, nil
}

// taskOf decodes a stored row.
func taskOf(r storage.TaskRow) (*Task, error) {
	t, err := decode(r.Body)
	if err != nil {
		return nil, fmt.Errorf("task %.64q: %w", r.ID, err)
	}
	t.Version = r.Version
	return t, nil
}

// decode parses a task's JSON body.
func decode(body []byte) (*Task, error) {
	r, ok := decodeRecord(body)
	if !ok {
		r = record{}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("decode task: %w", err)
		}
	}
	t := r.task()
	if t.ID == "" {
		return nil, errors.New("task record without id")
	}
	if t.Metadata == nil {
		t.Metadata = map[string]any{}
	}
	if t.NeededCapabilities == nil {
		t.NeededCapabilities = []string{}
	}
	if t.Attempts == nil {
		t.Attempts = []Attempt{}
	}
	return t, nil
}
