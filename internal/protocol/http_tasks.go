package protocol

// HTTP replies of the task, workflow, storage, alert and reset routes,
// fields in the alphabetical order of their JSON names (see
// http_replies.go).

// TaskSubmitted answers a submission: a task, a batch item (Key, which
// may be empty), a duplicate (Duplicate) or a schedule run (Schedule).
// Priority is the task's lane number.
type TaskSubmitted struct {
	CreatedAt int64   `json:"created_at"`
	Duplicate bool    `json:"duplicate,omitempty"`
	Key       *string `json:"key,omitempty"`
	Priority  int     `json:"priority"`
	Schedule  string  `json:"schedule,omitempty"`
	Status    string  `json:"status"`
	TaskID    string  `json:"task_id"`
}

// BatchSubmitted answers POST /api/tasks/batch.
type BatchSubmitted struct {
	Tasks []TaskSubmitted `json:"tasks"`
}

// TaskRequeued answers a retry.
type TaskRequeued struct {
	Priority int    `json:"priority"`
	Status   string `json:"status"`
	TaskID   string `json:"task_id"`
}

// TaskCancelledReply answers a cancel; WasAssignedTo is null when no
// agent held the task.
type TaskCancelledReply struct {
	Generation    int64   `json:"generation"`
	Status        string  `json:"status"`
	TaskID        string  `json:"task_id"`
	WasAssignedTo *string `json:"was_assigned_to"`
}

// TaskPushed answers POST /api/admin/push-task.
type TaskPushed struct {
	AgentID string `json:"agent_id"`
	Status  string `json:"status"`
	TaskID  string `json:"task_id"`
}

// PauseChanged answers a pause or resume: exactly one of Capability and
// Lane is set.
type PauseChanged struct {
	Capability string `json:"capability,omitempty"`
	Changed    bool   `json:"changed"`
	Lane       string `json:"lane,omitempty"`
	Paused     bool   `json:"paused"`
	State      any    `json:"state"`
}

// ScheduleList answers GET /api/schedules.
type ScheduleList struct {
	Count     int `json:"count"`
	Schedules any `json:"schedules"`
}

// ScheduleRemoved answers DELETE /api/schedules/{name}.
type ScheduleRemoved struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// BackupList answers GET /api/admin/backups/{table_name}.
type BackupList struct {
	Backups any    `json:"backups"`
	Table   string `json:"table"`
}

// TableStatus answers a degraded table's acknowledgement.
type TableStatus struct {
	Status string `json:"status"`
	Table  string `json:"table"`
}

// AlertList answers GET /api/alerts.
type AlertList struct {
	Active  any `json:"active"`
	History any `json:"history"`
}

// ResetRefused is the original's 403 of POST /api/admin/reset.
type ResetRefused struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// ResetScheduled answers POST /api/admin/reset.
type ResetScheduled struct {
	Status      string `json:"status"`
	TriggeredBy string `json:"triggered_by"`
}

// Timeline answers GET /api/dashboard/agents/{agent_id}/timeline.
type Timeline struct {
	AgentID string `json:"agent_id"`
	Entries any    `json:"entries"`
}

// VAPIDKey answers GET /api/dashboard/vapid-key.
type VAPIDKey struct {
	VAPIDPublicKey string `json:"vapid_public_key"`
}
