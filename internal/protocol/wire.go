package protocol

import "encoding/json"

// Wire types: one Go struct per frame an agent sends, per frame the hub
// sends on the agent socket and per HTTP request body. The validation
// schemas (agentFrames, httpBodies) and /api/schemas are derived from
// these structs' tags (schema.go), so a field added here is validated
// and documented with nothing else to edit.
//
// Tags: `json:"name"` names the field on the wire; `protocol:"…"` holds
// its rule, comma-separated: "required", "kind=K" (a Kind name; by
// default the Go type decides: string, integer, boolean, array<string>,
// object for maps and structs, any for json.RawMessage and interfaces),
// "max=N" (length limit overriding the one of the field's name) and
// "format=F" (agent_id or recipient). `protocol:"-"` keeps a field out of
// the schema: the frame's own "type".
//
// Field order is the order encoders emit, which for the agent frames is
// the order of the original sidecar and of the schemas' documentation.
//
// To add an agent frame: its Frame* constant (schema.go), its struct and
// FrameType here, a wireDef line in agentFrames, a sample in wire_test.go
// (TestEveryFrameRoundTrips fails until there is one), and its handler in
// agentws. A hub frame: its Out* constant (frames.go and OutFrameTypes),
// its struct, constructor and sample. A body: its Body* constant, struct,
// BodyName, wireDef line in httpBodies and sample.
//
// Fields the hub always tolerated but never checked (protocol_version,
// client_type, timestamp, task_failed output, task_recovering's
// description, metadata, last_status and generation) have Go type any or
// json.RawMessage, so decoding accepts whatever validation accepts.

// Frame is a frame on the agent socket, in either direction.
type Frame interface{ FrameType() string }

// Body is an HTTP request body.
type Body interface{ BodyName() string }

// Agent → hub frames.
type (
	// Identify authenticates the socket as an agent.
	Identify struct {
		Type            string   `json:"type" protocol:"-"`
		AgentID         string   `json:"agent_id" protocol:"required,format=agent_id"`
		Token           string   `json:"token" protocol:"required"`
		Name            string   `json:"name"`
		Status          string   `json:"status"`
		Capabilities    []string `json:"capabilities"`
		ClientType      any      `json:"client_type,omitempty"`
		ProtocolVersion any      `json:"protocol_version,omitempty"`
	}
	// Message sends a direct or broadcast message.
	Message struct {
		Type            string         `json:"type" protocol:"-"`
		Payload         map[string]any `json:"payload" protocol:"required"`
		To              string         `json:"to,omitempty" protocol:"format=recipient"`
		MessageType     string         `json:"message_type,omitempty"`
		ReplyTo         string         `json:"reply_to,omitempty"`
		ProtocolVersion any            `json:"protocol_version,omitempty"`
	}
	// Status updates the agent's presence status.
	Status struct {
		Type            string `json:"type" protocol:"-"`
		Status          string `json:"status" protocol:"required"`
		ProtocolVersion any    `json:"protocol_version,omitempty"`
	}
	// ListAgents asks for the connected agents.
	ListAgents struct {
		Type            string `json:"type" protocol:"-"`
		ProtocolVersion any    `json:"protocol_version,omitempty"`
	}
	// Ping is the application heartbeat. The sidecar also answers a hub
	// ping with this shape, typed pong.
	Ping struct {
		Type            string `json:"type" protocol:"-"`
		Timestamp       any    `json:"timestamp,omitempty"`
		ProtocolVersion any    `json:"protocol_version,omitempty"`
	}
	// ChannelSubscribe subscribes to a channel.
	ChannelSubscribe struct {
		Type            string `json:"type" protocol:"-"`
		Channel         string `json:"channel" protocol:"required"`
		ProtocolVersion any    `json:"protocol_version,omitempty"`
	}
	// ChannelUnsubscribe unsubscribes from a channel.
	ChannelUnsubscribe struct {
		Type            string `json:"type" protocol:"-"`
		Channel         string `json:"channel" protocol:"required"`
		ProtocolVersion any    `json:"protocol_version,omitempty"`
	}
	// ChannelPublish publishes to a channel.
	ChannelPublish struct {
		Type            string         `json:"type" protocol:"-"`
		Channel         string         `json:"channel" protocol:"required"`
		Payload         map[string]any `json:"payload" protocol:"required"`
		MessageType     string         `json:"message_type,omitempty"`
		ReplyTo         string         `json:"reply_to,omitempty"`
		ProtocolVersion any            `json:"protocol_version,omitempty"`
	}
	// ChannelHistory reads a channel's history.
	ChannelHistory struct {
		Type            string `json:"type" protocol:"-"`
		Channel         string `json:"channel" protocol:"required"`
		Limit           *int64 `json:"limit,omitempty"`
		Since           *int64 `json:"since,omitempty"`
		ProtocolVersion any    `json:"protocol_version,omitempty"`
	}
	// ListChannels asks for the channels.
	ListChannels struct {
		Type            string `json:"type" protocol:"-"`
		ProtocolVersion any    `json:"protocol_version,omitempty"`
	}
	// TaskAccepted accepts an assigned task.
	TaskAccepted struct {
		Type            string `json:"type" protocol:"-"`
		TaskID          string `json:"task_id" protocol:"required"`
		ProtocolVersion any    `json:"protocol_version,omitempty"`
	}
	// TaskComplete reports a task done. Result must be an object when
	// present.
	TaskComplete struct {
		Type            string          `json:"type" protocol:"-"`
		TaskID          string          `json:"task_id" protocol:"required"`
		Result          json.RawMessage `json:"result" protocol:"kind=object"`
		Generation      int64           `json:"generation" protocol:"required"`
		TokensUsed      *int64          `json:"tokens_used,omitempty"`
		Usage           *Usage          `json:"usage,omitempty"`
		ProtocolVersion any             `json:"protocol_version,omitempty"`
	}
	// TaskFailed reports a task failed. Output (the sidecar's failure
	// output, any JSON) was always tolerated and is read by the hub.
	TaskFailed struct {
		Type            string          `json:"type" protocol:"-"`
		TaskID          string          `json:"task_id" protocol:"required"`
		Error           string          `json:"error,omitempty"`
		Reason          string          `json:"reason"`
		Generation      int64           `json:"generation" protocol:"required"`
		Output          json.RawMessage `json:"output,omitempty"`
		Usage           *Usage          `json:"usage,omitempty"`
		ProtocolVersion any             `json:"protocol_version,omitempty"`
	}
	// TaskRecovering asks whether to continue a task after a restart or
	// reconnect. The fields after task_id are what the sidecar remembers
	// of the task; the hub reads only task_id.
	TaskRecovering struct {
		Type            string          `json:"type" protocol:"-"`
		TaskID          string          `json:"task_id" protocol:"required"`
		Description     json.RawMessage `json:"description,omitempty"`
		Metadata        json.RawMessage `json:"metadata,omitempty"`
		LastStatus      any             `json:"last_status,omitempty"`
		Generation      any             `json:"generation,omitempty"`
		ProtocolVersion any             `json:"protocol_version,omitempty"`
	}
	// TaskRejected declines an assigned task. The original Node sidecar
	// sends it when busy; the original hub refused it, this hub requeues.
	TaskRejected struct {
		Type            string `json:"type" protocol:"-"`
		TaskID          string `json:"task_id" protocol:"required"`
		Reason          string `json:"reason,omitempty"`
		Generation      *int64 `json:"generation,omitempty"`
		ProtocolVersion any    `json:"protocol_version,omitempty"`
	}
)

// FrameType methods of the agent frames.
func (Identify) FrameType() string           { return FrameIdentify }
func (Message) FrameType() string            { return FrameMessage }
func (Status) FrameType() string             { return FrameStatus }
func (ListAgents) FrameType() string         { return FrameListAgents }
func (Ping) FrameType() string               { return FramePing }
func (ChannelSubscribe) FrameType() string   { return FrameChannelSubscribe }
func (ChannelUnsubscribe) FrameType() string { return FrameChannelUnsubscribe }
func (ChannelPublish) FrameType() string     { return FrameChannelPublish }
func (ChannelHistory) FrameType() string     { return FrameChannelHistory }
func (ListChannels) FrameType() string       { return FrameListChannels }
func (TaskAccepted) FrameType() string       { return FrameTaskAccepted }
func (TaskProgress) FrameType() string       { return FrameTaskProgress }
func (TaskComplete) FrameType() string       { return FrameTaskComplete }
func (TaskFailed) FrameType() string         { return FrameTaskFailed }
func (TaskRecovering) FrameType() string     { return FrameTaskRecovering }
func (TaskRejected) FrameType() string       { return FrameTaskRejected }

// Hub → agent frames that were built as maps. encoding/json writes a
// map's keys sorted, so these structs declare their fields in byte order
// of their JSON names: the bytes stay those of the maps they replace.
type (
	// Identified answers a good identify. ProtocolVersion, the version the
	// hub speaks with this client (Negotiate), is an addition.
	Identified struct {
		AgentID         string `json:"agent_id"`
		ProtocolVersion int    `json:"protocol_version,omitempty"`
		Type            string `json:"type"`
	}
	// Pong answers a ping.
	Pong struct {
		Timestamp int64  `json:"timestamp"`
		Type      string `json:"type"`
	}
	// MessageSent answers a message.
	MessageSent struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	// StatusUpdated answers a status frame.
	StatusUpdated struct {
		Type string `json:"type"`
	}
	// Agents answers list_agents.
	Agents struct {
		Agents []AgentInfo `json:"agents"`
		Type   string      `json:"type"`
	}
	// ChannelSubscribed answers channel_subscribe; Note is
	// "already_subscribed" when it was.
	ChannelSubscribed struct {
		Channel string `json:"channel"`
		Note    string `json:"note,omitempty"`
		Type    string `json:"type"`
	}
	// ChannelUnsubscribed answers channel_unsubscribe.
	ChannelUnsubscribed struct {
		Channel string `json:"channel"`
		Type    string `json:"type"`
	}
	// ChannelPublished answers channel_publish.
	ChannelPublished struct {
		Channel string `json:"channel"`
		ID      string `json:"id"`
		Seq     uint64 `json:"seq"`
		Type    string `json:"type"`
	}
	// ChannelHistory answers channel_history. Messages are the channel's
	// entries as the messaging package encodes them.
	ChannelHistoryReply struct {
		Channel  string `json:"channel"`
		Messages any    `json:"messages"`
		Type     string `json:"type"`
	}
	// Channels answers list_channels, with the channels as the messaging
	// package encodes them.
	Channels struct {
		Channels any    `json:"channels"`
		Type     string `json:"type"`
	}
	// ChannelAgentJoined tells a subscriber another agent joined.
	ChannelAgentJoined struct {
		AgentID string `json:"agent_id"`
		Channel string `json:"channel"`
		Type    string `json:"type"`
	}
	// AgentJoined tells the other agents one identified.
	AgentJoined struct {
		Agent AgentInfo `json:"agent"`
		Type  string    `json:"type"`
	}
	// AgentLeft tells the other agents one disconnected.
	AgentLeft struct {
		AgentID string `json:"agent_id"`
		Type    string `json:"type"`
	}
	// StatusChanged tells every agent one changed its status.
	StatusChanged struct {
		Agent AgentInfo `json:"agent"`
		Type  string    `json:"type"`
	}
	// Presence (protocol version 2, VersionPresence) carries the presence
	// changes of a short window in one frame, in place of agent_joined,
	// agent_left and status_changed: a fleet start of N agents sends each
	// agent a few frames, not N. An agent that came and went within the
	// window is in neither list. Resync instead of the lists says more
	// changed than one frame carries: list_agents has the directory.
	Presence struct {
		Joined        []AgentInfo `json:"joined,omitempty"`
		Left          []string    `json:"left,omitempty"`
		Resync        bool        `json:"resync,omitempty"`
		StatusChanged []AgentInfo `json:"status_changed,omitempty"`
		Type          string      `json:"type"`
	}
	// TaskContinue answers task_recovering: keep working on the task.
	TaskContinue struct {
		Generation int64  `json:"generation"`
		TaskID     string `json:"task_id"`
		Type       string `json:"type"`
	}
	// TaskReassignReply answers task_recovering for a task the agent no
	// longer holds (the map form: no generation, no reason). The unasked
	// take-back is a TaskRevoked.
	TaskReassignReply struct {
		TaskID string `json:"task_id"`
		Type   string `json:"type"`
	}
	// UnknownRecipientError refuses a message to an agent the hub does
	// not know.
	UnknownRecipientError struct {
		Error string `json:"error"`
		To    string `json:"to"`
		Type  string `json:"type"`
	}
	// PayloadTooLargeError refuses a payload over the limit.
	PayloadTooLargeError struct {
		Error      string `json:"error"`
		LimitBytes int    `json:"limit_bytes"`
		Type       string `json:"type"`
	}
	// TaskReportError refuses a task report: Error is
	// "<CodeTask…Failed>: <reason>".
	TaskReportError struct {
		Error  string `json:"error"`
		TaskID string `json:"task_id"`
		Type   string `json:"type"`
	}
)

// FrameType methods of the hub frames. A struct that serves several frame
// types (an error, a pushed message, a take-back) answers its Type field.
func (f ErrorFrame) FrameType() string           { return f.Type }
func (f ValidationFrame) FrameType() string      { return f.Type }
func (f RateLimitedFrame) FrameType() string     { return f.Type }
func (f PushedMessage) FrameType() string        { return f.Type }
func (f PushedChannelMessage) FrameType() string { return f.Type }
func (TaskAssign) FrameType() string             { return OutTaskAssign }
func (TaskAck) FrameType() string                { return OutTaskAck }
func (f TaskRevoked) FrameType() string          { return f.Type }
func (Identified) FrameType() string             { return OutIdentified }
func (Pong) FrameType() string                   { return OutPong }
func (MessageSent) FrameType() string            { return OutMessageSent }
func (StatusUpdated) FrameType() string          { return OutStatusUpdated }
func (Agents) FrameType() string                 { return OutAgents }
func (ChannelSubscribed) FrameType() string      { return OutChannelSubscribed }
func (ChannelUnsubscribed) FrameType() string    { return OutChannelUnsubscribed }
func (ChannelPublished) FrameType() string       { return OutChannelPublished }
func (ChannelHistoryReply) FrameType() string    { return OutChannelHistory }
func (Channels) FrameType() string               { return OutChannels }
func (ChannelAgentJoined) FrameType() string     { return OutChannelAgentJoined }
func (AgentJoined) FrameType() string            { return OutAgentJoined }
func (AgentLeft) FrameType() string              { return OutAgentLeft }
func (StatusChanged) FrameType() string          { return OutStatusChanged }
func (Presence) FrameType() string               { return OutPresence }
func (TaskContinue) FrameType() string           { return OutTaskContinue }
func (TaskReassignReply) FrameType() string      { return OutTaskReassign }
func (UnknownRecipientError) FrameType() string  { return OutError }
func (PayloadTooLargeError) FrameType() string   { return OutError }
func (TaskReportError) FrameType() string        { return OutError }

// Constructors fill Type, so a frame cannot go out mistyped.

// NewIdentified answers a good identify in protocol version v.
func NewIdentified(agentID string, v int) Identified {
	return Identified{AgentID: agentID, ProtocolVersion: v, Type: OutIdentified}
}

// NewPong answers a ping at time now (Unix ms).
func NewPong(now int64) Pong { return Pong{Timestamp: now, Type: OutPong} }

// NewMessageSent answers a message.
func NewMessageSent(id string) MessageSent { return MessageSent{ID: id, Type: OutMessageSent} }

// NewStatusUpdated answers a status frame.
func NewStatusUpdated() StatusUpdated { return StatusUpdated{Type: OutStatusUpdated} }

// NewAgents answers list_agents.
func NewAgents(list []AgentInfo) Agents { return Agents{Agents: list, Type: OutAgents} }

// NewChannelSubscribed answers channel_subscribe.
func NewChannelSubscribed(channel string, already bool) ChannelSubscribed {
	f := ChannelSubscribed{Channel: channel, Type: OutChannelSubscribed}
	if already {
		f.Note = "already_subscribed"
	}
	return f
}

// NewChannelUnsubscribed answers channel_unsubscribe.
func NewChannelUnsubscribed(channel string) ChannelUnsubscribed {
	return ChannelUnsubscribed{Channel: channel, Type: OutChannelUnsubscribed}
}

// NewChannelPublished answers channel_publish.
func NewChannelPublished(channel, id string, seq uint64) ChannelPublished {
	return ChannelPublished{Channel: channel, ID: id, Seq: seq, Type: OutChannelPublished}
}

// NewChannelHistory answers channel_history.
func NewChannelHistory(channel string, messages any) ChannelHistoryReply {
	return ChannelHistoryReply{Channel: channel, Messages: messages, Type: OutChannelHistory}
}

// NewChannels answers list_channels.
func NewChannels(channels any) Channels { return Channels{Channels: channels, Type: OutChannels} }

// NewChannelAgentJoined tells a subscriber agentID joined channel.
func NewChannelAgentJoined(channel, agentID string) ChannelAgentJoined {
	return ChannelAgentJoined{AgentID: agentID, Channel: channel, Type: OutChannelAgentJoined}
}

// NewAgentJoined tells the other agents one identified.
func NewAgentJoined(a AgentInfo) AgentJoined { return AgentJoined{Agent: a, Type: OutAgentJoined} }

// NewAgentLeft tells the other agents one disconnected.
func NewAgentLeft(agentID string) AgentLeft { return AgentLeft{AgentID: agentID, Type: OutAgentLeft} }

// NewStatusChanged tells every agent one changed its status.
func NewStatusChanged(a AgentInfo) StatusChanged {
	return StatusChanged{Agent: a, Type: OutStatusChanged}
}

// NewPresence carries joined, left and status-changed agents (version 2).
func NewPresence(joined []AgentInfo, left []string, status []AgentInfo) Presence {
	return Presence{Joined: joined, Left: left, StatusChanged: status, Type: OutPresence}
}

// NewPresenceResync says presence changed more than one frame carries.
func NewPresenceResync() Presence { return Presence{Resync: true, Type: OutPresence} }

// NewTaskContinue answers task_recovering: keep working.
func NewTaskContinue(taskID string, gen int64) TaskContinue {
	return TaskContinue{Generation: gen, TaskID: taskID, Type: OutTaskContinue}
}

// NewTaskReassignReply answers task_recovering for a task the agent no
// longer holds.
func NewTaskReassignReply(taskID string) TaskReassignReply {
	return TaskReassignReply{TaskID: taskID, Type: OutTaskReassign}
}

// NewUnknownRecipientError refuses a message to an unknown agent.
func NewUnknownRecipientError(to string) UnknownRecipientError {
	return UnknownRecipientError{Error: CodeUnknownRecipient, To: to, Type: OutError}
}

// NewPayloadTooLargeError refuses a payload over limit bytes.
func NewPayloadTooLargeError(limit int) PayloadTooLargeError {
	return PayloadTooLargeError{Error: CodePayloadTooLarge, LimitBytes: limit, Type: OutError}
}

// NewTaskReportError refuses a task report: code is a CodeTask…Failed.
func NewTaskReportError(code, reason, taskID string) TaskReportError {
	return TaskReportError{Error: code + ": " + reason, TaskID: taskID, Type: OutError}
}

// HTTP request bodies, one per Body* name. Optional fields are omitempty
// so a client sends only what it sets.
type (
	// PostMessage is the body of POST /api/message.
	PostMessage struct {
		Payload map[string]any `json:"payload" protocol:"required"`
		To      string         `json:"to,omitempty" protocol:"format=recipient"`
		Type    string         `json:"type,omitempty"`
		ReplyTo string         `json:"reply_to,omitempty"`
	}
	// PutHeartbeat is the body of PUT /api/admin/heartbeat-interval.
	PutHeartbeat struct {
		HeartbeatIntervalMs int64 `json:"heartbeat_interval_ms" protocol:"required,kind=positive_integer"`
	}
	// PutMailboxTTL is the body of PUT /api/admin/mailbox-retention.
	PutMailboxTTL struct {
		MailboxTTLMs int64 `json:"mailbox_ttl_ms" protocol:"required,kind=positive_integer"`
	}
	// PostChannel creates a channel.
	PostChannel struct {
		Name        string `json:"name" protocol:"required"`
		Description string `json:"description,omitempty"`
	}
	// PostChannelPublish publishes to a channel.
	PostChannelPublish struct {
		Payload map[string]any `json:"payload" protocol:"required"`
		Type    string         `json:"type,omitempty"`
		ReplyTo string         `json:"reply_to,omitempty"`
	}
	// PostMailboxAck acknowledges mailbox messages up to Seq.
	PostMailboxAck struct {
		Seq   int64  `json:"seq" protocol:"required"`
		Token string `json:"token,omitempty"`
	}
	// PostToken creates a token.
	PostToken struct {
		AgentID string `json:"agent_id" protocol:"required,format=agent_id"`
		Role    string `json:"role,omitempty"`
	}
	// PostPushTask pushes a task straight to a connected agent.
	PostPushTask struct {
		AgentID     string         `json:"agent_id" protocol:"required,format=agent_id"`
		Description string         `json:"description" protocol:"required"`
		Metadata    map[string]any `json:"metadata,omitempty"`
	}
	// PostTask submits a task. Priority is a number or a name; RunAt a
	// Unix ms time or an RFC 3339 text.
	PostTask struct {
		Description         string         `json:"description" protocol:"required"`
		Priority            any            `json:"priority,omitempty"`
		Metadata            map[string]any `json:"metadata,omitempty"`
		MaxRetries          *int64         `json:"max_retries,omitempty"`
		CompleteBy          *int64         `json:"complete_by,omitempty"`
		NeededCapabilities  []string       `json:"needed_capabilities,omitempty"`
		TargetAgent         string         `json:"target_agent,omitempty" protocol:"format=agent_id"`
		UniqueKey           string         `json:"unique_key,omitempty" protocol:"max=256"`
		UniqueFor           string         `json:"unique_for,omitempty" protocol:"max=64"`
		RunAt               any            `json:"run_at,omitempty"`
		RunIn               string         `json:"run_in,omitempty" protocol:"max=64"`
		DependsOn           []string       `json:"depends_on,omitempty"`
		OnDependencyFailure string         `json:"on_dependency_failure,omitempty" protocol:"max=16"`
		Verify              []string       `json:"verify,omitempty"`
		MaxVerifyAttempts   *int64         `json:"max_verify_attempts,omitempty"`
	}
	// BatchTask is one task of POST /api/tasks/batch: a client-chosen key
	// and the task fields; DependsOn may name other keys of the batch.
	BatchTask struct {
		Key string `json:"key"`
		PostTask
	}
	// PostTaskBatch submits tasks that depend on each other by key. The
	// handler checks each task (validation knows tasks only as present).
	PostTaskBatch struct {
		Tasks []BatchTask `json:"tasks" protocol:"required,kind=any"`
	}
	// PostPause pauses or resumes a lane or a capability.
	PostPause struct {
		Lane       string `json:"lane,omitempty" protocol:"max=16"`
		Capability string `json:"capability,omitempty" protocol:"max=256"`
	}
	// PostSchedule adds a periodic schedule.
	PostSchedule struct {
		Name               string         `json:"name" protocol:"required"`
		Cron               string         `json:"cron" protocol:"required,max=128"`
		Timezone           string         `json:"timezone,omitempty" protocol:"max=64"`
		Description        string         `json:"description" protocol:"required"`
		Priority           any            `json:"priority,omitempty"`
		Metadata           map[string]any `json:"metadata,omitempty"`
		MaxRetries         *int64         `json:"max_retries,omitempty"`
		NeededCapabilities []string       `json:"needed_capabilities,omitempty"`
		TargetAgent        string         `json:"target_agent,omitempty" protocol:"format=agent_id"`
	}
	// PostOnboardRegister registers a new agent.
	PostOnboardRegister struct {
		AgentID      string   `json:"agent_id" protocol:"required,format=agent_id"`
		JoinSecret   string   `json:"join_secret,omitempty"`
		Capabilities []string `json:"capabilities,omitempty"`
	}
	// PutDefaultRepo sets the default repository.
	PutDefaultRepo struct {
		URL string `json:"url" protocol:"required"`
	}
	// PostPushSubscribe stores a web push subscription.
	PostPushSubscribe struct {
		Endpoint string         `json:"endpoint" protocol:"required"`
		Keys     map[string]any `json:"keys" protocol:"required"`
	}
	// PutAlerts replaces alert rule thresholds.
	PutAlerts struct {
		Rules map[string]any `json:"rules" protocol:"required"`
	}
	// PostTaskCancel cancels a task.
	PostTaskCancel struct {
		Reason string `json:"reason,omitempty"`
	}
	// PostTasksBulk retries or cancels many tasks; the handler requires
	// Action and TaskIDs.
	PostTasksBulk struct {
		Action  string   `json:"action,omitempty"`
		TaskIDs []string `json:"task_ids,omitempty"`
		Reason  string   `json:"reason,omitempty"`
	}
	// PostAlertAck acknowledges an active alert.
	PostAlertAck struct {
		Note string `json:"note,omitempty"`
	}
	// Empty is a route's absent body.
	Empty struct{}
)

// BodyName methods of the bodies.
func (PostMessage) BodyName() string         { return BodyPostMessage }
func (PutHeartbeat) BodyName() string        { return BodyPutHeartbeat }
func (PutMailboxTTL) BodyName() string       { return BodyPutMailboxTTL }
func (PostChannel) BodyName() string         { return BodyPostChannel }
func (PostChannelPublish) BodyName() string  { return BodyChannelPublish }
func (PostMailboxAck) BodyName() string      { return BodyMailboxAck }
func (PostToken) BodyName() string           { return BodyPostToken }
func (PostPushTask) BodyName() string        { return BodyPushTask }
func (PostTask) BodyName() string            { return BodyPostTask }
func (PostTaskBatch) BodyName() string       { return BodyPostTaskBatch }
func (PostPause) BodyName() string           { return BodyPause }
func (PostSchedule) BodyName() string        { return BodyPostSchedule }
func (PostOnboardRegister) BodyName() string { return BodyOnboardRegister }
func (PutDefaultRepo) BodyName() string      { return BodyPutDefaultRepo }
func (PostPushSubscribe) BodyName() string   { return BodyPushSubscribe }
func (PutAlerts) BodyName() string           { return BodyPutAlerts }
func (PostTaskCancel) BodyName() string      { return BodyTaskCancel }
func (PostTasksBulk) BodyName() string       { return BodyTaskBulk }
func (PostAlertAck) BodyName() string        { return BodyAlertAck }
func (Empty) BodyName() string               { return BodyEmpty }
