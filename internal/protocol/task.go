package protocol

// Task is the API's view of one task: the body of GET /api/tasks/:id and
// the items of the task listings. Field names, order and omitempty are
// the ones the hub has always written (the stored task's JSON), so a
// client sees the same bytes; internal/tasks converts with Task.Wire.
//
// Fields whose type the original hub never enforced (metadata, last
// error, result, last output, history details) stay any: they carry what
// the submitter or agent sent.
type Task struct {
	ID                 string         `json:"id"`
	Description        string         `json:"description"`
	Metadata           map[string]any `json:"metadata"`
	Priority           int            `json:"priority"`
	Status             string         `json:"status"`
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
	History            []TaskEvent    `json:"history"`

	// Additions over the original.
	TargetAgent *string       `json:"target_agent"`
	NotBefore   int64         `json:"not_before,omitempty"`
	LastOutput  any           `json:"last_output,omitempty"`
	Attempts    []TaskAttempt `json:"attempts"`
	RejectedBy  []string      `json:"rejected_by,omitempty"`
	CancelledBy string        `json:"cancelled_by,omitempty"`
	Usage       *Usage        `json:"usage,omitempty"`

	// Workflow fields.
	UniqueKey           string   `json:"unique_key,omitempty"`
	UniqueUntil         int64    `json:"unique_until,omitempty"`
	RunAt               int64    `json:"run_at,omitempty"`
	DependsOn           []string `json:"depends_on,omitempty"`
	OnDependencyFailure string   `json:"on_dependency_failure,omitempty"`
	Schedule            string   `json:"schedule,omitempty"`
	ScheduleTick        int64    `json:"schedule_tick,omitempty"`

	// Paused marks a queued task held by a paused lane or capability in
	// listings.
	Paused bool `json:"paused,omitempty"`
	// Archived marks a task that ended longer ago than the hub's task
	// retention and was moved to the archive: still readable, no longer
	// in the live listings or the counts of GET /api/stats.
	Archived bool `json:"archived,omitempty"`
}

// TaskEvent is one entry of a task's history (newest first).
type TaskEvent struct {
	Event     string `json:"event"`
	Timestamp int64  `json:"timestamp"`
	Details   any    `json:"details"`
}

// TaskAttempt is one assignment of a task and how it ended.
type TaskAttempt struct {
	Generation int64  `json:"generation"`
	AgentID    string `json:"agent_id"`
	AssignedAt int64  `json:"assigned_at"`
	AcceptedAt int64  `json:"accepted_at,omitempty"`
	EndedAt    int64  `json:"ended_at,omitempty"`
	// Outcome is completed, failed, reclaimed, rejected or cancelled;
	// empty while the attempt runs.
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// TaskDetail is the body of GET /api/tasks/:id: the task and the tasks
// that depend on it.
type TaskDetail struct {
	Task
	Dependents []string `json:"dependents"`
}
