package boltdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/agentcom/agentcom/internal/seq"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/store"
)

// The message tables keep the formats earlier versions wrote, so existing
// data directories read unchanged:
//
//   - agent_mailbox: agent id, NUL, 8-byte big-endian sequence number ->
//     {"seq","agent_id","message","stored_at"}
//   - message_history: 8-byte sequence -> {"seq","message","stored_at"}
//   - channel_history: channel name, NUL, 8-byte channel sequence ->
//     {"seq","message","stored_at"}
//   - agent_channels: channel name -> {"name","description","created_at",
//     "created_by","subscribers"}
//   - thread_messages: message id -> the message
//   - thread_replies: parent id -> JSON array of reply ids, arrival order
//   - hub_meta: "seq:mailbox", "seq:history", "seq:channel:<name>" -> the
//     end of the sequence block reserved last (package seq)
//
// Records written before the agent-id rule under ids holding NUL sort
// inside a valid owner's prefix range; scanOwned skips them because their
// key is longer than prefix + 8 bytes.

// Messages implements storage.Driver.
func (d *Driver) Messages() storage.MessageStore { return messageStore{d} }

type messageStore struct{ d *Driver }

var _ storage.MessageStore = messageStore{}

type mailboxRecord struct {
	Seq      uint64          `json:"seq"`
	AgentID  string          `json:"agent_id"`
	Message  json.RawMessage `json:"message"`
	StoredAt int64           `json:"stored_at"`
}

// historyRecord is a global or channel history record.
type historyRecord struct {
	Seq      uint64          `json:"seq"`
	Message  json.RawMessage `json:"message"`
	StoredAt int64           `json:"stored_at"`
}

// encodeRecord returns what json.Marshal returns for a mailboxRecord
// of agent, or for a historyRecord when agent is "" (no mailbox has that
// name: storage.CheckName), without encoding/json's second pass over the
// message (it validates and compacts a RawMessage). It runs in the batch
// leader, serially, once per stored copy; the bodies were checked as JSON
// before the batch (storage.CheckAppend).
func encodeRecord(seq uint64, agent string, message []byte, storedAt int64) []byte {
	const frame = `{"seq":,"agent_id":"","message":,"stored_at":}`
	b := make([]byte, 0, len(frame)+2*20+len(agent)+len(message)) // 20: the longest number
	b = strconv.AppendUint(append(b, `{"seq":`...), seq, 10)
	if agent != "" {
		b = appendJSONString(append(b, `,"agent_id":`...), agent)
	}
	b = append(append(b, `,"message":`...), message...)
	b = strconv.AppendInt(append(b, `,"stored_at":`...), storedAt, 10)
	return append(b, '}')
}

// appendJSONString appends s as encoding/json writes a string: as it is
// when every byte is printable ASCII that needs no escape (agent ids
// are), else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

type channelRecord struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	CreatedAt   int64    `json:"created_at"`
	CreatedBy   string   `json:"created_by"`
	Subscribers []string `json:"subscribers"`
}

var errEnough = errors.New("enough")

func ownerPrefix(name string) []byte { return append([]byte(name), 0) }

// scanOwned calls fn for every record whose key is prefix followed by one
// sequence number, in sequence order.
func scanOwned(tx *store.Tx, prefix []byte, fn func(k, v []byte) error) error {
	return tx.Scan(prefix, func(k, v []byte) error {
		if len(k) != len(prefix)+8 {
			return nil
		}
		return fn(k, v)
	})
}

// AppendMessage implements storage.MessageStore.
func (s messageStore) AppendMessage(ctx context.Context, a storage.Append) (storage.AppendResult, error) {
	// Everything is checked before the journal: bbolt refuses keys over
	// 32 KiB, and a refused key in the middle of a journaled write would
	// fail every replay.
	if err := storage.CheckAppend(a); err != nil {
		return storage.AppendResult{}, fmt.Errorf("append message: %w", err)
	}
	op := &msgOp{kind: opAppend, a: a}
	if err := s.submit(ctx, op); err != nil {
		return storage.AppendResult{}, fmt.Errorf("append message %s: %w", a.Message.ID, err)
	}
	return op.res, nil
}

// PublishChannel implements storage.MessageStore.
func (s messageStore) PublishChannel(ctx context.Context, channel string, a storage.Append) (storage.AppendResult, error) {
	if err := storage.CheckName(channel); err != nil {
		return storage.AppendResult{}, fmt.Errorf("publish: %w", err)
	}
	if err := storage.CheckAppend(a); err != nil {
		return storage.AppendResult{}, fmt.Errorf("publish: %w", err)
	}
	op := &msgOp{kind: opPublish, channel: channel, a: a}
	if err := s.submit(ctx, op); err != nil {
		return storage.AppendResult{}, fmt.Errorf("publish %s on %s: %w", a.Message.ID, channel, err)
	}
	return op.res, nil
}

// Enqueue implements storage.MessageStore.
func (s messageStore) Enqueue(ctx context.Context, agent string, body []byte, storedAt int64) (uint64, error) {
	cs := []storage.MailboxCopy{{Agent: agent, Body: body}}
	if err := storage.CheckCopies(cs); err != nil {
		return 0, fmt.Errorf("mailbox enqueue: %w", err)
	}
	op := &msgOp{kind: opEnqueue, a: storage.Append{Copies: cs, StoredAt: storedAt}}
	if err := s.submit(ctx, op); err != nil {
		return 0, fmt.Errorf("mailbox enqueue %s: %w", agent, err)
	}
	return op.res.MailboxSeqs[0], nil
}

// DropCopies implements storage.MessageStore: the deletes ride in the
// next batch, whose leader the caller does not wait for (see settle).
func (s messageStore) DropCopies(ctx context.Context, copies []storage.CopyRef) error {
	if len(copies) == 0 {
		return ctx.Err()
	}
	for _, c := range copies {
		if err := storage.CheckName(c.Agent); err != nil {
			return fmt.Errorf("drop mailbox copies: %w", err)
		}
	}
	if err := s.submit(ctx, &msgOp{kind: opDrop, drops: copies, async: true}); err != nil {
		return fmt.Errorf("drop mailbox copies: %w", err)
	}
	return nil
}

// ForgetThread implements storage.MessageStore.
func (s messageStore) ForgetThread(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return ctx.Err()
	}
	if err := s.submit(ctx, &msgOp{kind: opForget, forget: ids}); err != nil {
		return fmt.Errorf("forget threads: %w", err)
	}
	return nil
}

func decodeEntry(v []byte) (storage.Entry, error) {
	var r historyRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return storage.Entry{}, fmt.Errorf("decode message record: %w", err)
	}
	return storage.Entry{Seq: r.Seq, StoredAt: r.StoredAt, Body: r.Message}, nil
}

// PollMailbox implements storage.MessageStore.
func (s messageStore) PollMailbox(ctx context.Context, agent string, after uint64, limit int) ([]storage.Entry, error) {
	if err := storage.CheckName(agent); err != nil {
		return nil, fmt.Errorf("mailbox poll: %w", err)
	}
	out := []storage.Entry{}
	if limit <= 0 || after == ^uint64(0) {
		return out, ctx.Err()
	}
	if err := s.settle(ctx); err != nil {
		return nil, fmt.Errorf("mailbox poll: %w", err)
	}
	prefix := ownerPrefix(agent)
	err := s.d.table(store.AgentMailbox).View(func(tx *store.Tx) error {
		return tx.ScanFrom(seq.AppendKey(prefix, after+1), func(k, v []byte) error {
			if !bytes.HasPrefix(k, prefix) {
				return errEnough
			}
			if len(k) != len(prefix)+8 {
				return nil
			}
			e, err := decodeEntry(v)
			if err != nil {
				return err
			}
			out = append(out, e)
			if len(out) >= limit {
				return errEnough
			}
			return nil
		})
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, fmt.Errorf("mailbox poll %s: %w", agent, err)
	}
	return out, nil
}

// AckMailbox implements storage.MessageStore.
func (s messageStore) AckMailbox(ctx context.Context, agent string, upTo uint64) (int, error) {
	if err := storage.CheckName(agent); err != nil {
		return 0, fmt.Errorf("mailbox ack: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// The deletes are not journaled: no lingering journal record may
	// put the acknowledged messages back at a replay.
	if err := s.d.retireJournal(); err != nil {
		return 0, fmt.Errorf("mailbox ack %s: %w", agent, err)
	}
	prefix := ownerPrefix(agent)
	var n int
	err := s.d.table(store.AgentMailbox).Update(func(tx *store.Tx) error {
		var keys [][]byte
		if err := scanOwned(tx, prefix, func(k, _ []byte) error {
			if seq.Decode(k) > upTo {
				return errEnough
			}
			keys = append(keys, slices.Clone(k))
			return nil
		}); err != nil && !errors.Is(err, errEnough) {
			return err
		}
		n = len(keys)
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("mailbox ack %s: %w", agent, err)
	}
	return n, nil
}

// CountMailbox implements storage.MessageStore.
func (s messageStore) CountMailbox(ctx context.Context, agent string) (int, error) {
	if err := storage.CheckName(agent); err != nil {
		return 0, fmt.Errorf("mailbox count: %w", err)
	}
	if err := s.settle(ctx); err != nil {
		return 0, fmt.Errorf("mailbox count: %w", err)
	}
	n := 0
	err := s.d.table(store.AgentMailbox).View(func(tx *store.Tx) error {
		return scanOwned(tx, ownerPrefix(agent), func(_, _ []byte) error { n++; return nil })
	})
	if err != nil {
		return 0, fmt.Errorf("mailbox count %s: %w", agent, err)
	}
	return n, ctx.Err()
}

// MailboxDepths implements storage.MessageStore. Only keys of the owned
// shape count (name, NUL, 8-byte sequence, the name without NUL).
func (s messageStore) MailboxDepths(ctx context.Context) (map[string]int, error) {
	if err := s.settle(ctx); err != nil {
		return nil, fmt.Errorf("mailbox depths: %w", err)
	}
	out := map[string]int{}
	err := s.d.table(store.AgentMailbox).View(func(tx *store.Tx) error {
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
	return out, ctx.Err()
}

// EvictMailboxes implements storage.MessageStore.
func (s messageStore) EvictMailboxes(ctx context.Context, before int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// As in AckMailbox: no lingering record may bring evicted messages
	// back.
	if err := s.d.retireJournal(); err != nil {
		return 0, fmt.Errorf("mailbox evict: %w", err)
	}
	n := 0
	err := s.d.table(store.AgentMailbox).Update(func(tx *store.Tx) error {
		var keys [][]byte
		if err := tx.ForEach(func(k, v []byte) error {
			var e struct {
				StoredAt int64 `json:"stored_at"`
			}
			if json.Unmarshal(v, &e) == nil && e.StoredAt < before {
				keys = append(keys, slices.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		n = len(keys)
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
	return n, nil
}

// historyColumns are the fields of a history record the filters read.
type historyColumns struct {
	Seq     uint64 `json:"seq"`
	Message struct {
		From      string          `json:"from"`
		To        json.RawMessage `json:"to"`
		Timestamp int64           `json:"timestamp"`
		Payload   struct {
			Channel json.RawMessage `json:"channel"`
		} `json:"payload"`
	} `json:"message"`
	StoredAt int64 `json:"stored_at"`
}

func matches(f storage.HistoryFilter, v []byte) (bool, error) {
	var c historyColumns
	if err := json.Unmarshal(v, &c); err != nil {
		return false, fmt.Errorf("decode history record: %w", err)
	}
	m := c.Message
	if f.From != "" && m.From != f.From {
		return false, nil
	}
	if f.To != "" && jsonString(m.To) != f.To {
		return false, nil
	}
	if f.Channel != "" && jsonString(m.Payload.Channel) != f.Channel {
		return false, nil
	}
	ts := m.Timestamp
	if ts == 0 {
		ts = c.StoredAt
	}
	return ts >= f.Start && (f.End == 0 || ts <= f.End), nil
}

// jsonString is raw's value when it is a JSON string, else "".
func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// FindHistory implements storage.MessageStore.
func (s messageStore) FindHistory(ctx context.Context, f storage.HistoryFilter) ([]storage.Entry, error) {
	out := []storage.Entry{}
	if f.Limit <= 0 || f.After == ^uint64(0) {
		return out, ctx.Err()
	}
	err := s.d.table(store.MessageHistory).View(func(tx *store.Tx) error {
		return tx.ScanFrom(seq.Key(f.After+1), func(_, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			ok, err := matches(f, v)
			if err != nil || !ok {
				return err
			}
			e, err := decodeEntry(v)
			if err != nil {
				return err
			}
			out = append(out, e)
			if len(out) >= f.Limit {
				return errEnough
			}
			return nil
		})
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, fmt.Errorf("history query: %w", err)
	}
	return out, nil
}

// RecentHistory implements storage.MessageStore. It scans back from the
// newest entry in growing windows, since sequence numbers may have gaps
// (a restart skips the rest of a reserved block).
func (s messageStore) RecentHistory(ctx context.Context, limit int) ([]storage.Entry, error) {
	out := []storage.Entry{}
	if limit <= 0 {
		return out, ctx.Err()
	}
	err := s.d.table(store.MessageHistory).View(func(tx *store.Tx) error {
		k, _ := tx.Last(nil)
		if k == nil {
			return nil
		}
		last := seq.Decode(k)
		for window := uint64(limit); ; {
			from := uint64(0)
			if last > window {
				from = last - window + 1
			}
			out = out[:0]
			if err := tx.ScanFrom(seq.Key(from), func(_, v []byte) error {
				e, err := decodeEntry(v)
				if err != nil {
					return err
				}
				out = append(out, e)
				return nil
			}); err != nil {
				return err
			}
			if len(out) >= limit || from == 0 {
				return nil
			}
			// Doubling, up to the whole table (window last: from 0).
			if window > last/2 {
				window = last
			} else {
				window *= 2
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("recent history: %w", err)
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// CountHistory implements storage.MessageStore.
func (s messageStore) CountHistory(ctx context.Context) (int, error) {
	n := 0
	err := s.d.table(store.MessageHistory).View(func(tx *store.Tx) error { n = tx.Count(); return nil })
	if err != nil {
		return 0, fmt.Errorf("count history: %w", err)
	}
	return n, ctx.Err()
}

func channelRow(r channelRecord) storage.ChannelRow {
	if r.Subscribers == nil {
		r.Subscribers = []string{}
	}
	return storage.ChannelRow(r)
}

func getChannel(tx *store.Tx, name string) (channelRecord, bool, error) {
	raw := tx.Get([]byte(name))
	if raw == nil {
		return channelRecord{}, false, nil
	}
	var r channelRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, false, fmt.Errorf("decode channel %q: %w", name, err)
	}
	return r, true, nil
}

func putChannel(tx *store.Tx, r channelRecord) error {
	if r.Subscribers == nil {
		r.Subscribers = []string{}
	}
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Put([]byte(r.Name), v)
}

// CreateChannel implements storage.MessageStore.
func (s messageStore) CreateChannel(ctx context.Context, ch storage.ChannelRow, maxChannels int) error {
	if err := storage.CheckName(ch.Name); err != nil {
		return fmt.Errorf("create channel: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.d.table(store.AgentChannels).Update(func(tx *store.Tx) error {
		if tx.Get([]byte(ch.Name)) != nil {
			return storage.ErrChannelExists
		}
		if tx.Count() >= maxChannels {
			return fmt.Errorf("%w: at most %d channels", storage.ErrChannelLimit, maxChannels)
		}
		return putChannel(tx, channelRecord(ch))
	})
	if err != nil {
		return fmt.Errorf("create channel %s: %w", ch.Name, err)
	}
	return nil
}

// GetChannel implements storage.MessageStore.
func (s messageStore) GetChannel(ctx context.Context, name string) (storage.ChannelRow, error) {
	var r channelRecord
	var found bool
	err := s.d.table(store.AgentChannels).View(func(tx *store.Tx) error {
		var err error
		r, found, err = getChannel(tx, name)
		return err
	})
	if err != nil {
		return storage.ChannelRow{}, fmt.Errorf("get channel: %w", err)
	}
	if !found {
		return storage.ChannelRow{}, storage.ErrNotFound
	}
	return channelRow(r), ctx.Err()
}

// ListChannels implements storage.MessageStore.
func (s messageStore) ListChannels(ctx context.Context) ([]storage.ChannelRow, error) {
	out := []storage.ChannelRow{}
	err := s.d.table(store.AgentChannels).View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			var r channelRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode channel %q: %w", k, err)
			}
			out = append(out, channelRow(r))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	// Keys sort bytewise, and so do the names (a record's name is its
	// key), but sort anyway: a record's name field is what callers see.
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, ctx.Err()
}

// Subscribe implements storage.MessageStore.
func (s messageStore) Subscribe(ctx context.Context, channel, agent string, maxSubscribers int) (storage.ChannelRow, bool, error) {
	if err := storage.CheckName(agent); err != nil {
		return storage.ChannelRow{}, false, fmt.Errorf("subscribe: %w", err)
	}
	var r channelRecord
	already := false
	err := s.changeChannel(ctx, channel, func(c *channelRecord) (bool, error) {
		if slices.Contains(c.Subscribers, agent) {
			already = true
			return false, nil
		}
		if len(c.Subscribers) >= maxSubscribers {
			return false, fmt.Errorf("%w: at most %d subscribers per channel", storage.ErrChannelLimit, maxSubscribers)
		}
		c.Subscribers = append([]string{agent}, c.Subscribers...)
		return true, nil
	}, &r)
	if err != nil {
		return storage.ChannelRow{}, false, fmt.Errorf("subscribe %s: %w", channel, err)
	}
	return channelRow(r), already, nil
}

// Unsubscribe implements storage.MessageStore.
func (s messageStore) Unsubscribe(ctx context.Context, channel, agent string) (storage.ChannelRow, error) {
	var r channelRecord
	err := s.changeChannel(ctx, channel, func(c *channelRecord) (bool, error) {
		if !slices.Contains(c.Subscribers, agent) {
			return false, nil
		}
		c.Subscribers = slices.DeleteFunc(c.Subscribers, func(s string) bool { return s == agent })
		return true, nil
	}, &r)
	if err != nil {
		return storage.ChannelRow{}, fmt.Errorf("unsubscribe %s: %w", channel, err)
	}
	return channelRow(r), nil
}

// changeChannel applies change to the stored channel in one transaction,
// writing it back when change reports a change; out receives the result.
// Update may run fn more than once, so out is set from the last run.
func (s messageStore) changeChannel(ctx context.Context, name string, change func(*channelRecord) (bool, error), out *channelRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.d.table(store.AgentChannels).Update(func(tx *store.Tx) error {
		r, found, err := getChannel(tx, name)
		if err != nil {
			return err
		}
		if !found {
			return storage.ErrNotFound
		}
		r.Subscribers = slices.Clone(r.Subscribers)
		changed, err := change(&r)
		if err != nil {
			return err
		}
		*out = r
		if !changed {
			return nil
		}
		return putChannel(tx, r)
	})
}

// ChannelHistory implements storage.MessageStore.
func (s messageStore) ChannelHistory(ctx context.Context, channel string, after uint64, limit int) ([]storage.Entry, error) {
	out := []storage.Entry{}
	if limit <= 0 || storage.CheckName(channel) != nil {
		return out, ctx.Err() // no such channel can exist
	}
	err := s.d.table(store.ChannelHistory).View(func(tx *store.Tx) error {
		return scanOwned(tx, ownerPrefix(channel), func(k, v []byte) error {
			if seq.Decode(k) <= after {
				return nil
			}
			e, err := decodeEntry(v)
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("channel history %s: %w", channel, err)
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, ctx.Err()
}

// ThreadMessage implements storage.MessageStore.
func (s messageStore) ThreadMessage(ctx context.Context, id string) ([]byte, error) {
	var body []byte
	err := s.d.table(store.ThreadMessages).View(func(tx *store.Tx) error {
		body = slices.Clone(tx.Get([]byte(id)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("thread message %.40q: %w", id, err)
	}
	if body == nil {
		return nil, storage.ErrNotFound
	}
	return body, ctx.Err()
}

// ThreadChildren implements storage.MessageStore.
func (s messageStore) ThreadChildren(ctx context.Context, id string) ([]string, error) {
	var kids []string
	err := s.d.table(store.ThreadReplies).View(func(tx *store.Tx) error {
		if raw := tx.Get([]byte(id)); raw != nil {
			return json.Unmarshal(raw, &kids)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("thread replies %.40q: %w", id, err)
	}
	return kids, ctx.Err()
}
