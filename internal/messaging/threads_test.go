package messaging

import (
	"slices"
	"testing"
)

// TestReplyLoopWithRealParents: the stored threads hold a real loop (m1
// replies to m3, m2 to m1, m3 to m2: each parent exists, which clients can
// produce because reply_to is accepted before its target is stored) and a
// message replying to itself. Root, Thread and Replies end, and each
// message appears once.
func TestReplyLoopWithRealParents(t *testing.T) {
	ms := openStore(t)
	th, h := NewThreads(ms), NewHistory(ms)
	mk := func(id, parent string, ts int64) Message {
		m := msg(0)
		m.ID, m.ReplyTo, m.Timestamp = id, StrPtr(parent), ts
		return m
	}
	for _, m := range []Message{mk("m1", "m3", 1), mk("m2", "m1", 2), mk("m3", "m2", 3), mk("self", "self", 4)} {
		if _, err := h.Append(t.Context(), m, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"m1", "m2", "m3"} {
		root, err := th.Root(t.Context(), id)
		if err != nil || !slices.Contains([]string{"m1", "m2", "m3"}, root) {
			t.Fatalf("root of %s: %q, %v", id, root, err)
		}
		_, msgs, err := th.Thread(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		if !slices.Equal(ids, []string{"m1", "m2", "m3"}) {
			t.Fatalf("thread of %s: %v, want each of the loop once, by time", id, ids)
		}
	}
	if r, err := th.Replies(t.Context(), "m1"); err != nil || len(r) != 1 || r[0].ID != "m2" {
		t.Fatalf("replies to m1: %v %v", r, err)
	}
	root, msgs, err := th.Thread(t.Context(), "self")
	if err != nil || root != "self" || len(msgs) != 1 {
		t.Fatalf("self-reply: %q %v %v", root, msgs, err)
	}
}
