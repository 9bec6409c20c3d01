package messaging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/internal/seq"
	"github.com/agentcom/agentcom/internal/store"
)

// Mailbox limits.
const (
	MailboxCap        = 100
	DefaultMailboxTTL = 7 * 24 * time.Hour
)

// Mailbox keeps messages for agents to poll, numbered by one hub-wide
// sequence that never goes backwards.
type Mailbox struct {
	table *store.Table
	seq   *seq.Counter
	now   func() time.Time
}

type mailboxEntry struct {
	Seq      uint64  `json:"seq"`
	AgentID  string  `json:"agent_id"`
	Message  Message `json:"message"`
	StoredAt int64   `json:"stored_at"`
}

// NewMailbox opens the mailbox over its table, continuing the sequence
// from meta.
func NewMailbox(table, meta *store.Table) (*Mailbox, error) {
	var floor uint64
	err := table.View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, _ []byte) error {
			floor = max(floor, seq.Decode(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("open mailbox: %w", err)
	}
	c, err := seq.Open(meta, "mailbox", floor)
	if err != nil {
		return nil, err
	}
	return &Mailbox{table: table, seq: c, now: time.Now}, nil
}

// Enqueue stores m for agent, trims the mailbox to its cap and returns the
// message's sequence number.
func (mb *Mailbox) Enqueue(agent string, m Message) (uint64, error) {
	prefix, err := mailboxPrefix(agent)
	if err != nil {
		return 0, fmt.Errorf("mailbox enqueue: %w", err)
	}
	n, err := mb.seq.Next()
	if err != nil {
		return 0, err
	}
	v, err := json.Marshal(mailboxEntry{Seq: n, AgentID: agent, Message: m, StoredAt: mb.now().UnixMilli()})
	if err != nil {
		return 0, err
	}
	err = mb.table.Update(func(tx *store.Tx) error {
		_, err := appendCapped(tx, prefix, n, v, MailboxCap)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("mailbox enqueue %s: %w", agent, err)
	}
	return n, nil
}

// Poll returns agent's first limit messages with seq > since in order, and
// the seq of the last one returned (since when there are none). A mailbox
// holds at most MailboxCap messages, so limit MailboxCap returns them all.
func (mb *Mailbox) Poll(agent string, since uint64, limit int) ([]WithSeq, uint64, error) {
	out := []WithSeq{}
	last := since
	prefix, err := mailboxPrefix(agent)
	if err != nil {
		return nil, since, fmt.Errorf("mailbox poll: %w", err)
	}
	err = mb.table.View(func(tx *store.Tx) error {
		return scanOwned(tx, prefix, func(k, v []byte) error {
			if seq.Decode(k) <= since {
				return nil
			}
			var e mailboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode mailbox entry: %w", err)
			}
			out = append(out, WithSeq{Message: e.Message, Seq: e.Seq})
			last = e.Seq
			if len(out) >= limit {
				return errEnough
			}
			return nil
		})
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, since, fmt.Errorf("mailbox poll %s: %w", agent, err)
	}
	return out, last, nil
}

// Ack deletes agent's messages with seq <= upTo.
func (mb *Mailbox) Ack(agent string, upTo uint64) error {
	prefix, err := mailboxPrefix(agent)
	if err != nil {
		return fmt.Errorf("mailbox ack: %w", err)
	}
	err = mb.table.Update(func(tx *store.Tx) error {
		var keys [][]byte
		if err := scanOwned(tx, prefix, func(k, _ []byte) error {
			if seq.Decode(k) <= upTo {
				keys = append(keys, append([]byte(nil), k...))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mailbox ack %s: %w", agent, err)
	}
	return nil
}

// Count returns how many messages wait for agent.
func (mb *Mailbox) Count(agent string) (int, error) {
	prefix, err := mailboxPrefix(agent)
	if err != nil {
		return 0, fmt.Errorf("mailbox count: %w", err)
	}
	n := 0
	err = mb.table.View(func(tx *store.Tx) error {
		return scanOwned(tx, prefix, func(_, _ []byte) error { n++; return nil })
	})
	return n, err
}

// Depths returns how many messages wait per agent, for every agent with
// a non-empty mailbox (one scan of the table). Only keys of the owned
// shape count (id, NUL, 8-byte sequence, the id without NUL), as in
// scanOwned.
func (mb *Mailbox) Depths() (map[string]int, error) {
	out := map[string]int{}
	err := mb.table.View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, _ []byte) error {
			if i := len(k) - 9; i > 0 && k[i] == 0 && bytes.IndexByte(k[:i], 0) < 0 {
				out[string(k[:i])]++
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("mailbox depths: %w", err)
	}
	return out, nil
}

// Evict deletes every message stored before now - ttl and returns how many.
func (mb *Mailbox) Evict(ttl time.Duration) (int, error) {
	cutoff := mb.now().Add(-ttl).UnixMilli()
	var keys [][]byte
	err := mb.table.View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			var e struct {
				StoredAt int64 `json:"stored_at"`
			}
			if json.Unmarshal(v, &e) == nil && e.StoredAt < cutoff {
				keys = append(keys, append([]byte(nil), k...))
			}
			return nil
		})
	})
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	err = mb.table.Update(func(tx *store.Tx) error {
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("mailbox evict: %w", err)
	}
	return len(keys), nil
}

// LastSeq is the highest sequence number handed out.
func (mb *Mailbox) LastSeq() uint64 { return mb.seq.Peek() }

// appendCapped stores v under prefix+n and deletes the oldest records under
// prefix beyond limit, returning their values. Keys under a prefix sort by
// sequence number.
func appendCapped(tx *store.Tx, prefix []byte, n uint64, v []byte, limit int) ([][]byte, error) {
	if err := tx.Put(seq.AppendKey(prefix, n), v); err != nil {
		return nil, err
	}
	var keys [][]byte
	if err := scanOwned(tx, prefix, func(k, _ []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		return nil
	}); err != nil {
		return nil, err
	}
	var removed [][]byte
	for i := 0; i < len(keys)-limit; i++ {
		if old := tx.Get(keys[i]); old != nil {
			removed = append(removed, append([]byte(nil), old...))
		}
		if err := tx.Delete(keys[i]); err != nil {
			return nil, err
		}
	}
	return removed, nil
}
