package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/sidecar"
)

// runCmd runs one subcommand in-process with its own streams and env.
func runCmd(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &cmdEnv{stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
	code := dispatch(context.Background(), e, args)
	return code, out.String(), errb.String()
}

func TestTaskCommands(t *testing.T) {
	h := hubtest.Start(t, "")
	env := map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken}

	// Flags after the description, as in the synopsis.
	code, out, errs := runCmd(t, env, "task", "submit", "Fix the login bug", "--priority", "high", "--capabilities", "code,go",
		"--target", "worker", "--max-retries", "2", "--complete-by", "30m", "--metadata", `{"k":1}`)
	if code != 0 || !strings.Contains(out, "task_id:") {
		t.Fatalf("submit: %d\n%s\n%s", code, out, errs)
	}
	id := strings.TrimSpace(strings.TrimPrefix(strings.Split(out, "\n")[0], "task_id:"))
	_, task := h.Do("GET", "/api/tasks/"+id, h.AdminToken, nil)
	if task["description"] != "Fix the login bug" || task["priority"] != float64(1) || task["max_retries"] != float64(2) ||
		task["target_agent"] != "worker" || task["complete_by"] == nil || task["metadata"].(map[string]any)["k"] != float64(1) {
		t.Fatalf("stored task = %v", task)
	}
	if caps, _ := task["needed_capabilities"].([]any); len(caps) != 2 {
		t.Fatalf("capabilities = %v", task["needed_capabilities"])
	}

	code, out, _ = runCmd(t, env, "task", "list", "--status", "queued")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "high") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, env, "task", "show", id)
	var shown map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown["id"] != id {
		t.Fatalf("show: %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, env, "task", "cancel", id)
	if code != 0 || !strings.Contains(out, `"cancelled"`) {
		t.Fatalf("cancel: %d\n%s", code, out)
	}
	// Retry works on dead-letter tasks only: a clear hub error, exit 1.
	code, _, errs = runCmd(t, env, "task", "retry", id)
	if code != 1 || !strings.Contains(errs, "404") {
		t.Fatalf("retry: %d %s", code, errs)
	}
	for _, args := range [][]string{{"task", "stats"}, {"task", "dead-letter", "--json"}} {
		if code, out, errs := runCmd(t, env, args...); code != 0 {
			t.Fatalf("%v: %d %s %s", args, code, out, errs)
		}
	}
	// Usage errors.
	for _, args := range [][]string{{"task", "submit"}, {"task", "submit", "x", "--priority", "critical"}, {"task", "nope"},
		{"task", "submit", "x", "--complete-by", "soon"}, {"task", "submit", "x", "--metadata", "[1]"}} {
		if code, _, _ := runCmd(t, env, args...); code == 0 {
			t.Errorf("%v succeeded", args)
		}
	}
	// A bad token: the hub's 401 surfaces.
	if code, _, errs := runCmd(t, map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": "bad"}, "task", "list"); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("bad token: %d %s", code, errs)
	}
}

func TestTaskSubmitWaitFollowsToTheEnd(t *testing.T) {
	h := hubtest.Start(t, "")
	agentTok := h.Token("waiter", auth.RoleAgent)
	dir := t.TempDir()
	cfg, err := sidecar.ParseConfig([]byte(`{"agent_id":"waiter","token":"`+agentTok+`","hub_url":"`+h.WSURL()+`",
		"wake_command":": > \"$STARTED_FILE\"; printf '{\"status\":\"success\",\"output\":\"%s\"}' \"$TASK_DESCRIPTION\" > \"$RESULT_FILE\"",
		"poll_interval_ms":20,"result_settle_ms":20}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ResultsDir, cfg.StateFile = filepath.Join(dir, "results"), filepath.Join(dir, "queue.json")
	s, err := sidecar.New(cfg, sidecar.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	env := map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken}
	code, out, errs := runCmd(t, env, "task", "submit", "echo me", "--wait", "--wait-timeout", "30s")
	if code != 0 || !strings.Contains(out, "completed") || !strings.Contains(out, `"output":"echo me"`) {
		t.Fatalf("wait: %d\n%s\n%s", code, out, errs)
	}
	// A task that cannot run ends the wait with an error when it is
	// cancelled. The canceller waits for the task to be queued (no fixed
	// delay) and reports to the test goroutine instead of failing itself.
	cancelled := make(chan error, 1)
	go func() { cancelled <- cancelWhenQueued(h.URL(), h.AdminToken, 30*time.Second) }()
	code, out, errs = runCmd(t, env, "task", "submit", "never", "--capabilities", "nobody-has-this", "--wait", "--wait-timeout", "60s")
	if err := <-cancelled; err != nil {
		t.Fatal(err)
	}
	if code != 1 || !strings.Contains(errs, "ended cancelled") {
		t.Fatalf("cancelled wait: %d\n%s\n%s", code, out, errs)
	}
}

// cancelWhenQueued cancels the first queued task once there is one. It
// runs on its own goroutine, so it returns errors rather than failing.
func cancelWhenQueued(base, token string, within time.Duration) error {
	do := func(method, path string, out any) error {
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %d", method, path, resp.StatusCode)
		}
		if out == nil {
			return nil
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var list struct {
			Tasks []struct {
				ID string `json:"id"`
			} `json:"tasks"`
		}
		if err := do("GET", "/api/tasks?status=queued", &list); err != nil {
			return err
		}
		if len(list.Tasks) > 0 {
			return do("POST", "/api/tasks/"+list.Tasks[0].ID+"/cancel", nil)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no queued task within %v", within)
}

func gitT(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestGitCommands(t *testing.T) {
	root := t.TempDir()
	origin, seed, work := filepath.Join(root, "origin.git"), filepath.Join(root, "seed"), filepath.Join(root, "work")
	gitT(t, root, "init", "-q", "--bare", "-b", "main", origin)
	gitT(t, root, "init", "-q", "-b", "main", seed)
	if err := os.WriteFile(filepath.Join(seed, "f"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitT(t, seed, "add", ".")
	gitT(t, seed, "commit", "-q", "-m", "chore: init")
	gitT(t, seed, "push", "-q", origin, "main")
	gitT(t, root, "clone", "-q", origin, work)
	// The wake environment provides the defaults.
	env := map[string]string{"REPO_DIR": work, "AGENT_ID": "gcu-test", "TASK_DESCRIPTION": "Add a feature"}

	if err := os.WriteFile(filepath.Join(work, "f"), []byte("dirty\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd(t, env, "git", "start-task", "task-00000000000000ab")
	if code != 1 || !strings.Contains(errs, "uncommitted changes") || !strings.Contains(errs, "commit or stash") {
		t.Fatalf("dirty start: %d %s", code, errs)
	}
	gitT(t, work, "checkout", "-q", "--", "f")
	code, out, errs := runCmd(t, env, "git", "start-task", "task-00000000000000ab")
	if code != 0 || !strings.Contains(out, "gcu/task-00000000000000ab-add-a-feature") {
		t.Fatalf("start: %d %s %s", code, out, errs)
	}
	if err := os.WriteFile(filepath.Join(work, "g"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitT(t, work, "add", ".")
	gitT(t, work, "commit", "-q", "-m", "feat: g")
	code, out, _ = runCmd(t, env, "git", "status", "--json")
	var st map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st["commits_ahead"] != float64(1) || st["is_clean"] != true {
		t.Fatalf("status: %d %s", code, out)
	}
	code, out, errs = runCmd(t, env, "git", "submit", "--gh", filepath.Join(root, "no-gh"))
	if code != 1 || !strings.Contains(out, "pushed gcu/task-00000000000000ab-add-a-feature") || !strings.Contains(errs, "GitHub CLI (gh) not found") {
		t.Fatalf("submit without gh: %d\n%s\n%s", code, out, errs)
	}
	gitT(t, origin, "rev-parse", "--verify", "refs/heads/gcu/task-00000000000000ab-add-a-feature")
	if code, out, errs := runCmd(t, env, "git", "submit", "--no-pr", "--json"); code != 0 || !strings.Contains(out, `"pushed": true`) {
		t.Fatalf("submit --no-pr: %d %s %s", code, out, errs)
	}
	if code, _, _ := runCmd(t, env, "git", "start-task"); code != 2 {
		t.Fatalf("start-task without id: %d", code)
	}
}

func TestSidecarCommand(t *testing.T) {
	code, out, _ := runCmd(t, nil, "sidecar", "--fields")
	if code != 0 || !strings.Contains(out, "AGENTCOM_SIDECAR_WAKE_COMMAND") {
		t.Fatalf("--fields: %d %s", code, out)
	}
	code, _, errs := runCmd(t, nil, "sidecar", "--config", filepath.Join(t.TempDir(), "missing.json"))
	if code != 1 || !strings.Contains(errs, "missing.json") {
		t.Fatalf("missing config: %d %s", code, errs)
	}
	p := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(p, []byte(`{"agent_id":"a","hub_url":"ws://h/ws"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCmd(t, nil, "sidecar", "--config", p)
	if code != 1 || !strings.Contains(errs, "missing required field token") {
		t.Fatalf("incomplete config: %d %s", code, errs)
	}
	// The environment fills it in.
	code, _, errs = runCmd(t, map[string]string{"AGENTCOM_SIDECAR_TOKEN": "t", "AGENTCOM_SIDECAR_HUB_URL": "ftp://x"}, "sidecar", "--config", p)
	if code != 1 || !strings.Contains(errs, "hub_url") {
		t.Fatalf("env override: %d %s", code, errs)
	}
}

func TestOnboardAndOffboardCommands(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.JoinSecret = "js" })
	home, units := filepath.Join(t.TempDir(), "home"), filepath.Join(t.TempDir(), "units")
	code, out, errs := runCmd(t, nil, "onboard", "--hub", h.URL(), "--name", "cli-agent", "--join-secret", "js",
		"--home", home, "--unit-dir", units, "--capabilities", "code,docs")
	if code != 0 || !strings.Contains(out, "agent cli-agent is ready") || !strings.Contains(out, "[5/5] verifying with a test task... ok") {
		t.Fatalf("onboard: %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := runCmd(t, nil, "offboard", "--name", "cli-agent", "--home", home, "--unit-dir", units); code != 1 || !strings.Contains(errs, "admin token") {
		t.Fatalf("offboard without token: %d %s", code, errs)
	}
	code, out, errs = runCmd(t, map[string]string{"AGENTCOM_TOKEN": h.AdminToken}, "offboard", "--name", "cli-agent", "--home", home, "--unit-dir", units)
	if code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("offboard: %d\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(home, "cli-agent")); !os.IsNotExist(err) {
		t.Fatal("agent dir still there")
	}
	if code, _, _ := runCmd(t, nil, "onboard"); code != 2 {
		t.Fatalf("onboard without --hub: %d", code)
	}
}
