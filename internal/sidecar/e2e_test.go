package sidecar

// End-to-end tests: the real hub (hubtest), the real `agentcom sidecar`
// binary or the sidecar in-process, and a fake agent script.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/gitflow"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/testenv"
)

// fakeAgent is the wake command of the e2e tests: it confirms at once and
// then, in the background (as a real agent session would run), waits for
// $CONTROL/<task>.go or $CONTROL/all.go before writing its result
// atomically. The description becomes the output.
const fakeAgent = `: > "$STARTED_FILE"
(
  while [ ! -e "$CONTROL/$TASK_ID.go" ] && [ ! -e "$CONTROL/all.go" ]; do sleep 0.05; done
  printf '{"status":"success","output":"did: %s"}' "$TASK_DESCRIPTION" > "$RESULT_FILE.tmp.$$" && mv "$RESULT_FILE.tmp.$$" "$RESULT_FILE"
) >/dev/null 2>&1 &
`

// buildAgentcom builds the binary once per test.
func buildAgentcom(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agentcom")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go toolchain not on PATH: %v", err)
	}
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/agentcom/agentcom/cmd/agentcom")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build agentcom: %v\n%s", err, out)
	}
	return bin
}

// e2eSetup writes a sidecar config for agent on hub h and returns it.
type e2eSetup struct {
	dir, config, control, log string
	cfg                       Config
}

func newE2E(t *testing.T, wsURL, agent, token string, wake string) e2eSetup {
	t.Helper()
	dir := t.TempDir()
	s := e2eSetup{dir: dir, config: filepath.Join(dir, "config.json"), control: filepath.Join(dir, "control"), log: filepath.Join(dir, "sidecar.log")}
	if err := os.MkdirAll(s.control, 0o700); err != nil {
		t.Fatal(err)
	}
	raw := map[string]any{"agent_id": agent, "token": token, "hub_url": wsURL, "capabilities": []string{"code"},
		"results_dir": "./results", "state_file": "./state/queue.json", "log_file": s.log, "log_level": "debug",
		"poll_interval_ms": 20, "result_settle_ms": 50, "reconnect_min_ms": 50, "reconnect_max_ms": 500,
		"ping_interval_ms": 1000, "progress_interval_ms": 500}
	if wake != "" {
		raw["wake_command"] = wake
	}
	b, _ := json.Marshal(raw)
	if err := os.WriteFile(s.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(s.config, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg = cfg
	return s
}

// proc is a running `agentcom sidecar` process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProc(t *testing.T, bin string, s e2eSetup) *proc {
	t.Helper()
	cmd := exec.Command(bin, "sidecar", "--config", s.config)
	cmd.Env = append(os.Environ(), "CONTROL="+s.control)
	cmd.Stdout, cmd.Stderr = nil, nil // the JSON log goes to log_file too
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(wait):
		t.Fatalf("sidecar did not exit on %v", sig)
	}
}

// waitTask polls the hub until the task satisfies cond.
func waitTask(t *testing.T, c *client.Client, id, what string, cond func(client.Task) bool) client.Task {
	t.Helper()
	var last client.Task
	testenv.Eventually(t, what, func() bool {
		tk, err := c.Task(context.Background(), id)
		last = tk
		return err == nil && cond(tk)
	}, testenv.Within(wait))
	return last
}

func historyCount(tk client.Task, event string) int {
	n := 0
	for _, e := range tk.History {
		if e.Event == event {
			n++
		}
	}
	return n
}

func goFile(t *testing.T, s e2eSetup, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.control, name), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readLog(s e2eSetup) string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// TestE2EProcess runs the real `agentcom sidecar` binary (built once).
func TestE2EProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildAgentcom(t)
	t.Run("tasks, SIGKILL and SIGTERM", func(t *testing.T) { e2eTasksAndSIGKILL(t, bin) })
	t.Run("hub restart and result while the hub is down", func(t *testing.T) { e2eHubRestart(t, bin) })
}

func e2eTasksAndSIGKILL(t *testing.T, bin string) {
	h := hubtest.Start(t, "", hubtest.FastTimers, hubtest.NoBackoff)
	agentTok := h.Token("e2e-agent", auth.RoleAgent)
	admin := client.New(h.URL(), h.AdminToken, nil)
	s := newE2E(t, h.WSURL(), "e2e-agent", agentTok, fakeAgent)
	p := startProc(t, bin, s)
	ctx := context.Background()

	// 1. Two tasks complete one after the other.
	goFile(t, s, "all.go")
	var ids []string
	for _, d := range []string{"first job", "second job"} {
		sub, err := admin.SubmitTask(ctx, client.TaskSubmit{Description: d})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sub.TaskID)
	}
	for i, id := range ids {
		tk := waitTask(t, admin, id, "task completed", func(tk client.Task) bool { return tk.Status == "completed" })
		var res map[string]any
		_ = json.Unmarshal(tk.Result, &res)
		if *tk.AssignedTo != "e2e-agent" || res["output"] != "did: "+[]string{"first job", "second job"}[i] {
			t.Fatalf("task %s = %+v result %v", id, tk, res)
		}
	}
	if err := os.Remove(filepath.Join(s.control, "all.go")); err != nil {
		t.Fatal(err)
	}

	// 2. SIGKILL mid-task, then restart: the task still completes, once.
	sub, err := admin.SubmitTask(ctx, client.TaskSubmit{Description: "survive a crash"})
	if err != nil {
		t.Fatal(err)
	}
	id := sub.TaskID
	testenv.Eventually(t, "agent working", func() bool { return fileExists(filepath.Join(s.cfg.ResultsDir, id+".started")) }, testenv.Within(wait))
	testenv.Eventually(t, "state saved", func() bool {
		st, _, err := LoadState(s.cfg.StateFile, time.Now())
		return err == nil && st.Active != nil && st.Active.TaskID == id
	}, testenv.Within(wait))
	p.signal(t, syscall.SIGKILL)
	p = startProc(t, bin, s)
	testenv.Eventually(t, "recovery announced", func() bool { return strings.Contains(readLog(s), `"event":"recovery_reporting"`) }, testenv.Within(wait))
	goFile(t, s, id+".go")
	tk := waitTask(t, admin, id, "crashed task completed", func(tk client.Task) bool { return tk.Status == "completed" })
	if n := historyCount(tk, "completed"); n != 1 {
		t.Fatalf("completed %d times: %+v", n, tk.History)
	}
	testenv.Eventually(t, "outbox drained", func() bool {
		st, _, err := LoadState(s.cfg.StateFile, time.Now())
		return err == nil && st.Active == nil && len(st.Outbox) == 0
	}, testenv.Within(wait))

	// 3. SIGTERM stops cleanly: exit status 0.
	p.signal(t, syscall.SIGTERM)
	if p.err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", p.err, readLog(s))
	}
	if !strings.Contains(readLog(s), `"event":"shutdown"`) {
		t.Fatal("no shutdown event")
	}
	if strings.Contains(readLog(s), agentTok) {
		t.Fatal("token in the log")
	}
}

func e2eHubRestart(t *testing.T, bin string) {
	h := hubtest.Start(t, "", hubtest.FastTimers)
	agentTok := h.Token("e2e-agent", auth.RoleAgent)
	s := newE2E(t, h.WSURL(), "e2e-agent", agentTok, fakeAgent)
	startProc(t, bin, s)
	ctx := context.Background()
	admin := client.New(h.URL(), h.AdminToken, nil)
	sub, err := admin.SubmitTask(ctx, client.TaskSubmit{Description: "long job"})
	if err != nil {
		t.Fatal(err)
	}
	id := sub.TaskID
	testenv.Eventually(t, "agent working", func() bool { return fileExists(filepath.Join(s.cfg.ResultsDir, id+".started")) }, testenv.Within(wait))

	// The hub restarts mid-task: the sidecar reconnects, re-announces the
	// task and the hub lets it continue.
	h.Restart()
	testenv.Eventually(t, "continued after hub restart", func() bool { return strings.Contains(readLog(s), `"event":"recovery_continued"`) }, testenv.Within(wait))

	// The hub goes down; the agent finishes meanwhile.
	addr, dir := h.Addr(), h.Dir
	h.Stop()
	goFile(t, s, id+".go")
	testenv.Eventually(t, "report kept in the outbox", func() bool {
		st, _, err := LoadState(s.cfg.StateFile, time.Now())
		return err == nil && st.Active == nil && len(st.Outbox) == 1
	}, testenv.Within(wait))
	// The hub comes back on the same address and data.
	h2 := hubtest.Start(t, dir, hubtest.FastTimers, func(c *hub.Config) { c.Addr = addr })
	admin = client.New(h2.URL(), h2.AdminToken, nil)
	tk := waitTask(t, admin, id, "completed after the hub came back", func(tk client.Task) bool { return tk.Status == "completed" })
	if n := historyCount(tk, "completed"); n != 1 {
		t.Fatalf("completed %d times", n)
	}
	var res map[string]any
	_ = json.Unmarshal(tk.Result, &res)
	if res["output"] != "did: long job" {
		t.Fatalf("result = %v", res)
	}
	testenv.Eventually(t, "outbox drained", func() bool {
		st, _, err := LoadState(s.cfg.StateFile, time.Now())
		return err == nil && len(st.Outbox) == 0
	}, testenv.Within(wait))
}

// holdProxy forwards an agent socket to the hub, holding the sidecar's
// task_recovering frames until the hub has pushed a task_assign, so the
// test controls which of the two the hub handles first.
type holdProxy struct {
	srv    *httptest.Server
	target string
	wg     sync.WaitGroup
}

func newHoldProxy(t *testing.T, target string) *holdProxy {
	t.Helper()
	p := &holdProxy{target: target}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() { p.srv.Close(); p.wg.Wait() })
	return p
}

func (p *holdProxy) url() string { return "ws" + strings.TrimPrefix(p.srv.URL, "http") + "/ws" }

func (p *holdProxy) serve(w http.ResponseWriter, r *http.Request) {
	down, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	down.SetReadLimit(1 << 24)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up, _, err := websocket.Dial(ctx, p.target, nil)
	if err != nil {
		_ = down.CloseNow()
		return
	}
	up.SetReadLimit(1 << 24)
	var mu sync.Mutex
	sawAssign := false
	var held [][]byte
	p.wg.Add(1)
	go func() { // hub -> sidecar
		defer p.wg.Done()
		defer cancel()
		for {
			_, b, err := up.Read(ctx)
			if err != nil {
				return
			}
			if err := down.Write(ctx, websocket.MessageText, b); err != nil {
				return
			}
			if strings.Contains(string(b), `"type":"task_assign"`) {
				mu.Lock()
				sawAssign = true
				rel := held
				held = nil
				mu.Unlock()
				for _, h := range rel {
					_ = up.Write(ctx, websocket.MessageText, h)
				}
			}
		}
	}()
	for { // sidecar -> hub
		_, b, err := down.Read(ctx)
		if err != nil {
			break
		}
		mu.Lock()
		if !sawAssign && strings.Contains(string(b), `"type":"task_recovering"`) {
			held = append(held, b)
			mu.Unlock()
			continue
		}
		mu.Unlock()
		if err := up.Write(ctx, websocket.MessageText, b); err != nil {
			break
		}
	}
	cancel()
	_ = up.CloseNow()
	_ = down.CloseNow()
}

func TestE2ERealHubBusyAssignIsRejected(t *testing.T) {
	h := hubtest.Start(t, "", hubtest.FastTimers)
	agentTok := h.Token("busy-agent", auth.RoleAgent)
	admin := client.New(h.URL(), h.AdminToken, nil)
	ctx := context.Background()
	px := newHoldProxy(t, h.WSURL())
	s := newE2E(t, px.url(), "busy-agent", agentTok, "")
	// The sidecar restarts holding a task the hub no longer gives it...
	old := "task-00000000000000aa"
	if err := os.MkdirAll(filepath.Dir(s.cfg.StateFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := SaveState(s.cfg.StateFile, State{Active: &Task{TaskID: old, Metadata: json.RawMessage(`{}`), Status: StatusWorking, Generation: 1}}); err != nil {
		t.Fatal(err)
	}
	// ...while a new task for it waits in the queue.
	sub, err := admin.SubmitTask(ctx, client.TaskSubmit{Description: "new work"})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, s.cfg, Options{})
	// The hub pushes the new task before it hears task_recovering: the
	// busy sidecar rejects it; the hub then says reassign for the old
	// task and, after its busy hold, assigns the new one again.
	testenv.Eventually(t, "busy rejection", func() bool { return r.log.has("task_rejected") }, testenv.Within(wait))
	tk := waitTask(t, admin, sub.TaskID, "rejection recorded", func(tk client.Task) bool { return historyCount(tk, "rejected") == 1 })
	for _, e := range tk.History {
		if e.Event == "rejected" && !strings.Contains(string(e.Details), "busy") {
			t.Fatalf("rejection details = %s", e.Details)
		}
	}
	testenv.Eventually(t, "old task dropped", func() bool { return r.log.has("recovery_reassigned") }, testenv.Within(wait))
	// The sidecar is free again: the next task is accepted and completed.
	// (The hub offers a declined task to other agents first and back to
	// its decliner only after the busy hold, so the next task checked here
	// is a fresh one.)
	next, err := admin.SubmitTask(ctx, client.TaskSubmit{Description: "after the rejection"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "next task accepted", func() bool {
		st, _, err := LoadState(s.cfg.StateFile, time.Now())
		return err == nil && st.Active != nil && st.Active.TaskID == next.TaskID
	}, testenv.Within(wait))
	writeResult(t, s.cfg, next.TaskID, map[string]any{"status": "success"})
	waitTask(t, admin, next.TaskID, "completed", func(tk client.Task) bool { return tk.Status == "completed" })
}

func TestE2EGitWorkflowWithRealRepo(t *testing.T) {
	h := hubtest.Start(t, "", hubtest.FastTimers)
	agentTok := h.Token("gcu-git", auth.RoleAgent)
	admin := client.New(h.URL(), h.AdminToken, nil)

	root := t.TempDir()
	origin, seed, work := filepath.Join(root, "origin.git"), filepath.Join(root, "seed"), filepath.Join(root, "work")
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@e"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git(root, "init", "-q", "--bare", "-b", "main", origin)
	git(root, "init", "-q", "-b", "main", seed)
	if err := os.WriteFile(filepath.Join(seed, "README"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(seed, "add", ".")
	git(seed, "commit", "-q", "-m", "chore: init")
	git(seed, "push", "-q", origin, "main")
	git(root, "clone", "-q", origin, work)

	// The agent commits its work on the task branch, then reports.
	agentScript := `cd "$REPO_DIR" && echo "$TASK_ID" > done.txt && git add done.txt && ` +
		`git -c user.name=agent -c user.email=a@e commit -q -m "feat: $TASK_ID" && : > "$STARTED_FILE" && ` +
		`echo '{"status":"success","output":"committed"}' > "$RESULT_FILE"`
	s := newE2E(t, h.WSURL(), "gcu-git", agentTok, agentScript)
	s.cfg.RepoDir = work
	repo, err := gitflowRepo(work, filepath.Join(root, "no-gh"))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s.cfg, Options{Git: repo})

	sub, err := admin.SubmitTask(context.Background(), client.TaskSubmit{Description: "Add done file"})
	if err != nil {
		t.Fatal(err)
	}
	tk := waitTask(t, admin, sub.TaskID, "completed", func(tk client.Task) bool { return tk.Status == "completed" })
	var res map[string]any
	_ = json.Unmarshal(tk.Result, &res)
	branch := "gcu/" + sub.TaskID + "-add-done-file"
	if res["branch"] != branch || !strings.Contains(res["git_error"].(string), "GitHub CLI (gh) not found") || res["output"] != "committed" {
		t.Fatalf("result = %v", res)
	}
	// The branch was pushed to origin with the agent's commit.
	if got := git(origin, "log", "-1", "--format=%s", "refs/heads/"+branch); got != "feat: "+sub.TaskID {
		t.Fatalf("pushed commit = %q", got)
	}
}

// gitflowRepo is the real git workflow on dir with gh at ghPath.
func gitflowRepo(dir, ghPath string) (*gitflow.Repo, error) {
	r, err := gitflow.New(dir)
	if err != nil {
		return nil, err
	}
	r.GH = ghPath
	return r, nil
}

func TestE2EFailureReachesTheDeadLetterWithItsOutput(t *testing.T) {
	h := hubtest.Start(t, "", hubtest.FastTimers, hubtest.NoBackoff)
	agentTok := h.Token("failer", auth.RoleAgent)
	admin := client.New(h.URL(), h.AdminToken, nil)
	s := newE2E(t, h.WSURL(), "failer", agentTok,
		`: > "$STARTED_FILE"; echo '{"status":"failed","reason":"tests fail","log":"3 failures"}' > "$RESULT_FILE"`)
	r := start(t, s.cfg, Options{})
	one := int64(1)
	sub, err := admin.SubmitTask(context.Background(), client.TaskSubmit{Description: "doomed", MaxRetries: &one})
	if err != nil {
		t.Fatal(err)
	}
	tk := waitTask(t, admin, sub.TaskID, "dead-lettered", func(tk client.Task) bool { return tk.Status == "dead_letter" })
	if !strings.Contains(string(tk.LastError), "tests fail") {
		t.Fatalf("last_error = %s", tk.LastError)
	}
	raw, _ := json.Marshal(tk)
	_, full := h.Do("GET", "/api/tasks/"+sub.TaskID, h.AdminToken, nil)
	if b, _ := json.Marshal(full); !strings.Contains(string(b), "3 failures") {
		t.Fatalf("the failed output is not kept: %s", raw)
	}
	testenv.Eventually(t, "ack received", func() bool { return r.log.has("report_acked") }, testenv.Within(wait))
}
