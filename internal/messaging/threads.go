package messaging

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/agentcom/agentcom/internal/store"
)

// Threads indexes messages by their reply_to links. It holds the messages
// still kept in the global history or a channel history: the stores that
// trim those histories hand the trimmed ids to Forget.
type Threads struct {
	messages *store.Table // id -> message
	replies  *store.Table // parent id -> [child ids] in arrival order
}

// NewThreads opens the thread index.
func NewThreads(messages, replies *store.Table) *Threads {
	return &Threads{messages: messages, replies: replies}
}

// Index records m and links it under its parent.
func (t *Threads) Index(m Message) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := t.messages.Update(func(tx *store.Tx) error { return tx.Put([]byte(m.ID), v) }); err != nil {
		return fmt.Errorf("thread index %s: %w", m.ID, err)
	}
	parent := m.ReplyToID()
	if parent == "" || parent == m.ID {
		return nil
	}
	err = t.replies.Update(func(tx *store.Tx) error {
		var kids []string
		if raw := tx.Get([]byte(parent)); raw != nil {
			if err := json.Unmarshal(raw, &kids); err != nil {
				return fmt.Errorf("decode replies of %s: %w", parent, err)
			}
		}
		if slices.Contains(kids, m.ID) {
			return nil
		}
		b, err := json.Marshal(append(kids, m.ID))
		if err != nil {
			return err
		}
		return tx.Put([]byte(parent), b)
	})
	if err != nil {
		return fmt.Errorf("thread link %s: %w", m.ID, err)
	}
	return nil
}

// Forget removes messages from the index and unlinks each from its
// parent's replies.
func (t *Threads) Forget(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	parents := make(map[string][]string)
	err := t.messages.Update(func(tx *store.Tx) error {
		for _, id := range ids {
			raw := tx.Get([]byte(id))
			if raw == nil {
				continue
			}
			var m Message
			if json.Unmarshal(raw, &m) == nil && m.ReplyToID() != "" {
				parents[m.ReplyToID()] = append(parents[m.ReplyToID()], id)
			}
			if err := tx.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(parents) == 0 {
		return err
	}
	return t.replies.Update(func(tx *store.Tx) error {
		for parent, gone := range parents {
			raw := tx.Get([]byte(parent))
			if raw == nil {
				continue
			}
			var kids []string
			if err := json.Unmarshal(raw, &kids); err != nil {
				return fmt.Errorf("decode replies of %s: %w", parent, err)
			}
			kids = slices.DeleteFunc(kids, func(k string) bool { return slices.Contains(gone, k) })
			if len(kids) == 0 {
				if err := tx.Delete([]byte(parent)); err != nil {
					return err
				}
				continue
			}
			b, err := json.Marshal(kids)
			if err != nil {
				return err
			}
			if err := tx.Put([]byte(parent), b); err != nil {
				return err
			}
		}
		return nil
	})
}

func (t *Threads) message(id string) (Message, bool, error) {
	var m Message
	found := false
	err := t.messages.View(func(tx *store.Tx) error {
		raw := tx.Get([]byte(id))
		if raw == nil {
			return nil
		}
		found = true
		return json.Unmarshal(raw, &m)
	})
	return m, found, err
}

func (t *Threads) children(id string) ([]string, error) {
	var kids []string
	err := t.replies.View(func(tx *store.Tx) error {
		if raw := tx.Get([]byte(id)); raw != nil {
			return json.Unmarshal(raw, &kids)
		}
		return nil
	})
	return kids, err
}

// Root follows reply_to links upward from id while the current message is
// indexed and has a parent. A cycle stops at the first repeated id.
func (t *Threads) Root(id string) (string, error) {
	seen := map[string]bool{}
	cur := id
	for !seen[cur] {
		seen[cur] = true
		m, ok, err := t.message(cur)
		if err != nil {
			return "", fmt.Errorf("thread root %s: %w", id, err)
		}
		if !ok || m.ReplyToID() == "" || seen[m.ReplyToID()] {
			return cur, nil
		}
		cur = m.ReplyToID()
	}
	return cur, nil
}

// Thread returns the root of id's thread and every indexed message in it,
// sorted by timestamp.
func (t *Threads) Thread(id string) (string, []Message, error) {
	root, err := t.Root(id)
	if err != nil {
		return "", nil, err
	}
	out := []Message{}
	seen := map[string]bool{}
	var walk func(string) error
	walk = func(cur string) error {
		if seen[cur] {
			return nil
		}
		seen[cur] = true
		m, ok, err := t.message(cur)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, m)
		}
		kids, err := t.children(cur)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := walk(k); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return "", nil, fmt.Errorf("thread %s: %w", id, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp < out[j].Timestamp })
	return root, out, nil
}

// Replies returns the indexed direct replies to id, sorted by timestamp.
func (t *Threads) Replies(id string) ([]Message, error) {
	kids, err := t.children(id)
	if err != nil {
		return nil, fmt.Errorf("replies %s: %w", id, err)
	}
	out := []Message{}
	for _, k := range kids {
		m, ok, err := t.message(k)
		if err != nil {
			return nil, fmt.Errorf("replies %s: %w", id, err)
		}
		if ok {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp < out[j].Timestamp })
	return out, nil
}
