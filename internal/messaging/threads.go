package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/agentcom/agentcom/internal/storage"
)

// Threads indexes messages by their reply_to links. It holds the messages
// still kept in the global history or a channel history: the stores index
// a message when they record it and drop it when they trim it.
type Threads struct {
	store storage.MessageStore
}

// NewThreads returns the thread index kept in ms.
func NewThreads(ms storage.MessageStore) *Threads {
	return &Threads{store: ms}
}

// Forget removes messages from the index and unlinks each from its
// parent's replies.
func (t *Threads) Forget(ctx context.Context, ids []string) error {
	return t.store.ForgetThread(ctx, ids)
}

func (t *Threads) message(ctx context.Context, id string) (Message, bool, error) {
	b, err := t.store.ThreadMessage(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return Message{}, false, nil
	}
	if err != nil {
		return Message{}, false, err
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, false, fmt.Errorf("decode thread message: %w", err)
	}
	return m, true, nil
}

func (t *Threads) children(ctx context.Context, id string) ([]string, error) {
	return t.store.ThreadChildren(ctx, id)
}

// Root follows reply_to links upward from id while the current message is
// indexed and has a parent. A cycle stops at the first repeated id.
func (t *Threads) Root(ctx context.Context, id string) (string, error) {
	seen := map[string]bool{}
	cur := id
	for !seen[cur] {
		seen[cur] = true
		m, ok, err := t.message(ctx, cur)
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
func (t *Threads) Thread(ctx context.Context, id string) (string, []Message, error) {
	root, err := t.Root(ctx, id)
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
		m, ok, err := t.message(ctx, cur)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, m)
		}
		kids, err := t.children(ctx, cur)
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
func (t *Threads) Replies(ctx context.Context, id string) ([]Message, error) {
	kids, err := t.children(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("replies %s: %w", id, err)
	}
	out := []Message{}
	for _, k := range kids {
		m, ok, err := t.message(ctx, k)
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
