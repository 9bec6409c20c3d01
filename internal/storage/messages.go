package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Messaging caps the stores keep. They are part of the stored contract
// (the README promises them), so every driver trims to the same numbers.
const (
	// MailboxCap is how many messages one agent's mailbox keeps; an append
	// beyond it drops the oldest.
	MailboxCap = 100
	// HistoryCap is how many messages the global history keeps.
	HistoryCap = 10000
	// ChannelHistoryCap is how many messages one channel's history keeps.
	ChannelHistoryCap = 200
	// MaxNameLen bounds agent ids and channel names as the stores accept
	// them (the domain applies its own, stricter rules first).
	MaxNameLen = 1024
	// MaxMessageIDLen bounds message ids and reply_to links, which key the
	// thread index.
	MaxMessageIDLen = 1024
)

// Errors of the message store.
var (
	// ErrInvalidName is an agent id or channel name a store cannot key
	// by: empty, longer than MaxNameLen, or holding a NUL byte (the bolt
	// driver separates a name from its sequence number with NUL).
	ErrInvalidName = errors.New("storage: invalid agent or channel name")
	// ErrChannelExists is CreateChannel on a name already taken.
	ErrChannelExists = errors.New("storage: channel exists")
	// ErrChannelLimit is a channel, or a channel's subscriber list, at
	// the cap the caller passed.
	ErrChannelLimit = errors.New("storage: channel limit reached")
)

// CheckName returns ErrInvalidName (wrapped) when name cannot key a
// mailbox or a channel.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	return nil
}

// CheckAppend validates an append before anything is written: a message
// id (non-empty) and reply link within MaxMessageIDLen and free of NUL
// (they key the thread index), JSON bodies, and a
// valid name for every copy's recipient. Drivers call it first, so an
// invalid part fails the whole append and changes nothing.
func CheckAppend(a Append) error {
	m := a.Message
	if m.ID == "" || len(m.ID) > MaxMessageIDLen || len(m.ReplyTo) > MaxMessageIDLen ||
		strings.IndexByte(m.ID, 0) >= 0 || strings.IndexByte(m.ReplyTo, 0) >= 0 {
		return fmt.Errorf("%w: message id %.40q or reply_to %.40q", ErrInvalidName, m.ID, m.ReplyTo)
	}
	if !json.Valid(m.Body) {
		return fmt.Errorf("message %.40q: body is not JSON", m.ID)
	}
	return CheckCopies(a.Copies)
}

// CheckCopies validates mailbox copies: a valid recipient name and a JSON
// body each.
func CheckCopies(cs []MailboxCopy) error {
	for _, c := range cs {
		if err := CheckName(c.Agent); err != nil {
			return err
		}
		if !json.Valid(c.Body) {
			return fmt.Errorf("mailbox copy for %s: body is not JSON", c.Agent)
		}
	}
	return nil
}

// MessageRow is one message as the stores keep it: the columns listings
// filter on, and the domain's encoding of the whole message (JSON) as an
// opaque body.
type MessageRow struct {
	ID string
	// From is the sender; To the recipient when the message names one as
	// a string (an agent id or "broadcast"), else "".
	From, To string
	// Channel is the channel the message was published on, "" for none.
	Channel string
	// ReplyTo is the parent message's id, "" for none.
	ReplyTo string
	// Timestamp is the message's own time in Unix milliseconds (0 when
	// unset: history filters then use the time it was stored).
	Timestamp int64
	// Body is the message encoded as a JSON object.
	Body []byte
}

// MailboxCopy is one recipient's copy of a message. Its body may differ
// from the message's (a channel copy carries the channel in its payload).
type MailboxCopy struct {
	Agent string
	Body  []byte
	// Pending marks the copy of a message being pushed to a live socket:
	// stored in the same commit as the message, so that a message
	// acknowledged to its sender outlives a crash before the push left
	// the hub, and removed with DropCopies once it did. A pending copy
	// does not trim its mailbox when it is stored (it is about to go);
	// while it is there it counts toward the cap like any other.
	Pending bool
}

// CopyRef names one stored mailbox copy.
type CopyRef struct {
	Agent string
	Seq   uint64
}

// Append is a message to record with everything that goes with it, in
// one commit: the history entry (global or channel), the thread index
// entry, and the recipients' mailbox copies. Each mailbox and the history
// are then trimmed to their caps, and trimmed history entries leave the
// thread index, in the same commit.
type Append struct {
	Message MessageRow
	Copies  []MailboxCopy
	// StoredAt is the time of the append, Unix milliseconds; mailbox
	// eviction and history time filters use it.
	StoredAt int64
}

// AppendResult reports the sequence numbers an append was given.
type AppendResult struct {
	// Seq is the history entry's number: the global history's sequence
	// for AppendMessage, the channel's own for PublishChannel.
	Seq uint64
	// MailboxSeqs holds each copy's mailbox sequence number, in the order
	// of Append.Copies.
	MailboxSeqs []uint64
	// Trimmed lists the ids of history entries the append pushed out.
	Trimmed []string
}

// Entry is a stored message with its sequence number.
type Entry struct {
	Seq      uint64
	StoredAt int64
	Body     []byte
}

// HistoryFilter selects global history entries. Zero fields do not
// filter.
type HistoryFilter struct {
	From, To, Channel string
	// Start and End bound the message time (its Timestamp, or StoredAt
	// when that is 0), inclusive; End 0 means no upper bound.
	Start, End int64
	// After returns only entries with a greater sequence number.
	After uint64
	// Limit is the most entries returned; it must be positive.
	Limit int
}

// ChannelRow is a channel record.
type ChannelRow struct {
	Name        string
	Description string
	CreatedAt   int64
	CreatedBy   string
	// Subscribers lists agent ids, the most recent subscriber first.
	Subscribers []string
}

// MessageStore is the messaging domain's storage: agent mailboxes, the
// global history, channels with their histories, and the reply-thread
// index. Sequence numbers are assigned by the store and never go
// backwards, not even across restarts. Every method is atomic on its own.
type MessageStore interface {
	// AppendMessage records a direct or broadcast message in the global
	// history and the thread index together with its mailbox copies.
	// An invalid copy recipient (CheckName) fails the whole append.
	AppendMessage(ctx context.Context, a Append) (AppendResult, error)
	// PublishChannel is AppendMessage for a channel message: the entry
	// goes to channel's history, numbered by the channel's own sequence,
	// which is trimmed to ChannelHistoryCap. The channel need not exist as
	// a record (the domain checks that).
	PublishChannel(ctx context.Context, channel string, a Append) (AppendResult, error)
	// DropCopies deletes pending copies (MailboxCopy.Pending) whose push
	// left the hub. A driver may apply it after it returns, with later
	// writes, since a copy that survives a crash only delivers a message
	// twice; but every mailbox read that starts after DropCopies returned
	// sees the copies gone.
	DropCopies(ctx context.Context, copies []CopyRef) error
	// Enqueue adds one message to agent's mailbox (trimmed to MailboxCap)
	// and returns its sequence number.
	Enqueue(ctx context.Context, agent string, body []byte, storedAt int64) (uint64, error)

	// PollMailbox returns up to limit of agent's messages with a sequence
	// number above after, oldest first.
	PollMailbox(ctx context.Context, agent string, after uint64, limit int) ([]Entry, error)
	// AckMailbox deletes agent's messages numbered up to upTo and returns
	// how many.
	AckMailbox(ctx context.Context, agent string, upTo uint64) (int, error)
	// CountMailbox returns how many messages wait for agent.
	CountMailbox(ctx context.Context, agent string) (int, error)
	// MailboxDepths returns the count per agent with a non-empty mailbox.
	MailboxDepths(ctx context.Context) (map[string]int, error)
	// EvictMailboxes deletes every mailbox message stored before
	// (strictly) the given Unix milliseconds and returns how many.
	EvictMailboxes(ctx context.Context, before int64) (int, error)

	// FindHistory returns matching global history entries in ascending
	// sequence order.
	FindHistory(ctx context.Context, f HistoryFilter) ([]Entry, error)
	// RecentHistory returns the newest limit entries, oldest first.
	RecentHistory(ctx context.Context, limit int) ([]Entry, error)
	// CountHistory returns how many entries the global history holds.
	CountHistory(ctx context.Context) (int, error)

	// CreateChannel stores a new channel unless its name is taken
	// (ErrChannelExists) or maxChannels exist already (ErrChannelLimit).
	CreateChannel(ctx context.Context, ch ChannelRow, maxChannels int) error
	// GetChannel returns a channel or ErrNotFound.
	GetChannel(ctx context.Context, name string) (ChannelRow, error)
	// ListChannels returns every channel, sorted by name.
	ListChannels(ctx context.Context) ([]ChannelRow, error)
	// Subscribe puts agent first in the channel's subscribers and returns
	// the channel as stored. It reports already (and changes nothing) when
	// the agent was subscribed; it refuses with ErrChannelLimit when
	// maxSubscribers are subscribed, and ErrNotFound for no channel.
	Subscribe(ctx context.Context, channel, agent string, maxSubscribers int) (ch ChannelRow, already bool, err error)
	// Unsubscribe removes agent from the channel's subscribers (a no-op
	// when it is not there) and returns the channel as stored.
	Unsubscribe(ctx context.Context, channel, agent string) (ChannelRow, error)
	// ChannelHistory returns the newest limit entries of channel's history
	// numbered above after, oldest first.
	ChannelHistory(ctx context.Context, channel string, after uint64, limit int) ([]Entry, error)

	// ThreadMessage returns an indexed message's body, or ErrNotFound.
	ThreadMessage(ctx context.Context, id string) ([]byte, error)
	// ThreadChildren returns the ids of the indexed replies to id, in
	// arrival order.
	ThreadChildren(ctx context.Context, id string) ([]string, error)
	// ForgetThread removes messages from the thread index and unlinks
	// each from its parent.
	ForgetThread(ctx context.Context, ids []string) error
}
