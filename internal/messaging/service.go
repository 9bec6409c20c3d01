package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/storage"
)

// Event types published on bus.TopicMessages.
const (
	EventMessageRouted    = "message_routed"
	EventChannelPublished = "channel_published"
)

// Routed is published for every message sent (EventMessageRouted). The
// JSON keys are those the event had as a map.
type Routed struct {
	ID      string `json:"id"`
	From    string `json:"from"`
	To      string `json:"to,omitempty"` // the recipient; "" for a broadcast
	Type    string `json:"type"`
	Outcome string `json:"outcome"`
	Kind    string `json:"kind"` // direct or broadcast
}

// ChannelPublished is published for every channel post
// (EventChannelPublished).
type ChannelPublished struct {
	ID      string `json:"id"`
	From    string `json:"from"`
	Channel string `json:"channel"`
	Seq     uint64 `json:"seq"`
	Kind    string `json:"kind"` // always "channel"
}

// Topic is bus.TopicMessages.
func (Routed) Topic() string { return bus.TopicMessages }

// EventType is EventMessageRouted.
func (Routed) EventType() string { return EventMessageRouted }

// Topic is bus.TopicMessages.
func (ChannelPublished) Topic() string { return bus.TopicMessages }

// EventType is EventChannelPublished.
func (ChannelPublished) EventType() string { return EventChannelPublished }

// ErrUnknownRecipient is a direct message to an id the hub does not know.
var ErrUnknownRecipient = errors.New("unknown_recipient")

// ErrPayloadTooLarge is a message whose payload, as JSON, exceeds
// MaxPayloadBytes.
var ErrPayloadTooLarge = errors.New("payload_too_large")

// MaxPayloadBytes bounds one message's payload as JSON. Every message may
// be kept up to 100 times per mailbox, 10,000 times in the history and
// 200 times per channel, and listings return up to 200 at once: this
// keeps each of those in the tens of megabytes.
const MaxPayloadBytes = 64 << 10

// checkPayload refuses a payload over MaxPayloadBytes.
func checkPayload(m Message) error {
	b, err := json.Marshal(m.Payload)
	if err != nil {
		return fmt.Errorf("encode payload: %w", err)
	}
	if len(b) > MaxPayloadBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrPayloadTooLarge, len(b), MaxPayloadBytes)
	}
	return nil
}

// Outcome of routing a direct message.
const (
	Delivered   = "delivered" // pushed to a live socket
	Queued      = "queued"    // put in the recipient's mailbox
	Broadcasted = "broadcast" // pushed to everyone online, mailboxed for the rest
)

// Service routes messages between agents and owns the stores behind it.
type Service struct {
	Mailbox   *Mailbox
	History   *History
	Channels  *Channels
	Threads   *Threads
	Analytics *Analytics

	pusher Pusher
	agents Directory
	bus    *bus.Bus
	log    *slog.Logger
	now    func() time.Time
	ids    IDs // new messages' ids (Stamp)
}

// NewService wires the messaging parts together.
func NewService(mb *Mailbox, h *History, ch *Channels, th *Threads, an *Analytics,
	p Pusher, agents Directory, b *bus.Bus, log *slog.Logger) *Service {
	return &Service{Mailbox: mb, History: h, Channels: ch, Threads: th, Analytics: an,
		pusher: p, agents: agents, bus: b, log: log.With("component", "messaging"), now: time.Now}
}

// Stamp fills a message's id, type, payload and timestamp when unset.
func (s *Service) Stamp(m *Message) {
	now := s.now()
	if m.ID == "" {
		m.ID = s.ids.Next(now)
	}
	if m.Type == "" {
		m.Type = DefaultType
	}
	if m.Payload == nil {
		m.Payload = map[string]any{}
	}
	if m.Timestamp == 0 {
		m.Timestamp = now.UnixMilli()
	}
}

// FollowStoredIDs makes the ids Stamp hands out sort above the newest
// stored messages' (the global history's and each channel's), which a
// hub with a clock behind theirs made: the previous leader of a cluster,
// or this hub before its clock was set back. Without it such a hub could
// hand out an id again, and the thread index would take the new message
// for the old one. The hub calls it once, before it serves.
func (s *Service) FollowStoredIDs(ctx context.Context) error {
	now := s.now()
	recent, err := s.History.Recent(ctx, 1)
	if err != nil {
		return fmt.Errorf("follow stored message ids: %w", err)
	}
	for _, m := range recent {
		s.ids.Follow(m.ID, now)
	}
	for _, name := range s.Channels.names() {
		es, err := s.Channels.History(name, 1, 0)
		if err != nil {
			return fmt.Errorf("follow stored message ids: %w", err)
		}
		for _, e := range es {
			s.ids.Follow(e.Message.ID, now)
		}
	}
	return nil
}

// Send routes a direct or broadcast message: it is recorded in the history
// and the thread index with the mailbox copies of recipients that are not
// connected (one commit), counted, then pushed to live sockets. It returns the outcome (Delivered, Queued or Broadcasted).
// recorded, when not nil, runs once the message is stored (history and
// any mailbox copies) and before any live delivery: the socket layer
// acknowledges the sender there, so the acknowledgement precedes the
// sender's own broadcast echo.
//
// A direct message must name an agent the hub knows (one that holds a
// token or is connected): anything else is refused with ErrUnknownRecipient
// before anything is stored, so made-up ids create no mailbox and no
// analytics entry.
func (s *Service) Send(m Message, recorded func()) (string, error) {
	s.Stamp(&m)
	if err := checkPayload(m); err != nil {
		return "", err
	}
	to := m.Recipient()
	if !m.IsBroadcast() {
		if err := protocol.CheckAgentID(to); err != nil {
			return "", fmt.Errorf("%w: %w", ErrUnknownRecipient, err)
		}
		// Online first: a map lookup, where HasAgent scans every token.
		if !s.pusher.Online(to) && !s.agents.HasAgent(to) {
			return "", fmt.Errorf("%w: %s", ErrUnknownRecipient, to)
		}
	}
	// Who gets a mailbox copy is known before anything is stored, so the
	// history entry, the thread index and the copies commit together.
	var copies, online []string
	directOnline := false
	if m.IsBroadcast() {
		online = s.pusher.OnlineAgents()
		isOnline := make(map[string]bool, len(online))
		for _, a := range online {
			isOnline[a] = true
		}
		for _, a := range s.agents.Agents() {
			// A token kept from before the agent-id rule names an agent
			// that can neither identify nor poll: it gets no copy.
			if a == m.From || isOnline[a] || protocol.CheckAgentID(a) != nil {
				continue
			}
			copies = append(copies, a)
		}
	} else if directOnline = s.pusher.Online(to); !directOnline {
		copies = []string{to}
	}
	// Routing is not cancelled with the sender's request: once stored, a
	// message is delivered or queued whatever happens to the sender.
	ctx := context.Background()
	// A direct message to a connected agent gets a pending mailbox copy in
	// the same commit: the sender hears message_sent once the commit is
	// durable, and the push may still sit in this hub's send queue when
	// the hub dies. The copy goes once the push left the hub; if the push
	// fails, it stays as the queued copy.
	pending := ""
	if directOnline {
		pending = to
	}
	res, err := s.History.appendWith(ctx, m, copies, pending)
	if err != nil {
		return "", fmt.Errorf("send %s: %w", m.ID, err)
	}
	s.Analytics.RecordMessage(m.From, to)
	if recorded != nil {
		// Offline agents' copies are stored before anyone is told, so a
		// reader woken by a live push finds them too.
		recorded()
	}
	outcome := Queued
	switch {
	case m.IsBroadcast():
		outcome = Broadcasted
		s.pusher.PushMessages(online, m)
	case directOnline:
		if !s.pusher.PushMessage(to, m) {
			// The socket went away between the check and the push, or
			// the frame did not leave the hub in time: the pending copy
			// is the queued one.
			break
		}
		outcome = Delivered
		ref := storage.CopyRef{Agent: to, Seq: res.MailboxSeqs[len(res.MailboxSeqs)-1]}
		if err := s.Mailbox.store.DropCopies(ctx, []storage.CopyRef{ref}); err != nil {
			// The message was delivered; the copy left behind delivers it
			// once more from the mailbox.
			s.log.Warn("delivered message's mailbox copy kept", "event", "mailbox_copy_kept", "agent_id", to, "id", m.ID, "err", err)
		}
	}
	bus.Publish(s.bus, Routed{ID: m.ID, From: m.From, To: m.Recipient(), Type: m.Type, Outcome: outcome, Kind: kindOf(m)})
	return outcome, nil
}

func kindOf(m Message) string {
	if m.IsBroadcast() {
		return "broadcast"
	}
	return "direct"
}

// Publish posts m on a channel: recorded in the channel history, copied to
// every other subscriber's mailbox (tagged with the channel) and pushed to
// subscribers that are connected. It returns the channel sequence number.
func (s *Service) Publish(channel string, m Message) (uint64, error) {
	ch, err := s.Channels.Get(channel)
	if err != nil {
		return 0, err
	}
	s.Stamp(&m)
	if err := checkPayload(m); err != nil {
		return 0, err
	}
	m.To = nil
	// Each subscriber's copy is tagged with the channel; the history
	// entry and the thread index keep the message as sent.
	tagged := m
	tagged.Payload = maps.Clone(m.Payload)
	tagged.Payload["channel"] = ch.Name
	var subs []string
	for _, sub := range ch.Subscribers {
		if sub != m.From && protocol.CheckAgentID(sub) == nil {
			subs = append(subs, sub)
		}
	}
	copies, err := copiesOf(tagged, subs)
	if err != nil {
		return 0, err
	}
	n, err := s.Channels.publish(ch.Name, m, copies)
	if err != nil {
		return 0, fmt.Errorf("publish %s: %w", ch.Name, err)
	}
	s.Analytics.RecordMessage(m.From, "")
	s.pusher.PushChannelMessages(subs, ch.Name, m)
	bus.Publish(s.bus, ChannelPublished{ID: m.ID, From: m.From, Channel: ch.Name, Seq: n, Kind: "channel"})
	return n, nil
}

// Subscribe adds agent to a channel and tells the channel's other
// connected subscribers. It reports whether the agent was already there.
func (s *Service) Subscribe(channel, agent string) (bool, error) {
	already, err := s.Channels.Subscribe(channel, agent)
	if err != nil || already {
		return already, err
	}
	ch, err := s.Channels.Get(channel)
	if err != nil {
		return false, err
	}
	for _, sub := range ch.Subscribers {
		if sub != agent {
			s.pusher.PushChannelJoined(sub, ch.Name, agent)
		}
	}
	return false, nil
}
