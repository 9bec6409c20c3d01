package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/store"
)

// Token creation and import refuse agent ids that break the rule; an
// import file with one bad id imports nothing.
func TestTokenCommandsRefuseBadAgentIDs(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"a2\x00", "../../x", "a b", "broadcast"} {
		if code, _, _ := runCmd(t, nil, "token", "create", "--data", dir, "--agent", id); code == 0 {
			t.Errorf("token create --agent %q succeeded", id)
		}
	}
	file := filepath.Join(t.TempDir(), "tokens.json")
	good, bad := strings.Repeat("a", 64), strings.Repeat("b", 64)
	if err := os.WriteFile(file, []byte(`{"`+good+`":"worker-1","`+bad+`":"a2\u0000"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd(t, nil, "token", "import", "--data", dir, "--file", file)
	if code != 1 || !strings.Contains(errs, "nothing imported") || strings.Contains(errs, bad) {
		t.Fatalf("import with a bad id: %d %s", code, errs)
	}
	code, out, errs := runCmd(t, nil, "token", "list", "--data", dir)
	if code != 0 || strings.Contains(out, "worker-1") {
		t.Fatalf("a refused import stored tokens: %d %s\n%s", code, errs, out)
	}
}

// Serve refuses out-of-range durations and counts before it starts.
func TestServeFlagBounds(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		env  map[string]string
	}{
		{args: []string{"--backup-interval", "1ns"}},
		{args: []string{"--backup-interval", "2562047h"}},
		{args: []string{"--first-backup", "-1s"}},
		{args: []string{"--compaction-interval", "1ms"}},
		{args: []string{"--backup-retention", "1000000"}},
		{args: []string{"--max-task-metadata", "9223372036854775807"}},
		{args: []string{"--max-queued-per-submitter", "0"}},
		{env: map[string]string{"AGENTCOM_MAX_QUEUED_PER_SUBMITTER": "lots"}},
		{args: []string{"--rate-limits", "messages=NaN:1"}},
		{args: []string{"--rate-limits", "messages=1e300:1"}},
	} {
		args := append([]string{"serve", "--data", dir, "--addr", "127.0.0.1:0"}, c.args...)
		// Already cancelled: a hub that wrongly starts stops at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var out, errb bytes.Buffer
		e := &cmdEnv{stdout: &out, stderr: &errb, getenv: func(k string) string { return c.env[k] }}
		code := dispatch(ctx, e, args)
		if msg := errb.String(); code != 2 || !strings.Contains(msg, "range") && !strings.Contains(msg, "rate limit") {
			t.Errorf("serve %v %v: exit %d, %s", c.args, c.env, code, msg)
		}
	}
}

// `agentcom admin backup` against a hub whose backups all fail prints the
// per-table report and exits non-zero.
func TestAdminBackupFailureExitsNonZero(t *testing.T) {
	h := hubtest.Start(t, "")
	for _, table := range store.AllTables() {
		dir := filepath.Join(h.Dir, "backups", table)
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken}
	code, out, errs := runCmd(t, env, "admin", "backup", "--json")
	if code == 0 || !strings.Contains(out, `"status": "failed"`) || !strings.Contains(errs, "status failed") {
		t.Fatalf("admin backup --json: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runCmd(t, env, "admin", "backup")
	if code != 1 || !strings.Contains(out, "TABLE") || !strings.Contains(out, "error") || !strings.Contains(errs, "status failed") {
		t.Fatalf("admin backup: %d\n%s\n%s", code, out, errs)
	}
}
