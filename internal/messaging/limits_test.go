package messaging

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/testenv"
)

// openStore returns the message store of a bolt driver over a fresh data
// directory.
func openStore(t *testing.T) storage.MessageStore {
	t.Helper()
	d, db, err := boltdriver.OpenDir(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return d.Messages()
}

func msg(i int) Message {
	return Message{ID: "m" + strconv.Itoa(i), From: "a", To: "b", Type: DefaultType, Payload: map[string]any{"i": i}}
}

// README: "mailbox 100 messages per agent". The 101st message pushes out
// the oldest; other agents' mailboxes are untouched.
func TestMailboxCapIs100(t *testing.T) {
	if MailboxCap != 100 {
		t.Fatalf("MailboxCap = %d, README says 100", MailboxCap)
	}
	mb := NewMailbox(openStore(t))
	if _, err := mb.Enqueue(t.Context(), "other", msg(-1)); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := mb.Enqueue(t.Context(), "b", msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := mb.Count(t.Context(), "b"); n != 100 {
		t.Fatalf("100 enqueued, %d kept", n)
	}
	for i := 100; i < 103; i++ {
		if _, err := mb.Enqueue(t.Context(), "b", msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	got, last, err := mb.Poll(t.Context(), "b", 0, MailboxCap)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 || got[0].ID != "m3" || got[99].ID != "m102" || last != got[99].Seq {
		t.Fatalf("after 103: %d kept, first %s, last %s; want 100, m3..m102", len(got), got[0].ID, got[len(got)-1].ID)
	}
	if n, _ := mb.Count(t.Context(), "other"); n != 1 {
		t.Fatalf("another agent's mailbox holds %d", n)
	}
	if _, err := mb.Enqueue(t.Context(), "bad\x00id", msg(0)); err == nil {
		t.Fatal("an id breaking the agent-id rule got a mailbox")
	}
}

// README: "kept 7 days". A message is evicted once it is older than the
// retention, not a millisecond before.
func TestMailboxRetentionIs7Days(t *testing.T) {
	if DefaultMailboxTTL != 7*24*time.Hour {
		t.Fatalf("DefaultMailboxTTL = %v, README says 7 days", DefaultMailboxTTL)
	}
	mb := NewMailbox(openStore(t))
	clk := testenv.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	mb.now = clk.Now
	if _, err := mb.Enqueue(t.Context(), "b", msg(1)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if _, err := mb.Enqueue(t.Context(), "b", msg(2)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultMailboxTTL - time.Hour) // the first is exactly 7 days old
	if n, err := mb.Evict(t.Context(), DefaultMailboxTTL); err != nil || n != 0 {
		t.Fatalf("at exactly 7 days: evicted %d, %v", n, err)
	}
	clk.Advance(time.Millisecond)
	if n, err := mb.Evict(t.Context(), DefaultMailboxTTL); err != nil || n != 1 {
		t.Fatalf("7 days + 1 ms: evicted %d, %v; want 1", n, err)
	}
	got, _, _ := mb.Poll(t.Context(), "b", 0, MailboxCap)
	if len(got) != 1 || got[0].ID != "m2" {
		t.Fatalf("left %v", got)
	}
}

// README: "history 10,000 messages" (the drivers' tests prove the
// trimming); one page of Find is at most 200.
func TestHistoryCapIs10000(t *testing.T) {
	if HistoryCap != 10000 {
		t.Fatalf("HistoryCap = %d, README says 10,000", HistoryCap)
	}
	h := NewHistory(openStore(t))
	var wg sync.WaitGroup
	for i := range HistoryMaxLimit + 5 {
		wg.Go(func() {
			if _, err := h.Append(t.Context(), msg(i), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, next, err := h.Find(t.Context(), Query{Limit: 1000})
	if err != nil || len(got) != HistoryMaxLimit || next != got[len(got)-1].Seq {
		t.Fatalf("find: %d entries, %v", len(got), err)
	}
	rest, _, err := h.Find(t.Context(), Query{Cursor: next, Limit: 1000})
	if err != nil || len(rest) != 5 {
		t.Fatalf("second page: %d entries, %v", len(rest), err)
	}
	recent, err := h.Recent(t.Context(), 3)
	if err != nil || len(recent) != 3 || recent[2].Seq != rest[4].Seq {
		t.Fatalf("recent: %v %v", recent, err)
	}
}

// README: "channel history 200 per channel".
func TestChannelHistoryCapIs200(t *testing.T) {
	if ChannelHistoryCap != 200 {
		t.Fatalf("ChannelHistoryCap = %d, README says 200", ChannelHistoryCap)
	}
	ch, err := NewChannels(openStore(t), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 203 {
		if _, err := ch.publish("busy", msg(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ch.publish("quiet", msg(-1), nil); err != nil {
		t.Fatal(err)
	}
	got, err := ch.History("busy", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 200 || got[0].Message.ID != "m3" || got[199].Message.ID != "m202" {
		t.Fatalf("busy: %d kept, %s..%s; want 200, m3..m202", len(got), got[0].Message.ID, got[len(got)-1].Message.ID)
	}
	if q, _ := ch.History("quiet", 1000, 0); len(q) != 1 {
		t.Fatalf("quiet channel holds %d", len(q))
	}
}
