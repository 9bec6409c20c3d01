package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/store"
)

// storeCmd runs `agentcom store args...` in-process.
func storeCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cmdEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	err := runStore(context.Background(), env, args)
	return out.String(), errb.String(), err
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
	if _, _, err := storeCmd(t, "check", "--data", dir); err == nil {
		t.Fatal("check with the hub running must fail")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	out, _, err := storeCmd(t, "check", "--data", dir)
	if err != nil || !strings.Contains(out, "task_queue") || !strings.Contains(out, "1 ok") {
		t.Fatalf("check: %v\n%s", err, out)
	}
	out, _, err = storeCmd(t, "check", "--data", dir, "--json")
	var rep resilience.CheckReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK || len(rep.Tables) != len(store.AllTables()) {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	out, _, err = storeCmd(t, "compact", "--data", dir, "--table", store.TaskQueue, "--force")
	if err != nil || !strings.Contains(out, "1 compacted") {
		t.Fatalf("compact: %v\n%s", err, out)
	}
	out, _, err = storeCmd(t, "restore", "--data", dir, "--table", store.TaskQueue, "--dry-run")
	if err != nil || !strings.Contains(out, "would restore task_queue") {
		t.Fatalf("restore dry: %v\n%s", err, out)
	}
	out, _, err = storeCmd(t, "restore", "--data", dir, "--table", store.TaskQueue)
	if err != nil || !strings.Contains(out, "restored task_queue") || !strings.Contains(out, "kept at") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(dir, "backups", store.Meta)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := storeCmd(t, "restore", "--data", dir, "--table", store.Meta); !errors.Is(err, resilience.ErrNoBackup) {
		t.Fatalf("restore without backup: %v", err)
	}
	if _, _, err := storeCmd(t, "restore", "--data", dir); !errors.Is(err, errUsage) {
		t.Fatalf("restore without --table: %v", err)
	}
	if _, _, err := storeCmd(t, "frobnicate"); !errors.Is(err, errUsage) {
		t.Fatalf("unknown subcommand: %v", err)
	}
	if _, _, err := storeCmd(t); !errors.Is(err, errUsage) {
		t.Fatalf("no subcommand: %v", err)
	}
}
