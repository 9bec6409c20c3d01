package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/store"
)

// storeCmd runs `agentcom store args...` in-process and returns its
// output and exit code.
func storeCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	code, out, errs := runCmd(t, nil, append([]string{"store"}, args...)...)
	return out, errs, code
}

func TestStoreCommands(t *testing.T) {
	dir := t.TempDir()
	db, _, err := resilience.OpenDB(context.Background(), dir, store.AllTables(), resilience.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Table(store.TaskQueue).Update(func(tx *store.Tx) error { return tx.Put([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	c := resilience.New(db, nil, resilience.Config{}, nil)
	if _, err := c.Backup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := storeCmd(t, "check", "--data", dir); code != 1 || !strings.Contains(errs, "another hub holds "+dir) {
		t.Fatalf("check with the hub running: %d %s", code, errs)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	out, _, code := storeCmd(t, "check", "--data", dir)
	if code != 0 || !strings.Contains(out, "task_queue") || !strings.Contains(out, "1 ok") {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	out, _, code = storeCmd(t, "check", "--data", dir, "--json")
	var rep resilience.CheckReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK || len(rep.Tables) != len(store.AllTables()) {
		t.Fatalf("check --json: exit %d\n%s", code, out)
	}
	out, _, code = storeCmd(t, "compact", "--data", dir, "--table", store.TaskQueue, "--force")
	if code != 0 || !strings.Contains(out, "1 compacted") {
		t.Fatalf("compact: exit %d\n%s", code, out)
	}
	out, _, code = storeCmd(t, "restore", "--data", dir, "--table", store.TaskQueue, "--dry-run")
	if code != 0 || !strings.Contains(out, "would restore task_queue") {
		t.Fatalf("restore dry: exit %d\n%s", code, out)
	}
	out, _, code = storeCmd(t, "restore", "--data", dir, "--table", store.TaskQueue)
	if code != 0 || !strings.Contains(out, "restored task_queue") || !strings.Contains(out, "kept at") {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	if err := os.RemoveAll(filepath.Join(dir, "backups", store.Meta)); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := storeCmd(t, "restore", "--data", dir, "--table", store.Meta); code != 1 || !strings.Contains(errs, resilience.ErrNoBackup.Error()) {
		t.Fatalf("restore without backup: %d %s", code, errs)
	}
	if _, _, code := storeCmd(t, "restore", "--data", dir); code != 2 {
		t.Fatalf("restore without --table: %d", code)
	}
	if _, errs, code := storeCmd(t, "chek"); code != 2 || !strings.Contains(errs, "did you mean check?") {
		t.Fatalf("unknown subcommand: %d %s", code, errs)
	}
	if _, _, code := storeCmd(t); code != 2 {
		t.Fatalf("no subcommand: %d", code)
	}
}
