package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }

// fakeStorage plays the storage coordinator: it keeps per-table numbers,
// and its actions publish the same bus events the real one does.
type fakeStorage struct {
	bus atomic.Pointer[bus.Bus]

	mu          sync.Mutex
	lastBackup  *int64
	history     []map[string]any
	compactions int
	restores    []string
	failCompact bool
}

func (f *fakeStorage) publish(p bus.Payload) {
	if b := f.bus.Load(); b != nil {
		bus.Publish(b, p)
	}
}

func (f *fakeStorage) Health(context.Context) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tables := []map[string]any{}
	for i, t := range store.AdminTables() {
		tables = append(tables, map[string]any{"table": t, "status": "ok", "record_count": i * 3,
			"file_size_bytes": 32768 + i*4096, "fragmentation_ratio": 0.05 * float64(i%3),
			"last_backup_at": f.lastBackup, "last_verified_backup_at": f.lastBackup})
	}
	return map[string]any{"tables": tables, "last_backup_at": f.lastBackup, "last_verified_backup_at": f.lastBackup,
		"compaction_history": append([]map[string]any{}, f.history...)}, nil
}

func (f *fakeStorage) Backup(context.Context) (any, error) {
	now := time.Now().UnixMilli()
	f.mu.Lock()
	f.lastBackup = &now
	f.mu.Unlock()
	f.publish(resilience.BackupCompleteEvent{Timestamp: now, TablesBackedUp: store.AdminTables()})
	return map[string]any{"status": "complete", "tables_total": 9, "tables_success": 9}, nil
}

func (f *fakeStorage) Compact(_ context.Context, table string, force bool) (any, error) {
	tables := store.AdminTables()
	if table != "" {
		tables = []string{table}
	}
	f.mu.Lock()
	f.compactions++
	fail := f.failCompact
	var results []map[string]any
	var typed []resilience.CompactResult
	var failures []resilience.Failure
	for _, t := range tables {
		r := map[string]any{"table": t, "status": "compacted", "duration_ms": 12, "bytes_saved": 8192}
		tr := resilience.CompactResult{Table: t, Status: "compacted", DurationMs: ptr(int64(12)), BytesSaved: 8192}
		if fail {
			r = map[string]any{"table": t, "status": "error", "reason": "disk full", "duration_ms": 3}
			tr = resilience.CompactResult{Table: t, Status: "error", Reason: "disk full", DurationMs: ptr(int64(3))}
			failures = append(failures, resilience.Failure{Table: t, Reason: "disk full"})
		}
		results = append(results, r)
		typed = append(typed, tr)
	}
	at := time.Now().UnixMilli()
	entry := map[string]any{"timestamp": at, "results": results, "trigger": "manual"}
	f.history = append([]map[string]any{entry}, f.history...)
	f.mu.Unlock()
	f.publish(resilience.CompactionCompleteEvent{Timestamp: at, Results: typed, Trigger: resilience.TriggerManual})
	if fail {
		f.publish(resilience.CompactionFailedEvent{Timestamp: at, Failures: failures, Trigger: resilience.TriggerManual})
		return map[string]any{"results": results}, errors.New("compaction failed: disk full")
	}
	return map[string]any{"status": "complete", "results": results, "force": force}, nil
}

func (f *fakeStorage) Restore(_ context.Context, table, backup string, dryRun bool) (any, error) {
	if backup == "" {
		backup = table + "_2026-01-01T00-00-00.bbolt"
	}
	res := map[string]any{"table": table, "backup": backup, "record_count": 7, "dry_run": dryRun}
	if dryRun {
		return res, nil
	}
	f.mu.Lock()
	f.restores = append(f.restores, table+"@"+backup)
	f.mu.Unlock()
	f.publish(resilience.RecoveryCompleteEvent{Table: table, Trigger: resilience.TriggerManual, BackupUsed: backup, RecordCount: 7})
	return res, nil
}

// startHub runs a real hub with the fake storage and fast dashboard timers.
func startHub(t *testing.T, opts ...hubtest.Option) (*hubtest.Hub, *fakeStorage) {
	t.Helper()
	fs := &fakeStorage{}
	all := append([]hubtest.Option{hubtest.NoBackoff, func(c *hub.Config) {
		c.Storage = fs
		c.Dashboard.SnapshotInterval = 20 * time.Millisecond
		c.Dashboard.StorageRefresh = time.Second
	}}, opts...)
	h := hubtest.Start(t, "", all...)
	fs.bus.Store(h.Bus)
	return h, fs
}

// dashURL is the dashboard socket of h.
func dashURL(h *hubtest.Hub) string { return "ws://" + h.Addr() + "/ws/dashboard" }

// state fetches GET /api/dashboard/state.
func state(t *testing.T, h *hubtest.Hub, token string) map[string]any {
	t.Helper()
	st, body := h.Do("GET", "/api/dashboard/state", token, nil)
	if st != 200 {
		t.Fatalf("state: %d %v", st, body)
	}
	return body
}

// waitState polls the state route until cond holds, returning it.
func waitState(t *testing.T, h *hubtest.Hub, what string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	var last map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		last = state(t, h, "")
		if cond(last) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last, "", " ")
	t.Fatalf("timed out waiting for %s; last state:\n%s", what, b)
	return nil
}

func arr(m map[string]any, key string) []any {
	a, _ := m[key].([]any)
	return a
}

func obj(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}

func numOf(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// submit queues a task as admin and returns its id.
func submit(t *testing.T, h *hubtest.Hub, body map[string]any) string {
	t.Helper()
	st, resp := h.Do("POST", "/api/tasks", h.AdminToken, body)
	if st != 201 {
		t.Fatalf("submit: %d %v", st, resp)
	}
	return resp["task_id"].(string)
}

// runTask takes an assignment on agent a and finishes it ok or failed.
func runTask(t *testing.T, a *hubtest.Client, ok bool) string {
	t.Helper()
	as := a.Expect("task_assign")
	id := as["task_id"].(string)
	a.Send(map[string]any{"type": "task_accepted", "task_id": id})
	a.Expect("task_ack")
	if ok {
		a.Send(map[string]any{"type": "task_complete", "task_id": id, "generation": as["generation"], "result": map[string]any{"status": "success"}, "tokens_used": 42})
	} else {
		a.Send(map[string]any{"type": "task_failed", "task_id": id, "generation": as["generation"], "error": "compile error in main.go"})
	}
	a.Expect("task_ack")
	return id
}

func describe(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func ptr[T any](v T) *T { return &v }
