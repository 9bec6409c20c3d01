package resilience

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/store"
)

// fragment makes message_history large and mostly free pages.
func fragment(e *env) {
	e.t.Helper()
	e.put(store.MessageHistory, 0, 30000)
	err := e.db.Table(store.MessageHistory).Update(func(tx *store.Tx) error {
		for i := range 27000 {
			if err := tx.Delete(recKey(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestCompactAllSkipsBelowThresholdAndTinyTables(t *testing.T) {
	e := newEnv(t, Config{})
	e.putAll(100)
	fragment(e)
	before, _ := e.db.Table(store.MessageHistory).Stats()
	ctx := context.Background()
	resp, err := e.c.CompactAll(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != "complete" || resp.TablesTotal != len(store.AllTables()) || resp.TablesCompacted != 1 || resp.TablesSkipped != len(store.AllTables())-1 || resp.TablesFailed != 0 {
		t.Fatalf("response %+v", resp)
	}
	for _, r := range resp.Results {
		switch r.Table {
		case store.MessageHistory:
			if r.Status != "compacted" || r.DurationMs == nil || r.BytesAfter >= r.BytesBefore || r.PauseMs == nil {
				t.Fatalf("compacted result %+v", r)
			}
		default:
			// Tiny tables show some fragmentation but waste too little to
			// be worth a compaction.
			if r.Status != "skipped" || r.Reason != "below_threshold" || r.DurationMs != nil {
				t.Fatalf("skipped result %+v", r)
			}
		}
	}
	after, _ := e.db.Table(store.MessageHistory).Stats()
	if after.Fragmentation >= before.Fragmentation || after.FileBytes >= before.FileBytes || after.Records != 3000 {
		t.Fatalf("before %+v after %+v", before, after)
	}
	e.expectRange(store.MessageHistory, 27000, 30000)
	// Original shape: duration_ms only when compacted/error, reason only
	// when skipped/error, retried only when the retry succeeded.
	m := jsonKeys(t, resp)
	for _, k := range []string{"status", "tables_total", "tables_compacted", "tables_skipped", "results"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("response lacks %q", k)
		}
	}
	skipped := m["results"].([]any)[0].(map[string]any)
	if _, ok := skipped["duration_ms"]; ok {
		t.Fatalf("skipped result has duration_ms: %v", skipped)
	}
	if _, ok := skipped["retried"]; ok {
		t.Fatalf("result has retried: %v", skipped)
	}
	ev := e.waitEvent(EventCompactionComplete, nil)
	if d := ev.Data.(CompactionCompleteEvent); len(d.Results) != len(store.AllTables()) || d.Trigger != TriggerManual {
		t.Fatalf("event %+v", d)
	}
	// A clean run announces no failure (which is what would push).
	for _, ev := range e.drain() {
		if _, failed := ev.Data.(CompactionFailedEvent); failed {
			t.Fatalf("successful compaction published %+v", ev.Data)
		}
	}
	// Forced: every table is compacted.
	resp, err = e.c.CompactAll(ctx, true)
	if err != nil || resp.TablesCompacted != len(store.AllTables()) {
		t.Fatalf("forced: %+v, %v", resp, err)
	}
	h := e.c.Health()
	if len(h.CompactionHistory) != 2 || h.LastCompactionAt == nil || h.Tables[0].LastCompactionAt == nil {
		t.Fatalf("history %+v", h.CompactionHistory)
	}
	for _, th := range h.Tables {
		e.expectRangeOK(th.Table)
	}
}

func (e *env) expectRange(table string, lo, hi int) {
	e.t.Helper()
	for i := lo; i < hi; i++ {
		var ok bool
		_ = e.db.Table(table).View(func(tx *store.Tx) error {
			ok = string(tx.Get(recKey(i))) == string(recVal(table, i))
			return nil
		})
		if !ok {
			e.t.Fatalf("%s: record %d lost", table, i)
		}
	}
}

func (e *env) expectRangeOK(table string) {
	e.t.Helper()
	if err := e.db.Table(table).Check(); err != nil {
		e.t.Fatalf("%s: %v", table, err)
	}
}

func TestCompactOneSameEventsAndHistory(t *testing.T) {
	e := newEnv(t, Config{})
	fragment(e)
	ctx := context.Background()
	if _, err := e.c.Compact(ctx, "nope", false); !errors.Is(err, ErrUnknownTable) {
		t.Fatalf("unknown table: %v", err)
	} else {
		var ut *UnknownTableError
		if !errors.As(err, &ut) || len(ut.Valid) != len(store.AllTables()) || ut.Table != "nope" {
			t.Fatalf("unknown table error %+v", ut)
		}
	}
	one, err := e.c.Compact(ctx, store.MessageHistory, false)
	if err != nil || one.Status != "compacted" || one.Table != store.MessageHistory {
		t.Fatalf("compact one: %+v, %v", one, err)
	}
	skipped, err := e.c.Compact(ctx, store.Tokens, false)
	if err != nil || skipped.Status != "skipped" {
		t.Fatalf("compact tiny: %+v", skipped)
	}
	if m := jsonKeys(t, skipped); m["duration_ms"] != float64(0) {
		t.Fatalf("compact-one response needs duration_ms 0: %v", m)
	}
	for range 2 {
		ev := e.waitEvent(EventCompactionComplete, nil)
		if d := ev.Data.(CompactionCompleteEvent); len(d.Results) != 1 || d.Trigger != TriggerManual {
			t.Fatalf("event %+v", d)
		}
	}
	if h := e.c.CompactionHistory(); len(h) != 2 || h[0].Results[0].Table != store.Tokens || h[1].Results[0].Table != store.MessageHistory {
		t.Fatalf("history %+v", h)
	}
}

// A failing compaction is retried once, reported with a plain-string
// reason, and announced (compaction_failed + push) whatever started it.
func TestCompactionFailureRetriedAndAnnounced(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.db.Table(store.ThreadReplies).Close(); err != nil { // every attempt fails
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, run := range []func() error{
		func() error { _, err := e.c.CompactAll(ctx, true); return err },
		func() error { _, err := e.c.Compact(ctx, store.ThreadReplies, true); return err },
	} {
		if err := run(); err != nil {
			t.Fatal(err)
		}
		ev := e.waitEvent(EventCompactionFailed, nil)
		f := ev.Data.(CompactionFailedEvent).Failures
		if len(f) != 1 || f[0].Table != store.ThreadReplies || f[0].Reason == "" {
			t.Fatalf("failures %+v", f)
		}
		if d := ev.Data.(CompactionFailedEvent); d.Trigger != TriggerManual || !strings.Contains(d.Reason, store.ThreadReplies) {
			t.Fatalf("event %+v", d)
		}
	}
	h := e.c.CompactionHistory()
	r := h[0].Results[0]
	if r.Status != "error" || r.Retried || r.DurationMs == nil || r.Reason == "" {
		t.Fatalf("failed result %+v", r)
	}
	i := slices.IndexFunc(h[1].Results, func(r CompactResult) bool { return r.Table == store.ThreadReplies })
	if h[1].Results[i].Status != "error" {
		t.Fatalf("result in full run %+v", h[1].Results[i])
	}
	// The payload is JSON-safe as published.
	jsonKeys(t, h[0])
}
