// Package protocol is the single definition of everything that crosses the
// hub's boundary: the agent socket's frames, the HTTP request bodies and
// query parameters, and the validation that runs on each before any of it
// reaches domain code.
//
// The rules follow the original hub exactly where clients can see them
// (strict integer typing, field-name length limits, the order and wording
// of validation errors) and extend them to every HTTP body.
package protocol

import "sort"

// Kind is the JSON type a field must have.
type Kind int

// Field kinds.
const (
	KindAny Kind = iota
	KindString
	KindInteger
	KindPositiveInteger
	KindObject
	KindStringArray
	KindBool
)

func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindInteger:
		return "integer"
	case KindPositiveInteger:
		return "positive_integer"
	case KindObject:
		return "object"
	case KindStringArray:
		return "array<string>"
	case KindBool:
		return "boolean"
	}
	return "any"
}

// Field is one field of a schema.
type Field struct {
	Name     string `json:"name"`
	Kind     Kind   `json:"-"`
	Required bool   `json:"-"`
	// MaxLen overrides the limit given by the field's name; 0 keeps it.
	MaxLen int `json:"-"`
	// Format, for a string, is a rule beyond the length: FormatAgentID
	// or FormatRecipient.
	Format Format `json:"-"`
}

// Format is a rule a string field's value must follow.
type Format string

// Formats.
const (
	// FormatAgentID is CheckAgentID.
	FormatAgentID Format = "agent_id"
	// FormatRecipient is CheckRecipient: an agent id or "broadcast".
	FormatRecipient Format = "recipient"
)

// Schema describes one frame type or one HTTP body.
type Schema struct {
	Name        string
	Description string
	Fields      []Field
	// Legacy is the original hub's error string for a bad body of this
	// route; HTTP error replies carry it as "error" so old clients keep
	// matching on it. Empty for frames.
	Legacy string
}

// lengthLimits are keyed by field name, whatever the schema, as in the
// original: counted in characters (runes).
var lengthLimits = map[string]int{
	"agent_id":    128,
	"token":       256,
	"name":        256,
	"status":      256,
	"channel":     64,
	"error":       2000,
	"reason":      2000,
	"description": 10000,
	"url":         2048,
	"endpoint":    2048,
	"join_secret": 256,
	// Message fields: ids are 16 hex characters, kinds short words.
	"reply_to":     256,
	"message_type": 256,
	"type":         256,
}

// limit is the maximum length of field f, or 0 for none.
func (f Field) limit() int {
	if f.MaxLen > 0 {
		return f.MaxLen
	}
	return lengthLimits[f.Name]
}

func req(name string, k Kind) Field { return Field{Name: name, Kind: k, Required: true} }
func opt(name string, k Kind) Field { return Field{Name: name, Kind: k} }

// withFormat returns f restricted to format.
func (f Field) withFormat(format Format) Field { f.Format = format; return f }

// Frame types the agent sends.
const (
	FrameIdentify           = "identify"
	FrameMessage            = "message"
	FrameStatus             = "status"
	FrameListAgents         = "list_agents"
	FramePing               = "ping"
	FrameChannelSubscribe   = "channel_subscribe"
	FrameChannelUnsubscribe = "channel_unsubscribe"
	FrameChannelPublish     = "channel_publish"
	FrameChannelHistory     = "channel_history"
	FrameListChannels       = "list_channels"
	FrameTaskAccepted       = "task_accepted"
	FrameTaskProgress       = "task_progress"
	FrameTaskComplete       = "task_complete"
	FrameTaskFailed         = "task_failed"
	FrameTaskRecovering     = "task_recovering"
	// FrameTaskRejected is sent by the original Node sidecar when it is
	// busy. The original hub refused it; this hub requeues the task.
	FrameTaskRejected = "task_rejected"
)

// agentFrames are the schemas of every frame an agent may send.
var agentFrames = map[string]Schema{
	FrameIdentify: {Description: "authenticate the socket as an agent", Fields: []Field{
		req("agent_id", KindString).withFormat(FormatAgentID), req("token", KindString),
		opt("name", KindString), opt("status", KindString), opt("capabilities", KindStringArray)}},
	FrameMessage: {Description: "send a direct or broadcast message", Fields: []Field{
		req("payload", KindObject), opt("to", KindString).withFormat(FormatRecipient), opt("message_type", KindString), opt("reply_to", KindString)}},
	FrameStatus:             {Description: "update presence status", Fields: []Field{req("status", KindString)}},
	FrameListAgents:         {Description: "list connected agents"},
	FramePing:               {Description: "application heartbeat"},
	FrameChannelSubscribe:   {Description: "subscribe to a channel", Fields: []Field{req("channel", KindString)}},
	FrameChannelUnsubscribe: {Description: "unsubscribe from a channel", Fields: []Field{req("channel", KindString)}},
	FrameChannelPublish: {Description: "publish to a channel", Fields: []Field{
		req("channel", KindString), req("payload", KindObject), opt("message_type", KindString), opt("reply_to", KindString)}},
	FrameChannelHistory: {Description: "read a channel's history", Fields: []Field{
		req("channel", KindString), opt("limit", KindInteger), opt("since", KindInteger)}},
	FrameListChannels: {Description: "list channels"},
	FrameTaskAccepted: {Description: "accept an assigned task", Fields: []Field{req("task_id", KindString)}},
	FrameTaskProgress: {Description: "report progress; extends the task's lease. output (a chunk of the agent's live output) and check (a verification result) are additions", Fields: []Field{
		req("task_id", KindString), opt("progress", KindInteger),
		{Name: "output", Kind: KindString, MaxLen: MaxProgressOutput}, opt("check", KindObject)}},
	FrameTaskComplete: {Description: "report a task done", Fields: []Field{
		req("task_id", KindString), req("generation", KindInteger), opt("result", KindObject), opt("tokens_used", KindInteger),
		opt("usage", KindObject)}},
	FrameTaskFailed: {Description: "report a task failed", Fields: []Field{
		req("task_id", KindString), req("generation", KindInteger), opt("error", KindString), opt("reason", KindString),
		opt("usage", KindObject)}},
	FrameTaskRecovering: {Description: "ask whether to continue a task after a restart or reconnect", Fields: []Field{req("task_id", KindString)}},
	FrameTaskRejected: {Description: "decline an assigned task", Fields: []Field{
		req("task_id", KindString), opt("reason", KindString), opt("generation", KindInteger)}},
}

// KnownFrameTypes lists the agent frame types, sorted, as validation
// errors report them.
func KnownFrameTypes() []string {
	out := make([]string, 0, len(agentFrames))
	for t := range agentFrames {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// HTTP body schema names.
const (
	BodyPostMessage     = "post_message"
	BodyPutHeartbeat    = "put_heartbeat_interval"
	BodyPutMailboxTTL   = "put_mailbox_retention"
	BodyPostChannel     = "post_channel"
	BodyChannelPublish  = "post_channel_publish"
	BodyMailboxAck      = "post_mailbox_ack"
	BodyPostToken       = "post_admin_token"
	BodyPushTask        = "post_admin_push_task"
	BodyPostTask        = "post_task"
	BodyOnboardRegister = "post_onboard_register"
	BodyPutDefaultRepo  = "put_default_repo"
	BodyPushSubscribe   = "post_push_subscribe"
	BodyPutAlerts       = "put_alerts"
	BodyTaskCancel      = "post_task_cancel"
	BodyTaskBulk        = "post_tasks_bulk"
	BodyAlertAck        = "post_alert_ack"
	BodyEmpty           = "empty"
	BodyPostTaskBatch   = "post_task_batch"
	BodyPause           = "post_pause"
	BodyPostSchedule    = "post_schedule"
)

// httpBodies are the schemas of every HTTP request body.
var httpBodies = map[string]Schema{
	BodyPostMessage: {Description: "send a message", Legacy: "missing required field: payload", Fields: []Field{
		req("payload", KindObject), opt("to", KindString).withFormat(FormatRecipient), opt("type", KindString), opt("reply_to", KindString)}},
	BodyPutHeartbeat: {Description: "set the heartbeat interval", Legacy: "missing or invalid field: heartbeat_interval_ms (positive integer)",
		Fields: []Field{req("heartbeat_interval_ms", KindPositiveInteger)}},
	BodyPutMailboxTTL: {Description: "set the mailbox retention", Legacy: "missing or invalid field: mailbox_ttl_ms (positive integer)",
		Fields: []Field{req("mailbox_ttl_ms", KindPositiveInteger)}},
	BodyPostChannel: {Description: "create a channel", Legacy: "missing required field: name", Fields: []Field{
		req("name", KindString), opt("description", KindString)}},
	BodyChannelPublish: {Description: "publish to a channel", Legacy: "missing required field: payload", Fields: []Field{
		req("payload", KindObject), opt("type", KindString), opt("reply_to", KindString)}},
	BodyMailboxAck: {Description: "acknowledge mailbox messages up to seq", Legacy: "missing required field: seq", Fields: []Field{
		req("seq", KindInteger), opt("token", KindString)}},
	BodyPostToken: {Description: "create a token", Legacy: "missing required field: agent_id", Fields: []Field{
		req("agent_id", KindString).withFormat(FormatAgentID), opt("role", KindString)}},
	BodyPushTask: {Description: "push a task straight to a connected agent", Legacy: "missing required fields: agent_id, description", Fields: []Field{
		req("agent_id", KindString).withFormat(FormatAgentID), req("description", KindString), opt("metadata", KindObject)}},
	BodyPostTask: {Description: "submit a task", Legacy: "missing required field: description", Fields: []Field{
		req("description", KindString), opt("priority", KindAny), opt("metadata", KindObject),
		opt("max_retries", KindInteger), opt("complete_by", KindInteger),
		opt("needed_capabilities", KindStringArray), opt("target_agent", KindString).withFormat(FormatAgentID),
		{Name: "unique_key", Kind: KindString, MaxLen: 256}, {Name: "unique_for", Kind: KindString, MaxLen: 64},
		opt("run_at", KindAny), {Name: "run_in", Kind: KindString, MaxLen: 64},
		opt("depends_on", KindStringArray), {Name: "on_dependency_failure", Kind: KindString, MaxLen: 16},
		opt("verify", KindStringArray), opt("max_verify_attempts", KindInteger)}},
	BodyPostTaskBatch: {Description: "submit tasks that depend on each other by key", Legacy: "missing required field: tasks", Fields: []Field{req("tasks", KindAny)}},
	BodyPause: {Description: "pause or resume a lane or a capability", Fields: []Field{
		{Name: "lane", Kind: KindString, MaxLen: 16}, {Name: "capability", Kind: KindString, MaxLen: 256}}},
	BodyPostSchedule: {Description: "add a periodic schedule", Legacy: "missing required fields: name, cron, description", Fields: []Field{
		req("name", KindString), {Name: "cron", Kind: KindString, Required: true, MaxLen: 128},
		{Name: "timezone", Kind: KindString, MaxLen: 64}, req("description", KindString), opt("priority", KindAny),
		opt("metadata", KindObject), opt("max_retries", KindInteger), opt("needed_capabilities", KindStringArray),
		opt("target_agent", KindString).withFormat(FormatAgentID)}},
	BodyOnboardRegister: {Description: "register a new agent", Legacy: "missing or invalid field: agent_id", Fields: []Field{
		req("agent_id", KindString).withFormat(FormatAgentID), opt("join_secret", KindString), opt("capabilities", KindStringArray)}},
	BodyPutDefaultRepo: {Description: "set the default repository", Legacy: "missing or invalid field: url", Fields: []Field{req("url", KindString)}},
	BodyPushSubscribe: {Description: "store a web push subscription", Legacy: "invalid push subscription", Fields: []Field{
		req("endpoint", KindString), req("keys", KindObject)}},
	BodyPutAlerts:  {Description: "replace alert rule thresholds", Legacy: "invalid alert configuration", Fields: []Field{req("rules", KindObject)}},
	BodyTaskCancel: {Description: "cancel a task", Fields: []Field{opt("reason", KindString)}},
	// New route, no original error string: presence and values of
	// action and task_ids are checked by the handler.
	BodyTaskBulk: {Description: "retry or cancel many tasks (action and task_ids are required)", Fields: []Field{
		opt("action", KindString), opt("task_ids", KindStringArray), opt("reason", KindString)}},
	BodyAlertAck: {Description: "acknowledge an active alert", Fields: []Field{opt("note", KindString)}},
	BodyEmpty:    {Description: "no body"},
}
