package messaging

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/seq"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/testenv"
)

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.TempDir(), store.AllTables(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
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
	db := openDB(t)
	mb, err := NewMailbox(db.MustTable(store.AgentMailbox), db.MustTable(store.Meta))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Enqueue("other", msg(-1)); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := mb.Enqueue("b", msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := mb.Count("b"); n != 100 {
		t.Fatalf("100 enqueued, %d kept", n)
	}
	for i := 100; i < 103; i++ {
		if _, err := mb.Enqueue("b", msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := mb.Poll("b", 0, MailboxCap)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 || got[0].ID != "m3" || got[99].ID != "m102" {
		t.Fatalf("after 103: %d kept, first %s, last %s; want 100, m3..m102", len(got), got[0].ID, got[len(got)-1].ID)
	}
	if n, _ := mb.Count("other"); n != 1 {
		t.Fatalf("another agent's mailbox holds %d", n)
	}
}

// README: "kept 7 days". A message is evicted once it is older than the
// retention, not a millisecond before.
func TestMailboxRetentionIs7Days(t *testing.T) {
	if DefaultMailboxTTL != 7*24*time.Hour {
		t.Fatalf("DefaultMailboxTTL = %v, README says 7 days", DefaultMailboxTTL)
	}
	db := openDB(t)
	mb, err := NewMailbox(db.MustTable(store.AgentMailbox), db.MustTable(store.Meta))
	if err != nil {
		t.Fatal(err)
	}
	clk := testenv.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	mb.now = clk.Now
	if _, err := mb.Enqueue("b", msg(1)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if _, err := mb.Enqueue("b", msg(2)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultMailboxTTL - time.Hour) // the first is exactly 7 days old
	if n, err := mb.Evict(DefaultMailboxTTL); err != nil || n != 0 {
		t.Fatalf("at exactly 7 days: evicted %d, %v", n, err)
	}
	clk.Advance(time.Millisecond)
	if n, err := mb.Evict(DefaultMailboxTTL); err != nil || n != 1 {
		t.Fatalf("7 days + 1 ms: evicted %d, %v; want 1", n, err)
	}
	got, _, _ := mb.Poll("b", 0, MailboxCap)
	if len(got) != 1 || got[0].ID != "m2" {
		t.Fatalf("left %v", got)
	}
}

// README: "history 10,000 messages". The store is filled to the cap in one
// transaction; the next appends each push out exactly the oldest.
func TestHistoryCapIs10000(t *testing.T) {
	if HistoryCap != 10000 {
		t.Fatalf("HistoryCap = %d, README says 10,000", HistoryCap)
	}
	db := openDB(t)
	tb := db.MustTable(store.MessageHistory)
	err := tb.Update(func(tx *store.Tx) error {
		for n := uint64(1); n <= HistoryCap; n++ {
			v, _ := json.Marshal(historyEntry{Seq: n, Message: msg(int(n)), StoredAt: 1})
			if err := tx.Put(seq.Key(n), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHistory(tb, db.MustTable(store.Meta))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		n, _, err := h.Append(msg(HistoryCap + 1 + i))
		if err != nil || n != uint64(HistoryCap+1+i) {
			t.Fatalf("append: seq %d, %v", n, err)
		}
	}
	var count int
	var first []byte
	_ = tb.View(func(tx *store.Tx) error {
		count = tx.Count()
		first, _ = tx.First(nil)
		first = append([]byte(nil), first...)
		return nil
	})
	if count != HistoryCap || seq.Decode(first) != 4 {
		t.Fatalf("history holds %d, oldest seq %d; want %d from seq 4", count, seq.Decode(first), HistoryCap)
	}
	// Find caps one page at 200.
	got, _, err := h.Find(Query{Limit: 1000})
	if err != nil || len(got) != HistoryMaxLimit || got[0].Seq != 4 {
		t.Fatalf("find: %d entries from %v, %v", len(got), got[0].Seq, err)
	}
}

// README: "channel history 200 per channel".
func TestChannelHistoryCapIs200(t *testing.T) {
	if ChannelHistoryCap != 200 {
		t.Fatalf("ChannelHistoryCap = %d, README says 200", ChannelHistoryCap)
	}
	db := openDB(t)
	ch, err := NewChannels(db.MustTable(store.AgentChannels), db.MustTable(store.ChannelHistory), db.MustTable(store.Meta), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 203 {
		if _, _, err := ch.AppendHistory("busy", msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := ch.AppendHistory("quiet", msg(-1)); err != nil {
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
