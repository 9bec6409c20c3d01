package boltdriver

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/agentcom/agentcom/internal/seq"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/store"
)

func openMsgDB(t *testing.T, dir string) (*store.DB, *Driver) {
	t.Helper()
	db, err := store.Open(dir, store.AllTables(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	return db, d
}

func row(id string) storage.MessageRow {
	return storage.MessageRow{ID: id, From: "a", To: "b", Body: fmt.Appendf(nil, `{"id":%q,"from":"a","to":"b"}`, id)}
}

// The history trims to its cap and the trimmed entries leave the thread
// index. The table is filled in one transaction (appending HistoryCap
// messages one by one would take minutes of fsyncs).
func TestHistoryCap(t *testing.T) {
	db, d := openMsgDB(t, t.TempDir())
	defer db.Close()
	hist := db.MustTable(store.MessageHistory)
	err := hist.Update(func(tx *store.Tx) error {
		for n := uint64(1); n <= storage.HistoryCap; n++ {
			v, _ := json.Marshal(historyRecord{Seq: n, Message: row(fmt.Sprintf("g%d", n)).Body, StoredAt: 1})
			if err := tx.Put(seq.Key(n), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ms := d.Messages()
	ctx := t.Context()
	if _, err := ms.AppendMessage(ctx, storage.Append{Message: row("g1-reply"), StoredAt: 1}); err != nil {
		t.Fatal(err)
	}
	var trimmed []string
	for i := range 2 {
		r := row(fmt.Sprintf("new%d", i))
		res, err := ms.AppendMessage(ctx, storage.Append{Message: r, StoredAt: 1})
		if err != nil || res.Seq != storage.HistoryCap+2+uint64(i) {
			t.Fatalf("append: %+v %v", res, err)
		}
		trimmed = append(trimmed, res.Trimmed...)
	}
	if n, _ := ms.CountHistory(ctx); n != storage.HistoryCap {
		t.Fatalf("history holds %d", n)
	}
	if !slices.Equal(trimmed, []string{"g2", "g3"}) {
		t.Fatalf("trimmed %v (the first append trimmed g1)", trimmed)
	}
	first, _ := ms.FindHistory(ctx, storage.HistoryFilter{Limit: 1})
	if len(first) != 1 || first[0].Seq != 4 {
		t.Fatalf("oldest kept: %+v", first)
	}
}

// Records in the format earlier versions wrote read unchanged, and the
// sequences continue above them and above the reservations in hub_meta
// after a reopen.
func TestExistingDataAndSequencesAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	db, d := openMsgDB(t, dir)
	// A mailbox record and a channel record as the old messaging package
	// wrote them.
	old := `{"seq":41,"agent_id":"bob","message":{"id":"old","from":"a","to":"bob","type":"chat","payload":{},"reply_to":null,"timestamp":5},"stored_at":5}`
	err := db.MustTable(store.AgentMailbox).Update(func(tx *store.Tx) error {
		return tx.Put(seq.AppendKey([]byte("bob\x00"), 41), []byte(old))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.MustTable(store.AgentChannels).Update(func(tx *store.Tx) error {
		return tx.Put([]byte("dev"), []byte(`{"name":"dev","description":"d","created_at":1,"created_by":"a","subscribers":["y","x"]}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	ms := d.Messages()
	ctx := t.Context()
	got, err := ms.PollMailbox(ctx, "bob", 0, 10)
	if err != nil || len(got) != 1 || got[0].Seq != 41 || got[0].StoredAt != 5 ||
		string(got[0].Body) != `{"id":"old","from":"a","to":"bob","type":"chat","payload":{},"reply_to":null,"timestamp":5}` {
		t.Fatalf("old record: %+v %v", got, err)
	}
	ch, err := ms.GetChannel(ctx, "dev")
	if err != nil || !slices.Equal(ch.Subscribers, []string{"y", "x"}) {
		t.Fatalf("old channel: %+v %v", ch, err)
	}
	n1, err := ms.Enqueue(ctx, "bob", []byte(`{"id":"new"}`), 6)
	if err != nil || n1 <= 41 {
		t.Fatalf("enqueue after seq 41: %d %v", n1, err)
	}
	res, err := ms.PublishChannel(ctx, "dev", storage.Append{Message: row("c1"), StoredAt: 6})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ms.AppendMessage(ctx, storage.Append{Message: row("h1"), StoredAt: 6})
	if err != nil {
		t.Fatal(err)
	}
	// The new mailbox record has the old layout.
	var rec mailboxRecord
	_ = db.MustTable(store.AgentMailbox).View(func(tx *store.Tx) error {
		return json.Unmarshal(tx.Get(seq.AppendKey([]byte("bob\x00"), n1)), &rec)
	})
	if rec.Seq != n1 || rec.AgentID != "bob" || rec.StoredAt != 6 || string(rec.Message) != `{"id":"new"}` {
		t.Fatalf("new record %+v", rec)
	}
	// Ack everything, then reopen: numbering never goes backwards.
	if _, err := ms.AckMailbox(ctx, "bob", n1); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, d = openMsgDB(t, dir)
	defer db.Close()
	ms = d.Messages()
	n2, err := ms.Enqueue(ctx, "bob", []byte(`{"id":"after"}`), 7)
	if err != nil || n2 <= n1 {
		t.Fatalf("after reopen: %d, before %d, %v", n2, n1, err)
	}
	res2, err := ms.PublishChannel(ctx, "dev", storage.Append{Message: row("c2"), StoredAt: 7})
	if err != nil || res2.Seq <= res.Seq {
		t.Fatalf("channel seq after reopen: %d, before %d, %v", res2.Seq, res.Seq, err)
	}
	h2, err := ms.AppendMessage(ctx, storage.Append{Message: row("h2"), StoredAt: 7})
	if err != nil || h2.Seq <= h.Seq {
		t.Fatalf("history seq after reopen: %d, before %d, %v", h2.Seq, h.Seq, err)
	}
}

// An append interrupted after its journal record was written, before any
// table saw it, is finished at the next open: history entry, thread link
// and mailbox copy together.
func TestInterruptedAppendFinishesAtOpen(t *testing.T) {
	dir := t.TempDir()
	db, d := openMsgDB(t, dir)
	ms := d.Messages().(messageStore)
	ctx := t.Context()
	if _, err := ms.AppendMessage(ctx, storage.Append{Message: row("m0"), StoredAt: 1}); err != nil {
		t.Fatal(err)
	}
	reply := row("m1")
	reply.ReplyTo = "m0"
	op := &msgOp{kind: opAppend, a: storage.Append{Message: reply, StoredAt: 2,
		Copies: []storage.MailboxCopy{{Agent: "bob", Body: reply.Body}}}}
	p := newPlanner(ms)
	if err := p.open([]*msgOp{op}); err != nil {
		t.Fatal(err)
	}
	if err := p.add(op); err != nil {
		t.Fatal(err)
	}
	ws, err := p.writes()
	if err != nil {
		t.Fatal(err)
	}
	// The journal record only, as a crash right after it leaves it.
	key := binary.BigEndian.AppendUint64(slices.Clone(journalPrefix), 1<<40)
	if err := db.MustTable(store.Meta).Update(func(tx *store.Tx) error { return tx.Put(key, encodeWrites(ws)) }); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.ThreadMessage(ctx, "m1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("before the replay: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, d = openMsgDB(t, dir)
	defer db.Close()
	ms = d.Messages().(messageStore)
	if kids, err := ms.ThreadChildren(ctx, "m0"); err != nil || !slices.Equal(kids, []string{"m1"}) {
		t.Fatalf("thread link after replay: %v %v", kids, err)
	}
	got, err := ms.PollMailbox(ctx, "bob", 0, 10)
	if err != nil || len(got) != 1 || got[0].Seq != op.res.MailboxSeqs[0] {
		t.Fatalf("mailbox after replay: %+v %v", got, err)
	}
	hist, err := ms.FindHistory(ctx, storage.HistoryFilter{Limit: 10})
	if err != nil || len(hist) != 2 || hist[1].Seq != op.res.Seq {
		t.Fatalf("history after replay: %+v %v", hist, err)
	}
	// Numbering continues above the replayed append.
	res, err := ms.AppendMessage(ctx, storage.Append{Message: row("m2"), StoredAt: 3,
		Copies: []storage.MailboxCopy{{Agent: "bob", Body: row("m2").Body}}})
	if err != nil || res.Seq <= op.res.Seq || res.MailboxSeqs[0] <= op.res.MailboxSeqs[0] {
		t.Fatalf("after replay: %+v %v", res, err)
	}
}

// journalRecords counts the journal records in hub_meta.
func journalRecords(t *testing.T, db *store.DB) int {
	t.Helper()
	n := 0
	err := db.MustTable(store.Meta).View(func(tx *store.Tx) error {
		return tx.Scan(journalPrefix, func(_, _ []byte) error { n++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A message batch's journal record lingers until the next write retires
// it; the tables are closed here without the driver's Close, as a crash
// leaves them, and the replay at the reopen must not bring back what an
// ack or a drop deleted after the batch, nor leave more than one record.
func TestLingeringJournalReplayChangesNothing(t *testing.T) {
	dir := t.TempDir()
	db, d := openMsgDB(t, dir)
	ms := d.Messages()
	ctx := t.Context()
	copyTo := func(id, agent string, pending bool) uint64 {
		r := row(id)
		res, err := ms.AppendMessage(ctx, storage.Append{Message: r, StoredAt: 1,
			Copies: []storage.MailboxCopy{{Agent: agent, Body: r.Body, Pending: pending}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.MailboxSeqs[0]
	}
	for i := range 3 {
		copyTo(fmt.Sprintf("a%d", i), "bob", false)
	}
	if n := journalRecords(t, db); n != 1 {
		t.Fatalf("%d journal records after three appends, want the last one lingering", n)
	}
	if _, err := ms.AckMailbox(ctx, "bob", 1<<62); err != nil {
		t.Fatal(err)
	}
	if n := journalRecords(t, db); n != 0 {
		t.Fatalf("%d journal records after an ack", n)
	}
	kept := copyTo("b1", "carol", false)
	p := copyTo("b2", "carol", true) // pending, then dropped: one table
	if err := ms.DropCopies(ctx, []storage.CopyRef{{Agent: "carol", Seq: p}}); err != nil {
		t.Fatal(err)
	}
	if got, err := ms.PollMailbox(ctx, "carol", 0, 10); err != nil || len(got) != 1 || got[0].Seq != kept {
		t.Fatalf("carol before the crash: %+v %v", got, err)
	}
	if err := db.Close(); err != nil { // no d.Close: a crash
		t.Fatal(err)
	}
	db, d = openMsgDB(t, dir)
	defer db.Close()
	ms = d.Messages()
	if got, err := ms.PollMailbox(ctx, "bob", 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("bob's acknowledged messages came back: %+v %v", got, err)
	}
	if got, err := ms.PollMailbox(ctx, "carol", 0, 10); err != nil || len(got) != 1 || got[0].Seq != kept {
		t.Fatalf("carol after the replay: %+v %v", got, err)
	}
	if n, _ := ms.CountHistory(ctx); n != 5 {
		t.Fatalf("history holds %d, want 5", n)
	}
	if n := journalRecords(t, db); n != 0 {
		t.Fatalf("%d journal records after the replay", n)
	}
}
