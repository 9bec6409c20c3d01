package protocol

// HTTP replies: one struct per reply shape of the hub's routes. They
// replace the maps the handlers built, and encode to the same bytes: a
// map's keys are written sorted, so every struct here declares its fields
// in the alphabetical order of their JSON names. Domain listings
// (messages, tasks, channels) stay `any`: their element types belong to
// the domain packages, which protocol does not import.

// ErrorReply is an {"error": code} refusal. ErrorID names the hub log
// line of an internal error; Detail is a fixed sentence meant for an
// operator, never an error's text.
type ErrorReply struct {
	Detail  string `json:"detail,omitempty"`
	Error   string `json:"error"`
	ErrorID string `json:"error_id,omitempty"`
	// Table is the table a storage admin refusal is about.
	Table string `json:"table,omitempty"`
}

// ValidationReply is a 400 naming the fields at fault. Limit, Max and
// Min are the bounds a few refusals add (the field's limit, a setting's
// range).
type ValidationReply struct {
	Error  string       `json:"error"`
	Errors []FieldError `json:"errors"`
	Limit  any          `json:"limit,omitempty"`
	Max    any          `json:"max,omitempty"`
	Min    any          `json:"min,omitempty"`
}

// StatusReply is a bare {"status": s}.
type StatusReply struct {
	Status string `json:"status"`
}

// Health answers GET /health.
type Health struct {
	AgentsConnected int    `json:"agents_connected"`
	Service         string `json:"service"`
	Status          string `json:"status"`
	Version         string `json:"version"`
}

// ConnectedAgent is one entry of GET /api/agents.
type ConnectedAgent struct {
	AgentID      string   `json:"agent_id"`
	Capabilities []string `json:"capabilities"`
	ConnectedAt  int64    `json:"connected_at"`
	FsmState     string   `json:"fsm_state"`
	LastSeen     int64    `json:"last_seen"`
	Name         string   `json:"name"`
	Status       string   `json:"status"`
}

// AgentList answers GET /api/agents and /api/agents/states.
type AgentList[T any] struct {
	Agents []T `json:"agents"`
}

// NamedCapability is a capability as agent states list it.
type NamedCapability struct {
	Name string `json:"name"`
}

// AgentState is an agent's scheduling state (GET /api/agents/states).
// LastStateChange is left out where the original did not send it.
type AgentState struct {
	AgentID         string            `json:"agent_id"`
	Capabilities    []NamedCapability `json:"capabilities"`
	ConnectedAt     int64             `json:"connected_at"`
	CurrentTaskID   *string           `json:"current_task_id"`
	Flags           []string          `json:"flags"`
	FsmState        string            `json:"fsm_state"`
	LastHeard       int64             `json:"last_heard"`
	LastStateChange *int64            `json:"last_state_change,omitempty"`
	Name            string            `json:"name"`
}

// MessageAccepted answers POST /api/message.
type MessageAccepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// HeartbeatInterval answers GET and PUT of the heartbeat interval; Status
// is set by PUT only.
type HeartbeatInterval struct {
	HeartbeatIntervalMs int64  `json:"heartbeat_interval_ms"`
	Status              string `json:"status,omitempty"`
}

// MailboxRetention answers GET and PUT of the mailbox retention; Status
// is set by PUT only.
type MailboxRetention struct {
	MailboxTTLMs int64  `json:"mailbox_ttl_ms"`
	Status       string `json:"status,omitempty"`
}

// DefaultRepo answers GET /api/config/default-repo: null when unset.
type DefaultRepo struct {
	Configured  bool    `json:"configured"`
	DefaultRepo *string `json:"default_repo"`
}

// DefaultRepoSet answers PUT /api/config/default-repo.
type DefaultRepoSet struct {
	DefaultRepo string `json:"default_repo"`
	Status      string `json:"status"`
}

// Mailbox answers a mailbox poll.
type Mailbox struct {
	AgentID  string `json:"agent_id"`
	Count    int    `json:"count"`
	LastSeq  uint64 `json:"last_seq"`
	Messages any    `json:"messages"`
}

// MailboxAcked answers a mailbox acknowledgement.
type MailboxAcked struct {
	Status string `json:"status"`
	UpTo   int64  `json:"up_to"`
}

// Thread answers GET /api/threads/{id}.
type Thread struct {
	Count    int `json:"count"`
	Messages any `json:"messages"`
	Root     any `json:"root"`
}

// Replies answers GET /api/threads/{id}/replies.
type Replies struct {
	Count   int    `json:"count"`
	Parent  string `json:"parent"`
	Replies any    `json:"replies"`
}

// ThreadRoot answers GET /api/threads/{id}/root.
type ThreadRoot struct {
	MessageID string `json:"message_id"`
	Root      any    `json:"root"`
}

// ChannelList answers GET /api/channels; NextAfter names where the next
// page starts, when there is one.
type ChannelList struct {
	Channels  any    `json:"channels"`
	NextAfter string `json:"next_after,omitempty"`
	Total     int    `json:"total"`
}

// ChannelStatus answers a channel's creation, subscription or
// unsubscription (an agent already subscribed gets Status alone).
type ChannelStatus struct {
	Channel string `json:"channel,omitempty"`
	Status  string `json:"status"`
}

// ChannelInfo answers GET /api/channels/{channel}.
type ChannelInfo struct {
	CreatedAt       int64    `json:"created_at"`
	CreatedBy       string   `json:"created_by"`
	Description     string   `json:"description"`
	Name            string   `json:"name"`
	SubscriberCount int      `json:"subscriber_count"`
	Subscribers     []string `json:"subscribers"`
}

// ChannelPublishedReply answers POST /api/channels/{channel}/publish.
type ChannelPublishedReply struct {
	Seq    uint64 `json:"seq"`
	Status string `json:"status"`
}

// ChannelHistoryPage answers GET /api/channels/{channel}/history.
type ChannelHistoryPage struct {
	Channel  string `json:"channel"`
	Count    int    `json:"count"`
	Messages any    `json:"messages"`
}

// Subscriptions answers GET /api/agents/{agent_id}/subscriptions.
type Subscriptions struct {
	AgentID  string `json:"agent_id"`
	Channels any    `json:"channels"`
}

// MessagePage answers GET /api/messages.
type MessagePage struct {
	Count    int    `json:"count"`
	Cursor   uint64 `json:"cursor"`
	Messages any    `json:"messages"`
}

// TokenCreated answers POST /admin/tokens.
type TokenCreated struct {
	AgentID string `json:"agent_id"`
	Role    string `json:"role"`
	Token   string `json:"token"`
}

// TokenList answers GET /admin/tokens.
type TokenList struct {
	Tokens any `json:"tokens"`
}

// TokensRevoked answers DELETE /admin/tokens/{agent_id}.
type TokensRevoked struct {
	AgentID string `json:"agent_id"`
	Revoked int    `json:"revoked"`
	Status  string `json:"status"`
}

// AnalyticsAgents answers GET /api/analytics/agents.
type AnalyticsAgents struct {
	Agents    any    `json:"agents"`
	NextAfter string `json:"next_after,omitempty"`
	Total     int    `json:"total"`
}

// AgentHourly answers GET /api/analytics/agents/{agent_id}/hourly.
type AgentHourly struct {
	AgentID string `json:"agent_id"`
	Hourly  any    `json:"hourly"`
}

// Registered answers POST /api/onboard/register. DefaultRepo is null when
// none is configured.
type Registered struct {
	AgentID     string  `json:"agent_id"`
	DefaultRepo *string `json:"default_repo"`
	HubAPIURL   string  `json:"hub_api_url"`
	HubWSURL    string  `json:"hub_ws_url"`
	Token       string  `json:"token"`
}
