package resilience

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/store"
)

func TestBackupAllTablesVerifiedWithRetention(t *testing.T) {
	e := newEnv(t, Config{})
	e.putAll(50)
	ctx := context.Background()
	var last BackupResponse
	for i := range 5 {
		e.put(store.TaskQueue, 50+i, 1) // each backup sees one more task
		resp, err := e.c.Backup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != "complete" || resp.TablesTotal != len(store.AllTables()) || resp.TablesSuccess != len(store.AllTables()) || len(resp.Results) != len(store.AllTables()) {
			t.Fatalf("backup %d: %+v", i, resp)
		}
		for j, r := range resp.Results {
			if r.Table != store.AllTables()[j] || r.Status != "ok" || !r.Verified || r.Size <= 0 || r.Records == nil {
				t.Fatalf("result %+v", r)
			}
			if n, err := store.CheckFile(r.Path); err != nil || n != *r.Records {
				t.Fatalf("%s: CheckFile = %d, %v", r.Path, n, err)
			}
			if filepath.Dir(r.Path) != filepath.Join(e.dir, "backups", r.Table) || !strings.HasPrefix(filepath.Base(r.Path), r.Table+"_") {
				t.Fatalf("backup path %s", r.Path)
			}
		}
		ev := e.waitEvent(EventBackupComplete, nil)
		d := ev.Data.(BackupCompleteEvent)
		if len(d.TablesBackedUp) != len(store.AllTables()) || d.Trigger != TriggerManual || ev.Topic() != bus.TopicStorage {
			t.Fatalf("event %+v", d)
		}
		last = resp
	}
	// Retention: the newest three per table, the newest holding 55 tasks.
	for _, name := range store.AllTables() {
		files, err := e.c.Backups(name)
		if err != nil || len(files) != 3 {
			t.Fatalf("%s: %d backups, %v", name, len(files), err)
		}
	}
	if *last.Results[0].Records != 55 {
		t.Fatalf("newest task_queue backup holds %d", *last.Results[0].Records)
	}
	// The original's response keys are all there.
	m := jsonKeys(t, last)
	for _, k := range []string{"status", "tables_total", "tables_success", "results"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("response lacks %q: %v", k, m)
		}
	}
	r0 := m["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"table", "status", "path", "size"} {
		if _, ok := r0[k]; !ok {
			t.Fatalf("result lacks %q: %v", k, r0)
		}
	}
	h := e.c.Health()
	if h.LastBackupAt == nil || h.StaleBackup || len(h.LastBackupResults) != len(store.AllTables()) {
		t.Fatalf("health after backup: %+v", h)
	}
	for _, th := range h.Tables {
		if th.LastBackupAt == nil || th.LastVerifiedBackupAt == nil || th.LastBackupFile == "" {
			t.Fatalf("table health %+v", th)
		}
	}
	// Backups found on disk survive a restart.
	e.reopen()
	if h := e.c.Health(); h.LastBackupAt == nil || h.StaleBackup {
		t.Fatalf("after restart: last_backup_at %v stale %v", h.LastBackupAt, h.StaleBackup)
	}
}

func TestBackupFailureIsReportedAndNotCounted(t *testing.T) {
	e := newEnv(t, Config{})
	e.putAll(5)
	ctx := context.Background()
	if _, err := e.c.Backup(ctx); err != nil {
		t.Fatal(err)
	}
	before := e.c.Health().Tables[2].LastBackupAt
	// Make agent_mailbox's backup directory unusable.
	mbDir := filepath.Join(e.dir, "backups", store.AgentMailbox)
	if err := os.RemoveAll(mbDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mbDir, []byte("not a dir"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.drain()
	resp, err := e.c.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if resp.TablesSuccess != len(store.AllTables())-1 {
		t.Fatalf("success %d", resp.TablesSuccess)
	}
	r := resp.Results[2]
	if r.Table != store.AgentMailbox || r.Status != "error" || r.Reason == "" || r.Path != "" {
		t.Fatalf("failed result %+v", r)
	}
	e.waitEvent(EventBackupComplete, nil) // the 11 others, then the failure
	ev := e.waitEvent(EventBackupFailed, nil)
	if f := ev.Data.(BackupFailedEvent).Failures; len(f) != 1 || f[0].Table != store.AgentMailbox || f[0].Reason == "" {
		t.Fatalf("failures %+v", f)
	}
	if d := ev.Data.(BackupFailedEvent); d.Trigger == "" || !strings.Contains(d.Reason, store.AgentMailbox) {
		t.Fatalf("event %+v", d)
	}
	h := e.c.Health()
	if got := h.Tables[2].LastBackupAt; got == nil || *got != *before {
		t.Fatalf("a failed backup moved last_backup_at: %v -> %v", *before, got)
	}
	if h.Status != StatusWarning || !slices.ContainsFunc(h.Reasons, func(s string) bool { return strings.Contains(s, "last backup failed") }) {
		t.Fatalf("health %s %v", h.Status, h.Reasons)
	}
}

func TestDrillProvesBackupsAndReportsBadOnes(t *testing.T) {
	e := newEnv(t, Config{})
	e.putAll(20)
	ctx := context.Background()
	d, err := e.c.Drill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Results {
		if r.Status != "skipped" {
			t.Fatalf("drill without backups: %+v", r)
		}
	}
	if _, err := e.c.Backup(ctx); err != nil {
		t.Fatal(err)
	}
	e.drain()
	d, err = e.c.Drill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Results {
		if r.Status != "ok" || r.Records != 20 || r.BackupUsed == "" {
			t.Fatalf("drill %+v", r)
		}
	}
	e.waitEvent(EventDrillComplete, nil)
	h := e.c.Health()
	if h.LastDrillAt == nil || h.Tables[0].LastDrillAt == nil {
		t.Fatal("drill time missing from health")
	}
	entries, _ := os.ReadDir(filepath.Join(e.dir, "drill"))
	if len(entries) != 0 {
		t.Fatalf("scratch not emptied: %v", entries)
	}
	// Bit rot in a backup: the drill fails and says so.
	files, _ := e.c.Backups(store.Config)
	damages["flipped bytes in a data page"](t, files[0].Path, store.Config)
	e.drain()
	d, err = e.c.Drill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Results[6]; r.Table != store.Config || r.Status != "error" || r.Reason == "" {
		t.Fatalf("drill of damaged backup: %+v", r)
	}
	ev := e.waitEvent(EventDrillFailed, nil)
	if d := ev.Data.(DrillFailedEvent); len(d.Failures) != 1 || d.Failures[0].Table != store.Config || !strings.Contains(d.Reason, store.Config) {
		t.Fatalf("event %+v", d)
	}
	h = e.c.Health()
	if h.Status != StatusWarning || h.Tables[6].LastDrillError == "" {
		t.Fatalf("health %s %v", h.Status, h.Reasons)
	}
}

func TestSchedulesRunAndStop(t *testing.T) {
	e := newEnv(t, Config{
		FirstBackupDelay:   20 * time.Millisecond,
		BackupInterval:     time.Hour,
		CompactionInterval: 50 * time.Millisecond,
		DrillInterval:      time.Nanosecond,
	})
	e.putAll(10)
	ctx, cancel := context.WithCancel(context.Background())
	e.c.Start(ctx)
	e.c.Start(ctx) // second Start is a no-op
	ev := e.waitEvent(EventBackupComplete, nil)
	if ev.Data.(BackupCompleteEvent).Trigger != TriggerScheduled {
		t.Fatalf("trigger %+v", ev.Data)
	}
	e.waitEvent(EventDrillComplete, nil)
	ev = e.waitEvent(EventCompactionComplete, nil)
	if ev.Data.(CompactionCompleteEvent).Trigger != TriggerScheduled {
		t.Fatalf("trigger %+v", ev.Data)
	}
	cancel()
	e.c.Wait()
	if h := e.c.CompactionHistory(); len(h) == 0 || h[0].Trigger != TriggerScheduled {
		t.Fatalf("history %+v", h)
	}
}
