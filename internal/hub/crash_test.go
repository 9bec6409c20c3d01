package hub_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
)

// The crash test runs the hub in a child process (this test binary,
// re-executed with these variables set) so it can be killed with SIGKILL.
const (
	crashDirEnv  = "AGENTCOM_CRASH_CHILD_DIR"
	crashAddrEnv = "AGENTCOM_CRASH_CHILD_ADDR"
	crashReady   = "CRASH_CHILD_LISTENING "
)

// TestCrashChildHub is the child side: it serves a hub until it is killed.
func TestCrashChildHub(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as the child process of TestTaskEngineSurvivesKill9")
	}
	cfg := crashConfig(dir, os.Getenv(crashAddrEnv))
	h, err := hub.New(cfg)
	if err != nil {
		fmt.Println("CRASH_CHILD_ERROR", err)
		os.Exit(3)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Println("CRASH_CHILD_ERROR", err)
		os.Exit(3)
	}
	if err := h.Serve(ln); err != nil {
		fmt.Println("CRASH_CHILD_ERROR", err)
		os.Exit(3)
	}
	fmt.Println(crashReady + ln.Addr().String())
	select {} // until SIGKILL
}

func crashConfig(dir, addr string) hub.Config {
	cfg := hub.DefaultConfig()
	cfg.DataDir, cfg.Addr = dir, addr
	cfg.AcceptTimeout = time.Second // assignments lost in the crash come back fast
	cfg.Queue.BackoffBase = 0
	cfg.Scheduler.SweepInterval = 100 * time.Millisecond
	cfg.RateLimits = nil // the submitters and pollers are one busy caller
	return cfg
}

// TestTaskEngineSurvivesKill9 submits 200 tasks to a hub in a child
// process while six agents work on them, kills the hub with SIGKILL in the
// middle, restarts it on the same data directory and port, and checks that
// every task whose submission was answered 201 ends completed exactly
// once, with nothing left queued, assigned or dead-lettered.
func TestTaskEngineSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns hub processes")
	}
	const total, nAgents = 200, 6
	dir := t.TempDir()
	// Tokens are made offline, as the operator's CLI does.
	setup, err := hub.New(crashConfig(dir, "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := setup.Tokens.Create("admin", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	agentTokens := make([]string, nAgents)
	for i := range agentTokens {
		if agentTokens[i], err = setup.Tokens.Create(fmt.Sprintf("crash-agent-%d", i), auth.RoleAgent); err != nil {
			t.Fatal(err)
		}
	}
	if err := setup.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(crashHTTP.CloseIdleConnections)
	child := startCrashChild(t, dir, "127.0.0.1:0")
	addr := child.addr
	base := "http://" + addr

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ledger := &crashLedger{acks: map[string]int{}, dups: map[string]int{}}
	var wg sync.WaitGroup
	for i := range nAgents {
		a := &crashAgent{id: fmt.Sprintf("crash-agent-%d", i), token: agentTokens[i], url: "ws://" + addr + "/ws",
			ledger: ledger, rng: rand.New(rand.NewSource(int64(i)))}
		wg.Add(1)
		go func() { defer wg.Done(); a.run(ctx) }()
	}

	// Submit at a steady pace while a killer waits for a third of the
	// tasks to be done, then SIGKILLs the hub and restarts it.
	// The killer waits until half the tasks are submitted and some are
	// done; submitters pause at three quarters until the kill, so the
	// hub always dies while submissions are still going on.
	var submittedAtKill atomic.Int64
	var nSubmitted atomic.Int64
	killedCh := make(chan struct{})
	go func() {
		for ledger.completed() < total/6 || nSubmitted.Load() < total/2 {
			if ctx.Err() != nil {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		submittedAtKill.Store(nSubmitted.Load())
		_ = child.cmd.Process.Kill() // SIGKILL; the test goroutine restarts it
		close(killedCh)
	}()
	// Four submitters, so submissions outrun the agents and many tasks are
	// queued or held when the hub dies.
	var mu sync.Mutex
	var submitted []string
	var subs sync.WaitGroup
	for w := range 4 {
		subs.Add(1)
		go func() {
			defer subs.Done()
			for n := w; ; n += 4 {
				mu.Lock()
				full, gate := len(submitted) >= total, len(submitted) >= total*3/4
				mu.Unlock()
				if full {
					return
				}
				if gate {
					select {
					case <-killedCh:
					case <-ctx.Done():
						return
					}
				}
				st, id, err := crashSubmit(base, admin, n)
				if err != nil || st != 201 {
					time.Sleep(20 * time.Millisecond) // hub down: try again (the lost attempt may or may not exist)
					continue
				}
				mu.Lock()
				if len(submitted) < total {
					submitted = append(submitted, id)
				}
				nSubmitted.Store(int64(len(submitted)))
				mu.Unlock()
			}
		}()
	}
	select {
	case <-killedCh:
	case <-time.After(60 * time.Second):
		cancel()
		subs.Wait()
		t.Fatalf("the hub was never killed (%d submitted, %d completed)", nSubmitted.Load(), ledger.completed())
	}
	select {
	case <-child.done:
	case <-time.After(10 * time.Second):
		t.Fatal("killed hub did not exit")
	}
	child = startCrashChild(t, dir, addr)
	subs.Wait()
	if n := submittedAtKill.Load(); n >= total {
		t.Fatalf("hub killed after all %d submissions", n)
	}
	t.Logf("hub killed after %d submitted and %d+ completed", submittedAtKill.Load(), total/6)

	// Wait until every submitted task is completed and its completion
	// acknowledged to an agent (the last acks may still be in flight when
	// the stats already say completed).
	told := func() (missing string) {
		for _, id := range submitted {
			if ledger.ack(id)+ledger.dup(id) == 0 {
				return id
			}
		}
		return ""
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, body, err := crashGet(base, admin, "/api/tasks/stats")
		if err == nil {
			bs, _ := body["by_status"].(map[string]any)
			if bs["queued"] == nil && bs["assigned"] == nil && len(submitted) == total && told() == "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks never finished, or one never acknowledged (%q): %v %v", told(), body, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()

	for _, id := range submitted {
		st, task, err := crashGet(base, admin, "/api/tasks/"+id)
		if err != nil || st != 200 {
			t.Fatalf("task %s lost: %d %v", id, st, err)
		}
		completed := 0
		for _, h := range task["history"].([]any) {
			if h.(map[string]any)["event"] == "completed" {
				completed++
			}
		}
		attempts := 0
		for _, a := range task["attempts"].([]any) {
			if a.(map[string]any)["outcome"] == "completed" {
				attempts++
			}
		}
		if task["status"] != "completed" || completed != 1 || attempts != 1 {
			t.Fatalf("task %s: status %v, %d completed entries, %d completed attempts", id, task["status"], completed, attempts)
		}
		if n := ledger.ack(id); n > 1 {
			t.Fatalf("task %s acknowledged as completed %d times", id, n)
		}
		if ledger.ack(id)+ledger.dup(id) == 0 {
			t.Fatalf("task %s completed but no agent was told", id)
		}
	}
	_, all, err := crashGet(base, admin, "/api/tasks")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range all["tasks"].([]any) {
		if task := x.(map[string]any); task["status"] != "completed" {
			t.Fatalf("task %v left %v", task["id"], task["status"])
		}
	}
	_, stats, _ := crashGet(base, admin, "/api/tasks/stats")
	if stats["dead_letter"] != float64(0) || stats["by_status"].(map[string]any)["completed"] != all["count"] {
		t.Fatalf("stats %v, listed %v", stats, all["count"])
	}
	t.Logf("%d tasks (%d listed), %d resent completions acknowledged as duplicates", total, int(all["count"].(float64)), ledger.dupTotal())
	child.kill(t)
}

// crashChild is a running child hub.
type crashChild struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

func startCrashChild(t *testing.T, dir, addr string) *crashChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildHub$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashAddrEnv+"="+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &crashChild{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() { c.kill(t) })
	go func() { _ = cmd.Wait(); close(c.done) }()
	c.addr = childAddr(t, out, c.done)
	return c
}

// childAddr reads a child hub's stdout until it says where it listens
// (then drains the rest in the background) and returns that address. It
// fails the test when the child reports an error, exits, or takes over a
// minute.
func childAddr(t *testing.T, out io.Reader, exited <-chan struct{}) string {
	t.Helper()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, crashReady) || strings.HasPrefix(line, "CRASH_CHILD_ERROR") {
				select {
				case ready <- line:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, crashReady) {
			t.Fatalf("child hub: %s", line)
		}
		return strings.TrimPrefix(line, crashReady)
	case <-exited:
		t.Fatal("child hub exited before listening")
	case <-time.After(60 * time.Second):
		t.Fatal("child hub did not start")
	}
	return ""
}

// kill sends SIGKILL and waits for the process to go (idempotent).
func (c *crashChild) kill(t *testing.T) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Errorf("child hub did not die")
	}
}

var crashHTTP = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}

func crashSubmit(base, token string, n int) (int, string, error) {
	b, _ := json.Marshal(map[string]any{"description": fmt.Sprint("crash task ", n), "priority": []string{"urgent", "high", "normal", "low"}[n%4]})
	req, _ := http.NewRequest("POST", base+"/api/tasks", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := crashHTTP.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, "", err
	}
	id, _ := body["task_id"].(string)
	return resp.StatusCode, id, nil
}

func crashGet(base, token, path string) (int, map[string]any, error) {
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := crashHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	err = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, err
}

// crashLedger counts what agents were told about completions.
type crashLedger struct {
	mu   sync.Mutex
	acks map[string]int // task_ack complete, first time
	dups map[string]int // task_ack complete marked duplicate
}

func (l *crashLedger) record(id string, dup bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if dup {
		l.dups[id]++
	} else {
		l.acks[id]++
	}
}

func (l *crashLedger) completed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

func (l *crashLedger) ack(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acks[id]
}

func (l *crashLedger) dup(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dups[id]
}

func (l *crashLedger) dupTotal() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.dups {
		n += v
	}
	return n
}

// crashAgent behaves like a sidecar with an outbox: it works on one task
// at a time, keeps its completion until the hub acknowledges it, resends
// it after reconnecting, and asks about a task it had not finished with
// task_recovering.
type crashAgent struct {
	id, token, url string
	ledger         *crashLedger
	rng            *rand.Rand

	active string // task being worked on
	gen    int64
	sent   bool // completion sent, no answer yet
}

func (a *crashAgent) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := a.session(ctx); err != nil && ctx.Err() == nil {
			time.Sleep(30 * time.Millisecond) // hub down: reconnect
		}
	}
}

// session runs one connection until it breaks.
func (a *crashAgent) session(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	c, _, err := websocket.Dial(dctx, a.url, nil)
	cancel()
	if err != nil {
		return err
	}
	defer c.CloseNow()
	send := func(f map[string]any) error {
		b, _ := json.Marshal(f)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return c.Write(wctx, websocket.MessageText, b)
	}
	if err := send(map[string]any{"type": "identify", "agent_id": a.id, "token": a.token, "name": a.id,
		"capabilities": []string{}, "client_type": "sidecar", "protocol_version": 1}); err != nil {
		return err
	}
	complete := func() error {
		a.sent = true
		return send(map[string]any{"type": "task_complete", "task_id": a.active, "generation": a.gen,
			"result": map[string]any{"status": "success", "by": a.id}, "protocol_version": 1})
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return err
		}
		var f map[string]any
		if err := json.Unmarshal(data, &f); err != nil {
			return err
		}
		id, _ := f["task_id"].(string)
		switch f["type"] {
		case "identified":
			switch {
			case a.active != "" && a.sent:
				err = complete() // the outbox: resend until acknowledged
			case a.active != "":
				err = send(map[string]any{"type": "task_recovering", "task_id": a.active, "protocol_version": 1})
			}
		case "task_assign":
			if a.active != "" {
				err = send(map[string]any{"type": "task_rejected", "task_id": id, "reason": "busy"})
				break
			}
			a.active, a.gen, a.sent = id, int64(f["generation"].(float64)), false
			if err = send(map[string]any{"type": "task_accepted", "task_id": id, "protocol_version": 1}); err == nil {
				time.Sleep(time.Duration(10+a.rng.Intn(30)) * time.Millisecond) // the work
				err = complete()
			}
		case "task_continue":
			if id == a.active {
				a.gen = int64(f["generation"].(float64))
				err = complete()
			}
		case "task_reassign":
			if id == a.active {
				a.active, a.sent = "", false
			}
		case "task_ack":
			if id == a.active && f["status"] == "complete" {
				dup, _ := f["duplicate"].(bool)
				a.ledger.record(id, dup)
				a.active, a.sent = "", false
			}
		case "error":
			if id != "" && id == a.active {
				a.active, a.sent = "", false // refused for good: drop it
			}
		}
		if err != nil {
			return err
		}
	}
}
