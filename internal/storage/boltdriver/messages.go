package boltdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

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

// messageState is the message store's share of the driver.
type messageState struct {
	// mu serializes the writes that read before they commit: an append
	// computes its trims and thread-list changes from the tables, then
	// commits them across tables; a second append in between would
	// compute from a stale view (and lose a reply link).
	mu       sync.Mutex
	mailbox  *seq.Counter
	history  *seq.Counter
	channels map[string]*seq.Counter
}

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

// counters opens the sequence counters on first use; the caller holds mu.
func (s messageStore) counters() (*messageState, error) {
	st := &s.d.msg
	meta := s.d.table(store.Meta)
	if st.mailbox == nil {
		var floor uint64
		err := s.d.table(store.AgentMailbox).View(func(tx *store.Tx) error {
			return tx.ForEach(func(k, _ []byte) error {
				floor = max(floor, seq.Decode(k))
				return nil
			})
		})
		if err != nil {
			return nil, fmt.Errorf("open mailbox sequence: %w", err)
		}
		if st.mailbox, err = seq.Open(meta, "mailbox", floor); err != nil {
			return nil, err
		}
	}
	if st.history == nil {
		var floor uint64
		err := s.d.table(store.MessageHistory).View(func(tx *store.Tx) error {
			if k, _ := tx.Last(nil); k != nil {
				floor = seq.Decode(k)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("open history sequence: %w", err)
		}
		if st.history, err = seq.Open(meta, "history", floor); err != nil {
			return nil, err
		}
	}
	if st.channels == nil {
		st.channels = make(map[string]*seq.Counter)
	}
	return st, nil
}

// channelCounter returns channel's sequence; the caller holds mu.
func (s messageStore) channelCounter(st *messageState, channel string) (*seq.Counter, error) {
	if c, ok := st.channels[channel]; ok {
		return c, nil
	}
	var floor uint64
	err := s.d.table(store.ChannelHistory).View(func(tx *store.Tx) error {
		return scanOwned(tx, ownerPrefix(channel), func(k, _ []byte) error {
			floor = max(floor, seq.Decode(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("open channel sequence %s: %w", channel, err)
	}
	c, err := seq.Open(s.d.table(store.Meta), "channel:"+channel, floor)
	if err != nil {
		return nil, err
	}
	st.channels[channel] = c
	return c, nil
}

// AppendMessage implements storage.MessageStore.
func (s messageStore) AppendMessage(ctx context.Context, a storage.Append) (storage.AppendResult, error) {
	return s.append(ctx, "", a)
}

// PublishChannel implements storage.MessageStore.
func (s messageStore) PublishChannel(ctx context.Context, channel string, a storage.Append) (storage.AppendResult, error) {
	if err := storage.CheckName(channel); err != nil {
		return storage.AppendResult{}, fmt.Errorf("publish: %w", err)
	}
	return s.append(ctx, channel, a)
}

// append records a in the global history (channel "") or in channel's
// history, with its thread entry and mailbox copies, as one journaled
// write.
func (s messageStore) append(ctx context.Context, channel string, a storage.Append) (storage.AppendResult, error) {
	var res storage.AppendResult
	// Everything is checked before the journal: bbolt refuses keys over
	// 32 KiB, and a refused key in the middle of a journaled write would
	// fail every replay.
	if err := storage.CheckAppend(a); err != nil {
		return res, fmt.Errorf("append message: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	s.d.msg.mu.Lock()
	defer s.d.msg.mu.Unlock()
	st, err := s.counters()
	if err != nil {
		return res, err
	}
	var ws []write
	var trimmed [][]byte
	if channel == "" {
		if res.Seq, err = st.history.Next(); err != nil {
			return res, err
		}
		ws, trimmed, err = s.historyWrites(res.Seq, a)
	} else {
		var ctr *seq.Counter
		if ctr, err = s.channelCounter(st, channel); err != nil {
			return res, err
		}
		if res.Seq, err = ctr.Next(); err != nil {
			return res, err
		}
		ws, trimmed, err = s.channelWrites(channel, res.Seq, a)
	}
	if err != nil {
		return res, err
	}
	res.Trimmed = trimmedIDs(trimmed)
	tw, err := s.threadWrites(a.Message, res.Trimmed)
	if err != nil {
		return res, err
	}
	ws = append(ws, tw...)
	mw, seqs, err := s.mailboxWrites(st, a.Copies, a.StoredAt)
	if err != nil {
		return res, err
	}
	ws = append(ws, mw...)
	if err := s.d.commitAcross(ctx, ws); err != nil {
		return storage.AppendResult{}, fmt.Errorf("append message %s: %w", a.Message.ID, err)
	}
	res.MailboxSeqs = seqs
	return res, nil
}

// historyWrites stores the entry and trims the oldest beyond the cap,
// returning the trimmed records.
func (s messageStore) historyWrites(n uint64, a storage.Append) ([]write, [][]byte, error) {
	v, err := json.Marshal(historyRecord{Seq: n, Message: a.Message.Body, StoredAt: a.StoredAt})
	if err != nil {
		return nil, nil, err
	}
	ws := []write{{table: store.MessageHistory, key: seq.Key(n), value: v}}
	var trimmed [][]byte
	err = s.d.table(store.MessageHistory).View(func(tx *store.Tx) error {
		excess := tx.Count() + 1 - storage.HistoryCap
		if excess <= 0 {
			return nil
		}
		return tx.ForEach(func(k, v []byte) error {
			if len(trimmed) >= excess {
				return errEnough
			}
			ws = append(ws, write{table: store.MessageHistory, key: slices.Clone(k), del: true})
			trimmed = append(trimmed, slices.Clone(v))
			return nil
		})
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, nil, fmt.Errorf("history: %w", err)
	}
	return ws, trimmed, nil
}

func (s messageStore) channelWrites(channel string, n uint64, a storage.Append) ([]write, [][]byte, error) {
	v, err := json.Marshal(historyRecord{Seq: n, Message: a.Message.Body, StoredAt: a.StoredAt})
	if err != nil {
		return nil, nil, err
	}
	prefix := ownerPrefix(channel)
	ws, trimmed, err := cappedWrites(s.d.table(store.ChannelHistory), prefix, seq.AppendKey(prefix, n), v, storage.ChannelHistoryCap)
	if err != nil {
		return nil, nil, fmt.Errorf("channel history %s: %w", channel, err)
	}
	return ws, trimmed, nil
}

// cappedWrites puts v under key (prefix + sequence) and deletes the
// oldest records under prefix beyond limit, returning their values.
func cappedWrites(t *store.Table, prefix, key, v []byte, limit int) ([]write, [][]byte, error) {
	ws := []write{{table: t.Name(), key: key, value: v}}
	var keys, vals [][]byte
	err := t.View(func(tx *store.Tx) error {
		return scanOwned(tx, prefix, func(k, v []byte) error {
			keys = append(keys, slices.Clone(k))
			vals = append(vals, slices.Clone(v))
			return nil
		})
	})
	if err != nil {
		return nil, nil, err
	}
	var removed [][]byte
	for i := 0; i < len(keys)+1-limit && i < len(keys); i++ {
		ws = append(ws, write{table: t.Name(), key: keys[i], del: true})
		removed = append(removed, vals[i])
	}
	return ws, removed, nil
}

// mailboxWrites numbers the copies and trims each mailbox to its cap.
func (s messageStore) mailboxWrites(st *messageState, cs []storage.MailboxCopy, storedAt int64) ([]write, []uint64, error) {
	var ws []write
	seqs := make([]uint64, 0, len(cs))
	added := map[string]int{}
	// Several copies for one agent in one append are trimmed together:
	// the records of earlier copies are not yet in the table.
	byAgent := map[string][]write{}
	var order []string
	for _, c := range cs {
		n, err := st.mailbox.Next()
		if err != nil {
			return nil, nil, err
		}
		v, err := json.Marshal(mailboxRecord{Seq: n, AgentID: c.Agent, Message: c.Body, StoredAt: storedAt})
		if err != nil {
			return nil, nil, err
		}
		if _, ok := byAgent[c.Agent]; !ok {
			order = append(order, c.Agent)
		}
		byAgent[c.Agent] = append(byAgent[c.Agent], write{table: store.AgentMailbox, key: seq.AppendKey(ownerPrefix(c.Agent), n), value: v})
		added[c.Agent]++
		seqs = append(seqs, n)
	}
	t := s.d.table(store.AgentMailbox)
	err := t.View(func(tx *store.Tx) error {
		for _, agent := range order {
			var keys [][]byte
			if err := scanOwned(tx, ownerPrefix(agent), func(k, _ []byte) error {
				keys = append(keys, slices.Clone(k))
				return nil
			}); err != nil {
				return err
			}
			puts := byAgent[agent]
			// Copies beyond the cap within this append never land.
			if extra := len(puts) - storage.MailboxCap; extra > 0 {
				puts = puts[extra:]
			}
			ws = append(ws, puts...)
			for i := 0; i < len(keys)+len(puts)-storage.MailboxCap && i < len(keys); i++ {
				ws = append(ws, write{table: store.AgentMailbox, key: keys[i], del: true})
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("mailbox: %w", err)
	}
	return ws, seqs, nil
}

// threadWrites forgets the trimmed ids, then indexes m under its parent.
func (s messageStore) threadWrites(m storage.MessageRow, trimmed []string) ([]write, error) {
	kids := map[string][]string{} // parent -> replies after this write
	var changed []string
	var ws []write
	load := func(tx *store.Tx, parent string) ([]string, error) {
		if l, ok := kids[parent]; ok {
			return l, nil
		}
		var l []string
		if raw := tx.Get([]byte(parent)); raw != nil {
			if err := json.Unmarshal(raw, &l); err != nil {
				return nil, fmt.Errorf("decode replies of %s: %w", parent, err)
			}
		}
		kids[parent] = l
		changed = append(changed, parent)
		return l, nil
	}
	parents := map[string][]string{}
	err := s.d.table(store.ThreadMessages).View(func(tx *store.Tx) error {
		for _, id := range trimmed {
			raw := tx.Get([]byte(id))
			if raw == nil {
				continue
			}
			var r struct {
				ReplyTo *string `json:"reply_to"`
			}
			if json.Unmarshal(raw, &r) == nil && r.ReplyTo != nil && *r.ReplyTo != "" {
				parents[*r.ReplyTo] = append(parents[*r.ReplyTo], id)
			}
			ws = append(ws, write{table: store.ThreadMessages, key: []byte(id), del: true})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("thread index: %w", err)
	}
	ws = append(ws, write{table: store.ThreadMessages, key: []byte(m.ID), value: m.Body})
	link := m.ReplyTo != "" && m.ReplyTo != m.ID
	if len(parents) == 0 && !link {
		return ws, nil
	}
	err = s.d.table(store.ThreadReplies).View(func(tx *store.Tx) error {
		for parent, gone := range parents {
			l, err := load(tx, parent)
			if err != nil {
				return err
			}
			kids[parent] = slices.DeleteFunc(l, func(k string) bool { return slices.Contains(gone, k) })
		}
		if link {
			l, err := load(tx, m.ReplyTo)
			if err != nil {
				return err
			}
			if !slices.Contains(l, m.ID) {
				kids[m.ReplyTo] = append(l, m.ID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("thread replies: %w", err)
	}
	for _, parent := range changed {
		w := write{table: store.ThreadReplies, key: []byte(parent)}
		if l := kids[parent]; len(l) == 0 {
			w.del = true
		} else if w.value, err = json.Marshal(l); err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// trimmedIDs returns the message ids of trimmed history records.
func trimmedIDs(values [][]byte) []string {
	ids := make([]string, 0, len(values))
	for _, v := range values {
		var e struct {
			Message struct {
				ID string `json:"id"`
			} `json:"message"`
		}
		if json.Unmarshal(v, &e) == nil && e.Message.ID != "" {
			ids = append(ids, e.Message.ID)
		}
	}
	return ids
}

// Enqueue implements storage.MessageStore.
func (s messageStore) Enqueue(ctx context.Context, agent string, body []byte, storedAt int64) (uint64, error) {
	if err := storage.CheckCopies([]storage.MailboxCopy{{Agent: agent, Body: body}}); err != nil {
		return 0, fmt.Errorf("mailbox enqueue: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.d.msg.mu.Lock()
	defer s.d.msg.mu.Unlock()
	st, err := s.counters()
	if err != nil {
		return 0, err
	}
	ws, seqs, err := s.mailboxWrites(st, []storage.MailboxCopy{{Agent: agent, Body: body}}, storedAt)
	if err != nil {
		return 0, err
	}
	if err := s.d.commitAcross(ctx, ws); err != nil {
		return 0, fmt.Errorf("mailbox enqueue %s: %w", agent, err)
	}
	return seqs[0], nil
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
		for window := uint64(limit); ; window *= 2 {
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

// ForgetThread implements storage.MessageStore.
func (s messageStore) ForgetThread(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return ctx.Err()
	}
	s.d.msg.mu.Lock()
	defer s.d.msg.mu.Unlock()
	ws, err := s.threadWrites(storage.MessageRow{}, ids)
	if err != nil {
		return err
	}
	// threadWrites also indexes its message; there is none here.
	ws = slices.DeleteFunc(ws, func(w write) bool { return w.table == store.ThreadMessages && len(w.key) == 0 })
	if err := s.d.commitAcross(ctx, ws); err != nil {
		return fmt.Errorf("forget threads: %w", err)
	}
	return nil
}
