// Package protocol is the single definition of everything that crosses the
// hub's boundary: the agent socket's frames, the HTTP request bodies and
// query parameters, and the validation that runs on each before any of it
// reaches domain code.
//
// The rules follow the original hub exactly where clients can see them
// (strict integer typing, field-name length limits, the order and wording
// of validation errors) and extend them to every HTTP body.
package protocol

import (
	"reflect"
	"sort"
)

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

	// goType is the wire type the schema was derived from, wire the
	// struct field behind each of Fields, typeField the index of a
	// frame's "type" field (-1: none, a body).
	goType    reflect.Type
	wire      []wireField
	typeField int
	// checkOrder is Fields in the order check reports them, sorted once
	// when the schema is derived rather than on every frame and body.
	checkOrder []Field
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

// agentFrames are the schemas of every frame an agent may send, derived
// from the wire types (wire.go).
var agentFrames = frameSchemas(
	wireDef(Identify{}, "authenticate the socket as an agent", ""),
	wireDef(Message{}, "send a direct or broadcast message", ""),
	wireDef(Status{}, "update presence status", ""),
	wireDef(ListAgents{}, "list connected agents", ""),
	wireDef(Ping{}, "application heartbeat", ""),
	wireDef(ChannelSubscribe{}, "subscribe to a channel", ""),
	wireDef(ChannelUnsubscribe{}, "unsubscribe from a channel", ""),
	wireDef(ChannelPublish{}, "publish to a channel", ""),
	wireDef(ChannelHistory{}, "read a channel's history", ""),
	wireDef(ListChannels{}, "list channels", ""),
	wireDef(TaskAccepted{}, "accept an assigned task", ""),
	wireDef(TaskProgress{}, "report progress; extends the task's lease. output (a chunk of the agent's live output) and check (a verification result) are additions", ""),
	wireDef(TaskComplete{}, "report a task done", ""),
	wireDef(TaskFailed{}, "report a task failed", ""),
	wireDef(TaskRecovering{}, "ask whether to continue a task after a restart or reconnect", ""),
	wireDef(TaskRejected{}, "decline an assigned task", ""),
)

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

// httpBodies are the schemas of every HTTP request body, derived from the
// body types (wire.go). Legacy is the original hub's error string for a
// bad body of the route.
var httpBodies = bodySchemas(
	wireDef(PostMessage{}, "send a message", "missing required field: payload"),
	wireDef(PutHeartbeat{}, "set the heartbeat interval", "missing or invalid field: heartbeat_interval_ms (positive integer)"),
	wireDef(PutMailboxTTL{}, "set the mailbox retention", "missing or invalid field: mailbox_ttl_ms (positive integer)"),
	wireDef(PostChannel{}, "create a channel", "missing required field: name"),
	wireDef(PostChannelPublish{}, "publish to a channel", "missing required field: payload"),
	wireDef(PostMailboxAck{}, "acknowledge mailbox messages up to seq", "missing required field: seq"),
	wireDef(PostToken{}, "create a token", "missing required field: agent_id"),
	wireDef(PostPushTask{}, "push a task straight to a connected agent", "missing required fields: agent_id, description"),
	wireDef(PostTask{}, "submit a task", "missing required field: description"),
	wireDef(PostTaskBatch{}, "submit tasks that depend on each other by key", "missing required field: tasks"),
	wireDef(PostPause{}, "pause or resume a lane or a capability", ""),
	wireDef(PostSchedule{}, "add a periodic schedule", "missing required fields: name, cron, description"),
	wireDef(PostOnboardRegister{}, "register a new agent", "missing or invalid field: agent_id"),
	wireDef(PutDefaultRepo{}, "set the default repository", "missing or invalid field: url"),
	wireDef(PostPushSubscribe{}, "store a web push subscription", "invalid push subscription"),
	wireDef(PutAlerts{}, "replace alert rule thresholds", "invalid alert configuration"),
	wireDef(PostTaskCancel{}, "cancel a task", ""),
	// New route, no original error string: presence and values of
	// action and task_ids are checked by the handler.
	wireDef(PostTasksBulk{}, "retry or cancel many tasks (action and task_ids are required)", ""),
	wireDef(PostAlertAck{}, "acknowledge an active alert", ""),
	wireDef(Empty{}, "no body", ""),
)
