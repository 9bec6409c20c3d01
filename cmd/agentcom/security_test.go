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

func runIn(t *testing.T, run func(context.Context, *cmdEnv, []string) error, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &cmdEnv{stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
	err := run(context.Background(), e, args)
	return out.String(), errb.String(), err
}

// Token creation and import refuse agent ids that break the rule; an
// import file with one bad id imports nothing.
func TestTokenCommandsRefuseBadAgentIDs(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"a2\x00", "../../x", "a b", "broadcast"} {
		if _, _, err := runIn(t, runToken, nil, "create", "--data", dir, "--agent", id); err == nil {
			t.Errorf("token create --agent %q succeeded", id)
		}
	}
	file := filepath.Join(t.TempDir(), "tokens.json")
	good, bad := strings.Repeat("a", 64), strings.Repeat("b", 64)
	if err := os.WriteFile(file, []byte(`{"`+good+`":"worker-1","`+bad+`":"a2\u0000"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runIn(t, runToken, nil, "import", "--data", dir, "--file", file)
	if err == nil || !strings.Contains(err.Error(), "nothing imported") || strings.Contains(err.Error(), bad) {
		t.Fatalf("import with a bad id: %v", err)
	}
	out, _, err := runIn(t, runToken, nil, "list", "--data", dir)
	if err != nil || strings.Contains(out, "worker-1") {
		t.Fatalf("a refused import stored tokens: %v\n%s", err, out)
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
		args := append([]string{"--data", dir, "--addr", "127.0.0.1:0"}, c.args...)
		// Already cancelled: a hub that wrongly starts stops at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		serve := func(_ context.Context, e *cmdEnv, a []string) error { return runServe(ctx, e, a) }
		if _, _, err := runIn(t, serve, c.env, args...); err == nil || !strings.Contains(err.Error(), "range") && !strings.Contains(err.Error(), "rate limit") {
			t.Errorf("serve %v %v: %v", c.args, c.env, err)
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
	code, out, errs := runCmd(t, env, "admin", "backup")
	if code == 0 || !strings.Contains(out, `"status": "failed"`) || !strings.Contains(errs, "status failed") {
		t.Fatalf("admin backup: %d\n%s\n%s", code, out, errs)
	}
}
