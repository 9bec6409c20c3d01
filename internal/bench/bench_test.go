package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/testenv"
)

// childHubEnv makes the test binary act as a hub process (the stand-in
// for "agentcom serve" in the child-process tests).
const childHubEnv = "AGENTCOM_BENCH_TEST_HUB"

func TestMain(m *testing.M) {
	if os.Getenv(childHubEnv) == "1" {
		os.Exit(serveChildHub())
	}
	testenv.VerifyNone(m)
}

// serveChildHub runs a hub on $ADDR over $DIR until SIGTERM.
func serveChildHub() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg := hub.DefaultConfig()
	cfg.Addr, cfg.DataDir, cfg.RateLimits = os.Getenv("ADDR"), os.Getenv("DIR"), nil
	h, err := hub.New(cfg)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	if err := h.Start(); err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	<-ctx.Done()
	if err := h.Shutdown(context.Background()); err != nil {
		return 1
	}
	return 0
}

func testHubCommand(addr, dir string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childHubEnv+"=1", "ADDR="+addr, "DIR="+dir)
	return cmd
}

// tiny is a run small enough for CI: every scenario in a few seconds.
func tiny(t *testing.T, scenario string) Options {
	return Options{
		Scenario: scenario, Agents: 4, Tasks: 40, Samples: 5, Messages: 60, Broadcasts: 3, Window: 4,
		Submitters: 4, ConnectWorkers: 4, Duration: 300 * time.Millisecond, PingInterval: 100 * time.Millisecond,
		StorageRecords: 2000, StorageWriters: 2, StoragePhase: 200 * time.Millisecond, Records: 200,
		TempDir: t.TempDir(), Timeout: time.Minute,
	}
}

func figure(t *testing.T, res *Result, name string) Figure {
	t.Helper()
	for _, f := range res.Figures {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("%s: no figure %q in %+v", res.Scenario, name, res.Figures)
	return Figure{}
}

func runOne(t *testing.T, o Options) *Result {
	t.Helper()
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("run %s: %v", o.Scenario, err)
	}
	if len(rep.Scenarios) != 1 {
		t.Fatalf("want 1 result, got %d", len(rep.Scenarios))
	}
	res := rep.Scenarios[0]
	if res.Error != "" {
		t.Fatalf("%s: %s", res.Scenario, res.Error)
	}
	return res
}

func TestIdleScenarioChildHub(t *testing.T) {
	o := tiny(t, ScenarioIdle)
	o.HubCommand = testHubCommand
	res := runOne(t, o)
	if res.Hub != KindChild {
		t.Fatalf("hub = %q, want child-process", res.Hub)
	}
	if v := figure(t, res, "rss_before").Value; v <= 0 {
		t.Errorf("rss before = %v", v)
	}
	// A share of the machine: at least 0, at most every core. (readCPU
	// itself is checked against a spinning process in TestReadCPUFollowsWork.)
	if f := figure(t, res, "cpu_during_hold"); f.Value < 0 || f.Value > 100*float64(runtime.NumCPU()) || f.Unit != "% of a core" {
		t.Errorf("cpu = %v %s", f.Value, f.Unit)
	}
}

func TestRestartScenarioMailbox(t *testing.T) {
	o := tiny(t, ScenarioRestart)
	o.RecordKind = RecordMailbox
	res := runOne(t, o)
	if v := figure(t, res, "until_serving").Value; v <= 0 {
		t.Errorf("until serving = %v", v)
	}
}

// The history kind stores ended tasks through the queue (submit, then
// cancel) and starts a hub over them.
func TestRestartScenarioEndedTasks(t *testing.T) {
	o := tiny(t, ScenarioRestart)
	o.RecordKind = RecordEndedTasks
	res := runOne(t, o)
	if v := figure(t, res, "until_serving").Value; v <= 0 {
		t.Errorf("until serving = %v", v)
	}
	if v := figure(t, res, "records").Value; v != float64(o.Records) {
		t.Errorf("records = %v, want %d", v, o.Records)
	}
}

func TestRemoteHub(t *testing.T) {
	h := hubtest.Start(t, "")
	o := tiny(t, ScenarioTasks)
	o.HubURLs, o.Token = []string{h.URL()}, h.AdminToken
	res := runOne(t, o)
	if res.Hub != KindRemote {
		t.Errorf("hub = %q", res.Hub)
	}
	if v := figure(t, res, "throughput").Value; v <= 0 {
		t.Errorf("throughput = %v", v)
	}
}

func TestRemoteHubNeedsToken(t *testing.T) {
	h := hubtest.Start(t, "")
	o := tiny(t, ScenarioTasks)
	o.HubURLs = []string{h.URL()}
	rep, err := Run(context.Background(), o)
	if err == nil || !strings.Contains(rep.Scenarios[0].Error, "--token") {
		t.Fatalf("err = %v", err)
	}
}

// TestAllScenarios runs every scenario against in-process hubs and checks
// each one's figures, then both output forms.
func TestAllScenarios(t *testing.T) {
	o := tiny(t, ScenarioAll)
	var progress bytes.Buffer
	o.Progress = &progress
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != len(Scenarios()) {
		t.Fatalf("got %d scenarios", len(rep.Scenarios))
	}
	res := map[string]*Result{}
	for _, r := range rep.Scenarios {
		res[r.Scenario] = r
	}
	positive := func(scenario string, names ...string) {
		t.Helper()
		for _, n := range names {
			if v := figure(t, res[scenario], n).Value; v <= 0 {
				t.Errorf("%s %s = %v, want > 0", scenario, n, v)
			}
		}
	}
	positive(ScenarioTasks, "throughput", "flood_submit_to_assign_max", "idle_submit_to_assign_p50")
	positive(ScenarioMessages, "delivered", "send_to_receive_max")
	positive(ScenarioBroadcast, "all_received_p99", "per_receiver_max")
	positive(ScenarioIdle, "rss_connected", "pings")
	positive(ScenarioStorage, "backup_size", "compaction_after", "backup_duration", "compaction_duration")
	positive(ScenarioRestart, "until_serving", "until_ready", "until_ready_after_crash", "records")
	for _, s := range []string{ScenarioTasks, ScenarioMessages, ScenarioBroadcast} {
		if v := figure(t, res[s], "errors").Value; v != 0 {
			t.Errorf("%s: %v error frames", s, v)
		}
	}
	if got, want := figure(t, res[ScenarioBroadcast], "delivered").Value, float64(o.Agents*o.Broadcasts); got != want {
		t.Errorf("broadcast delivered %v, want %v", got, want)
	}
	if res[ScenarioIdle].Hub != KindInProcess || res[ScenarioTasks].Hub != KindInProcess {
		t.Errorf("hubs: idle %q tasks %q", res[ScenarioIdle].Hub, res[ScenarioTasks].Hub)
	}
	// 4 agents is not the target's 100: the figure names the goal but
	// does not judge it.
	if f := figure(t, res[ScenarioTasks], "throughput"); f.Target == "" || f.Met != nil {
		t.Errorf("throughput target = %q met = %v", f.Target, f.Met)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Scenarios []struct {
			Scenario string `json:"scenario"`
			Figures  []struct {
				Name  string  `json:"name"`
				Value float64 `json:"value"`
			} `json:"figures"`
		} `json:"scenarios"`
		Notes []string `json:"notes"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("json: %v\n%s", err, js.String())
	}
	if len(back.Scenarios) != 6 || len(back.Scenarios[0].Figures) == 0 {
		t.Fatalf("json scenarios: %+v", back.Scenarios)
	}
	if !strings.Contains(strings.Join(back.Notes, " "), "rate limits off") {
		t.Errorf("notes do not say rate limits are off: %q", back.Notes)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range append(Scenarios(), "throughput", "≥ 8,000 tasks/s", "share the machine's CPUs") {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if !strings.Contains(progress.String(), "\r[tasks") {
		t.Errorf("no progress line: %q", progress.String())
	}
}

func TestUnknownScenario(t *testing.T) {
	_, err := Run(context.Background(), Options{Scenario: "nope"})
	if !errors.Is(err, ErrUnknownScenario) {
		t.Fatalf("err = %v", err)
	}
}

func TestRemoteHubDown(t *testing.T) {
	// A hub that is not there: the scenario fails at once with a clear
	// error instead of hanging.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o := tiny(t, ScenarioTasks)
	o.HubURLs, o.Token = []string{"http://" + addr}, "x"
	rep, err := Run(context.Background(), o)
	if err == nil || !strings.Contains(rep.Scenarios[0].Error, "connection refused") {
		t.Fatalf("err = %v", err)
	}
}

func TestQuantiles(t *testing.T) {
	var l latencies
	for i := 100; i >= 1; i-- {
		l.add(time.Duration(i) * time.Millisecond)
	}
	l = merge(l)
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.9: 90 * time.Millisecond,
		0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := l.quantile(q); got != want {
			t.Errorf("q%v = %v, want %v", q, got, want)
		}
	}
	if l.max() != 100*time.Millisecond || latencies(nil).quantile(0.5) != 0 || latencies(nil).max() != 0 {
		t.Error("max or empty quantile wrong")
	}
}

func TestFrameType(t *testing.T) {
	for in, want := range map[string]string{
		`{"type":"task_assign","task_id":"x"}`:         "task_assign",
		`{"id":"ab","type":"message_sent"}`:            "message_sent",
		`{"agent":{"name":"a"},"type":"agent_joined"}`: "agent_joined",
		`{"no":"type"}`:   "",
		`{"type":"unterm`: "",
	} {
		if got := frameType([]byte(in)); got != want {
			t.Errorf("frameType(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestProcReaders(t *testing.T) {
	m, err := readMem(os.Getpid())
	if err != nil || m.RSS <= 0 || m.Peak < m.RSS {
		t.Fatalf("mem = %+v, %v", m, err)
	}
	if _, err := readCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if _, err := readMem(-1); err == nil {
		t.Error("no error for a missing process")
	}
	if loadAvg() == "" {
		t.Error("no load average")
	}
	if lim, err := raiseFileLimit(64); err != nil || lim < 64 {
		t.Errorf("file limit = %d, %v", lim, err)
	}
}

func TestNumber(t *testing.T) {
	for v, want := range map[float64]string{1234567: "1,234,567", 12345.4: "12,345", 472.63: "472.6", 5.9412: "5.941", -20000: "-20,000"} {
		if got := number(v); got != want {
			t.Errorf("number(%v) = %q, want %q", v, got, want)
		}
	}
}

// FuzzFrameType feeds arbitrary hub frames to the parts of the bench that
// read them: neither may panic, and a type found is a substring.
func FuzzFrameType(f *testing.F) {
	for _, s := range []string{`{"type":"task_assign","task_id":"t","generation":1,"metadata":{"bench_t0":5,"bench_n":0}}`,
		`{"type":"message","payload":{"bench_t0":1}}`, `{"type":"`, `"type":"x"`, `[]`, ``, `{"metadata":7,"type":"task_assign"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		typ := frameType(data)
		if typ != "" && !bytes.Contains(data, []byte(typ)) {
			t.Fatalf("type %q not in %q", typ, data)
		}
		_, _ = decodeFrame(data)
	})
}

// TestReadCPUFollowsWork: the CPU time read from /proc grows while this
// process spins, and never runs ahead of the wall clock times the cores.
func TestReadCPUFollowsWork(t *testing.T) {
	start := time.Now()
	c0, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	x := 0
	for {
		for i := range 1 << 20 {
			x += i
		}
		c1, err := readCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if c1 > c0 {
			if wall := time.Since(start); c1-c0 > wall*time.Duration(runtime.NumCPU())+10*time.Millisecond {
				t.Fatalf("cpu %v in %v of wall time", c1-c0, wall)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cpu time did not grow while spinning (%d)", x)
		}
	}
}

// The bench drives several hubs: agents go to the hubs in turn, and so do
// the task submits. Two single hubs that share nothing stand in for a
// cluster: each one's tasks are done by the agents connected to it, so
// the tasks each hub completed show which agents it had.
func TestRemoteClusterSpreadsAgentsAndSubmits(t *testing.T) {
	a, b := hubtest.Start(t, ""), hubtest.Start(t, "")
	if err := b.Tokens.Import(a.AdminToken, "admin", auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	o := tiny(t, ScenarioTasks)
	o.HubURLs, o.Token = []string{a.URL(), b.URL() + "/"}, a.AdminToken
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	res := rep.Scenarios[0]
	if res.Hub != KindRemote || res.Params["hubs"] != 2 || rep.Hubs != 2 || len(rep.HubURLs) != 2 || rep.HubURL != "" ||
		!strings.Contains(strings.Join(rep.Notes, " "), "cluster of 2 hubs") {
		t.Fatalf("report: hub %q params %v hubs %d %v %q notes %q", res.Hub, res.Params, rep.Hubs, rep.HubURLs, rep.HubURL, rep.Notes)
	}
	total := 0
	for i, h := range []*hubtest.Hub{a, b} {
		_, body := h.Do("GET", "/api/tasks?status=completed&limit=1000", h.AdminToken, nil)
		tasks, _ := body["tasks"].([]any)
		agents := map[string]bool{}
		for _, x := range tasks {
			agents[x.(map[string]any)["assigned_to"].(string)] = true
		}
		// Agents 0 and 2 went to the first hub, 1 and 3 to the second;
		// tasks 0..39 and samples 40..44 alternate likewise.
		for name := range agents {
			if n := name[len(name)-1] - '0'; int(n)%2 != i {
				t.Errorf("hub %d completed a task of agent %s", i, name)
			}
		}
		if want := (o.Tasks + o.Samples + 1 - i) / 2; len(tasks) != want || len(agents) == 0 {
			t.Errorf("hub %d completed %d tasks by %d agents, want %d tasks", i, len(tasks), len(agents), want)
		}
		total += len(tasks)
	}
	if total != o.Tasks+o.Samples {
		t.Errorf("%d tasks completed in all", total)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil || !strings.Contains(table.String(), "hubs=2") {
		t.Errorf("table does not say how many hubs (%v):\n%s", err, table.String())
	}
}
