package resilience

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/store"
)

func TestManualRestore(t *testing.T) {
	e := newEnv(t, Config{})
	rec := e.register(store.TaskQueue)
	ctx := context.Background()
	path := store.TablePath(e.dir, store.TaskQueue)

	// No backup: refuse, touch nothing.
	e.put(store.TaskQueue, 0, 10)
	before, _ := os.ReadFile(path)
	resp, err := e.c.Restore(ctx, store.TaskQueue, "", false)
	if !errors.Is(err, ErrNoBackup) || resp.Status != "failed" || resp.Error == "" {
		t.Fatalf("no backup: %+v, %v", resp, err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused restore changed the table file")
	}
	if len(e.asideFiles(store.TaskQueue))+len(e.replacedFiles(store.TaskQueue)) != 0 {
		t.Fatal("a refused restore moved the file aside")
	}

	first, err := e.c.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // distinct backup names
	e.put(store.TaskQueue, 10, 5)
	if _, err := e.c.Backup(ctx); err != nil {
		t.Fatal(err)
	}
	e.put(store.TaskQueue, 15, 5) // 20 now; backups hold 10 and 15

	// Dry run: says what would change, touches nothing.
	dry, err := e.c.Restore(ctx, store.TaskQueue, "", true)
	if err != nil || dry.Status != "dry_run" || dry.RecordCount != 15 || *dry.RecordsBefore != 20 || *dry.RecordsDelta != -5 || dry.BackupTime == nil {
		t.Fatalf("dry run %+v, %v", dry, err)
	}
	e.expect(store.TaskQueue, 20)
	if n, _ := rec.count(); n != 0 {
		t.Fatal("dry run ran reloaders")
	}

	// Unknown names.
	if _, err := e.c.Restore(ctx, "nope", "", false); !errors.Is(err, ErrUnknownTable) {
		t.Fatalf("unknown table: %v", err)
	}
	if _, err := e.c.Restore(ctx, store.TaskQueue, "task_queue_1999-01-01T00-00-00.000.db", false); !errors.Is(err, ErrBackupNotFound) {
		t.Fatalf("unknown backup: %v", err)
	}
	if _, err := e.c.Restore(ctx, store.TaskQueue, "../../etc/passwd", false); !errors.Is(err, ErrBackupNotFound) {
		t.Fatalf("path in backup name: %v", err)
	}

	// Newest by default.
	e.drain()
	resp, err = e.c.Restore(ctx, store.TaskQueue, "", false)
	if err != nil || resp.Status != "restored" || resp.RecordCount != 15 || resp.BackupUsed == nil || resp.FileSize <= 0 || resp.AsidePath == "" {
		t.Fatalf("restore newest: %+v, %v", resp, err)
	}
	e.expect(store.TaskQueue, 15)
	// The replaced file is kept under replaced/ (not corrupt/: it was not
	// damaged), and it still holds the 20 records it had.
	if kept := e.replacedFiles(store.TaskQueue); len(kept) != 1 || kept[0] != resp.AsidePath {
		t.Fatalf("replaced files %v, response says %q", kept, resp.AsidePath)
	}
	if len(e.asideFiles(store.TaskQueue)) != 0 {
		t.Fatal("a manual restore filed the replaced table as corrupt")
	}
	if n, err := store.CheckFile(resp.AsidePath); err != nil || n != 20 {
		t.Fatalf("kept file: %d records, %v", n, err)
	}
	ev := e.waitEvent(EventRecoveryComplete, nil)
	if d := ev.Data.(RecoveryCompleteEvent); d.Trigger != TriggerManual || d.RecordCount != 15 {
		t.Fatalf("event %+v", d)
	}
	if n, gerr := rec.count(); n != 1 || gerr != nil {
		t.Fatalf("reloader %d, %v", n, gerr)
	}

	// A named, older one.
	name := filepath.Base(first.Results[0].Path)
	resp, err = e.c.Restore(ctx, store.TaskQueue, name, false)
	if err != nil || *resp.BackupUsed != name || resp.RecordCount != 10 {
		t.Fatalf("restore named: %+v, %v", resp, err)
	}
	e.expect(store.TaskQueue, 10)

	// The original's response keys.
	m := jsonKeys(t, resp)
	for _, k := range []string{"status", "table", "backup_used", "record_count", "file_size"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("response lacks %q", k)
		}
	}

	// A damaged named backup is refused.
	damages["zeroed header"](t, first.Results[0].Path, store.TaskQueue)
	if _, err := e.c.Restore(ctx, store.TaskQueue, name, false); !errors.Is(err, ErrBackupUnusable) {
		t.Fatalf("damaged named backup: %v", err)
	}
	e.expect(store.TaskQueue, 10)
	if n := len(e.replacedFiles(store.TaskQueue)); n != 2 {
		t.Fatalf("a refused restore moved the table aside: %d kept files, want the 2 earlier ones", n)
	}
}

// A restore ends degraded mode: the operator's way back.
func TestRestoreEndsDegradedMode(t *testing.T) {
	e := newEnv(t, Config{})
	e.putAll(5)
	e.close()
	damages["zeroed header"](t, store.TablePath(e.dir, store.Meta), store.Meta)
	e.open()
	if h := e.c.Health(); h.Status != StatusCritical {
		t.Fatalf("not critical: %v", h.Reasons)
	}
	e.put(store.Meta, 0, 2)
	ctx := context.Background()
	if _, err := e.c.Backup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Restore(ctx, store.Meta, "", false); err != nil {
		t.Fatal(err)
	}
	if h := e.c.Health(); h.Status == StatusCritical || len(h.DegradedTables) != 0 {
		t.Fatalf("still degraded: %v", h.Reasons)
	}
	e.reopen()
	if h := e.c.Health(); len(h.DegradedTables) != 0 {
		t.Fatalf("degraded after restart: %v", h.Reasons)
	}
}
