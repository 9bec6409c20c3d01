package tasks

import "github.com/agentcom/agentcom/internal/protocol"

// record is a task as stored: the JSON body of its storage.TaskRow. It is
// its own type so that a Task field changes the disk format only by a
// decision made here; the field names, order and omitempty are the ones
// Task was encoded with, so existing data dirs and databases read
// unchanged (summary.go's fast reader depends on this shape too).
// record_test.go fails when a Task field is added without deciding
// whether it is stored.
type record struct {
	ID                 string         `json:"id"`
	Description        string         `json:"description"`
	Metadata           map[string]any `json:"metadata"`
	Priority           int            `json:"priority"`
	Status             Status         `json:"status"`
	AssignedTo         *string        `json:"assigned_to"`
	AssignedAt         *int64         `json:"assigned_at"`
	Generation         int64          `json:"generation"`
	RetryCount         int            `json:"retry_count"`
	DisconnectReclaims int            `json:"disconnect_reclaims,omitempty"`
	MaxRetries         int            `json:"max_retries"`
	NeededCapabilities []string       `json:"needed_capabilities"`
	LastError          any            `json:"last_error"`
	CompleteBy         *int64         `json:"complete_by"`
	Result             any            `json:"result"`
	TokensUsed         *int64         `json:"tokens_used"`
	SubmittedBy        string         `json:"submitted_by"`
	CreatedAt          int64          `json:"created_at"`
	UpdatedAt          int64          `json:"updated_at"`
	History            []recordEvent  `json:"history"`

	TargetAgent *string         `json:"target_agent"`
	NotBefore   int64           `json:"not_before,omitempty"`
	LastOutput  any             `json:"last_output,omitempty"`
	Attempts    []recordAttempt `json:"attempts"`
	RejectedBy  []string        `json:"rejected_by,omitempty"`
	CancelledBy string          `json:"cancelled_by,omitempty"`
	Usage       *protocol.Usage `json:"usage,omitempty"`

	UniqueKey           string   `json:"unique_key,omitempty"`
	UniqueUntil         int64    `json:"unique_until,omitempty"`
	RunAt               int64    `json:"run_at,omitempty"`
	DependsOn           []string `json:"depends_on,omitempty"`
	OnDependencyFailure string   `json:"on_dependency_failure,omitempty"`
	Schedule            string   `json:"schedule,omitempty"`
	ScheduleTick        int64    `json:"schedule_tick,omitempty"`
}

// recordEvent is a stored history entry. Converting from Event does not
// compile once the two differ, which forces a decision on the disk
// format.
type recordEvent struct {
	Event     string `json:"event"`
	Timestamp int64  `json:"timestamp"`
	Details   any    `json:"details"`
}

// recordAttempt is a stored attempt; see recordEvent.
type recordAttempt struct {
	Generation int64  `json:"generation"`
	AgentID    string `json:"agent_id"`
	AssignedAt int64  `json:"assigned_at"`
	AcceptedAt int64  `json:"accepted_at,omitempty"`
	EndedAt    int64  `json:"ended_at,omitempty"`
	Outcome    string `json:"outcome,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// recordOf is t's stored form, the reference of its encoding:
// appendRecord (record_encode.go) writes json.Marshal(recordOf(t)) without
// building it, and its tests hold the two equal. Upstream, Paused, Archived and Version
// are not stored: the first three are filled for delivery and reads, the
// last is the row's column.
func recordOf(t *Task) record {
	r := record{
		ID:                  t.ID,
		Description:         t.Description,
		Metadata:            t.Metadata,
		Priority:            t.Priority,
		Status:              t.Status,
		AssignedTo:          t.AssignedTo,
		AssignedAt:          t.AssignedAt,
		Generation:          t.Generation,
		RetryCount:          t.RetryCount,
		DisconnectReclaims:  t.DisconnectReclaims,
		MaxRetries:          t.MaxRetries,
		NeededCapabilities:  t.NeededCapabilities,
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
		RejectedBy:          t.RejectedBy,
		CancelledBy:         t.CancelledBy,
		Usage:               t.Usage,
		UniqueKey:           t.UniqueKey,
		UniqueUntil:         t.UniqueUntil,
		RunAt:               t.RunAt,
		DependsOn:           t.DependsOn,
		OnDependencyFailure: t.OnDependencyFailure,
		Schedule:            t.Schedule,
		ScheduleTick:        t.ScheduleTick,
	}
	// nil stays nil: the stored JSON has null there, as it always had.
	if t.History != nil {
		r.History = make([]recordEvent, len(t.History))
		for i, e := range t.History {
			r.History[i] = recordEvent(e)
		}
	}
	if t.Attempts != nil {
		r.Attempts = make([]recordAttempt, len(t.Attempts))
		for i, a := range t.Attempts {
			r.Attempts[i] = recordAttempt(a)
		}
	}
	return r
}

// task is the domain task r stores. The slices and maps are r's own (r
// is freshly decoded and not kept).
func (r *record) task() *Task {
	t := &Task{
		ID:                  r.ID,
		Description:         r.Description,
		Metadata:            r.Metadata,
		Priority:            r.Priority,
		Status:              r.Status,
		AssignedTo:          r.AssignedTo,
		AssignedAt:          r.AssignedAt,
		Generation:          r.Generation,
		RetryCount:          r.RetryCount,
		DisconnectReclaims:  r.DisconnectReclaims,
		MaxRetries:          r.MaxRetries,
		NeededCapabilities:  r.NeededCapabilities,
		LastError:           r.LastError,
		CompleteBy:          r.CompleteBy,
		Result:              r.Result,
		TokensUsed:          r.TokensUsed,
		SubmittedBy:         r.SubmittedBy,
		CreatedAt:           r.CreatedAt,
		UpdatedAt:           r.UpdatedAt,
		TargetAgent:         r.TargetAgent,
		NotBefore:           r.NotBefore,
		LastOutput:          r.LastOutput,
		RejectedBy:          r.RejectedBy,
		CancelledBy:         r.CancelledBy,
		Usage:               r.Usage,
		UniqueKey:           r.UniqueKey,
		UniqueUntil:         r.UniqueUntil,
		RunAt:               r.RunAt,
		DependsOn:           r.DependsOn,
		OnDependencyFailure: r.OnDependencyFailure,
		Schedule:            r.Schedule,
		ScheduleTick:        r.ScheduleTick,
	}
	if r.History != nil {
		t.History = make([]Event, len(r.History))
		for i, e := range r.History {
			t.History[i] = Event(e)
		}
	}
	if r.Attempts != nil {
		t.Attempts = make([]Attempt, len(r.Attempts))
		for i, a := range r.Attempts {
			t.Attempts[i] = Attempt(a)
		}
	}
	return t
}
