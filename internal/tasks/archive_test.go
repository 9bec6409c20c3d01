package tasks_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasks"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "168h": 168 * time.Hour, "1h": time.Hour, "3650d": tasks.MaxRetention,
		"forever": tasks.RetentionForever, "OFF": tasks.RetentionForever,
	} {
		if got, err := tasks.ParseRetention(in); err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	// Never a silent zero or an unbounded value.
	for _, in := range []string{"", "0", "0s", "0d", "59m", "-1h", "3651d", "100000h", "7 days", "1.5d", "d", "soon"} {
		if got, err := tasks.ParseRetention(in); err == nil {
			t.Errorf("ParseRetention(%q) = %v, want an error", in, got)
		}
	}
}

func TestArchiveConfigRefused(t *testing.T) {
	for _, c := range []tasks.ArchiveConfig{{Retention: time.Minute}, {BatchSize: storage.MaxArchiveBatch + 1}, {Interval: -time.Second}, {Retention: 11 * 365 * 24 * time.Hour}} {
		cfg := hub.DefaultConfig()
		cfg.DataDir, cfg.TaskArchive = t.TempDir(), c
		if h, err := hub.New(cfg); err == nil {
			_ = h.Shutdown(context.Background())
			t.Errorf("hub started with archive config %+v", c)
		}
	}
}

// hubClock is a settable clock for the hub.
type hubClock struct{ ms atomic.Int64 }

func (c *hubClock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *hubClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func newHubClock(t time.Time) *hubClock     { c := &hubClock{}; c.ms.Store(t.UnixMilli()); return c }
func withArchive(c *hubClock, interval time.Duration) hubtest.Option {
	return func(cfg *hub.Config) {
		cfg.TaskArchive = tasks.ArchiveConfig{Retention: time.Hour, Interval: interval, BatchSize: 2, Now: c.now}
		cfg.Queue.Now = c.now
		cfg.Queue.BackoffBase = 0
	}
}

// runTask has an agent take, accept and complete one task and returns its
// id.
func runTask(t *testing.T, h *hubtest.Hub, a *hubtest.Client, desc string) string {
	t.Helper()
	st, resp := h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": desc})
	if st != 201 {
		t.Fatalf("submit: %d %v", st, resp)
	}
	id := resp["task_id"].(string)
	complete(t, a, id)
	return id
}

func listIDs(t *testing.T, h *hubtest.Hub, query string) []string {
	t.Helper()
	st, body := h.Do("GET", "/api/tasks"+query, h.AdminToken, nil)
	if st != 200 {
		t.Fatalf("list %s: %d %v", query, st, body)
	}
	var ids []string
	for _, v := range body["tasks"].([]any) {
		ids = append(ids, v.(map[string]any)["id"].(string))
	}
	slices.Sort(ids)
	return ids
}

// TestArchiveThroughHub: completed and cancelled tasks past the retention
// leave the live listing for the archive; GET /api/tasks/{id} still
// answers, marked archived; the counts drop them; a restart keeps them
// archived; tasks that have not ended, or ended recently, stay.
func TestArchiveThroughHub(t *testing.T) {
	t.Run("bolt", func(t *testing.T) { archiveThroughHub(t, "") })
	t.Run("postgres", func(t *testing.T) { archiveThroughHub(t, testenv.Postgres(t)) })
}

func archiveThroughHub(t *testing.T, storeURL string) {
	clk := newHubClock(time.Now())
	h := hubtest.Start(t, "", withArchive(clk, time.Hour), func(c *hub.Config) { c.Store = storeURL })
	a := h.Agent("agent-1")
	var done []string
	for i := range 5 {
		done = append(done, runTask(t, h, a, fmt.Sprintf("old %d", i)))
	}
	st, resp := h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "cancelled", "target_agent": "nobody"})
	if st != 201 {
		t.Fatalf("submit: %d %v", st, resp)
	}
	cancelled := resp["task_id"].(string)
	if st, body := h.Do("POST", "/api/tasks/"+cancelled+"/cancel", h.AdminToken, map[string]any{}); st != 200 {
		t.Fatalf("cancel: %d %v", st, body)
	}
	st, resp = h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "still queued", "target_agent": "nobody"})
	if st != 201 {
		t.Fatalf("submit: %d %v", st, resp)
	}
	queued := resp["task_id"].(string)

	// Not old enough yet.
	res, err := h.Archiver.RunOnce(context.Background())
	if err != nil || res.Moved != 0 {
		t.Fatalf("pass before the retention: %+v, %v", res, err)
	}
	clk.advance(2 * time.Hour)
	recent := runTask(t, h, a, "recent")
	res, err = h.Archiver.RunOnce(context.Background())
	if err != nil || res.Moved != 6 || res.Batches < 3 {
		t.Fatalf("pass after the retention: %+v, %v", res, err)
	}
	archived := append(slices.Clone(done), cancelled)
	slices.Sort(archived)

	check := func(when string) {
		t.Helper()
		for _, id := range archived {
			st, body := h.Do("GET", "/api/tasks/"+id, h.AdminToken, nil)
			if st != 200 || body["archived"] != true || (body["status"] != "completed" && body["status"] != "cancelled") {
				t.Fatalf("%s: GET %s: %d %v", when, id, st, body)
			}
			if _, body := h.Do("GET", "/api/dashboard/tasks/"+id, h.AdminToken, nil); body["archived"] != true {
				t.Fatalf("%s: dashboard detail of %s: %v", when, id, body)
			}
		}
		if _, body := h.Do("GET", "/api/tasks/"+recent, h.AdminToken, nil); body["archived"] != nil {
			t.Fatalf("%s: a recent task is marked archived: %v", when, body)
		}
		if ids := listIDs(t, h, "?status=all"); !slices.Equal(ids, sorted(queued, recent)) {
			t.Fatalf("%s: live listing %v", when, ids)
		}
		if ids := listIDs(t, h, "?archived=true"); !slices.Equal(ids, archived) {
			t.Fatalf("%s: archive listing %v, want %v", when, ids, archived)
		}
		if ids := listIDs(t, h, "?archived=true&status=cancelled"); !slices.Equal(ids, []string{cancelled}) {
			t.Fatalf("%s: archived cancelled %v", when, ids)
		}
		if ids := listIDs(t, h, "?archived=true&limit=2"); len(ids) != 2 {
			t.Fatalf("%s: archive page %v", when, ids)
		}
		_, stats := h.Do("GET", "/api/tasks/stats", h.AdminToken, nil)
		if by := stats["by_status"].(map[string]any); by["completed"] != 1.0 || by["cancelled"] != nil || by["queued"] != 1.0 {
			t.Fatalf("%s: stats %v", when, stats)
		}
	}
	check("after the pass")
	if st, body := h.Do("GET", "/api/tasks?archived=yes", h.AdminToken, nil); st != 400 {
		t.Fatalf("archived=yes: %d %v", st, body)
	}
	// An archived task stays ended: it cannot be cancelled.
	if st, body := h.Do("POST", "/api/tasks/"+done[0]+"/cancel", h.AdminToken, map[string]any{}); st != 409 {
		t.Fatalf("cancel of an archived task: %d %v", st, body)
	}
	a.Close()
	h.Restart()
	check("after a restart")
}

// TestArchiverServiceRuns: the hub's service runs passes on its own (the
// Passes signal reports each), and a hub with retention forever never
// archives.
func TestArchiverServiceRuns(t *testing.T) {
	clk := newHubClock(time.Now())
	h := hubtest.Start(t, "", withArchive(clk, 20*time.Millisecond))
	a := h.Agent("agent-1")
	id := runTask(t, h, a, "done")
	clk.advance(2 * time.Hour)
	deadline := time.After(10 * time.Second)
	for moved := false; !moved; {
		select {
		case r := <-h.Archiver.Passes():
			moved = r.Moved > 0
		case <-deadline:
			t.Fatal("no pass archived the task")
		}
	}
	if _, body := h.Do("GET", "/api/tasks/"+id, h.AdminToken, nil); body["archived"] != true {
		t.Fatalf("after the service's pass: %v", body)
	}

	clk2 := newHubClock(time.Now())
	h2 := hubtest.Start(t, "", withArchive(clk2, 20*time.Millisecond), func(c *hub.Config) { c.TaskArchive.Retention = tasks.RetentionForever })
	a2 := h2.Agent("agent-1")
	id2 := runTask(t, h2, a2, "done")
	clk2.advance(100 * 24 * time.Hour)
	if res, err := h2.Archiver.RunOnce(context.Background()); err != nil || res.Moved != 0 {
		t.Fatalf("a disabled archiver moved %+v, %v", res, err)
	}
	if _, body := h2.Do("GET", "/api/tasks/"+id2, h2.AdminToken, nil); body["archived"] != nil {
		t.Fatalf("archived with retention forever: %v", body)
	}
}

func sorted(ids ...string) []string { slices.Sort(ids); return ids }

// storeEnded writes n completed tasks (ended at now) straight to st.
func storeEnded(tb testing.TB, st storage.TaskStore, prefix string, n int, now int64) {
	tb.Helper()
	var rows []storage.TaskRow
	for i := range n {
		agent := "agent-1"
		t := &tasks.Task{ID: fmt.Sprintf("%s-%08d", prefix, i), Description: "archive benchmark task " + strings.Repeat("x", 64),
			Metadata: map[string]any{"n": i}, Priority: i % 4, Status: tasks.StatusCompleted, AssignedTo: &agent, Generation: 1,
			NeededCapabilities: []string{"code"}, SubmittedBy: "bench", CreatedAt: now, UpdatedAt: now, Result: map[string]any{"ok": true},
			History:  []tasks.Event{{Event: "created", Timestamp: now}, {Event: "completed", Timestamp: now}},
			Attempts: []tasks.Attempt{{Generation: 1, AgentID: agent, AssignedAt: now, EndedAt: now, Outcome: "completed"}}, MaxRetries: 3, Version: 4}
		r, err := tasks.RowOf(t)
		if err != nil {
			tb.Fatal(err)
		}
		rows = append(rows, r)
	}
	if err := st.Put(context.Background(), rows, nil); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkArchivePass measures a hub's first archive pass over 10,000
// ended tasks (beside 1,000 queued ones that stay) on the embedded store,
// in batches of the default size: the listing of the ended tasks and
// their moves. ns/op is the whole pass; ns/task divides it by the
// tasks moved.
//
//	go test -run '^$' -bench ArchivePass ./internal/tasks/
func BenchmarkArchivePass(b *testing.B) {
	const ended = 10_000
	d, db, err := boltdriver.OpenDir(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	st := d.Tasks()
	q, err := tasks.New(st, bus.New(), tasks.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	arch, err := tasks.NewArchiver(q, tasks.ArchiveConfig{Now: func() time.Time { return start.Add(30 * 24 * time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if _, err := q.Submit(tasks.SubmitParams{Description: fmt.Sprint("queued ", i), SubmittedBy: fmt.Sprint("s", i)}); err != nil {
			b.Fatal(err)
		}
	}
	moved := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		storeEnded(b, st, fmt.Sprintf("task-%d", i), ended, start.UnixMilli())
		// Written behind the queue's back: a reload makes the pass list
		// the live table's ended tasks, as a hub's first pass does.
		if err := q.Reload(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := arch.RunOnce(context.Background())
		if err != nil || res.Moved != ended {
			b.Fatalf("pass: %+v, %v", res, err)
		}
		moved += res.Moved
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(moved), "ns/task")
}
