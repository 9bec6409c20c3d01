package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/sidecar"
	"github.com/agentcom/agentcom/internal/testenv"
)

// runCmd runs one subcommand in-process with its own streams and env.
func runCmd(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &cmdEnv{stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
	code := dispatch(context.Background(), e, args)
	return code, out.String(), errb.String()
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
	code, out, errs := runCmd(t, env, "task", "submit", "echo me", "--wait", "--wait-timeout", "60s")
	if code != 0 || !strings.Contains(out, "completed") || !strings.Contains(out, `"output":"echo me"`) {
		t.Fatalf("wait: %d\n%s\n%s", code, out, errs)
	}
	// --wait --json: stdout is the final task and nothing else.
	code, out, errs = runCmd(t, env, "task", "submit", "echo json", "--wait", "--wait-timeout", "60s", "--json")
	var task client.Task
	mustJSON(t, "submit --wait --json", out, &task)
	if code != 0 || task.Status != "completed" || !strings.Contains(string(task.Result), "echo json") || !strings.Contains(errs, "completed (generation 1)") {
		t.Fatalf("wait --json: %d\n%s\n%s", code, out, errs)
	}
	// A task that cannot run ends the wait with an error when it is
	// cancelled; the wait runs in the background, the test cancels.
	b := runBG(t, env, "task", "submit", "never", "--capabilities", "nobody-has-this", "--wait", "--wait-timeout", "60s")
	var id string
	testenv.Eventually(t, "the queued task", func() bool {
		_, body := h.Do("GET", "/api/tasks?status=queued", h.AdminToken, nil)
		if ts, _ := body["tasks"].([]any); len(ts) == 1 {
			id, _ = ts[0].(map[string]any)["id"].(string)
		}
		return id != ""
	}, testenv.Within(10*time.Second))
	if st, _ := h.Do("POST", "/api/tasks/"+id+"/cancel", h.AdminToken, nil); st != 200 {
		t.Fatal(st)
	}
	if code := b.wait(t, 30*time.Second); code != 1 || !strings.Contains(b.err.String(), "ended cancelled") {
		t.Fatalf("cancelled wait: %d\n%s\n%s", code, b.out.String(), b.err.String())
	}
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
	code, out, _ = runCmd(t, env, "git", "status")
	if code != 0 || !strings.Contains(out, "branch:") || !strings.Contains(out, "commits ahead:  1") {
		t.Fatalf("status: %d %s", code, out)
	}
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
	// --json: stdout is the result alone, the steps go to stderr, and the
	// agent's token stays in its config file.
	code, out, errs = runCmd(t, map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_JOIN_SECRET": "js"}, "onboard", "--name", "cli-agent-2",
		"--home", home, "--unit-dir", units, "--json")
	var res onboarded
	mustJSON(t, "onboard --json", out, &res)
	if code != 0 || res.AgentID != "cli-agent-2" || res.VerifyTaskID == "" || !strings.Contains(errs, "[5/5] verifying with a test task... ok") {
		t.Fatalf("onboard --json: %d\n%s\n%s", code, out, errs)
	}
	raw, err := os.ReadFile(res.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil || len(cfg.Token) < 32 || strings.Contains(out+errs, cfg.Token) {
		t.Fatalf("the agent's token was printed, or is missing from its config (%v)", err)
	}
	code, out, errs = runCmd(t, map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken}, "offboard", "--name", "cli-agent-2",
		"--home", home, "--unit-dir", units, "--json")
	if code != 0 || !strings.Contains(out, `"removed": true`) || !strings.Contains(errs, "[2/3] revoking") {
		t.Fatalf("offboard --json: %d\n%s\n%s", code, out, errs)
	}
}

// --hub takes several hubs, comma-separated and repeated; the sidecar
// config then lists them all.
func TestOnboardSeveralHubsCommand(t *testing.T) {
	a := hubtest.Start(t, "", func(c *hub.Config) { c.OpenRegistration = true })
	b := hubtest.Start(t, "")
	c := hubtest.Start(t, "")
	home, units := filepath.Join(t.TempDir(), "home"), filepath.Join(t.TempDir(), "units")
	code, out, errs := runCmd(t, nil, "onboard", "--hub", a.URL()+", "+b.URL(), "--hub", c.URL(), "--name", "multi",
		"--home", home, "--unit-dir", units, "--no-verify", "--json")
	var res onboarded
	mustJSON(t, "onboard --json", out, &res)
	if code != 0 || !strings.Contains(errs, "checking the 3 hubs") {
		t.Fatalf("onboard: %d\n%s\n%s", code, out, errs)
	}
	cfg, err := sidecar.LoadConfig(res.ConfigPath, nil)
	if err != nil || strings.Join(cfg.Hubs(), " ") != a.WSURL()+" "+b.WSURL()+" "+c.WSURL() || cfg.HubURL != a.WSURL() {
		t.Fatalf("config hubs %v (%v)", cfg.Hubs(), err)
	}
	var l urlList
	for range maxURLs {
		if err := l.Set("http://h"); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Set("http://one-too-many"); err == nil {
		t.Fatal("the URL list is not bounded")
	}
}
