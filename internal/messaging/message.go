// Package messaging carries agent-to-agent communication: direct and
// broadcast messages, offline mailboxes, channels with their history, the
// global message history, reply threads and traffic analytics.
//
// It knows nothing of sockets: delivery to connected agents goes through
// the Pusher interface, which the agent socket layer implements.
package messaging

import (
	"encoding/json"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/timeid"
)

// Message is one message as stored and as the HTTP API shows it.
type Message struct {
	ID        string         `json:"id"`
	From      string         `json:"from"`
	To        any            `json:"to"` // agent id, "broadcast", or null
	Type      string         `json:"type"`
	Payload   map[string]any `json:"payload"`
	ReplyTo   *string        `json:"reply_to"`
	Timestamp int64          `json:"timestamp"`
}

// DefaultType is the kind of a message that names none.
const DefaultType = "chat"

// Broadcast is the recipient that means every agent.
const Broadcast = protocol.BroadcastRecipient

// IsBroadcast reports whether the message goes to everyone.
func (m Message) IsBroadcast() bool {
	s, isString := m.To.(string)
	return m.To == nil || (isString && s == Broadcast)
}

// Recipient returns the direct recipient, or "" for a broadcast.
func (m Message) Recipient() string {
	if m.IsBroadcast() {
		return ""
	}
	s, _ := m.To.(string)
	return s
}

// ReplyToID returns the parent id or "".
func (m Message) ReplyToID() string {
	if m.ReplyTo == nil {
		return ""
	}
	return *m.ReplyTo
}

// WithSeq is a message flattened with a sequence number, as mailbox polls
// and history queries return it.
type WithSeq struct {
	Message
	Seq uint64 `json:"seq"`
}

// MarshalJSON flattens the message and adds seq.
func (w WithSeq) MarshalJSON() ([]byte, error) {
	type plain Message
	b, err := json.Marshal(plain(w.Message))
	if err != nil {
		return nil, err
	}
	seq, _ := json.Marshal(w.Seq)
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:len(b)-1]...)
	out = append(out, `,"seq":`...)
	out = append(out, seq...)
	return append(out, '}'), nil
}

// IDs hands out message ids: 16 lowercase hex digits that sort by the
// time they were made (package timeid), so that the thread index, keyed
// by id, grows at its right edge instead of taking a write on a random
// page per message. Ids of earlier versions were random and keep their
// shape. The zero value is ready to use.
type IDs struct{ gen timeid.Gen }

// Next returns a fresh message id made at now.
func (ids *IDs) Next(now time.Time) string {
	return timeid.Format("", ids.gen.Next(now.UnixMilli()))
}

// Follow makes every later id sort above id, a stored message's (an id
// of an earlier version, random, or one far ahead of now is ignored: see
// timeid.Followed).
func (ids *IDs) Follow(id string, now time.Time) {
	ids.gen.Raise(timeid.Followed("", id, now.UnixMilli()))
}

// StrPtr returns a pointer to s, or nil for "".
func StrPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Pusher delivers to agents that hold a live socket. Each method reports
// whether the agent was connected and the delivery was queued.
type Pusher interface {
	// PushMessage delivers a direct message and reports whether it left
	// this hub: written to the agent's socket, or handed to the cluster
	// bus for a socket a follower holds. (The message's mailbox copy is
	// dropped then.)
	PushMessage(agentID string, m Message) bool
	// PushMessages is PushMessage to many agents (a broadcast): the frame
	// is encoded once and the same bytes go to every socket. It returns
	// how many agents it reached.
	PushMessages(agentIDs []string, m Message) int
	PushChannelMessage(agentID, channel string, m Message) bool
	// PushChannelMessages is PushChannelMessage to many subscribers, the
	// frame encoded once.
	PushChannelMessages(agentIDs []string, channel string, m Message) int
	PushChannelJoined(agentID, channel, joined string) bool
	Online(agentID string) bool
	// OnlineAgents lists the agents with a live socket, in any order.
	OnlineAgents() []string
}

// Directory lists the agents known to the hub (those holding a token), so
// broadcasts reach offline agents' mailboxes once per agent.
type Directory interface {
	Agents() []string
	// HasAgent reports whether any token is bound to the agent.
	HasAgent(agent string) bool
}
