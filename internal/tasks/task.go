// Package tasks is the persistent priority queue of work.
//
// A task lives in the store's live table (storage.TaskStore) while it is
// queued, assigned, completed or cancelled, and moves to the dead letter,
// in one atomic store operation, when its failures run out. Queued and
// assigned tasks are also held in memory with an index by lane and
// requirement, so a scheduling pass never scans the table. Every change is
// written to the store before the call that made it returns.
package tasks

import (
	"slices"
	"strconv"
	"strings"

	"github.com/agentcom/agentcom/internal/protocol"
)

// Status of a task.
type Status string

// Statuses. Completed, cancelled and dead-letter are terminal (a
// dead-letter task can be retried by an operator).
const (
	StatusQueued     Status = "queued"
	StatusAssigned   Status = "assigned"
	StatusCompleted  Status = "completed"
	StatusDeadLetter Status = "dead_letter"
	StatusCancelled  Status = "cancelled"
	// StatusWaiting: the task waits for its dependencies to complete.
	StatusWaiting Status = "waiting"
	// StatusScheduled: the task waits for its run_at time.
	StatusScheduled Status = "scheduled"
)

// Pending reports whether a task in status s has not started yet and is
// held back (waiting or scheduled).
func (s Status) Pending() bool { return s == StatusWaiting || s == StatusScheduled }

// Active reports whether a task in status s has not ended.
func (s Status) Active() bool {
	return s == StatusQueued || s == StatusAssigned || s.Pending()
}

// Priority lanes, lower runs first.
const (
	PriorityUrgent = 0
	PriorityHigh   = 1
	PriorityNormal = 2
	PriorityLow    = 3
	Lanes          = 4
)

// DefaultMaxRetries is the number of failures that dead-letters a task.
const DefaultMaxRetries = 3

// HistoryCap bounds a task's history.
const HistoryCap = 50

// AttemptsCap bounds a task's attempt list; the oldest attempts go first.
// A task bounced without end (an agent that never accepts it) would
// otherwise grow its record, and every write of it, forever.
const AttemptsCap = 50

// Reclaim reasons, written to history and events.
const (
	ReasonDisconnect    = "agent_disconnect"
	ReasonPoison        = "poison_task"
	ReasonLeaseExpired  = "lease_expired"
	ReasonDeadline      = "deadline"
	ReasonAcceptTimeout = "acceptance_timeout"
	ReasonRestore       = "storage_restore"
)

// LaneName returns the name of a priority lane.
func LaneName(p int) string {
	switch p {
	case PriorityUrgent:
		return "urgent"
	case PriorityHigh:
		return "high"
	case PriorityLow:
		return "low"
	}
	return "normal"
}

// ParsePriority maps a lane name (or an integer 0..3) onto its lane. Any
// other value is normal, as the original hub did, so old clients sending
// "critical" keep working.
func ParsePriority(v any) int {
	switch x := v.(type) {
	case string:
		switch x {
		case "urgent":
			return PriorityUrgent
		case "high":
			return PriorityHigh
		case "low":
			return PriorityLow
		}
	case interface{ Int64() (int64, error) }:
		if n, err := x.Int64(); err == nil && n >= 0 && n < Lanes {
			return int(n)
		}
	case int:
		if x >= 0 && x < Lanes {
			return x
		}
	}
	return PriorityNormal
}

// LaneByName parses a strict lane name; ok is false for anything else.
func LaneByName(s string) (int, bool) {
	switch s {
	case "urgent":
		return PriorityUrgent, true
	case "high":
		return PriorityHigh, true
	case "normal":
		return PriorityNormal, true
	case "low":
		return PriorityLow, true
	}
	return 0, false
}

// Event is one entry of a task's history.
type Event struct {
	Event     string `json:"event"`
	Timestamp int64  `json:"timestamp"`
	Details   any    `json:"details"`
}

// Attempt is one assignment of a task and how it ended.
type Attempt struct {
	Generation int64  `json:"generation"`
	AgentID    string `json:"agent_id"`
	AssignedAt int64  `json:"assigned_at"`
	AcceptedAt int64  `json:"accepted_at,omitempty"`
	EndedAt    int64  `json:"ended_at,omitempty"`
	// Outcome is completed, failed, reclaimed, rejected or cancelled; empty
	// while the attempt runs.
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Task is one unit of work. JSON field names are the wire names.
type Task struct {
	ID          string         `json:"id"`
	Description string         `json:"description"`
	Metadata    map[string]any `json:"metadata"`
	Priority    int            `json:"priority"`
	Status      Status         `json:"status"`
	AssignedTo  *string        `json:"assigned_to"`
	AssignedAt  *int64         `json:"assigned_at"`
	Generation  int64          `json:"generation"`
	RetryCount  int            `json:"retry_count"`
	// DisconnectReclaims counts the times the task went back to the queue
	// because its holder disconnected (not attempts: the agent never
	// reported). Too many dead-letter it as a poison task.
	DisconnectReclaims int      `json:"disconnect_reclaims,omitempty"`
	MaxRetries         int      `json:"max_retries"`
	NeededCapabilities []string `json:"needed_capabilities"`
	LastError          any      `json:"last_error"`
	CompleteBy         *int64   `json:"complete_by"`
	Result             any      `json:"result"`
	TokensUsed         *int64   `json:"tokens_used"`
	SubmittedBy        string   `json:"submitted_by"`
	CreatedAt          int64    `json:"created_at"`
	UpdatedAt          int64    `json:"updated_at"`
	History            []Event  `json:"history"`

	// Additions over the original.
	TargetAgent *string   `json:"target_agent"`
	NotBefore   int64     `json:"not_before,omitempty"` // retry backoff: not scheduled before this
	LastOutput  any       `json:"last_output,omitempty"`
	Attempts    []Attempt `json:"attempts"`
	RejectedBy  []string  `json:"rejected_by,omitempty"`
	CancelledBy string    `json:"cancelled_by,omitempty"`
	// Usage sums what agents reported spending on the task, over every
	// attempt (run mode: usage lines or result-file fields).
	Usage *protocol.Usage `json:"usage,omitempty"`

	// Workflow fields (see workflow.go).
	UniqueKey string `json:"unique_key,omitempty"`
	// UniqueUntil ends the key's window (Unix ms); 0 with a key: the key
	// is held while the task is active.
	UniqueUntil int64 `json:"unique_until,omitempty"`
	// RunAt holds the task as scheduled until then (Unix ms).
	RunAt     int64    `json:"run_at,omitempty"`
	DependsOn []string `json:"depends_on,omitempty"`
	// OnDependencyFailure is "cancel" (default, stored as "") or "run".
	OnDependencyFailure string `json:"on_dependency_failure,omitempty"`
	// Schedule and ScheduleTick name the periodic schedule and the tick
	// (Unix ms) that enqueued the task; a run-now task has tick 0.
	Schedule     string `json:"schedule,omitempty"`
	ScheduleTick int64  `json:"schedule_tick,omitempty"`

	// Upstream carries the dependencies' results to the agent with an
	// assignment; the scheduler fills it on the snapshot it delivers and
	// it is never stored.
	Upstream []Upstream `json:"-"`
	// Paused marks a queued task held by a paused lane or capability in
	// listings; never stored (stored copies never have it set).
	Paused bool `json:"paused,omitempty"`
	// Archived marks a task read from the archive (ended longer ago than
	// the retention); never stored.
	Archived bool `json:"archived,omitempty"`

	// version orders writes of this task to disk; see Queue.persist.
	Version uint64 `json:"-"`
}

// Holder returns the agent the task is assigned to, or "".
func (t *Task) Holder() string {
	if t.AssignedTo == nil {
		return ""
	}
	return *t.AssignedTo
}

// Target returns the only agent that may take the task, or "".
func (t *Task) Target() string {
	if t.TargetAgent == nil {
		return ""
	}
	return *t.TargetAgent
}

// Clone returns a deep enough copy for callers to read without racing.
func (t *Task) Clone() *Task {
	cp := *t
	cp.History = slices.Clone(t.History)
	cp.Attempts = slices.Clone(t.Attempts)
	cp.NeededCapabilities = slices.Clone(t.NeededCapabilities)
	cp.RejectedBy = slices.Clone(t.RejectedBy)
	cp.DependsOn = slices.Clone(t.DependsOn)
	cp.Upstream = slices.Clone(t.Upstream)
	return &cp
}

// signature identifies tasks that every agent matches alike: the same
// needed capabilities and target. Scheduling groups tasks by it.
//
// The lane is part of the signature so that a paused lane blocks whole
// groups at once.
func (t *Task) signature() string {
	caps := slices.Clone(t.NeededCapabilities)
	slices.Sort(caps)
	caps = slices.Compact(caps)
	var b strings.Builder
	b.WriteString(strconv.Itoa(t.Priority))
	b.WriteByte(0)
	b.WriteString(t.Target())
	b.WriteByte(0)
	for _, c := range caps {
		b.WriteString(strconv.Quote(c))
	}
	return b.String()
}

// addUsage adds a report's usage to the task's total.
func (t *Task) addUsage(u *protocol.Usage) {
	if u == nil || u.IsZero() {
		return
	}
	sum := u.Normalize()
	if t.Usage != nil {
		sum = t.Usage.Add(sum)
	}
	t.Usage = &sum
}

// addHistory prepends an entry, keeping the newest HistoryCap.
func (t *Task) addHistory(event string, ts int64, details any) {
	t.History = append([]Event{{Event: event, Timestamp: ts, Details: details}}, t.History...)
	if len(t.History) > HistoryCap {
		t.History = t.History[:HistoryCap]
	}
}

// endAttempt closes the running attempt of generation gen.
func (t *Task) endAttempt(gen int64, ts int64, outcome, reason string) {
	for i := len(t.Attempts) - 1; i >= 0; i-- {
		a := &t.Attempts[i]
		if a.Generation == gen && a.Outcome == "" {
			a.EndedAt, a.Outcome, a.Reason = ts, outcome, reason
			return
		}
	}
}

// finishedAttempt returns the attempt of gen by agent if it already ended.
func (t *Task) finishedAttempt(gen int64, agent string) (Attempt, bool) {
	for i := len(t.Attempts) - 1; i >= 0; i-- {
		a := t.Attempts[i]
		if a.Generation == gen && a.AgentID == agent && a.Outcome != "" {
			return a, true
		}
	}
	return Attempt{}, false
}

// MatchesCapabilities reports whether an agent offering caps can take a
// task needing needed: every needed name must be offered, exactly.
func MatchesCapabilities(needed, caps []string) bool {
	for _, n := range needed {
		if !slices.Contains(caps, n) {
			return false
		}
	}
	return true
}

// Wire returns the API's view of the task. Its JSON is the JSON the hub
// always served for a task; fields the API never shows (Upstream,
// Version) are left out. wire_test.go fails when a Task field is added
// without deciding whether the API shows it.
func (t *Task) Wire() protocol.Task {
	w := protocol.Task{
		ID:                  t.ID,
		Description:         t.Description,
		Metadata:            t.Metadata,
		Priority:            t.Priority,
		Status:              string(t.Status),
		AssignedTo:          t.AssignedTo,
		AssignedAt:          t.AssignedAt,
		Generation:          t.Generation,
		RetryCount:          t.RetryCount,
		DisconnectReclaims:  t.DisconnectReclaims,
		MaxRetries:          t.MaxRetries,
		NeededCapabilities:  slices.Clone(t.NeededCapabilities),
		LastError:           t.LastError,
		CompleteBy:          t.CompleteBy,
		Result:              t.Result,
		TokensUsed:          t.TokensUsed,
		SubmittedBy:         t.SubmittedBy,
		CreatedAt:           t.CreatedAt,
		UpdatedAt:           t.UpdatedAt,
		TargetAgent:         t.TargetAgent,
		NotBefore:           t.NotBefore,
		LastOutput:          t.LastOutput,
		RejectedBy:          slices.Clone(t.RejectedBy),
		CancelledBy:         t.CancelledBy,
		Usage:               t.Usage,
		UniqueKey:           t.UniqueKey,
		UniqueUntil:         t.UniqueUntil,
		RunAt:               t.RunAt,
		DependsOn:           slices.Clone(t.DependsOn),
		OnDependencyFailure: t.OnDependencyFailure,
		Schedule:            t.Schedule,
		ScheduleTick:        t.ScheduleTick,
		Paused:              t.Paused,
		Archived:            t.Archived,
	}
	// nil stays nil: the API writes null for a task without history or
	// attempts, as it always did.
	if t.History != nil {
		w.History = make([]protocol.TaskEvent, len(t.History))
		for i, e := range t.History {
			w.History[i] = protocol.TaskEvent(e)
		}
	}
	if t.Attempts != nil {
		w.Attempts = make([]protocol.TaskAttempt, len(t.Attempts))
		for i, a := range t.Attempts {
			w.Attempts[i] = protocol.TaskAttempt(a)
		}
	}
	return w
}

// WireList converts a listing's tasks; nil stays nil.
func WireList(ts []*Task) []protocol.Task {
	if ts == nil {
		return nil
	}
	out := make([]protocol.Task, len(ts))
	for i, t := range ts {
		out[i] = t.Wire()
	}
	return out
}
