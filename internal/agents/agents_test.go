package agents_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }

type timeout struct{ agent, task string }

// newRegistry returns a registry whose acceptance timeouts and busy-hold
// ends are reported on channels.
func newRegistry(t *testing.T, accept, busy time.Duration) (*agents.Registry, chan timeout, chan string) {
	t.Helper()
	timeouts := make(chan timeout, 16)
	busyOver := make(chan string, 16)
	r := agents.New(bus.New(), agents.Config{AcceptTimeout: accept, BusyHold: busy,
		OnAcceptTimeout: func(a, tk string) { timeouts <- timeout{a, tk} },
		OnBusyOver:      func(a string) { busyOver <- a }})
	t.Cleanup(r.Stop)
	return r, timeouts, busyOver
}

func state(t *testing.T, r *agents.Registry, id string) agents.Agent {
	t.Helper()
	a, ok := r.Get(id)
	if !ok {
		t.Fatalf("agent %s not registered", id)
	}
	return a
}

func noTimeout(t *testing.T, c chan timeout, d time.Duration) {
	t.Helper()
	select {
	case to := <-c:
		t.Fatalf("unexpected acceptance timeout %v", to)
	case <-time.After(d):
	}
}

func TestLifecycle(t *testing.T) {
	r, timeouts, _ := newRegistry(t, time.Hour, 0)
	a := r.Connect("a", "A", []string{"code"}, 1, "")
	if a.State != agents.Idle || a.CurrentTask != "" || !slices.Equal(a.Capabilities, []string{"code"}) {
		t.Fatalf("connect: %+v", a)
	}
	if !r.Reserve("a", "t1") {
		t.Fatal("reserve of an idle agent failed")
	}
	if r.Reserve("a", "t2") {
		t.Fatal("an assigned agent was reserved again")
	}
	if r.Accepted("a", "other") || state(t, r, "a").State != agents.Assigned {
		t.Fatal("acceptance of another task moved the agent")
	}
	if !r.Accepted("a", "t1") || state(t, r, "a").State != agents.Working {
		t.Fatal("accept")
	}
	if r.Release("a", "other", "") {
		t.Fatal("release of a task the agent does not hold")
	}
	if !r.Release("a", "t1", "") {
		t.Fatal("release")
	}
	if got := state(t, r, "a"); got.State != agents.Idle || got.CurrentTask != "" {
		t.Fatalf("after release: %+v", got)
	}
	if r.Reserve("ghost", "t3") {
		t.Fatal("reserved an unknown agent")
	}
	if task, ok := r.Disconnect("a", 1); !ok || task != "" {
		t.Fatal(task, ok)
	}
	if _, ok := r.Get("a"); ok {
		t.Fatal("agent still registered after disconnect")
	}
	noTimeout(t, timeouts, 10*time.Millisecond)
}

func TestAcceptTimer(t *testing.T) {
	const d = 30 * time.Millisecond
	r, timeouts, _ := newRegistry(t, d, 0)
	r.Connect("a", "A", nil, 1, "")
	r.Reserve("a", "t1")
	select {
	case to := <-timeouts:
		if to != (timeout{"a", "t1"}) {
			t.Fatalf("timeout %v", to)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no acceptance timeout")
	}
	// Accepted in time: no timeout.
	r.Release("a", "t1", agents.FlagUnresponsive)
	if got := state(t, r, "a"); !slices.Equal(got.Flags, []string{agents.FlagUnresponsive}) {
		t.Fatalf("flags: %v", got.Flags)
	}
	r.Reserve("a", "t2")
	r.Accepted("a", "t2")
	noTimeout(t, timeouts, 4*d)
	// A reconnect that still holds a task starts assigned with a new timer
	// and no flags; task_continue stops it.
	if got := r.Connect("a", "A", nil, 2, "t2"); got.State != agents.Assigned || got.CurrentTask != "t2" || len(got.Flags) != 0 {
		t.Fatalf("reconnect: %+v", got)
	}
	if !r.Continue("a", "t2") || state(t, r, "a").State != agents.Working {
		t.Fatal("continue")
	}
	noTimeout(t, timeouts, 4*d)
}

// TestReplacedConnection: the close of a replaced connection neither
// removes its successor nor fires its old timer.
func TestReplacedConnection(t *testing.T) {
	const d = 30 * time.Millisecond
	r, timeouts, _ := newRegistry(t, d, 0)
	r.Connect("a", "A", nil, 1, "")
	r.Reserve("a", "t1") // timer of connection 1
	r.Connect("a", "A", nil, 2, "")
	if _, removed := r.Disconnect("a", 1); removed {
		t.Fatal("old connection removed the new one")
	}
	if got := state(t, r, "a"); got.State != agents.Idle {
		t.Fatalf("new connection: %+v", got)
	}
	noTimeout(t, timeouts, 4*d)
	if task, removed := r.Disconnect("a", 2); !removed || task != "" {
		t.Fatal(task, removed)
	}
}

// TestReidentifySameConnection: identify sent again on the same socket
// updates the agent but keeps its task, state and timer as they were; a
// working agent is not put back to assigned (where its acceptance timer
// would reclaim the task).
func TestReidentifySameConnection(t *testing.T) {
	const d = 30 * time.Millisecond
	r, timeouts, _ := newRegistry(t, d, 0)
	r.Connect("a", "A", []string{"code"}, 1, "")
	r.Reserve("a", "t1")
	r.Accepted("a", "t1")
	got := r.Connect("a", "A2", []string{"code", "go"}, 1, "t1")
	if got.State != agents.Working || got.CurrentTask != "t1" || got.Name != "A2" || !slices.Equal(got.Capabilities, []string{"code", "go"}) {
		t.Fatalf("after re-identify: %+v", got)
	}
	noTimeout(t, timeouts, 4*d)
}

func TestBusyHold(t *testing.T) {
	r, _, over := newRegistry(t, time.Hour, 30*time.Millisecond)
	r.Connect("a", "A", nil, 1, "")
	if !r.Busy("a") {
		t.Fatal("busy")
	}
	if got := state(t, r, "a"); got.State != agents.Blocked || !slices.Contains(got.Flags, agents.FlagBusy) {
		t.Fatalf("busy: %+v", got)
	}
	if r.Reserve("a", "t1") {
		t.Fatal("a busy agent was reserved")
	}
	select {
	case id := <-over:
		if id != "a" {
			t.Fatal(id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("busy hold never ended")
	}
	if got := state(t, r, "a"); got.State != agents.Idle || slices.Contains(got.Flags, agents.FlagBusy) {
		t.Fatalf("after hold: %+v", got)
	}
}

// TestNoBusyHold: with no hold configured, declining a task does not take
// the agent out of scheduling for good.
func TestNoBusyHold(t *testing.T) {
	r, _, _ := newRegistry(t, time.Hour, 0)
	r.Connect("a", "A", nil, 1, "")
	r.Busy("a")
	if got := state(t, r, "a"); got.State != agents.Idle {
		t.Fatalf("agent left out of scheduling without a hold: %+v", got)
	}
	if !r.Reserve("a", "t1") {
		t.Fatal("reserve after a busy decline without hold")
	}
}

func TestIdleOrderAndCounts(t *testing.T) {
	r, _, _ := newRegistry(t, time.Hour, 0)
	for _, id := range []string{"c", "b", "a"} {
		r.Connect(id, id, nil, 1, "")
		time.Sleep(2 * time.Millisecond) // distinct last_state_change
	}
	var ids []string
	for _, a := range r.Idle() {
		ids = append(ids, a.ID)
	}
	if !slices.Equal(ids, []string{"c", "b", "a"}) {
		t.Fatalf("idle order (longest idle first): %v", ids)
	}
	r.Reserve("c", "t")
	r.Accepted("c", "t")
	r.Busy("b")
	// b has no hold configured, so it is idle again.
	want := map[agents.State]int{agents.Idle: 2, agents.Assigned: 0, agents.Working: 1, agents.Blocked: 0}
	if got := r.Counts(); !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	if l := r.List(); len(l) != 3 || l[0].ID != "a" {
		t.Fatalf("list: %v", l)
	}
}
