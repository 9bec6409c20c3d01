package storagetest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
)

// msgRow builds a message row whose body agrees with its columns, as the
// messaging domain encodes it.
func msgRow(id, from, to, channel, replyTo string, ts int64) storage.MessageRow {
	payload := map[string]any{"text": "hello " + id}
	if channel != "" {
		payload["channel"] = channel
	}
	m := map[string]any{"id": id, "from": from, "to": nil, "type": "chat", "payload": payload,
		"reply_to": nil, "timestamp": ts}
	if to != "" {
		m["to"] = to
	}
	if replyTo != "" {
		m["reply_to"] = replyTo
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return storage.MessageRow{ID: id, From: from, To: to, Channel: channel, ReplyTo: replyTo, Timestamp: ts, Body: b}
}

// bodyID is the id inside a stored body.
func bodyID(t *testing.T, b []byte) string {
	t.Helper()
	var m struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return m.ID
}

func entryIDs(t *testing.T, es []storage.Entry) []string {
	t.Helper()
	ids := []string{}
	for _, e := range es {
		ids = append(ids, bodyID(t, e.Body))
	}
	return ids
}

// direct appends a direct message from "a" to agent with its mailbox copy.
func direct(t *testing.T, ms storage.MessageStore, id, agent string) storage.AppendResult {
	t.Helper()
	r := msgRow(id, "a", agent, "", "", 1)
	res, err := ms.AppendMessage(t.Context(), storage.Append{Message: r,
		Copies: []storage.MailboxCopy{{Agent: agent, Body: r.Body}}, StoredAt: 1})
	if err != nil {
		t.Fatalf("append %s: %v", id, err)
	}
	return res
}

func runMessages(t *testing.T, open Opener) {
	t.Run("AppendRecordsEverythingInOrder", func(t *testing.T) {
		ms := open(t).Messages()
		ctx := t.Context()
		r1 := direct(t, ms, "m1", "bob")
		r2 := direct(t, ms, "m2", "bob")
		if r2.Seq <= r1.Seq || len(r1.MailboxSeqs) != 1 || r2.MailboxSeqs[0] <= r1.MailboxSeqs[0] {
			t.Fatalf("sequences do not increase: %+v then %+v", r1, r2)
		}
		got, err := ms.PollMailbox(ctx, "bob", 0, storage.MailboxCap)
		if err != nil || !slices.Equal(entryIDs(t, got), []string{"m1", "m2"}) {
			t.Fatalf("poll: %v %v", entryIDs(t, got), err)
		}
		if got[0].Seq != r1.MailboxSeqs[0] || got[1].Seq != r2.MailboxSeqs[0] || got[0].StoredAt != 1 {
			t.Fatalf("poll entries %+v, want seqs %d %d", got, r1.MailboxSeqs[0], r2.MailboxSeqs[0])
		}
		after, _ := ms.PollMailbox(ctx, "bob", got[0].Seq, 10)
		if !slices.Equal(entryIDs(t, after), []string{"m2"}) {
			t.Fatalf("poll after first: %v", entryIDs(t, after))
		}
		if one, _ := ms.PollMailbox(ctx, "bob", 0, 1); len(one) != 1 {
			t.Fatalf("poll limit 1 returned %d", len(one))
		}
		hist, err := ms.FindHistory(ctx, storage.HistoryFilter{Limit: 10})
		if err != nil || !slices.Equal(entryIDs(t, hist), []string{"m1", "m2"}) || hist[0].Seq != r1.Seq {
			t.Fatalf("history: %v %v", entryIDs(t, hist), err)
		}
		if n, _ := ms.CountHistory(ctx); n != 2 {
			t.Fatalf("history count %d", n)
		}
		body, err := ms.ThreadMessage(ctx, "m1")
		if err != nil || bodyID(t, body) != "m1" {
			t.Fatalf("thread message: %q %v", body, err)
		}
		if _, err := ms.ThreadMessage(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing thread message: %v", err)
		}
	})

	t.Run("PendingCopiesDropAndTrimNothing", func(t *testing.T) {
		ms := open(t).Messages()
		ctx := t.Context()
		// A full mailbox: a pending copy does not push its oldest out.
		for i := range storage.MailboxCap {
			direct(t, ms, fmt.Sprintf("f%d", i), "carol")
		}
		pend := func(id string) uint64 {
			r := msgRow(id, "a", "carol", "", "", 1)
			res, err := ms.AppendMessage(ctx, storage.Append{Message: r, StoredAt: 1,
				Copies: []storage.MailboxCopy{{Agent: "carol", Body: r.Body, Pending: true}}})
			if err != nil || len(res.MailboxSeqs) != 1 {
				t.Fatalf("append %s: %+v %v", id, res, err)
			}
			return res.MailboxSeqs[0]
		}
		p1, p2 := pend("p1"), pend("p2")
		if n, _ := ms.CountMailbox(ctx, "carol"); n != storage.MailboxCap+2 {
			t.Fatalf("mailbox holds %d with two pending copies, want %d", n, storage.MailboxCap+2)
		}
		// Dropped: gone for every read that follows, however the driver
		// applies it; dropping a copy no longer there changes nothing.
		if err := ms.DropCopies(ctx, []storage.CopyRef{{Agent: "carol", Seq: p1}, {Agent: "carol", Seq: 1 << 40}}); err != nil {
			t.Fatal(err)
		}
		got, err := ms.PollMailbox(ctx, "carol", 0, 2*storage.MailboxCap)
		if err != nil || len(got) != storage.MailboxCap+1 || bodyID(t, got[0].Body) != "f0" || got[len(got)-1].Seq != p2 {
			t.Fatalf("after the drop: %d entries (%v), first %q", len(got), err, bodyID(t, got[0].Body))
		}
		if err := ms.DropCopies(ctx, []storage.CopyRef{{Agent: "carol", Seq: p2}}); err != nil {
			t.Fatal(err)
		}
		if d, err := ms.MailboxDepths(ctx); err != nil || d["carol"] != storage.MailboxCap {
			t.Fatalf("depths %v %v", d, err)
		}
		if err := ms.DropCopies(ctx, []storage.CopyRef{{Agent: "", Seq: 1}}); !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("drop for an empty name: %v", err)
		}
		// The history and the thread index keep the messages.
		if _, err := ms.ThreadMessage(ctx, "p1"); err != nil {
			t.Fatalf("thread index lost p1: %v", err)
		}
	})

	t.Run("AppendIsAtomic", func(t *testing.T) {
		ms := open(t).Messages()
		ctx := t.Context()
		direct(t, ms, "m0", "bob")
		for _, bad := range []string{"", "bad\x00id", string(make([]byte, storage.MaxNameLen+1))} {
			r := msgRow("m1", "a", "", "", "m0", 1)
			_, err := ms.AppendMessage(ctx, storage.Append{Message: r, StoredAt: 1,
				Copies: []storage.MailboxCopy{{Agent: "carol", Body: r.Body}, {Agent: bad, Body: r.Body}}})
			if !errors.Is(err, storage.ErrInvalidName) {
				t.Fatalf("copy for %q: %v, want ErrInvalidName", bad, err)
			}
			_, err = ms.PublishChannel(ctx, "ch", storage.Append{Message: r, StoredAt: 1,
				Copies: []storage.MailboxCopy{{Agent: "carol", Body: r.Body}, {Agent: bad, Body: r.Body}}})
			if !errors.Is(err, storage.ErrInvalidName) {
				t.Fatalf("publish with copy for %q: %v, want ErrInvalidName", bad, err)
			}
		}
		_, err := ms.AppendMessage(ctx, storage.Append{Message: msgRow("", "a", "b", "", "", 1)})
		if !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("empty id: %v", err)
		}
		if n, _ := ms.CountHistory(ctx); n != 1 {
			t.Fatalf("history holds %d after failed appends, want 1", n)
		}
		if n, _ := ms.CountMailbox(ctx, "carol"); n != 0 {
			t.Fatalf("carol got %d copies of a failed append", n)
		}
		if _, err := ms.ThreadMessage(ctx, "m1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("failed append indexed: %v", err)
		}
		if kids, _ := ms.ThreadChildren(ctx, "m0"); len(kids) != 0 {
			t.Fatalf("failed append linked: %v", kids)
		}
		if es, _ := ms.ChannelHistory(ctx, "ch", 0, 10); len(es) != 0 {
			t.Fatalf("failed publish stored %d", len(es))
		}
		// The sequence still moves forward after the failures.
		if r := direct(t, ms, "m2", "bob"); r.Seq < 2 {
			t.Fatalf("seq after failures %d", r.Seq)
		}
	})

	t.Run("BroadcastCopiesAndThreads", func(t *testing.T) {
		ms := open(t).Messages()
		ctx := t.Context()
		root := msgRow("root", "a", "broadcast", "", "", 10)
		copies := []storage.MailboxCopy{{Agent: "x", Body: root.Body}, {Agent: "y", Body: root.Body}, {Agent: "z", Body: root.Body}}
		res, err := ms.AppendMessage(ctx, storage.Append{Message: root, Copies: copies, StoredAt: 10})
		if err != nil || len(res.MailboxSeqs) != 3 || !slices.IsSorted(res.MailboxSeqs) || len(slices.Compact(slices.Clone(res.MailboxSeqs))) != 3 {
			t.Fatalf("broadcast: %+v %v", res, err)
		}
		depths, err := ms.MailboxDepths(ctx)
		if err != nil || len(depths) != 3 || depths["x"] != 1 || depths["z"] != 1 {
			t.Fatalf("depths %v %v", depths, err)
		}
		for i, id := range []string{"r1", "r2", "r3"} {
			r := msgRow(id, "x", "a", "", "root", int64(20+i))
			if _, err := ms.AppendMessage(ctx, storage.Append{Message: r, StoredAt: 20}); err != nil {
				t.Fatal(err)
			}
		}
		self := msgRow("self", "x", "a", "", "self", 30)
		if _, err := ms.AppendMessage(ctx, storage.Append{Message: self, StoredAt: 30}); err != nil {
			t.Fatal(err)
		}
		kids, err := ms.ThreadChildren(ctx, "root")
		if err != nil || !slices.Equal(kids, []string{"r1", "r2", "r3"}) {
			t.Fatalf("children %v %v", kids, err)
		}
		if kids, _ := ms.ThreadChildren(ctx, "self"); len(kids) != 0 {
			t.Fatalf("a self-reply is linked under itself: %v", kids)
		}
		if err := ms.ForgetThread(ctx, []string{"r2", "unknown"}); err != nil {
			t.Fatal(err)
		}
		if kids, _ := ms.ThreadChildren(ctx, "root"); !slices.Equal(kids, []string{"r1", "r3"}) {
			t.Fatalf("after forgetting r2: %v", kids)
		}
		if _, err := ms.ThreadMessage(ctx, "r2"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("forgotten message: %v", err)
		}
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		ms := open(t).Messages()
		ctx := t.Context()
		if _, err := ms.AppendMessage(ctx, storage.Append{Message: msgRow("p", "a", "b", "", "", 1), StoredAt: 1}); err != nil {
			t.Fatal(err)
		}
		const n = 16
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				r := msgRow(fmt.Sprintf("c%02d", i), "a", "bob", "", "p", 2)
				_, err := ms.AppendMessage(ctx, storage.Append{Message: r, StoredAt: 2,
					Copies: []storage.MailboxCopy{{Agent: "bob", Body: r.Body}}})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		kids, _ := ms.ThreadChildren(ctx, "p")
		if len(kids) != n {
			t.Fatalf("%d replies linked of %d", len(kids), n)
		}
		got, _ := ms.PollMailbox(ctx, "bob", 0, storage.MailboxCap)
		if len(got) != n || !slices.IsSortedFunc(got, func(a, b storage.Entry) int { return cmp.Compare(a.Seq, b.Seq) }) {
			t.Fatalf("mailbox after concurrent appends: %d entries", len(got))
		}
		hist, _ := ms.FindHistory(ctx, storage.HistoryFilter{Limit: 100})
		seen := map[uint64]bool{}
		for _, e := range hist {
			if seen[e.Seq] {
				t.Fatalf("history seq %d handed out twice", e.Seq)
			}
			seen[e.Seq] = true
		}
		if len(hist) != n+1 {
			t.Fatalf("history holds %d, want %d", len(hist), n+1)
		}
	})

	t.Run("ConcurrentPublishesTrimConsistently", func(t *testing.T) {
		ms := open(t).Messages()
		ctx := t.Context()
		if _, err := ms.AppendMessage(ctx, storage.Append{Message: msgRow("root", "a", "b", "", "", 1), StoredAt: 1}); err != nil {
			t.Fatal(err)
		}
		const n = storage.ChannelHistoryCap + 30
		var wg sync.WaitGroup
		var mu sync.Mutex
		var trimmed []string
		for i := range n {
			wg.Go(func() {
				r := msgRow(fmt.Sprintf("p%03d", i), "a", "", "busy", "root", 1)
				res, err := ms.PublishChannel(ctx, "busy", storage.Append{Message: r, StoredAt: 1,
					Copies: []storage.MailboxCopy{{Agent: "sub", Body: r.Body}}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				trimmed = append(trimmed, res.Trimmed...)
				mu.Unlock()
			})
		}
		wg.Wait()
		kept, err := ms.ChannelHistory(ctx, "busy", 0, 1000)
		if err != nil || len(kept) != storage.ChannelHistoryCap {
			t.Fatalf("kept %d, %v", len(kept), err)
		}
		slices.Sort(trimmed)
		if len(slices.Compact(trimmed)) != n-storage.ChannelHistoryCap {
			t.Fatalf("%d distinct ids trimmed, want %d", len(trimmed), n-storage.ChannelHistoryCap)
		}
		keptIDs := entryIDs(t, kept)
		kids, _ := ms.ThreadChildren(ctx, "root")
		slices.Sort(kids)
		slices.Sort(keptIDs)
		if !slices.Equal(kids, keptIDs) {
			t.Fatalf("thread index holds %d replies, the history %d", len(kids), len(keptIDs))
		}
		if n, _ := ms.CountMailbox(ctx, "sub"); n != storage.MailboxCap {
			t.Fatalf("subscriber mailbox holds %d", n)
		}
	})

	t.Run("AppendsRaceAcksAndEvictions", func(t *testing.T) {
		ms := open(t).Messages()
		ctx := t.Context()
		agents := []string{"x", "y", "z"}
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() {
				for i := range 60 {
					r := msgRow(fmt.Sprintf("w%d-%d", w, i), "a", "broadcast", "", "", 1)
					cs := make([]storage.MailboxCopy, 0, len(agents))
					for _, a := range agents {
						cs = append(cs, storage.MailboxCopy{Agent: a, Body: r.Body})
					}
					if _, err := ms.AppendMessage(ctx, storage.Append{Message: r, Copies: cs, StoredAt: int64(i)}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		for _, a := range agents {
			wg.Go(func() {
				for i := range 30 {
					got, err := ms.PollMailbox(ctx, a, 0, 5)
					if err == nil && len(got) > 0 {
						_, err = ms.AckMailbox(ctx, a, got[len(got)-1].Seq)
					}
					if err == nil && i%10 == 0 {
						_, err = ms.EvictMailboxes(ctx, int64(i))
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, a := range agents {
			got, err := ms.PollMailbox(ctx, a, 0, 1000)
			if err != nil || len(got) > storage.MailboxCap {
				t.Fatalf("%s: %d messages, %v", a, len(got), err)
			}
			if !slices.IsSortedFunc(got, func(a, b storage.Entry) int { return cmp.Compare(a.Seq, b.Seq) }) {
				t.Fatalf("%s: out of order", a)
			}
		}
	})

	t.Run("MailboxCapAckEvict", func(t *testing.T) {
		ms := open(t).Messages()
		ctx := t.Context()
		if _, err := ms.Enqueue(ctx, "other", []byte(`{"id":"o"}`), 1); err != nil {
			t.Fatal(err)
		}
		var last uint64
		for i := range storage.MailboxCap + 3 {
			n, err := ms.Enqueue(ctx, "b", fmt.Appendf(nil, `{"id":"m%d"}`, i), int64(i))
			if err != nil || n <= last {
				t.Fatalf("enqueue %d: seq %d after %d, %v", i, n, last, err)
			}
			last = n
		}
		got, err := ms.PollMailbox(ctx, "b", 0, 1000)
		if err != nil || len(got) != storage.MailboxCap || bodyID(t, got[0].Body) != "m3" ||
			bodyID(t, got[len(got)-1].Body) != fmt.Sprintf("m%d", storage.MailboxCap+2) {
			t.Fatalf("after cap+3: %d kept (%v), want %d from m3", len(got), err, storage.MailboxCap)
		}
		if n, _ := ms.CountMailbox(ctx, "other"); n != 1 {
			t.Fatalf("another mailbox holds %d", n)
		}
		// One append carrying more copies for one agent than the cap.
		r := msgRow("many", "a", "", "", "", 1)
		copies := make([]storage.MailboxCopy, storage.MailboxCap+2)
		for i := range copies {
			copies[i] = storage.MailboxCopy{Agent: "c", Body: r.Body}
		}
		if _, err := ms.AppendMessage(ctx, storage.Append{Message: r, Copies: copies, StoredAt: 1}); err != nil {
			t.Fatal(err)
		}
		if n, _ := ms.CountMailbox(ctx, "c"); n != storage.MailboxCap {
			t.Fatalf("mailbox c holds %d, want the cap", n)
		}

		n, err := ms.AckMailbox(ctx, "b", got[9].Seq)
		if err != nil || n != 10 {
			t.Fatalf("ack: %d %v, want 10", n, err)
		}
		if n, _ := ms.CountMailbox(ctx, "b"); n != storage.MailboxCap-10 {
			t.Fatalf("after ack %d left", n)
		}
		if n, err := ms.AckMailbox(ctx, "b", got[9].Seq); err != nil || n != 0 {
			t.Fatalf("second ack: %d %v", n, err)
		}
		// Stored at 3..102 are "b"'s; 13..102 are left. Evict before 20:
		// 13..19 go, plus "other" (1) and "c" (1).
		n, err = ms.EvictMailboxes(ctx, 20)
		if err != nil || n != 7+1+storage.MailboxCap {
			t.Fatalf("evict: %d %v", n, err)
		}
		rest, _ := ms.PollMailbox(ctx, "b", 0, 1000)
		if len(rest) != storage.MailboxCap-17 || rest[0].StoredAt != 20 {
			t.Fatalf("after evict: %d left, oldest stored at %d", len(rest), rest[0].StoredAt)
		}
		depths, _ := ms.MailboxDepths(ctx)
		if len(depths) != 1 || depths["b"] != len(rest) {
			t.Fatalf("depths %v", depths)
		}
		if _, err := ms.Enqueue(ctx, "x\x00y", []byte(`{}`), 1); !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("enqueue to a NUL id: %v", err)
		}
		if _, err := ms.PollMailbox(ctx, "", 0, 1); !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("poll of an empty id: %v", err)
		}
		if es, err := ms.PollMailbox(ctx, "b", ^uint64(0), 10); err != nil || len(es) != 0 {
			t.Fatalf("poll after the largest seq: %v %v", es, err)
		}
	})

	t.Run("HistoryFilters", func(t *testing.T) {
		ms := open(t).Messages()
		ctx := t.Context()
		rows := []storage.MessageRow{
			msgRow("h1", "a", "b", "", "", 100),
			msgRow("h2", "b", "a", "", "", 200),
			msgRow("h3", "a", "broadcast", "", "", 300),
			msgRow("h4", "a", "", "dev", "", 0), // no timestamp: stored at 400
			msgRow("h5", "c", "b", "", "", 500),
		}
		for _, r := range rows {
			if _, err := ms.AppendMessage(ctx, storage.Append{Message: r, StoredAt: 400}); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			f    storage.HistoryFilter
			want []string
		}{
			{storage.HistoryFilter{From: "a"}, []string{"h1", "h3", "h4"}},
			{storage.HistoryFilter{To: "b"}, []string{"h1", "h5"}},
			{storage.HistoryFilter{To: "broadcast"}, []string{"h3"}},
			{storage.HistoryFilter{Channel: "dev"}, []string{"h4"}},
			{storage.HistoryFilter{Start: 200, End: 400}, []string{"h2", "h3", "h4"}},
			{storage.HistoryFilter{Start: 450}, []string{"h5"}},
			{storage.HistoryFilter{From: "a", Limit: 2}, []string{"h1", "h3"}},
			{storage.HistoryFilter{From: "nobody"}, []string{}},
		} {
			if c.f.Limit == 0 {
				c.f.Limit = 50
			}
			got, err := ms.FindHistory(ctx, c.f)
			if err != nil || !slices.Equal(entryIDs(t, got), c.want) {
				t.Errorf("%+v: %v %v, want %v", c.f, entryIDs(t, got), err, c.want)
			}
		}
		all, _ := ms.FindHistory(ctx, storage.HistoryFilter{Limit: 50})
		page, _ := ms.FindHistory(ctx, storage.HistoryFilter{After: all[2].Seq, Limit: 50})
		if !slices.Equal(entryIDs(t, page), []string{"h4", "h5"}) {
			t.Fatalf("after the third: %v", entryIDs(t, page))
		}
		recent, err := ms.RecentHistory(ctx, 2)
		if err != nil || !slices.Equal(entryIDs(t, recent), []string{"h4", "h5"}) {
			t.Fatalf("recent 2: %v %v", entryIDs(t, recent), err)
		}
		if recent, _ := ms.RecentHistory(ctx, 50); len(recent) != 5 {
			t.Fatalf("recent 50: %d", len(recent))
		}
		if es, err := ms.FindHistory(ctx, storage.HistoryFilter{After: ^uint64(0), Limit: 5}); err != nil || len(es) != 0 {
			t.Fatalf("after the largest seq: %v %v", es, err)
		}
	})

	t.Run("Channels", func(t *testing.T) {
		ms := open(t).Messages()
		ctx := t.Context()
		for _, n := range []string{"zeta", "alpha", "mid"} {
			if err := ms.CreateChannel(ctx, storage.ChannelRow{Name: n, Description: "about " + n, CreatedAt: 5, CreatedBy: "a"}, 3); err != nil {
				t.Fatal(err)
			}
		}
		if err := ms.CreateChannel(ctx, storage.ChannelRow{Name: "mid"}, 10); !errors.Is(err, storage.ErrChannelExists) {
			t.Fatalf("duplicate: %v", err)
		}
		if err := ms.CreateChannel(ctx, storage.ChannelRow{Name: "four"}, 3); !errors.Is(err, storage.ErrChannelLimit) {
			t.Fatalf("over the cap: %v", err)
		}
		if err := ms.CreateChannel(ctx, storage.ChannelRow{Name: "a\x00b"}, 10); !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("NUL name: %v", err)
		}
		list, err := ms.ListChannels(ctx)
		if err != nil || len(list) != 3 || list[0].Name != "alpha" || list[2].Name != "zeta" {
			t.Fatalf("list %+v %v", list, err)
		}
		ch, err := ms.GetChannel(ctx, "mid")
		if err != nil || ch.Description != "about mid" || ch.CreatedAt != 5 || ch.CreatedBy != "a" || ch.Subscribers == nil {
			t.Fatalf("get %+v %v", ch, err)
		}
		if _, err := ms.GetChannel(ctx, "none"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		for _, a := range []string{"x", "y"} {
			if _, already, err := ms.Subscribe(ctx, "mid", a, 2); err != nil || already {
				t.Fatalf("subscribe %s: %v %v", a, already, err)
			}
		}
		ch, already, err := ms.Subscribe(ctx, "mid", "x", 2)
		if err != nil || !already || !slices.Equal(ch.Subscribers, []string{"y", "x"}) {
			t.Fatalf("resubscribe: %+v %v %v", ch, already, err)
		}
		if _, _, err := ms.Subscribe(ctx, "mid", "z", 2); !errors.Is(err, storage.ErrChannelLimit) {
			t.Fatalf("third subscriber: %v", err)
		}
		if _, _, err := ms.Subscribe(ctx, "none", "z", 2); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("subscribe to missing: %v", err)
		}
		ch, err = ms.Unsubscribe(ctx, "mid", "y")
		if err != nil || !slices.Equal(ch.Subscribers, []string{"x"}) {
			t.Fatalf("unsubscribe: %+v %v", ch, err)
		}
		if ch, err = ms.Unsubscribe(ctx, "mid", "y"); err != nil || len(ch.Subscribers) != 1 {
			t.Fatalf("unsubscribe again: %+v %v", ch, err)
		}
		if _, err := ms.Unsubscribe(ctx, "none", "y"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unsubscribe from missing: %v", err)
		}
		if ch, _ := ms.GetChannel(ctx, "mid"); !slices.Equal(ch.Subscribers, []string{"x"}) {
			t.Fatalf("stored subscribers %v", ch.Subscribers)
		}
	})

	t.Run("ChannelHistoryCapAndFanOut", func(t *testing.T) {
		ms := open(t).Messages()
		ctx := t.Context()
		first := msgRow("c0", "a", "", "busy", "", 1)
		res, err := ms.PublishChannel(ctx, "busy", storage.Append{Message: first, StoredAt: 1,
			Copies: []storage.MailboxCopy{{Agent: "sub", Body: first.Body}}})
		if err != nil || res.Seq != 1 || len(res.MailboxSeqs) != 1 {
			t.Fatalf("publish: %+v %v", res, err)
		}
		if n, _ := ms.CountMailbox(ctx, "sub"); n != 1 {
			t.Fatalf("subscriber copies: %d", n)
		}
		var trimmed []string
		for i := 1; i < storage.ChannelHistoryCap+3; i++ {
			r := msgRow(fmt.Sprintf("c%d", i), "a", "", "busy", "c0", 1)
			res, err := ms.PublishChannel(ctx, "busy", storage.Append{Message: r, StoredAt: 1})
			if err != nil || res.Seq != uint64(i+1) {
				t.Fatalf("publish %d: %+v %v", i, res, err)
			}
			trimmed = append(trimmed, res.Trimmed...)
		}
		if !slices.Equal(trimmed, []string{"c0", "c1", "c2"}) {
			t.Fatalf("trimmed %v, want c0 c1 c2", trimmed)
		}
		if _, err := ms.PublishChannel(ctx, "quiet", storage.Append{Message: msgRow("q", "a", "", "quiet", "", 1), StoredAt: 1}); err != nil {
			t.Fatal(err)
		}
		got, err := ms.ChannelHistory(ctx, "busy", 0, 1000)
		if err != nil || len(got) != storage.ChannelHistoryCap || bodyID(t, got[0].Body) != "c3" || got[0].Seq != 4 {
			t.Fatalf("busy: %d kept from %v, %v", len(got), entryIDs(t, got[:1]), err)
		}
		newest, _ := ms.ChannelHistory(ctx, "busy", 0, 2)
		if !slices.Equal(entryIDs(t, newest), []string{fmt.Sprintf("c%d", storage.ChannelHistoryCap+1), fmt.Sprintf("c%d", storage.ChannelHistoryCap+2)}) {
			t.Fatalf("newest 2: %v", entryIDs(t, newest))
		}
		since, _ := ms.ChannelHistory(ctx, "busy", uint64(storage.ChannelHistoryCap+1), 10)
		if len(since) != 2 {
			t.Fatalf("since: %v", entryIDs(t, since))
		}
		if q, _ := ms.ChannelHistory(ctx, "quiet", 0, 10); len(q) != 1 || q[0].Seq != 1 {
			t.Fatalf("quiet channel: %+v", q)
		}
		if none, err := ms.ChannelHistory(ctx, "a\x00", 0, 10); err != nil || len(none) != 0 {
			t.Fatalf("invalid name: %v %v", none, err)
		}
		// Trimmed entries left the thread index, and their parent's list.
		if _, err := ms.ThreadMessage(ctx, "c1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("trimmed c1 still indexed: %v", err)
		}
		kids, _ := ms.ThreadChildren(ctx, "c0")
		if len(kids) != storage.ChannelHistoryCap || kids[0] != "c3" {
			t.Fatalf("children of c0: %d from %v", len(kids), kids[:1])
		}
		if n, _ := ms.CountHistory(ctx); n != 0 {
			t.Fatalf("channel messages went to the global history: %d", n)
		}
	})
}
