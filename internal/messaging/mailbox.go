package messaging

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/internal/storage"
)

// Mailbox limits.
const (
	MailboxCap        = storage.MailboxCap
	DefaultMailboxTTL = 7 * 24 * time.Hour
)

// Mailbox keeps messages for agents to poll, numbered by one hub-wide
// sequence (the store's) that never goes backwards.
type Mailbox struct {
	store storage.MessageStore
	now   func() time.Time
}

// NewMailbox returns the mailboxes kept in ms.
func NewMailbox(ms storage.MessageStore) *Mailbox {
	return &Mailbox{store: ms, now: time.Now}
}

// Enqueue stores m for agent, trims the mailbox to its cap and returns the
// message's sequence number.
func (mb *Mailbox) Enqueue(ctx context.Context, agent string, m Message) (uint64, error) {
	if err := checkAgent(agent); err != nil {
		return 0, fmt.Errorf("mailbox enqueue: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return 0, fmt.Errorf("mailbox enqueue: %w", err)
	}
	return mb.store.Enqueue(ctx, agent, b, mb.now().UnixMilli())
}

// Poll returns agent's first limit messages with seq > since in order, and
// the seq of the last one returned (since when there are none). A mailbox
// holds at most MailboxCap messages, so limit MailboxCap returns them all.
func (mb *Mailbox) Poll(ctx context.Context, agent string, since uint64, limit int) ([]WithSeq, uint64, error) {
	if err := checkAgent(agent); err != nil {
		return nil, since, fmt.Errorf("mailbox poll: %w", err)
	}
	es, err := mb.store.PollMailbox(ctx, agent, since, limit)
	if err != nil {
		return nil, since, err
	}
	out, err := decodeEntries(es)
	if err != nil {
		return nil, since, fmt.Errorf("mailbox poll %s: %w", agent, err)
	}
	last := since
	if len(out) > 0 {
		last = out[len(out)-1].Seq
	}
	return out, last, nil
}

// Ack deletes agent's messages with seq <= upTo.
func (mb *Mailbox) Ack(ctx context.Context, agent string, upTo uint64) error {
	if err := checkAgent(agent); err != nil {
		return fmt.Errorf("mailbox ack: %w", err)
	}
	_, err := mb.store.AckMailbox(ctx, agent, upTo)
	return err
}

// Count returns how many messages wait for agent.
func (mb *Mailbox) Count(ctx context.Context, agent string) (int, error) {
	if err := checkAgent(agent); err != nil {
		return 0, fmt.Errorf("mailbox count: %w", err)
	}
	return mb.store.CountMailbox(ctx, agent)
}

// Depths returns how many messages wait per agent, for every agent with
// a non-empty mailbox.
func (mb *Mailbox) Depths(ctx context.Context) (map[string]int, error) {
	return mb.store.MailboxDepths(ctx)
}

// Evict deletes every message stored before now - ttl and returns how many.
func (mb *Mailbox) Evict(ctx context.Context, ttl time.Duration) (int, error) {
	return mb.store.EvictMailboxes(ctx, mb.now().Add(-ttl).UnixMilli())
}
