package sidecar

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/testenv"
)

// freeAddr is a loopback address nothing listens on (right now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// deadHubURL is the agent socket of a port nothing listens on.
func deadHubURL(t *testing.T) string { return "ws://" + freeAddr(t) + "/ws" }

// slowBackoff makes any backoff longer than a test waits, so a test that
// passes proves the sidecar did not back off.
func slowBackoff(cfg *Config) { cfg.ReconnectMin, cfg.ReconnectMax = time.Hour, time.Hour }

func TestHubURLsSkipADeadHubAtOnce(t *testing.T) {
	live := newFakeHub(t, "tok-1")
	cfg := testConfig(t, live)
	dead := deadHubURL(t)
	cfg.HubURL, cfg.HubURLs = "", []string{dead, live.wsURL()}
	cfg.applyDefaults()
	slowBackoff(&cfg)
	r := start(t, cfg, Options{})
	live.next("identify")
	testenv.Eventually(t, "identified on the live hub", func() bool { return r.log.has("identified") }, testenv.Within(wait))
	log := r.log.String()
	for _, want := range []string{`"event":"ws_connect_error"`, `"next_hub_url":"` + live.wsURL() + `"`, `"hub_url":"` + dead + `"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if !strings.Contains(log, `"event":"identified","hub_url":"`+live.wsURL()+`"`) {
		t.Error("the log does not say which hub the sidecar is on")
	}
}

// A sidecar working on a task on hub A moves to hub B when A goes away,
// at once, and announces the task there with task_recovering, as after
// any reconnect; B's task_continue lets it finish the task on B.
func TestFailoverMidTaskRecoversOnTheNextHub(t *testing.T) {
	for name, leave := range map[string]func(h *fakeHub){
		"hub down":             func(h *fakeHub) { h.setDown(true) },
		"1012 service restart": func(h *fakeHub) { h.closeConns(websocket.StatusServiceRestart, "leader changed") },
	} {
		t.Run(name, func(t *testing.T) {
			a, b := newFakeHub(t, "tok-1"), newFakeHub(t, "tok-1")
			cfg := testConfig(t, a)
			cfg.HubURLs = []string{a.wsURL(), b.wsURL()}
			slowBackoff(&cfg)
			b.set(func(h *fakeHub) {
				h.onRecovering = func(f rx) map[string]any {
					return map[string]any{"type": "task_continue", "task_id": f.str("task_id"), "generation": 4}
				}
			})
			r := start(t, cfg, Options{})
			a.next("identify")
			id := taskID(1)
			a.assign(id, 3, map[string]any{"k": "v"}, "the task")
			a.next("task_accepted")
			testenv.Eventually(t, "working", func() bool { st := readState(t, cfg); return st.Active != nil && st.Active.Status == StatusWorking }, testenv.Within(wait))

			leave(a)
			b.next("identify")
			rec := b.next("task_recovering")
			if rec.str("task_id") != id || rec.str("description") != "the task" || rec.str("last_status") != StatusWorking || rec.num("generation") != 3 {
				t.Fatalf("task_recovering on hub B = %v", rec.m)
			}
			testenv.Eventually(t, "generation from B's task_continue saved", func() bool {
				st := readState(t, cfg)
				return st.Active != nil && st.Active.Generation == 4
			}, testenv.Within(wait))
			writeResult(t, cfg, id, map[string]any{"status": "success", "output": "done on B"})
			if f := b.next("task_complete"); f.str("task_id") != id || f.num("generation") != 4 {
				t.Fatalf("task_complete on B = %v", f.m)
			}
			if !r.log.has("hub_failover") || !strings.Contains(r.log.String(), `"to_hub_url":"`+b.wsURL()+`"`) {
				t.Error("no hub_failover event naming hub B")
			}
			if n := a.count("task_complete", id); n != 0 {
				t.Errorf("hub A got %d reports after it went away", n)
			}
		})
	}
}

// A close that is about this agent, not about the hub (replaced by
// another connection), keeps the sidecar on its hub.
func TestReplacedStaysOnItsHub(t *testing.T) {
	a, b := newFakeHub(t, "tok-1"), newFakeHub(t, "tok-1")
	a.set(func(h *fakeHub) { h.closeAfterIdentify = closeReplaced })
	cfg := testConfig(t, a)
	cfg.HubURLs = []string{a.wsURL(), b.wsURL()}
	cfg.ReconnectMax = 50 * time.Millisecond
	start(t, cfg, Options{})
	testenv.Eventually(t, "a second connection to hub A", func() bool { return len(a.connects()) >= 2 }, testenv.Within(wait))
	if n := len(b.connects()); n != 0 {
		t.Fatalf("moved to hub B %d times after being replaced on A", n)
	}
}

// When every hub failed in a row the sidecar backs off before the next
// round, as it does with one hub.
func TestFullRoundOfFailuresBacksOff(t *testing.T) {
	a, b := newFakeHub(t, "tok-1"), newFakeHub(t, "tok-1")
	for _, h := range []*fakeHub{a, b} {
		h.set(func(h *fakeHub) { h.dropOnOpen = true }) // accept, then 1001
	}
	cfg := testConfig(t, a)
	cfg.HubURLs = []string{a.wsURL(), b.wsURL()}
	cfg.ReconnectMin, cfg.ReconnectMax = 300*time.Millisecond, 300*time.Millisecond
	start(t, cfg, Options{})
	testenv.Eventually(t, "a second round", func() bool { return len(a.connects()) >= 2 }, testenv.Within(wait))
	// B was tried between A's two attempts; the round then paused at least
	// half the (jittered) delay.
	bc, ac := b.connects(), a.connects()
	if len(bc) == 0 || !bc[0].After(ac[0]) || !bc[0].Before(ac[1]) {
		t.Fatalf("attempts: A %v, B %v", ac, bc)
	}
	if gap := ac[1].Sub(bc[0]); gap < 150*time.Millisecond {
		t.Fatalf("next round after %s: no backoff after a full round", gap)
	}
}

func TestHubRing(t *testing.T) {
	r := newHubRing(Config{HubURL: "ws://b/ws", HubURLs: []string{"ws://a/ws", "ws://b/ws", "ws://c/ws"}})
	if r.url() != "ws://b/ws" {
		t.Fatalf("starts at %s, want hub_url", r.url())
	}
	var got []string
	var rounds []bool
	for range 6 {
		rounds = append(rounds, r.miss())
		got = append(got, r.url())
	}
	if strings.Join(got, " ") != "ws://c/ws ws://a/ws ws://b/ws ws://c/ws ws://a/ws ws://b/ws" {
		t.Fatalf("order %v", got)
	}
	if want := []bool{false, false, true, false, false, true}; !slices.Equal(rounds, want) {
		t.Fatalf("full rounds %v, want %v", rounds, want)
	}
	r.miss()
	r.hit()
	if after := []bool{r.miss(), r.miss(), r.miss()}; !slices.Equal(after, []bool{false, false, true}) {
		t.Fatalf("after an identified session: %v, want a new round", after)
	}
	one := newHubRing(Config{HubURL: "ws://a/ws"})
	if m := []bool{one.miss(), one.miss()}; !slices.Equal(m, []bool{true, true}) || one.url() != "ws://a/ws" || one.several() {
		t.Fatal("one hub: every failure is a full round")
	}
	for code, want := range map[int32]bool{-1: true, 1001: true, 1006: true, 1011: true, 1012: true, 1013: true,
		1000: false, 1008: false, closeReplaced: false, closeRevoked: false} {
		if hubGone(code) != want {
			t.Errorf("hubGone(%d) = %v", code, !want)
		}
	}
}

func TestHubURLsConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"agent_id":"a","token":"t","hub_urls":["http://h1:4000","wss://h2/custom"]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HubURL != "ws://h1:4000/ws" || strings.Join(c.Hubs(), " ") != "ws://h1:4000/ws wss://h2/custom" || c.HubAPIURL != "http://h1:4000" {
		t.Fatalf("hubs = %q %v %q", c.HubURL, c.Hubs(), c.HubAPIURL)
	}
	// hub_url alone is one hub, as before.
	c, err = ParseConfig([]byte(`{"agent_id":"a","token":"t","hub_url":"ws://h/ws"}`), nil)
	if err != nil || strings.Join(c.Hubs(), " ") != "ws://h/ws" || len(c.HubURLs) != 0 {
		t.Fatalf("hub_url alone: %v %v", c.Hubs(), err)
	}
	// Both, consistent: hub_url is one of them (after normalising) and
	// is where the sidecar starts.
	c, err = ParseConfig([]byte(`{"agent_id":"a","token":"t","hub_url":"http://h2","hub_urls":["ws://h1/ws","ws://h2/ws"]}`), nil)
	if err != nil || c.HubURL != "ws://h2/ws" || newHubRing(c).url() != "ws://h2/ws" {
		t.Fatalf("both: %q %v", c.HubURL, err)
	}
	env := map[string]string{"AGENTCOM_SIDECAR_HUB_URLS": "ws://e1/ws, ws://e2/ws"}
	c, err = ParseConfig([]byte(`{"agent_id":"a","token":"t"}`), func(k string) string { return env[k] })
	if err != nil || strings.Join(c.Hubs(), " ") != "ws://e1/ws ws://e2/ws" {
		t.Fatalf("env: %v %v", c.Hubs(), err)
	}
	many := make([]string, MaxHubURLs+1)
	for i := range many {
		many[i] = `"ws://h` + strings.Repeat("x", i) + `/ws"`
	}
	for name, js := range map[string]string{
		"both, not consistent": `{"agent_id":"a","token":"t","hub_url":"ws://other/ws","hub_urls":["ws://h1/ws","ws://h2/ws"]}`,
		"bad entry":            `{"agent_id":"a","token":"t","hub_urls":["ws://h1/ws","ftp://h2"]}`,
		"empty entry":          `{"agent_id":"a","token":"t","hub_urls":["ws://h1/ws",""]}`,
		"duplicate":            `{"agent_id":"a","token":"t","hub_urls":["ws://h1/ws","http://h1"]}`,
		"not a list":           `{"agent_id":"a","token":"t","hub_urls":"ws://h1/ws"}`,
		"empty list only":      `{"agent_id":"a","token":"t","hub_urls":[]}`,
		"too many":             `{"agent_id":"a","token":"t","hub_urls":[` + strings.Join(many, ",") + `]}`,
	} {
		_, err := ParseConfig([]byte(js), nil)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "hub_url") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	_, err = ParseConfig([]byte(`{"agent_id":"a","token":"t","hub_url":"ws://other/ws","hub_urls":["ws://h1/ws"]}`), nil)
	if err == nil || !strings.Contains(err.Error(), "not one of hub_urls") {
		t.Errorf("inconsistent: %v", err)
	}
	_, err = ParseConfig([]byte(`{"agent_id":"a","token":"t","hub_urls":["ws://h1/ws","ws://user:secret@h2/ws","ws://user:secret@h2/ws"]}`), nil)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("a password in a URL reaches the error: %v", err)
	}
}
