package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/testenv"
)

// The failover scenario's size, as issue 12 states it.
const (
	hubCount    = 3
	agentCount  = 30
	taskCount   = 2000
	msgCount    = 2000
	reconnectBy = 15 * time.Second // the dead hub's agents work again within this
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// agentcomBinary builds ./cmd/agentcom once for the package's tests.
func agentcomBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "agentcom-clustertest-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "agentcom")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/agentcom/agentcom/cmd/agentcom").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// hubProc is one `agentcom serve` process.
type hubProc struct {
	id   string
	url  string // http://127.0.0.1:port
	cmd  *exec.Cmd
	log  string
	dead bool
}

func (h *hubProc) wsURL() string { return "ws" + strings.TrimPrefix(h.url, "http") + "/ws" }

// freePort finds a loopback port nobody listens on (closed again at
// once: the hub binds it right after).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startHub(t *testing.T, bin, id, store, bus string) *hubProc {
	t.Helper()
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	logPath := filepath.Join(t.TempDir(), id+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--store", store, "--bus", bus, "--hub-id", id,
		"--addr", fmt.Sprintf("127.0.0.1:%d", port), "--advertise", url, "--data", t.TempDir(),
		"--log-format", "json", "--rate-limits", "off")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &hubProc{id: id, url: url, cmd: cmd, log: logPath}
	t.Cleanup(func() {
		if !h.dead {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("hub %s log (tail):\n%s", id, b)
		}
	})
	return h
}

func (h *hubProc) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = h.cmd.Wait()
	h.dead = true
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// do sends a JSON request and decodes a JSON answer.
func do(method, url, token string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %d %q: %w", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, nil
}

// health is what a hub's /health says about the cluster.
type health struct {
	Status string `json:"status"`
	Role   string `json:"role"`
	HubID  string `json:"hub_id"`
	Leader struct {
		HubID string `json:"hub_id"`
		Epoch int64  `json:"epoch"`
	} `json:"leader"`
	Agents int `json:"agents_connected"`
}

func hubHealth(url string) (health, error) {
	var h health
	st, err := do("GET", url+"/health", "", nil, &h)
	if err == nil && st != 200 {
		err = fmt.Errorf("health: %d", st)
	}
	return h, err
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, d, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFailover runs issue 12's failover scenario on both cross-hub buses:
// three hubs on one PostgreSQL, 30 agents spread over them, 2,000 tasks
// and 2,000 direct messages in flight, the leader killed with SIGKILL
// halfway. Every acknowledged task completes exactly once, every
// acknowledged message is delivered or waits in its mailbox, the dead
// hub's agents work again on the others, and the new leader runs the
// sweeps.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three hub processes and runs 4,000 operations; skipped with -short")
	}
	for _, bus := range []string{"postgres", "nats"} {
		t.Run(bus, func(t *testing.T) { runFailover(t, bus) })
	}
}

func runFailover(t *testing.T, busKind string) {
	store := testenv.Postgres(t)
	bus := busKind
	if busKind == "nats" {
		bus = testenv.NATS(t)
	}
	bin := agentcomBinary(t)

	// The first admin token is made offline, on the store, as an operator
	// does before the hubs start.
	out, err := exec.Command(bin, "token", "create", "--store", store, "--agent", "ops", "--admin", "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	var created struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &created); err != nil || created.Token == "" {
		t.Fatalf("token create output %q: %v", out, err)
	}
	admin := created.Token

	hubs := make([]*hubProc, hubCount)
	for i := range hubs {
		hubs[i] = startHub(t, bin, fmt.Sprintf("hub-%d", i), store, bus)
	}
	var leader *hubProc
	eventually(t, 60*time.Second, "every hub up and agreeing on one leader", func() (bool, string) {
		ids := map[string]bool{}
		for _, h := range hubs {
			st, err := hubHealth(h.url)
			if err != nil {
				return false, h.id + ": " + err.Error()
			}
			ids[st.Leader.HubID] = true
		}
		if len(ids) != 1 {
			return false, fmt.Sprintf("leaders seen: %v", ids)
		}
		for _, h := range hubs {
			if ids[h.id] {
				leader = h
			}
		}
		return leader != nil, fmt.Sprintf("leader %v is none of the hubs", ids)
	})
	before, _ := hubHealth(leader.url)
	t.Logf("leader: %s (epoch %d)", leader.id, before.Leader.Epoch)

	// Agents: tokens through any hub (followers forward to the leader);
	// agent i starts on hub i%3 and fails over to the next ones.
	agents := make([]*fleetAgent, agentCount)
	for i := range agents {
		id := fmt.Sprintf("agent-%02d", i)
		var tok struct {
			Token string `json:"token"`
		}
		if st, err := do("POST", hubs[i%hubCount].url+"/admin/tokens", admin, map[string]any{"agent_id": id}, &tok); err != nil || st/100 != 2 {
			t.Fatalf("create token for %s: %d %v", id, st, err)
		}
		urls := make([]string, hubCount)
		for j := range urls {
			urls[j] = hubs[(i+j)%hubCount].wsURL()
		}
		agents[i] = newFleetAgent(id, tok.Token, urls, "work")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for _, a := range agents {
		wg.Go(func() { a.run(ctx) })
	}
	eventually(t, 60*time.Second, "30 agents identified", func() (bool, string) {
		n := 0
		for _, a := range agents {
			if c, _, _ := a.snapshot(); c > 0 {
				n++
			}
		}
		return n == agentCount, fmt.Sprintf("%d identified", n)
	})
	var onLeader []*fleetAgent
	for _, a := range agents {
		if _, _, hub := a.snapshot(); a.urls[hub] == leader.wsURL() {
			onLeader = append(onLeader, a)
		}
	}

	// Load: tasks and direct messages, spread over the live hubs. Only
	// what a hub acknowledged counts; a request to the hub being killed
	// may fail, and the producer moves on to the next hub.
	var (
		ackMu     sync.Mutex
		ackTasks  []string
		ackMsgs   = map[string]string{} // message id -> recipient
		submitted atomic.Int64
		killOnce  sync.Once
		killedAt  time.Time
	)
	live := func(i int) *hubProc {
		for k := range hubCount {
			if h := hubs[(i+k)%hubCount]; !h.dead {
				return h
			}
		}
		return nil
	}
	killLeader := func() {
		killOnce.Do(func() {
			killedAt = time.Now()
			leader.kill(t)
			t.Logf("killed the leader %s after %d operations", leader.id, submitted.Load())
		})
	}
	var producers sync.WaitGroup
	producers.Go(func() {
		for i := range taskCount {
			if i == taskCount/2 {
				killLeader()
			}
			var r struct {
				ID string `json:"task_id"`
			}
			h := live(i)
			st, err := do("POST", h.url+"/api/tasks", admin, map[string]any{"description": fmt.Sprintf("task %d", i),
				"needed_capabilities": []string{"work"}}, &r)
			submitted.Add(1)
			if err == nil && st == 201 && r.ID != "" {
				ackMu.Lock()
				ackTasks = append(ackTasks, r.ID)
				ackMu.Unlock()
			}
		}
	})
	producers.Go(func() {
		for i := range msgCount {
			to := agents[i%agentCount].id
			var r struct {
				ID string `json:"id"`
			}
			h := live(i + 1)
			st, err := do("POST", h.url+"/api/message", admin, map[string]any{"to": to, "payload": map[string]any{"n": i}}, &r)
			submitted.Add(1)
			if err == nil && st == 200 && r.ID != "" {
				ackMu.Lock()
				ackMsgs[r.ID] = to
				ackMu.Unlock()
			}
		}
	})
	producers.Wait()
	killLeader() // in case the loop was short

	// A new leader, with a later epoch, on every survivor.
	var newLeader *hubProc
	eventually(t, 30*time.Second, "a new leader", func() (bool, string) {
		var why []string
		for _, h := range hubs {
			if h.dead {
				continue
			}
			st, err := hubHealth(h.url)
			if err != nil {
				return false, err.Error()
			}
			if st.Leader.HubID == leader.id || st.Leader.Epoch <= before.Leader.Epoch {
				return false, fmt.Sprintf("%s still sees %s (epoch %d)", h.id, st.Leader.HubID, st.Leader.Epoch)
			}
			for _, c := range hubs {
				if c.id == st.Leader.HubID {
					newLeader = c
				}
			}
			why = append(why, h.id+"->"+st.Leader.HubID)
		}
		return newLeader != nil, strings.Join(why, ", ")
	})
	t.Logf("new leader: %s", newLeader.id)

	// The dead hub's agents identified again on another hub, in time.
	var slowest time.Duration
	defer func() {
		t.Logf("the dead hub's %d agents were back within %s", len(onLeader), slowest.Round(time.Millisecond))
	}()
	for _, a := range onLeader {
		eventually(t, 60*time.Second, a.id+" back", func() (bool, string) {
			n, at, _ := a.snapshot()
			return n > 1 && at.After(killedAt), fmt.Sprintf("%d identifications", n)
		})
		_, at, _ := a.snapshot()
		slowest = max(slowest, at.Sub(killedAt))
		if d := at.Sub(killedAt); d > reconnectBy {
			t.Errorf("%s worked again %s after the kill, want within %s", a.id, d.Round(time.Millisecond), reconnectBy)
		}
	}

	// Every acknowledged task completes, exactly once.
	ackMu.Lock()
	tasks := append([]string(nil), ackTasks...)
	msgs := make(map[string]string, len(ackMsgs))
	for k, v := range ackMsgs {
		msgs[k] = v
	}
	ackMu.Unlock()
	t.Logf("acknowledged: %d tasks, %d messages", len(tasks), len(msgs))
	if len(tasks) < taskCount*9/10 || len(msgs) < msgCount*9/10 {
		t.Fatalf("too few acknowledged: %d tasks, %d messages (the survivors must keep answering)", len(tasks), len(msgs))
	}
	survivor := live(0)
	eventually(t, 120*time.Second, "every acknowledged task completed", func() (bool, string) {
		for _, id := range tasks {
			var tk struct {
				Status string `json:"status"`
			}
			if _, err := do("GET", survivor.url+"/api/tasks/"+id, admin, nil, &tk); err != nil || tk.Status != "completed" {
				return false, fmt.Sprintf("task %s: %q %v", id, tk.Status, err)
			}
		}
		return true, ""
	})
	completions := map[string]int{}
	for _, a := range agents {
		a.mu.Lock()
		for id, n := range a.completed {
			completions[id] += n
		}
		a.mu.Unlock()
	}
	for _, id := range tasks {
		if completions[id] > 1 {
			t.Errorf("task %s completed %d times", id, completions[id])
		}
	}

	// Every acknowledged message reached its agent live or waits in its
	// mailbox.
	byAgent := map[string]*fleetAgent{}
	for _, a := range agents {
		byAgent[a.id] = a
	}
	mailboxes := map[string]map[string]bool{}
	for _, a := range agents {
		var mb struct {
			Messages []struct {
				ID string `json:"id"`
			} `json:"messages"`
		}
		if st, err := do("GET", survivor.url+"/api/mailbox/"+a.id+"?since=0", a.token, nil, &mb); err != nil || st != 200 {
			t.Fatalf("mailbox of %s: %d %v", a.id, st, err)
		}
		mailboxes[a.id] = map[string]bool{}
		for _, m := range mb.Messages {
			mailboxes[a.id][m.ID] = true
		}
	}
	lost := 0
	for id, to := range msgs {
		a := byAgent[to]
		a.mu.Lock()
		got := a.messages[id]
		a.mu.Unlock()
		if !got && !mailboxes[to][id] {
			lost++
			if lost <= 5 {
				t.Errorf("message %s to %s neither delivered nor in the mailbox", id, to)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged messages lost", lost, len(msgs))
	}

	// The new leader runs the sweeps: a task held past its deadline by an
	// agent that never finishes is taken back (task_reassign, "deadline").
	var lazyTok struct {
		Token string `json:"token"`
	}
	if st, err := do("POST", survivor.url+"/admin/tokens", admin, map[string]any{"agent_id": "lazy-1"}, &lazyTok); err != nil || st/100 != 2 {
		t.Fatalf("lazy token: %d %v", st, err)
	}
	lazy := newFleetAgent("lazy-1", lazyTok.Token, []string{survivor.wsURL()}, "slow")
	lazy.lazy = true
	wg.Go(func() { lazy.run(ctx) })
	var tk struct {
		ID string `json:"task_id"`
	}
	if st, err := do("POST", survivor.url+"/api/tasks", admin, map[string]any{"description": "never finished",
		"needed_capabilities": []string{"slow"}, "complete_by": time.Now().Add(2 * time.Second).UnixMilli()}, &tk); err != nil || st != 201 {
		t.Fatalf("submit deadline task: %d %v", st, err)
	}
	eventually(t, 60*time.Second, "the deadline sweep on the new leader", func() (bool, string) {
		lazy.mu.Lock()
		defer lazy.mu.Unlock()
		return lazy.reassigned[tk.ID] == "deadline", fmt.Sprintf("reassigned: %v", lazy.reassigned)
	})
}
