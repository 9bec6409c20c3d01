package protocol

// Frame types the hub sends on the agent socket.
const (
	OutIdentified          = "identified"
	OutError               = "error"
	OutPong                = "pong"
	OutMessageSent         = "message_sent"
	OutMessage             = "message"
	OutStatusUpdated       = "status_updated"
	OutAgents              = "agents"
	OutChannelSubscribed   = "channel_subscribed"
	OutChannelUnsubscribed = "channel_unsubscribed"
	OutChannelPublished    = "channel_published"
	OutChannelHistory      = "channel_history"
	OutChannels            = "channels"
	OutChannelMessage      = "channel_message"
	OutChannelAgentJoined  = "channel_agent_joined"
	OutAgentJoined         = "agent_joined"
	OutAgentLeft           = "agent_left"
	OutStatusChanged       = "status_changed"
	OutPresence            = "presence" // version 2 only
	OutTaskAssign          = "task_assign"
	OutTaskAck             = "task_ack"
	OutTaskContinue        = "task_continue"
	OutTaskReassign        = "task_reassign"
	OutTaskCancelled       = "task_cancelled"
)

// Error codes of simple error frames on the agent socket.
const (
	CodeInvalidJSON        = "invalid_json"
	CodeNotIdentified      = "not_identified"
	CodeInvalidToken       = "invalid_token"
	CodeTokenAgentMismatch = "token_agent_mismatch"
	CodeChannelNotFound    = "channel_not_found"
	CodeChannelLimit       = "channel_limit_reached"
	CodeUnknownRecipient   = "unknown_recipient"
	CodePayloadTooLarge    = "payload_too_large"
	CodeValidationFailed   = "validation_failed"
	CodeRateLimited        = "rate_limited"
	// CodeQueueQuota refuses a task submission (HTTP 429) from a submitter
	// already holding its quota of unfinished tasks (tasks.ErrQuota).
	CodeQueueQuota = "queue_quota_exceeded"
	CodeForbidden  = "forbidden"
	CodeInternal   = "internal_error"
	// CodeUnauthorized is the original hub's refusal of an identify; this
	// hub answers CodeInvalidToken, but clients still recognise both.
	CodeUnauthorized = "unauthorized"
	// Task report failures are "<prefix>: <reason>".
	CodeTaskCompleteFailed = "task_complete_failed"
	CodeTaskFailFailed     = "task_fail_failed"
	CodeTaskRejectFailed   = "task_reject_failed"
)

// task_ack statuses.
const (
	AckAccepted   = "accepted"
	AckComplete   = "complete"
	AckRetried    = "retried"
	AckDeadLetter = "dead_letter"
	AckRejected   = "rejected"
	// AckProgress is the original hub's ack of task_progress; this hub
	// sends none, but clients still accept it.
	AckProgress = "progress"
)

// WebSocket close codes the hub uses. 4000-4999 are application codes.
const (
	CloseNormal       = 1000
	CloseGoingAway    = 1001 // hub shutting down
	ClosePolicy       = 1008 // validation flood, cooldown, rate-limit flood
	CloseRestart      = 1012 // hub reset by an admin: reconnect
	CloseReplaced     = 4001 // a newer connection identified as the same agent
	CloseStale        = 4002 // no ping within the stale threshold
	CloseIdle         = 4003 // no frame at all within the idle timeout
	CloseRevoked      = 4004 // the agent's tokens were revoked
	CloseSlowConsumer = 4005 // the client did not read its frames

	CloseIdentifyTimeout = 4006 // no identify within the identify timeout
)

// ErrorFrame is a simple error reply.
type ErrorFrame struct {
	Type  string `json:"type"`
	Error string `json:"error"`
}

// ValidationFrame is the reply to a frame that failed its schema.
type ValidationFrame struct {
	Type        string       `json:"type"`
	Error       string       `json:"error"`
	MessageType any          `json:"message_type"`
	Errors      []FieldError `json:"errors"`
}

// RateLimitedFrame is the reply to a frame dropped by the rate limiter.
type RateLimitedFrame struct {
	Type         string `json:"type"`
	Error        string `json:"error"`
	MessageType  string `json:"message_type"`
	RetryAfterMs int64  `json:"retry_after_ms"`
}

// AgentInfo is an agent as presence frames and list_agents show it.
type AgentInfo struct {
	AgentID      string   `json:"agent_id"`
	Name         string   `json:"name"`
	Status       string   `json:"status"`
	Capabilities []string `json:"capabilities"`
	ConnectedAt  int64    `json:"connected_at"`
}

// PushedMessage is a direct or broadcast message pushed to an agent. The
// message kind is "message_type" here because "type" is the frame type.
type PushedMessage struct {
	Type        string         `json:"type"`
	ID          string         `json:"id"`
	From        string         `json:"from"`
	MessageType string         `json:"message_type"`
	Payload     map[string]any `json:"payload"`
	ReplyTo     *string        `json:"reply_to"`
	Timestamp   int64          `json:"timestamp"`
}

// PushedChannelMessage is a channel message pushed to a subscriber: the
// message frame's fields plus the channel.
type PushedChannelMessage struct {
	PushedMessage
	Channel string `json:"channel"`
}

// TaskAssign pushes a task to the agent chosen for it. Priority and
// capabilities are not sent, as in the original; target and deadline are
// additions old sidecars ignore.
type TaskAssign struct {
	Type        string         `json:"type"`
	TaskID      string         `json:"task_id"`
	Description string         `json:"description"`
	Metadata    map[string]any `json:"metadata"`
	Generation  int64          `json:"generation"`
	AssignedAt  int64          `json:"assigned_at"`
	CompleteBy  *int64         `json:"complete_by,omitempty"`
	// Dependencies are the outcomes of the tasks this one depends on
	// (depends_on), an addition old sidecars ignore.
	Dependencies []Dependency `json:"dependencies,omitempty"`
}

// Dependency is one upstream task's outcome in a task_assign frame. A
// result over 64 KiB is left out with result_truncated set.
type Dependency struct {
	TaskID          string `json:"task_id"`
	Description     string `json:"description"`
	Status          string `json:"status"`
	Result          any    `json:"result,omitempty"`
	ResultTruncated bool   `json:"result_truncated,omitempty"`
}

// TaskAck acknowledges a task report.
type TaskAck struct {
	Type      string `json:"type"`
	TaskID    string `json:"task_id"`
	Status    string `json:"status"`
	Duplicate bool   `json:"duplicate,omitempty"`
}
