package dashboard_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/store"
)

// TestStorageActionsAgainstTheRealStore drives the dashboard's Back up,
// Compact and dry-run Restore through its socket against the hub's own
// resilience coordinator and bbolt tables (no fake storage): the backup
// writes verified files, the dry run reports the real counts and changes
// nothing, the compaction answers for the real table.
func TestStorageActionsAgainstTheRealStore(t *testing.T) {
	h := hubtest.Start(t, "", hubtest.NoBackoff)
	for range 3 {
		submit(t, h, map[string]any{"description": "before the backup"})
	}
	a := hubtest.Dial(t, dashURL(h)+"?token="+h.AdminToken)
	a.Expect("hello")

	a.Send(map[string]any{"type": "backup_now", "ref": "b1"})
	r := a.ExpectWithin("backup_result", 60*time.Second)
	res := obj(r, "result")
	if r["status"] != "ok" || r["ref"] != "b1" || numOf(res["tables_success"]) != len(store.AllTables()) {
		t.Fatalf("backup: %v", r)
	}
	backups, _ := filepath.Glob(filepath.Join(h.Dir, "backups", store.TaskQueue, "*.db"))
	if len(backups) != 1 {
		t.Fatalf("task_queue backups on disk: %v", backups)
	}
	if n, err := store.CheckFile(backups[0]); err != nil || n != 3 {
		t.Fatalf("the backup file: %d records, %v", n, err)
	}

	for range 2 {
		submit(t, h, map[string]any{"description": "after the backup"})
	}
	live := store.TablePath(h.Dir, store.TaskQueue)
	before, err := os.Stat(live)
	if err != nil {
		t.Fatal(err)
	}
	a.Send(map[string]any{"type": "restore", "table": store.TaskQueue, "dry_run": true})
	r = a.ExpectWithin("restore_result", 60*time.Second)
	res = obj(r, "result")
	if r["status"] != "ok" || r["dry_run"] != true || res["status"] != "dry_run" ||
		numOf(res["record_count"]) != 3 || numOf(res["records_before"]) != 5 || numOf(res["records_delta"]) != -2 {
		t.Fatalf("dry-run restore: %v", r)
	}
	if _, list := h.Do("GET", "/api/tasks", h.AdminToken, nil); list["count"] != float64(5) {
		t.Fatalf("a dry run changed the tasks: %v", list["count"])
	}
	if after, err := os.Stat(live); err != nil || !os.SameFile(before, after) {
		t.Fatalf("a dry run replaced the table file: %v", err)
	}
	if kept, _ := filepath.Glob(filepath.Join(h.Dir, "replaced", "*")); len(kept) != 0 {
		t.Fatalf("a dry run moved files aside: %v", kept)
	}

	a.Send(map[string]any{"type": "compact", "table": store.TaskQueue, "force": true})
	r = a.ExpectWithin("compact_result", 60*time.Second)
	if r["status"] != "ok" || r["table"] != store.TaskQueue || obj(r, "result")["status"] != "compacted" {
		t.Fatalf("compact: %v", r)
	}
	if n, err := h.DB.MustTable(store.TaskQueue).CheckCount(); err != nil || n != 5 {
		t.Fatalf("after compaction: %d records, %v", n, err)
	}
	t.Logf("compact result: %v", r["result"])
}
