package dashboard

import (
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasks"
	"github.com/agentcom/agentcom/internal/testenv"
)

type fixedPresence []presence.Entry

func (p fixedPresence) List() []presence.Entry { return p }

func openSeries(t *testing.T, dir string) (*store.DB, storage.SeriesStore) {
	t.Helper()
	d, db, err := boltdriver.OpenDir(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db, d.Series()
}

// TestHistoryPersistsPrunesAndDownsamples: minutes written to the table
// come back in a new aggregator, minutes older than seven days are
// dropped from memory and table, steps add counts and keep maxima, and
// the percentiles are of the minute's samples.
func TestHistoryPersistsPrunesAndDownsamples(t *testing.T) {
	dir := t.TempDir()
	testHistory(t, func() (storage.SeriesStore, func() error) {
		db, s := openSeries(t, dir)
		return s, db.Close
	})
}

// TestHistoryPostgres: the same on PostgreSQL.
func TestHistoryPostgres(t *testing.T) {
	url := testenv.Postgres(t)
	testHistory(t, func() (storage.SeriesStore, func() error) {
		d, err := pgdriver.Open(t.Context(), url, pgdriver.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Series(), d.Close
	})
}

// testHistory runs the history test on the store open returns; the store
// is closed and opened again in the middle (a restart).
func testHistory(t *testing.T, open func() (storage.SeriesStore, func() error)) {
	tbl, closeStore := open()
	now := time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)
	clock := now
	newAgg := func(tbl storage.SeriesStore) *Aggregator {
		a := NewAggregator(Config{}, Deps{Bus: bus.New(), Queue: newBenchQueue(0), Agents: benchAgents{},
			Presence: fixedPresence{{AgentID: "a1"}, {AgentID: "a2"}}, Series: tbl})
		a.now = func() time.Time { return clock }
		t.Cleanup(a.sub.Close)
		return a
	}
	a := newAgg(tbl)
	ms := func(d time.Duration) int64 { return clock.Add(d).UnixMilli() }
	ev := func(typ string, at int64, d tasks.EventData) {
		d.Type = typ
		a.Apply(bus.Event{Time: at, Data: d})
	}
	// An old minute, eight days back, and two recent ones.
	ev(tasks.EventCompleted, ms(-8*24*time.Hour), tasks.EventData{TaskID: "old", RunMs: 5})
	for i := range 100 {
		ev(tasks.EventCompleted, ms(-2*time.Minute), tasks.EventData{TaskID: "t", RunMs: int64(i + 1)})
		ev(tasks.EventAssigned, ms(-2*time.Minute), tasks.EventData{TaskID: "t", WaitMs: int64(1000 * (i + 1))})
	}
	ev(tasks.EventFailed, ms(-time.Minute), tasks.EventData{TaskID: "f", RunMs: 7})
	a.sampleDepth(false)
	if err := a.persistHistory(); err != nil {
		t.Fatal(err)
	}
	// Minutes that ended keep their percentiles, not their samples.
	a.mu.Lock()
	for m, b := range a.hist {
		if m < clock.UnixMilli()/minuteMs-1 && (len(b.waits.vals) > 0 || len(b.runs.vals) > 0) {
			t.Errorf("minute %d still holds %d+%d samples", m, len(b.waits.vals), len(b.runs.vals))
		}
	}
	a.mu.Unlock()
	// The eight-day-old minute was pruned, in memory and on disk.
	if rows, _ := tbl.Range(t.Context(), 0, 1<<62); len(rows) != 3 {
		t.Fatalf("stored minutes: %d, want 3", len(rows))
	}
	if err := closeStore(); err != nil {
		t.Fatal(err)
	}

	tbl, closeStore = open()
	defer closeStore()
	b := newAgg(tbl)
	r := b.History(10, 1)
	if len(r.Points) != 10 || r.StepMs != 60000 || r.End != now.UnixMilli() {
		t.Fatalf("range: %d points, step %d, end %d", len(r.Points), r.StepMs, r.End)
	}
	p := r.Points[7] // two minutes ago
	if p.Completed != 100 || p.RunP50 != 50 || p.RunP95 != 95 || p.WaitP50 != 50000 || p.WaitP95 != 95000 {
		t.Fatalf("minute after reload: %+v", p)
	}
	if f := r.Points[8]; f.Failed != 1 || f.RunP95 != 7 {
		t.Fatalf("failed minute: %+v", f)
	}
	if cur := r.Points[9]; cur.Depth == nil || *cur.Depth != 0 || cur.Agents != 2 {
		t.Fatalf("current minute: %+v", cur)
	}
	if r.Points[0].Depth != nil {
		t.Fatalf("a minute without samples has a depth: %+v", r.Points[0])
	}
	// Steps of five minutes (aligned on the clock: 10:25 holds 10:28 and
	// 10:29) add counts and keep maxima.
	r = b.History(10, 5)
	if len(r.Points) != 2 || r.Points[0].Completed != 100 || r.Points[0].Failed != 1 || r.Points[0].RunP95 != 95 ||
		r.Points[1].Agents != 2 {
		t.Fatalf("five-minute steps: %+v", r.Points)
	}
	// A week back at most, and never more than maxSeriesPoints points.
	r = b.History(1<<30, 1)
	if len(r.Points) > maxSeriesPoints || r.End-r.Start >= int64(HistoryMinutes)*60000 {
		t.Fatalf("week: %d points from %d to %d", len(r.Points), r.Start, r.End)
	}
	// The snapshot's last hour sees the reloaded minutes too.
	b.mu.Lock()
	s, tp := b.seriesLocked(now.UnixMilli())
	b.mu.Unlock()
	if tp.CompletedLastHour != 100 || tp.FailedLastHour != 1 || s.Completed[57] != 100 {
		t.Fatalf("last hour after reload: %+v %v", tp, s.Completed)
	}
}

// TestSamplesBounded: a minute keeps at most sampleCap samples however
// many tasks end in it.
func TestSamplesBounded(t *testing.T) {
	var s samples
	for i := range 100000 {
		s.add(int64(i))
	}
	if len(s.vals) != sampleCap || s.seen != 100000 {
		t.Fatalf("kept %d of %d", len(s.vals), s.seen)
	}
	p50, p95 := s.percentiles()
	// The reservoir is random: only a wide band is certain.
	if p50 < 30000 || p50 > 70000 || p95 < 85000 {
		t.Fatalf("percentiles of a uniform stream: %d %d", p50, p95)
	}
}
