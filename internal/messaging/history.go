package messaging

import (
	"context"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/internal/storage"
)

// History limits.
const (
	HistoryCap          = storage.HistoryCap
	HistoryDefaultLimit = 50
	HistoryMaxLimit     = 200
)

// History is the global log of routed messages, newest HistoryCap kept.
type History struct {
	store storage.MessageStore
	now   func() time.Time
}

// NewHistory returns the history kept in ms.
func NewHistory(ms storage.MessageStore) *History {
	return &History{store: ms, now: time.Now}
}

// Append records m with a mailbox copy for each of copies and its thread
// index entry, in one commit, and returns its sequence number. Entries
// trimmed beyond the cap leave the thread index in the same commit.
func (h *History) Append(ctx context.Context, m Message, copies []string) (uint64, error) {
	res, err := h.appendWith(ctx, m, copies, "")
	return res.Seq, err
}

// appendWith is Append that also stores a pending copy (see
// storage.MailboxCopy) for pending, unless it is "", and returns the
// store's result: the pending copy's number is the last of MailboxSeqs.
// The message is encoded once: its row's body is every copy's.
func (h *History) appendWith(ctx context.Context, m Message, copies []string, pending string) (storage.AppendResult, error) {
	row, err := toRow(m)
	if err != nil {
		return storage.AppendResult{}, err
	}
	cs := make([]storage.MailboxCopy, 0, len(copies)+1)
	for _, a := range copies {
		cs = append(cs, storage.MailboxCopy{Agent: a, Body: row.Body})
	}
	if pending != "" {
		cs = append(cs, storage.MailboxCopy{Agent: pending, Body: row.Body, Pending: true})
	}
	return h.store.AppendMessage(ctx, storage.Append{Message: row, Copies: cs, StoredAt: h.now().UnixMilli()})
}

// Query filters the history. Zero values mean "no filter".
type Query struct {
	From, To, Channel  string
	StartTime, EndTime int64 // inclusive; EndTime 0 = no bound
	Cursor             uint64
	Limit              int
}

// Find returns matching entries with seq > q.Cursor in ascending order, at
// most q.Limit (default 50, max 200), and the cursor to continue from.
func (h *History) Find(ctx context.Context, q Query) ([]WithSeq, uint64, error) {
	limit := q.Limit
	if limit == 0 {
		limit = HistoryDefaultLimit
	}
	limit = min(limit, HistoryMaxLimit)
	if limit <= 0 {
		return []WithSeq{}, q.Cursor, nil
	}
	es, err := h.store.FindHistory(ctx, storage.HistoryFilter{From: q.From, To: q.To, Channel: q.Channel,
		Start: q.StartTime, End: q.EndTime, After: q.Cursor, Limit: limit})
	if err != nil {
		return nil, q.Cursor, err
	}
	out, err := decodeEntries(es)
	if err != nil {
		return nil, q.Cursor, fmt.Errorf("history query: %w", err)
	}
	cursor := q.Cursor
	if len(out) > 0 {
		cursor = out[len(out)-1].Seq
	}
	return out, cursor, nil
}

// Recent returns the newest limit messages (at most HistoryMaxLimit),
// oldest first.
func (h *History) Recent(ctx context.Context, limit int) ([]WithSeq, error) {
	es, err := h.store.RecentHistory(ctx, min(max(limit, 1), HistoryMaxLimit))
	if err != nil {
		return nil, err
	}
	out, err := decodeEntries(es)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return out, nil
}
