package client

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"

	"github.com/agentcom/agentcom/internal/protocol"
)

// Message is the hub's stored message (MessageJSON): in mailboxes,
// history, threads and channel history.
type Message struct {
	ID   string `json:"id"`
	From string `json:"from"`
	// To is an agent id, "broadcast", or null; over HTTP any JSON value
	// a client sent, so it is kept raw.
	To        json.RawMessage `json:"to,omitempty"`
	Type      json.RawMessage `json:"type,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	ReplyTo   *string         `json:"reply_to"`
	Timestamp int64           `json:"timestamp"`
	// Seq is set in mailbox polls and history queries.
	Seq uint64 `json:"seq,omitempty"`
}

// rawText returns a raw JSON value as text: the string itself for a JSON
// string, "" for null or nothing, the JSON otherwise.
func rawText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// ToText is the recipient as text ("" for a broadcast without to).
func (m Message) ToText() string { return rawText(m.To) }

// TypeText is the message kind as text.
func (m Message) TypeText() string { return rawText(m.Type) }

// Text is the payload's "text" field (the convention of send.js) when it
// is a string, and the payload's JSON otherwise.
func (m Message) Text() string {
	var p struct {
		Text *string `json:"text"`
	}
	if json.Unmarshal(m.Payload, &p) == nil && p.Text != nil {
		return *p.Text
	}
	return rawText(m.Payload)
}

// OutgoingMessage is the body of POST /api/message, the hub's own type.
// An empty To is a broadcast.
type OutgoingMessage = protocol.PostMessage

// Sent is the answer of POST /api/message.
type Sent struct {
	Status string `json:"status"`
	ID     string `json:"id"`
}

// SendMessage calls POST /api/message; the sender is the token's agent.
func (c *Client) SendMessage(ctx context.Context, m OutgoingMessage) (Sent, error) {
	if m.Payload == nil {
		m.Payload = map[string]any{}
	}
	var r Sent
	err := c.post(ctx, "/api/message", m, &r)
	return r, err
}

// Mailbox is the answer of GET /api/mailbox/:agent_id.
type Mailbox struct {
	AgentID  string    `json:"agent_id"`
	Messages []Message `json:"messages"`
	LastSeq  uint64    `json:"last_seq"`
	Count    int       `json:"count"`
}

// Mailbox calls GET /api/mailbox/:agent_id?since=N: the agent's messages
// with seq > since.
func (c *Client) Mailbox(ctx context.Context, agentID string, since uint64) (Mailbox, error) {
	var r Mailbox
	err := c.get(ctx, "/api/mailbox/"+seg(agentID)+"?since="+strconv.FormatUint(since, 10), &r)
	return r, err
}

// Acked is the answer of POST /api/mailbox/:agent_id/ack.
type Acked struct {
	Status string `json:"status"`
	UpTo   uint64 `json:"up_to"`
}

// AckMailbox calls POST /api/mailbox/:agent_id/ack: the messages with
// seq <= upTo are deleted.
func (c *Client) AckMailbox(ctx context.Context, agentID string, upTo uint64) (Acked, error) {
	var r Acked
	if upTo > math.MaxInt64 {
		// The hub reads seq as an int64 and would refuse it.
		return r, fmt.Errorf("ack mailbox: seq %d is out of range", upTo)
	}
	err := c.post(ctx, "/api/mailbox/"+seg(agentID)+"/ack", protocol.PostMailboxAck{Seq: int64(upTo)}, &r)
	return r, err
}

// Channel is one entry of GET /api/channels.
type Channel struct {
	Name            string `json:"name"`
	Description     string `json:"description"`
	SubscriberCount int    `json:"subscriber_count"`
	CreatedAt       int64  `json:"created_at"`
}

// Channels calls GET /api/channels.
func (c *Client) Channels(ctx context.Context) ([]Channel, error) {
	var all []Channel
	after := ""
	// The hub answers a page at a time; next_after names where the next
	// page starts. maxChannelPages bounds a hub that never stops paging.
	for range maxChannelPages {
		var r struct {
			Channels  []Channel `json:"channels"`
			NextAfter string    `json:"next_after"`
		}
		path := "/api/channels?limit=1000"
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		if err := c.get(ctx, path, &r); err != nil {
			return all, err
		}
		all = append(all, r.Channels...)
		if r.NextAfter == "" || r.NextAfter == after || len(r.Channels) == 0 {
			return all, nil
		}
		after = r.NextAfter
	}
	return all, fmt.Errorf("channel list: more than %d pages", maxChannelPages)
}

// maxChannelPages bounds Channels: a thousand pages of a thousand.
const maxChannelPages = 1000

// ChannelInfo is the answer of GET /api/channels/:channel.
type ChannelInfo struct {
	Name            string   `json:"name"`
	Description     string   `json:"description"`
	Subscribers     []string `json:"subscribers"`
	SubscriberCount int      `json:"subscriber_count"`
	CreatedAt       int64    `json:"created_at"`
	CreatedBy       string   `json:"created_by"`
}

// Channel calls GET /api/channels/:channel.
func (c *Client) Channel(ctx context.Context, name string) (ChannelInfo, error) {
	var r ChannelInfo
	err := c.get(ctx, "/api/channels/"+seg(name), &r)
	return r, err
}

// ChannelResult is the answer of the channel create, subscribe and
// publish routes.
type ChannelResult struct {
	Status  string `json:"status"`
	Channel string `json:"channel,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
}

// CreateChannel calls POST /api/channels. A taken name answers 409.
func (c *Client) CreateChannel(ctx context.Context, name, description string) (ChannelResult, error) {
	body := protocol.PostChannel{Name: name, Description: description}
	var r ChannelResult
	err := c.post(ctx, "/api/channels", body, &r)
	return r, err
}

// Subscribe calls POST /api/channels/:channel/subscribe for the token's
// agent: channel messages then reach its mailbox.
func (c *Client) Subscribe(ctx context.Context, name string) (ChannelResult, error) {
	var r ChannelResult
	err := c.post(ctx, "/api/channels/"+seg(name)+"/subscribe", nil, &r)
	return r, err
}

// Unsubscribe calls POST /api/channels/:channel/unsubscribe.
func (c *Client) Unsubscribe(ctx context.Context, name string) (ChannelResult, error) {
	var r ChannelResult
	err := c.post(ctx, "/api/channels/"+seg(name)+"/unsubscribe", nil, &r)
	return r, err
}

// ChannelPost is the body of POST /api/channels/:channel/publish, the
// hub's own type.
type ChannelPost = protocol.PostChannelPublish

// Publish calls POST /api/channels/:channel/publish.
func (c *Client) Publish(ctx context.Context, name string, p ChannelPost) (ChannelResult, error) {
	if p.Payload == nil {
		p.Payload = map[string]any{}
	}
	var r ChannelResult
	err := c.post(ctx, "/api/channels/"+seg(name)+"/publish", p, &r)
	return r, err
}

// ChannelEntry is one entry of a channel's history.
type ChannelEntry struct {
	Seq      uint64  `json:"seq"`
	Message  Message `json:"message"`
	StoredAt int64   `json:"stored_at"`
}

// ChannelHistory calls GET /api/channels/:channel/history: up to limit
// entries (0: the hub's default) with seq > since, oldest first.
func (c *Client) ChannelHistory(ctx context.Context, name string, limit int, since uint64) ([]ChannelEntry, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if since > 0 {
		q.Set("since", strconv.FormatUint(since, 10))
	}
	path := "/api/channels/" + seg(name) + "/history"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var r struct {
		Messages []ChannelEntry `json:"messages"`
	}
	err := c.get(ctx, path, &r)
	return r.Messages, err
}

// AgentCapability is one capability in an agent's state.
type AgentCapability struct {
	Name string `json:"name"`
}

// AgentState is one entry of GET /api/agents/states: the scheduler's view
// of an agent.
type AgentState struct {
	AgentID         string            `json:"agent_id"`
	Name            string            `json:"name"`
	FSMState        string            `json:"fsm_state"`
	CurrentTaskID   *string           `json:"current_task_id"`
	Capabilities    []AgentCapability `json:"capabilities"`
	Flags           json.RawMessage   `json:"flags,omitempty"`
	ConnectedAt     int64             `json:"connected_at"`
	LastHeard       int64             `json:"last_heard,omitempty"`
	LastStateChange int64             `json:"last_state_change,omitempty"`
}

// AgentStates calls GET /api/agents/states.
func (c *Client) AgentStates(ctx context.Context) ([]AgentState, error) {
	var r struct {
		Agents []AgentState `json:"agents"`
	}
	err := c.get(ctx, "/api/agents/states", &r)
	return r.Agents, err
}

// AgentState calls GET /api/agents/:agent_id/state (404 when the hub has
// no state for it).
func (c *Client) AgentState(ctx context.Context, id string) (AgentState, error) {
	var r AgentState
	err := c.get(ctx, "/api/agents/"+seg(id)+"/state", &r)
	return r, err
}

// TimelineEntry is one event of an agent's timeline on the dashboard.
type TimelineEntry struct {
	Timestamp int64  `json:"timestamp"`
	Kind      string `json:"kind"`
	Event     string `json:"event"`
	TaskID    string `json:"task_id,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// Timeline calls GET /api/dashboard/agents/:agent_id/timeline (a viewer
// or admin token, or none on a loopback-only hub).
func (c *Client) Timeline(ctx context.Context, id string) ([]TimelineEntry, error) {
	var r struct {
		Entries []TimelineEntry `json:"entries"`
	}
	err := c.get(ctx, "/api/dashboard/agents/"+seg(id)+"/timeline", &r)
	return r.Entries, err
}
