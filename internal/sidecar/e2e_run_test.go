package sidecar

// End-to-end tests of run mode: the real hub (hubtest), the real
// `agentcom sidecar` binary, the real `agentcom task` CLI, and shell agents.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/testenv"
)

// newRunE2E writes a run-mode sidecar config for agent on hub h.
func newRunE2E(t *testing.T, h *hubtest.Hub, agent, run string, extra map[string]any) e2eSetup {
	t.Helper()
	s := newE2E(t, h.WSURL(), agent, h.Token(agent, auth.RoleAgent), "")
	raw := map[string]any{}
	b, _ := os.ReadFile(s.config)
	_ = json.Unmarshal(b, &raw)
	raw["run_command"] = run
	raw["output_interval_ms"] = 50
	raw["kill_grace_ms"] = 2000
	raw["work_dir"] = filepath.Join(s.dir, "work")
	if err := os.MkdirAll(filepath.Join(s.dir, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		raw[k] = v
	}
	b, _ = json.Marshal(raw)
	if err := os.WriteFile(s.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(s.config, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg = cfg
	killAgentOnCleanup(t, cfg.StateFile)
	return s
}

// cli runs the agentcom CLI against hub h with the admin token.
func cli(t *testing.T, bin string, h *hubtest.Hub, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "AGENTCOM_HUB="+h.URL(), "AGENTCOM_TOKEN="+h.AdminToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("agentcom %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func activeRun(t *testing.T, s e2eSetup, id string) *RunState {
	t.Helper()
	var rs *RunState
	testenv.Eventually(t, "agent process recorded", func() bool {
		st, _, err := LoadState(s.cfg.StateFile, time.Now())
		if err == nil && st.Active != nil && st.Active.TaskID == id && st.Active.Run != nil {
			rs = st.Active.Run
		}
		return rs != nil
	}, testenv.Within(wait))
	return rs
}

// TestE2ERunMode runs run-mode agents under the real sidecar binary.
func TestE2ERunMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildAgentcom(t)
	t.Run("long run streams to task logs -f and reports usage", func(t *testing.T) { e2eRunLongStreamsAndUsage(t, bin) })
	t.Run("cancel stops the process group", func(t *testing.T) { e2eRunCancel(t, bin) })
	t.Run("verification fails once and passes on the retry", func(t *testing.T) { e2eRunVerify(t, bin) })
	t.Run("SIGKILLed sidecar neither loses nor doubles the agent", func(t *testing.T) { e2eRunSIGKILL(t, bin) })
}

// The agent works longer than the wake timeout (the original's fixed 60 s,
// configured down to 200 ms here), streams output that `agentcom task
// logs -f` prints while it runs, and reports usage the API sums.
func e2eRunLongStreamsAndUsage(t *testing.T, bin string) {
	h := hubtest.Start(t, "", hubtest.FastTimers, hubtest.NoBackoff)
	agent := `i=0; echo "agent $AGENT_ID starts $TASK_ID"
echo '{"agentcom_usage":{"input_tokens":1000,"output_tokens":200,"cost_usd":0.02}}'
while [ ! -e "$CONTROL/$TASK_ID.go" ]; do i=$((i+1)); echo "working step $i"; sleep 0.05; done
echo '{"agentcom_usage":{"input_tokens":500,"output_tokens":100,"cost_usd":0.01}}'
echo "all done"`
	s := newRunE2E(t, h, "runner", agent, map[string]any{"wake_timeout_ms": 200})
	startProc(t, bin, s)
	admin := client.New(h.URL(), h.AdminToken, nil)
	ctx := context.Background()
	sub, err := admin.SubmitTask(ctx, client.TaskSubmit{Description: "long job"})
	if err != nil {
		t.Fatal(err)
	}
	id := sub.TaskID
	rs := activeRun(t, s, id)

	// Follow the output with the real CLI while the agent runs.
	follow := exec.Command(bin, "task", "logs", id, "-f")
	follow.Env = append(os.Environ(), "AGENTCOM_HUB="+h.URL(), "AGENTCOM_TOKEN="+h.AdminToken)
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	follow.Stderr = io.Discard
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = follow.Process.Kill(); _ = follow.Wait() })
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var seen []string
	deadline := time.After(wait)
	for !strings.Contains(strings.Join(seen, "\n"), "working step 3") {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("task logs -f ended early: %q", seen)
			}
			seen = append(seen, l)
		case <-deadline:
			t.Fatalf("task logs -f showed no live output: %q", seen)
		}
	}
	if tk, err := admin.Task(ctx, id); err != nil || tk.Status != "assigned" {
		t.Fatalf("output seen, but the task is %q (%v): not live", tk.Status, err)
	}
	// Keep it running past several wake timeouts before letting it end.
	testenv.Eventually(t, "running past the wake timeout", func() bool {
		return time.Since(time.UnixMilli(rs.StartedAt)) > 3*200*time.Millisecond && groupAlive(rs.PGID)
	}, testenv.Within(wait))
	goFile(t, s, id+".go")
	tk := waitTask(t, admin, id, "completed", func(tk client.Task) bool { return tk.Status == "completed" })
	for l := range lines { // the follower prints the rest and exits when the task ended
		seen = append(seen, l)
	}
	if err := follow.Wait(); err != nil {
		t.Fatalf("task logs -f: %v", err)
	}
	all := strings.Join(seen, "\n")
	if !strings.Contains(all, "agent runner starts "+id) || !strings.Contains(all, "all done") {
		t.Fatalf("followed output = %q", all)
	}
	var res map[string]any
	_ = json.Unmarshal(tk.Result, &res)
	if !strings.Contains(res["output"].(string), "all done") {
		t.Fatalf("result = %v", res)
	}
	want := protocol.Usage{InputTokens: 1500, OutputTokens: 300, TotalTokens: 1800, CostUSD: 0.03}
	if tk.Usage == nil || tk.Usage.TotalTokens != want.TotalTokens || tk.Usage.InputTokens != 1500 || !near(tk.Usage.CostUSD, 0.03) {
		t.Fatalf("task usage = %+v", tk.Usage)
	}
	if string(tk.TokensUsed) != "1800" {
		t.Fatalf("tokens_used = %s", tk.TokensUsed)
	}
	var m struct {
		Usage struct {
			Total   protocol.Usage            `json:"total"`
			ByAgent map[string]protocol.Usage `json:"by_agent"`
			Hourly  []struct {
				TotalTokens int64 `json:"total_tokens"`
			} `json:"hourly"`
			Daily []struct {
				TotalTokens int64 `json:"total_tokens"`
			} `json:"daily"`
		} `json:"usage"`
	}
	testenv.Eventually(t, "usage in /api/metrics", func() bool {
		_ = admin.Do(ctx, "GET", "/api/metrics", nil, &m, nil)
		return m.Usage.Total.TotalTokens == 1800
	}, testenv.Within(wait))
	if u := m.Usage.ByAgent["runner"]; u.TotalTokens != 1800 || !near(u.CostUSD, 0.03) || len(m.Usage.Hourly) != 1 ||
		m.Usage.Hourly[0].TotalTokens != 1800 || len(m.Usage.Daily) != 1 || m.Usage.Daily[0].TotalTokens != 1800 {
		t.Fatalf("metrics usage = %+v", m.Usage)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// Cancelling through the CLI stops the agent's whole process group.
func e2eRunCancel(t *testing.T, bin string) {
	h := hubtest.Start(t, "", hubtest.FastTimers)
	s := newRunE2E(t, h, "cancelee", `sleep 600 & echo "helper $!"; while :; do echo tick; sleep 0.05; done`, nil)
	startProc(t, bin, s)
	admin := client.New(h.URL(), h.AdminToken, nil)
	sub, err := admin.SubmitTask(context.Background(), client.TaskSubmit{Description: "forever"})
	if err != nil {
		t.Fatal(err)
	}
	rs := activeRun(t, s, sub.TaskID)
	testenv.Eventually(t, "output reached the hub", func() bool {
		l, err := admin.TaskLogs(context.Background(), sub.TaskID, 0, 0)
		return err == nil && strings.Contains(l.Data, "tick")
	}, testenv.Within(wait))
	if !groupAlive(rs.PGID) {
		t.Fatal("agent not running")
	}
	out := cli(t, bin, h, "task", "cancel", sub.TaskID)
	if !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel said %s", out)
	}
	testenv.Eventually(t, "process group gone", func() bool { return !groupAlive(rs.PGID) }, testenv.Within(wait))
	testenv.Eventually(t, "stop logged", func() bool { return strings.Contains(readLog(s), `"event":"run_stopped"`) }, testenv.Within(wait))
	if err := syscall.Kill(rs.PID, 0); err == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(rs.PID) + "/stat"); len(b) > 0 && !strings.Contains(string(b), ") Z") {
			t.Fatalf("agent pid %d still alive", rs.PID)
		}
	}
	l, err := admin.TaskLogs(context.Background(), sub.TaskID, 0, 0)
	if err != nil || !l.Done || l.Status != "cancelled" {
		t.Fatalf("logs after cancel = %+v, %v", l, err)
	}
}

// A task submitted with --verify: the first run fails the check, the
// agent runs again with VERIFY_FEEDBACK (file and variable) and passes.
func e2eRunVerify(t *testing.T, bin string) {
	h := hubtest.Start(t, "", hubtest.FastTimers)
	agent := `echo '{"agentcom_usage":{"total_tokens":10}}'
if [ -n "$VERIFY_FEEDBACK_FILE" ] && [ -f "$VERIFY_FEEDBACK_FILE" ] && [ -n "$VERIFY_FEEDBACK" ]; then
  cp "$VERIFY_FEEDBACK_FILE" feedback-seen; echo fixed > state; echo "run $RUN_ATTEMPT: fixed it"
else
  echo broken > state; echo "run $RUN_ATTEMPT: first try"
fi`
	s := newRunE2E(t, h, "verifier", agent, nil)
	startProc(t, bin, s)
	out := cli(t, bin, h, "task", "submit", "make state fixed", "--verify", `grep -q fixed state || { echo "state is $(cat state)"; exit 4; }`,
		"--max-verify-attempts", "2", "--json")
	var sub client.Submitted
	if err := json.Unmarshal([]byte(out), &sub); err != nil {
		t.Fatalf("submit output %q: %v", out, err)
	}
	admin := client.New(h.URL(), h.AdminToken, nil)
	tk := waitTask(t, admin, sub.TaskID, "completed", func(tk client.Task) bool { return tk.Status == "completed" })
	var checks []protocol.VerifyCheck
	for i := len(tk.History) - 1; i >= 0; i-- { // history is newest first
		if e := tk.History[i]; e.Event == "verify" {
			var c protocol.VerifyCheck
			if err := json.Unmarshal(e.Details, &c); err != nil {
				t.Fatal(err)
			}
			checks = append(checks, c)
		}
	}
	if len(checks) != 2 || checks[0].Passed || checks[0].ExitCode != 4 || checks[0].Attempt != 1 ||
		!strings.Contains(checks[0].OutputTail, "state is broken") || !checks[1].Passed || checks[1].Attempt != 2 {
		t.Fatalf("verify history = %+v", checks)
	}
	fb, err := os.ReadFile(filepath.Join(s.cfg.WorkDir, "feedback-seen"))
	if err != nil || !strings.Contains(string(fb), "state is broken") || !strings.Contains(string(fb), "exit code 4") {
		t.Fatalf("feedback the agent saw = %q, %v", fb, err)
	}
	var res map[string]any
	_ = json.Unmarshal(tk.Result, &res)
	if !strings.Contains(res["output"].(string), "run 2: fixed it") {
		t.Fatalf("result = %v", res)
	}
	if tk.Usage == nil || tk.Usage.TotalTokens != 20 {
		t.Fatalf("usage over both runs = %+v", tk.Usage)
	}
}

// A sidecar SIGKILLed while its agent runs: the agent keeps running, the
// restarted sidecar finds it again, and the task completes once, with the
// agent never started a second time while the first one lived.
func e2eRunSIGKILL(t *testing.T, bin string) {
	h := hubtest.Start(t, "", hubtest.FastTimers, hubtest.NoBackoff)
	agent := `if [ -e "$CONTROL/running" ] && kill -0 "$(cat "$CONTROL/running")" 2>/dev/null; then echo overlap >> "$CONTROL/overlap"; fi
echo $$ > "$CONTROL/running"; echo start >> "$CONTROL/starts"
while [ ! -e "$CONTROL/$TASK_ID.go" ]; do echo alive; sleep 0.05; done
echo finished`
	s := newRunE2E(t, h, "crasher", agent, nil)
	p := startProc(t, bin, s)
	admin := client.New(h.URL(), h.AdminToken, nil)
	sub, err := admin.SubmitTask(context.Background(), client.TaskSubmit{Description: "survive"})
	if err != nil {
		t.Fatal(err)
	}
	id := sub.TaskID
	rs := activeRun(t, s, id)
	p.signal(t, syscall.SIGKILL)
	if !groupAlive(rs.PGID) {
		t.Fatal("the agent died with the sidecar")
	}
	startProc(t, bin, s)
	testenv.Eventually(t, "agent found again", func() bool { return strings.Contains(readLog(s), `"event":"run_adopted"`) }, testenv.Within(wait))
	goFile(t, s, id+".go")
	tk := waitTask(t, admin, id, "completed", func(tk client.Task) bool { return tk.Status == "completed" })
	if n := historyCount(tk, "completed"); n != 1 {
		t.Fatalf("completed %d times", n)
	}
	starts, _ := os.ReadFile(filepath.Join(s.control, "starts"))
	if n := strings.Count(string(starts), "start"); n != 1 {
		t.Fatalf("agent started %d times\n%s", n, readLog(s))
	}
	if b, err := os.ReadFile(filepath.Join(s.control, "overlap")); err == nil {
		t.Fatalf("two agents ran at once: %s", b)
	}
	var res map[string]any
	_ = json.Unmarshal(tk.Result, &res)
	if !strings.Contains(res["output"].(string), "finished") {
		t.Fatalf("result = %v", res)
	}
}
