package messaging

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/seq"
	"github.com/agentcom/agentcom/internal/store"
)

// History limits.
const (
	HistoryCap          = 10000
	HistoryDefaultLimit = 50
	HistoryMaxLimit     = 200
)

// History is the global log of routed messages, newest HistoryCap kept.
type History struct {
	table *store.Table
	seq   *seq.Counter
	now   func() time.Time

	mu    sync.Mutex // guards count
	count int        // records in the table, as of the last commit
}

type historyEntry struct {
	Seq      uint64  `json:"seq"`
	Message  Message `json:"message"`
	StoredAt int64   `json:"stored_at"`
}

// NewHistory opens the history over its table.
func NewHistory(table, meta *store.Table) (*History, error) {
	h := &History{table: table, now: time.Now}
	var floor uint64
	err := table.View(func(tx *store.Tx) error {
		h.count = tx.Count()
		if k, _ := tx.Last(nil); k != nil {
			floor = seq.Decode(k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	if h.seq, err = seq.Open(meta, "history", floor); err != nil {
		return nil, err
	}
	return h, nil
}

// Reload recounts after the table was restored.
func (h *History) Reload() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.table.View(func(tx *store.Tx) error { h.count = tx.Count(); return nil })
}

// Append stores m and trims the oldest entries beyond the cap, returning
// the ids of the trimmed messages. Appends
// from many senders share commits: no lock is held across the durable
// write. Concurrent appends may leave the log a few entries over the cap
// for a moment; the next append trims it back.
func (h *History) Append(m Message) (uint64, []string, error) {
	n, err := h.seq.Next()
	if err != nil {
		return 0, nil, err
	}
	v, err := json.Marshal(historyEntry{Seq: n, Message: m, StoredAt: h.now().UnixMilli()})
	if err != nil {
		return 0, nil, err
	}
	var removed [][]byte
	err = h.table.Update(func(tx *store.Tx) error {
		removed = removed[:0]
		if err := tx.Put(seq.Key(n), v); err != nil {
			return err
		}
		h.mu.Lock()
		excess := h.count + 1 - HistoryCap
		h.mu.Unlock()
		for len(removed) < excess {
			k, old := tx.First(nil)
			if k == nil {
				break
			}
			removed = append(removed, append([]byte(nil), old...))
			if err := tx.Delete(append([]byte(nil), k...)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("history append: %w", err)
	}
	h.mu.Lock()
	h.count += 1 - len(removed)
	h.mu.Unlock()
	return n, trimmedIDs(removed), nil
}

// Query filters the history. Zero values mean "no filter".
type Query struct {
	From, To, Channel  string
	StartTime, EndTime int64 // inclusive; EndTime 0 = no bound
	Cursor             uint64
	Limit              int
}

var errEnough = errors.New("enough")

// Find returns matching entries with seq > q.Cursor in ascending order, at
// most q.Limit (default 50, max 200), and the cursor to continue from.
func (h *History) Find(q Query) ([]WithSeq, uint64, error) {
	limit := q.Limit
	if limit == 0 {
		limit = HistoryDefaultLimit
	}
	limit = min(limit, HistoryMaxLimit)
	out := []WithSeq{}
	cursor := q.Cursor
	if limit <= 0 {
		return out, cursor, nil
	}
	err := h.table.View(func(tx *store.Tx) error {
		return tx.ScanFrom(seq.Key(q.Cursor+1), func(_, v []byte) error {
			var e historyEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode history entry: %w", err)
			}
			if !q.matches(e) {
				return nil
			}
			out = append(out, WithSeq{Message: e.Message, Seq: e.Seq})
			cursor = e.Seq
			if len(out) >= limit {
				return errEnough
			}
			return nil
		})
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, q.Cursor, fmt.Errorf("history query: %w", err)
	}
	return out, cursor, nil
}

// Recent returns the newest limit messages (at most HistoryMaxLimit),
// oldest first.
func (h *History) Recent(limit int) ([]WithSeq, error) {
	limit = min(max(limit, 1), HistoryMaxLimit)
	var last uint64
	if err := h.table.View(func(tx *store.Tx) error {
		if k, _ := tx.Last(nil); k != nil {
			last = seq.Decode(k)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	var cursor uint64
	if last > uint64(limit) {
		cursor = last - uint64(limit)
	}
	out, _, err := h.Find(Query{Cursor: cursor, Limit: limit})
	return out, err
}

func (q Query) matches(e historyEntry) bool {
	m := e.Message
	if q.From != "" && m.From != q.From {
		return false
	}
	if q.To != "" {
		if s, _ := m.To.(string); s != q.To {
			return false
		}
	}
	if q.Channel != "" {
		if c, _ := m.Payload["channel"].(string); c != q.Channel {
			return false
		}
	}
	ts := m.Timestamp
	if ts == 0 {
		ts = e.StoredAt
	}
	if ts < q.StartTime || (q.EndTime != 0 && ts > q.EndTime) {
		return false
	}
	return true
}
