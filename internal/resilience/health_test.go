package resilience

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/store"
)

// fakeClock is a settable Config.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestHealthShapeMatchesOriginal(t *testing.T) {
	e := newEnv(t, Config{})
	e.putAll(3)
	h := e.c.Health()
	m := jsonKeys(t, h)
	for _, k := range []string{"health_status", "stale_backup", "high_fragmentation", "last_backup_at", "tables",
		"last_backup_results", "last_compaction_at", "compaction_history", "status", "reasons"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("health lacks %q", k)
		}
	}
	if m["last_backup_at"] != nil || m["last_backup_results"] != nil || m["last_compaction_at"] != nil {
		t.Fatalf("never-run fields must be null: %v", m)
	}
	if hist, ok := m["compaction_history"].([]any); !ok || len(hist) != 0 {
		t.Fatalf("compaction_history must be []: %v", m["compaction_history"])
	}
	tables := m["tables"].([]any)
	if len(tables) != len(store.AllTables()) {
		t.Fatalf("%d tables", len(tables))
	}
	for i, raw := range tables {
		tm := raw.(map[string]any)
		for _, k := range []string{"table", "record_count", "file_size_bytes", "fragmentation_ratio", "status",
			"used_bytes", "wasted_bytes", "last_backup_at", "last_verified_backup_at", "last_compaction_at", "last_drill_at"} {
			if _, ok := tm[k]; !ok {
				t.Fatalf("table lacks %q: %v", k, tm)
			}
		}
		if tm["table"] != store.AllTables()[i] || tm["status"] != "ok" || tm["record_count"] != float64(3) {
			t.Fatalf("table %v", tm)
		}
	}
	// Fresh hub within its first-backup grace: healthy, no stale warning.
	if h.Status != StatusOK || h.HealthStatus != "healthy" || h.StaleBackup || h.HighFragmentation || len(h.Reasons) != 0 {
		t.Fatalf("fresh hub: %+v", h)
	}
}

func TestHealthStaleBackup(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, Config{Now: clock.Now})
	clock.Advance(20 * time.Minute) // past the first backup and its grace
	h := e.c.Health()
	if !h.StaleBackup || h.Status != StatusWarning || !strings.Contains(h.Reasons[0], "backup never run") {
		t.Fatalf("no backup after 20 min: %+v %v", h.StaleBackup, h.Reasons)
	}
	if _, err := e.c.Backup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := e.c.Health(); h.StaleBackup || h.Status != StatusOK || h.LastBackupAt == nil {
		t.Fatalf("after backup: %v", h.Reasons)
	}
	clock.Advance(49 * time.Hour)
	h = e.c.Health()
	if !h.StaleBackup || h.Status != StatusWarning || !strings.Contains(h.Reasons[0], "backup stale: last backup 49h ago") {
		t.Fatalf("after 49 h: %v", h.Reasons)
	}
}

func TestHealthHighFragmentationOnlyForRealWaste(t *testing.T) {
	e := newEnv(t, Config{})
	// Tiny tables with churn: some free pages, nothing worth a warning.
	for range 20 {
		e.putAll(20)
	}
	if h := e.c.Health(); h.HighFragmentation {
		t.Fatalf("tiny tables flagged: %v", h.Reasons)
	}
	fragment(e) // message_history: 27k of 30k records deleted
	h := e.c.Health()
	th := h.Tables[3]
	if !h.HighFragmentation || th.FragmentationRatio <= 0.5 || th.WastedBytes < 1<<20 || h.Status != StatusWarning ||
		!strings.Contains(strings.Join(h.Reasons, ";"), "fragmentation >50%: message_history") {
		t.Fatalf("fragmented table: %+v %v", th, h.Reasons)
	}
	if _, err := e.c.Compact(context.Background(), store.MessageHistory, false); err != nil {
		t.Fatal(err)
	}
	if h := e.c.Health(); h.HighFragmentation || h.Tables[3].FragmentationRatio > 0.05 {
		t.Fatalf("after compaction: %v %v", h.Tables[3].FragmentationRatio, h.Reasons)
	}
}

func TestMetricsCollector(t *testing.T) {
	e := newEnv(t, Config{})
	e.putAll(4)
	ctx := context.Background()
	if _, err := e.c.Backup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Drill(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(e.c.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
	}
	for name, n := range map[string]int{
		"agentcom_storage_records":                                len(store.AllTables()),
		"agentcom_storage_file_bytes":                             len(store.AllTables()),
		"agentcom_storage_fragmentation_ratio":                    len(store.AllTables()),
		"agentcom_storage_last_backup_timestamp_seconds":          len(store.AllTables()),
		"agentcom_storage_last_verified_backup_timestamp_seconds": len(store.AllTables()),
		"agentcom_storage_last_drill_success_timestamp_seconds":   len(store.AllTables()),
		"agentcom_storage_degraded":                               len(store.AllTables()),
		"agentcom_storage_available":                              len(store.AllTables()),
		"agentcom_storage_health_status":                          1,
	} {
		if got[name] != n {
			t.Fatalf("%s: %d samples, want %d (have %v)", name, got[name], n, got)
		}
	}
	if _, ok := got["agentcom_storage_last_compaction_timestamp_seconds"]; ok {
		t.Fatal("compaction time reported before any compaction")
	}
}

// Every storage event names the storage topic and its own type constant.
func TestStorageEventTypes(t *testing.T) {
	for want, p := range map[string]bus.Payload{
		EventBackupComplete:     BackupCompleteEvent{},
		EventBackupFailed:       BackupFailedEvent{},
		EventCompactionComplete: CompactionCompleteEvent{},
		EventCompactionFailed:   CompactionFailedEvent{},
		EventRecoveryComplete:   RecoveryCompleteEvent{},
		EventRecoveryFailed:     RecoveryFailedEvent{},
		EventDegradedMode:       DegradedModeEvent{},
		EventDrillComplete:      DrillCompleteEvent{},
		EventDrillFailed:        DrillFailedEvent{},
	} {
		if p.Topic() != bus.TopicStorage || p.EventType() != want {
			t.Errorf("%T: topic %q type %q, want %q", p, p.Topic(), p.EventType(), want)
		}
	}
}

func TestAdapters(t *testing.T) {
	e := newEnv(t, Config{})
	e.putAll(2)
	ctx := context.Background()
	a := AnyResults{C: e.c}
	for i, call := range []func() (any, error){
		func() (any, error) { return a.Health(ctx) },
		func() (any, error) { return a.Backup(ctx) },
		func() (any, error) { return a.Compact(ctx, "", false) },
		func() (any, error) { return a.Compact(ctx, store.Tokens, true) },
		func() (any, error) { return a.Restore(ctx, store.Tokens, "", true) },
	} {
		name := i
		v, err := call()
		if err != nil {
			t.Fatalf("call %d: %v", name, err)
		}
		jsonKeys(t, v)
	}
	if _, err := e.c.Drill(ctx); err != nil {
		t.Fatal(err)
	}
	p := e.c.Protection()
	if len(p) != len(store.AllTables()) || p[0].Table != store.TaskQueue || p[9].Table != store.Tokens || p[9].LastBackup.IsZero() ||
		p[9].LastVerified.IsZero() || p[9].LastCompaction.IsZero() || !p[9].LastDrillOK || p[9].Degraded {
		t.Fatalf("protection %+v", p[9])
	}
}
