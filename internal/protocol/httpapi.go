package protocol

// Error codes of the task routes (the "error" field of their refusals).
const (
	// CodeTaskNotFound: no task has that id (404). The original answered
	// it also for a retry of a task that exists outside the dead letter;
	// that is CodeTaskNotRetryable here.
	CodeTaskNotFound = "task_not_found"
	// CodeTaskNotRetryable: a retry of a task that is not dead-lettered
	// (409, with its status).
	CodeTaskNotRetryable = "task_not_retryable"
	// CodeTaskNotCancellable: a cancel of a task that already ended (409,
	// with its status).
	CodeTaskNotCancellable = "task_not_cancellable"
)

// TaskStateRefusal is the 409 body of a retry or cancel that the task's
// state refuses. Status is the state the task was found in, so a client
// can say why without fetching the task again.
type TaskStateRefusal struct {
	Error  string `json:"error"`
	TaskID string `json:"task_id"`
	// Status is the task's status: queued, assigned, completed,
	// cancelled or dead_letter.
	Status string `json:"status"`
	// CancelledBy is the agent that cancelled the task, when Status is
	// cancelled.
	CancelledBy string `json:"cancelled_by,omitempty"`
	Detail      string `json:"detail"`
}

// WhoAmI is the answer of GET /api/whoami: the agent and role of the
// bearer token.
type WhoAmI struct {
	AgentID string `json:"agent_id"`
	// Role is agent, admin or viewer.
	Role string `json:"role"`
}
