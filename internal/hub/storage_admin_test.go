package hub_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/store"
)

// TestStorageAdminAPI drives backup, health, compaction and restore
// through the HTTP API of a real hub, including a restore that brings
// back a task list and is reconciled with a connected agent.
func TestStorageAdminAPI(t *testing.T) {
	h := hubtest.Start(t, "")
	tok := h.AdminToken

	// No backup yet: a restore refuses and touches nothing.
	before, _ := os.ReadFile(store.TablePath(h.Dir, store.TaskQueue))
	st, body := h.Do("POST", "/api/admin/restore/task_queue", tok, nil)
	if st != 409 || body["error"] != "no_backup" {
		t.Fatalf("restore without backup: %d %v", st, body)
	}
	after, _ := os.ReadFile(store.TablePath(h.Dir, store.TaskQueue))
	if len(before) != len(after) {
		t.Fatal("a refused restore changed the table file")
	}
	if st, body := h.Do("POST", "/api/admin/compact/nope", tok, nil); st != 404 || body["error"] != "unknown_table" || len(body["valid_tables"].([]any)) == 0 {
		t.Fatalf("unknown table: %d %v", st, body)
	}

	_, sub := h.Do("POST", "/api/tasks", tok, map[string]any{"description": "kept", "needed_capabilities": []string{"none-yet"}})
	kept := sub["task_id"].(string)
	st, body = h.Do("POST", "/api/admin/backup", tok, nil)
	if st != 200 || body["status"] != "complete" || body["tables_success"] != body["tables_total"] {
		t.Fatalf("backup: %d %v", st, body)
	}
	results := body["results"].([]any)
	first := results[0].(map[string]any)
	if first["status"] != "ok" || first["path"] == nil || first["size"] == nil {
		t.Fatalf("backup result = %v", first)
	}
	if _, err := os.Stat(filepath.Join(h.Dir, "backups")); err != nil {
		t.Fatalf("backup dir: %v", err)
	}
	_, health := h.Do("GET", "/api/admin/dets-health", tok, nil)
	if health["last_backup_at"] == nil || health["health_status"] == nil || len(health["tables"].([]any)) < 9 {
		t.Fatalf("health = %v", health)
	}
	tbl := health["tables"].([]any)[0].(map[string]any)
	for _, k := range []string{"table", "record_count", "file_size_bytes", "fragmentation_ratio", "status"} {
		if _, ok := tbl[k]; !ok {
			t.Fatalf("health table lacks %s: %v", k, tbl)
		}
	}

	// A task submitted after the backup vanishes with the restore; the
	// dry run says so first.
	_, sub = h.Do("POST", "/api/tasks", tok, map[string]any{"description": "lost", "needed_capabilities": []string{"none-yet"}})
	lost := sub["task_id"].(string)
	st, body = h.Do("POST", "/api/admin/restore/task_queue?dry_run=true", tok, nil)
	if st != 200 || body["status"] != "dry_run" || body["record_count"].(float64) != 1 || body["records_before"].(float64) != 2 {
		t.Fatalf("dry run: %d %v", st, body)
	}
	if st, _ := h.Do("GET", "/api/tasks/"+lost, tok, nil); st != 200 {
		t.Fatal("a dry run changed the queue")
	}
	st, body = h.Do("POST", "/api/admin/restore/task_queue", tok, nil)
	if st != 200 || body["status"] != "restored" || body["backup_used"] == nil {
		t.Fatalf("restore: %d %v", st, body)
	}
	if st, _ := h.Do("GET", "/api/tasks/"+lost, tok, nil); st != 404 {
		t.Fatalf("task submitted after the backup still there: %d", st)
	}
	if st, _ := h.Do("GET", "/api/tasks/"+kept, tok, nil); st != 200 {
		t.Fatalf("task from the backup missing: %d", st)
	}
	// The queue works after the restore: the kept task is scheduled.
	a := h.Agent("after-restore", "none-yet")
	if as := a.Expect("task_assign"); as["task_id"] != kept {
		t.Fatalf("assign after restore = %v", as)
	}

	st, body = h.Do("POST", "/api/admin/compact?force=true", tok, nil)
	if st != 200 || body["status"] != "complete" {
		t.Fatalf("compact all: %d %v", st, body)
	}
	st, body = h.Do("POST", "/api/admin/compact/message_history", tok, nil)
	if st != 200 || body["table"] != "message_history" {
		t.Fatalf("compact one: %d %v", st, body)
	}
	if st, _ := h.Do("POST", "/api/admin/backup", h.Token("x", auth.RoleAgent), nil); st != 403 {
		t.Fatalf("agent token ran a backup: %d", st)
	}
}

// A backup run that misses tables is not "complete": 0 of N answers 500
// "failed", some of N answers 500 "partial", in the same body shape.
func TestBackupFailuresAreNotComplete(t *testing.T) {
	h := hubtest.Start(t, "")
	block := func(table string) {
		dir := filepath.Join(h.Dir, "backups", table)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	block(store.AgentMailbox)
	st, body := h.Do("POST", "/api/admin/backup", h.AdminToken, nil)
	if st != 500 || body["status"] != "partial" || body["tables_success"].(float64) != body["tables_total"].(float64)-1 {
		t.Fatalf("one table failing: %d %v", st, body)
	}
	for _, table := range store.AllTables() {
		block(table)
	}
	st, body = h.Do("POST", "/api/admin/backup", h.AdminToken, nil)
	if st != 500 || body["status"] != "failed" || body["tables_success"].(float64) != 0 || len(body["results"].([]any)) == 0 {
		t.Fatalf("every table failing: %d %v", st, body)
	}
}
