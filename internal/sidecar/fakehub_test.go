package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/coder/websocket"
)

// wait bounds every wait for an expected event; generous so slow CI never
// flakes (tests only wait this long when something is broken).
const wait = 15 * time.Second

// rx is one frame the fake hub received.
type rx struct {
	conn int
	m    map[string]any
	at   time.Time
}

func (r rx) str(k string) string { s, _ := r.m[k].(string); return s }
func (r rx) num(k string) float64 {
	n, _ := r.m[k].(float64)
	return n
}

// fakeHub speaks the hub side of the agent socket: identify, ping/pong,
// task_ack for every report, and task_continue/task_reassign through a
// hook. Tests read what it received and push frames to the sidecar.
type fakeHub struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	token      string
	down       bool
	silentPong bool
	dropOnOpen bool
	// closeAfterIdentify closes the socket with this code right after
	// identified (0: never).
	closeAfterIdentify websocket.StatusCode
	conns              map[int]*websocket.Conn
	latest             int
	connTimes          []time.Time
	closes             []websocket.CloseError
	all                []rx
	onRecovering       func(f rx) map[string]any
	onReport           func(f rx) map[string]any
	onFrame            func(f rx)

	frames chan rx
}

func newFakeHub(t *testing.T, token string) *fakeHub {
	t.Helper()
	h := &fakeHub{t: t, token: token, conns: map[int]*websocket.Conn{}, frames: make(chan rx, 4096)}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(func() {
		h.mu.Lock()
		for _, c := range h.conns {
			_ = c.CloseNow()
		}
		h.mu.Unlock()
		h.srv.Close()
	})
	return h
}

func (h *fakeHub) wsURL() string { return "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/ws" }

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	down := h.down
	h.mu.Unlock()
	if down || r.URL.Path != "/ws" {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 24)
	h.mu.Lock()
	h.latest++
	id := h.latest
	h.conns[id] = c
	h.connTimes = append(h.connTimes, time.Now())
	drop := h.dropOnOpen
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.conns, id)
		h.mu.Unlock()
		_ = c.CloseNow()
	}()
	if drop {
		_ = c.Close(websocket.StatusGoingAway, "go away")
		return
	}
	ctx := context.Background()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				h.mu.Lock()
				h.closes = append(h.closes, ce)
				h.mu.Unlock()
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			h.t.Errorf("sidecar sent non-JSON frame %q", data)
			continue
		}
		f := rx{conn: id, m: m, at: time.Now()}
		if pv, ok := m["protocol_version"].(float64); !ok || pv != clientVersion {
			h.t.Errorf("frame without protocol_version %d: %s", clientVersion, data)
		}
		h.mu.Lock()
		h.all = append(h.all, f)
		hook, onRec, onRep := h.onFrame, h.onRecovering, h.onReport
		silent := h.silentPong
		h.mu.Unlock()
		if hook != nil {
			hook(f)
		}
		var reply map[string]any
		switch f.str("type") {
		case "identify":
			if f.str("token") == h.token {
				reply = map[string]any{"type": "identified", "agent_id": f.str("agent_id")}
			} else {
				reply = map[string]any{"type": "error", "error": "invalid_token"}
			}
		case "ping":
			if !silent {
				reply = map[string]any{"type": "pong", "timestamp": time.Now().UnixMilli()}
			}
		case protocol.FrameTaskAccepted:
			reply = map[string]any{"type": "task_ack", "task_id": f.str("task_id"), "status": "accepted"}
		case protocol.FrameTaskRejected:
			reply = map[string]any{"type": "task_ack", "task_id": f.str("task_id"), "status": "rejected"}
		case protocol.FrameTaskComplete, protocol.FrameTaskFailed:
			if onRep != nil {
				reply = onRep(f)
			} else if f.str("type") == "task_complete" {
				reply = map[string]any{"type": "task_ack", "task_id": f.str("task_id"), "status": "complete"}
			} else {
				reply = map[string]any{"type": "task_ack", "task_id": f.str("task_id"), "status": "retried"}
			}
		case protocol.FrameTaskRecovering:
			if onRec != nil {
				reply = onRec(f)
			}
		}
		// Reply before the test sees the frame, so a test that reacts to
		// "identify" by pushing a task does so after "identified", as a
		// real hub does.
		if reply != nil {
			b, _ := json.Marshal(reply)
			_ = c.Write(ctx, websocket.MessageText, b)
		}
		h.frames <- f
		h.mu.Lock()
		code := h.closeAfterIdentify
		h.mu.Unlock()
		if code != 0 && reply["type"] == "identified" {
			_ = c.Close(code, "replaced by a newer connection")
			return
		}
	}
}

// send pushes a frame to the newest connection.
func (h *fakeHub) send(m map[string]any) {
	h.t.Helper()
	h.mu.Lock()
	c := h.conns[h.latest]
	h.mu.Unlock()
	if c == nil {
		h.t.Fatalf("no connection to send %v", m)
	}
	b, _ := json.Marshal(m)
	if err := c.Write(context.Background(), websocket.MessageText, b); err != nil {
		h.t.Fatalf("send %v: %v", m, err)
	}
}

func (h *fakeHub) sendRaw(s string) {
	h.t.Helper()
	h.mu.Lock()
	c := h.conns[h.latest]
	h.mu.Unlock()
	if err := c.Write(context.Background(), websocket.MessageText, []byte(s)); err != nil {
		h.t.Fatalf("send: %v", err)
	}
}

func (h *fakeHub) assign(id string, gen int, meta map[string]any, desc string) {
	h.t.Helper()
	if meta == nil {
		meta = map[string]any{}
	}
	h.send(map[string]any{"type": "task_assign", "task_id": id, "description": desc, "metadata": meta, "generation": gen, "assigned_at": time.Now().UnixMilli()})
}

// next returns the next received frame of type typ, skipping others.
func (h *fakeHub) next(typ string) rx {
	h.t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		select {
		case f := <-h.frames:
			if f.str("type") == typ {
				return f
			}
		case <-deadline.C:
			h.t.Fatalf("no %s frame within %s", typ, wait)
			return rx{}
		}
	}
}

// nextOf returns the next received frame of any of types, skipping others.
func (h *fakeHub) nextOf(types ...string) rx {
	h.t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		select {
		case f := <-h.frames:
			if slices.Contains(types, f.str("type")) {
				return f
			}
		case <-deadline.C:
			h.t.Fatalf("none of %v within %s", types, wait)
			return rx{}
		}
	}
}

// setDown drops every connection and refuses new ones while down.
func (h *fakeHub) setDown(down bool) {
	h.mu.Lock()
	h.down = down
	var cs []*websocket.Conn
	if down {
		for _, c := range h.conns {
			cs = append(cs, c)
		}
	}
	h.mu.Unlock()
	for _, c := range cs {
		_ = c.CloseNow()
	}
}

// closeConns closes the current connections with a close frame of code,
// the hub staying up (a restart notice, a cluster leader change).
func (h *fakeHub) closeConns(code websocket.StatusCode, reason string) {
	h.mu.Lock()
	var cs []*websocket.Conn
	for _, c := range h.conns {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		_ = c.Close(code, reason)
	}
}

// dropConns closes the current connections abruptly (network loss).
func (h *fakeHub) dropConns() { h.setDown(true); h.setDown(false) }

func (h *fakeHub) set(f func(h *fakeHub)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

func (h *fakeHub) count(typ, taskID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, f := range h.all {
		if f.str("type") == typ && (taskID == "" || f.str("task_id") == taskID) {
			n++
		}
	}
	return n
}

func (h *fakeHub) connects() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.connTimes...)
}

// logBuf collects the sidecar's log and prints it when a test fails.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// has reports whether an event with that name was logged.
func (l *logBuf) has(event string) bool {
	return strings.Contains(l.String(), `"event":"`+event+`"`)
}

// testConfig is a config with short timers for tests.
func testConfig(t *testing.T, h *fakeHub) Config {
	t.Helper()
	return testConfigFor(t, "agent-1", "tok-1", h.wsURL())
}

// testConfigFor is testConfig for any hub (a real one, several).
func testConfigFor(t *testing.T, agent, token string, hubs ...string) Config {
	t.Helper()
	dir := t.TempDir()
	c := Config{
		AgentID: agent, Token: token, Capabilities: []string{"code"},
		ResultsDir: filepath.Join(dir, "results"), StateFile: filepath.Join(dir, "state", "queue.json"),
		WakeRetryDelays: []time.Duration{}, WakeTimeout: 10 * time.Second, ConfirmationTimeout: 10 * time.Second,
		PingInterval: 5 * time.Second, PongTimeout: 5 * time.Second,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, AuthRetry: 10 * time.Second,
		ProgressInterval: time.Hour, PollInterval: 10 * time.Millisecond, ResultSettle: 20 * time.Millisecond,
		ShutdownTimeout: 2 * time.Second, LogLevel: "debug",
	}
	if len(hubs) == 1 {
		c.HubURL = hubs[0] // one hub: the original's hub_url
	} else {
		c.HubURLs = hubs
	}
	c.applyDefaults()
	return c
}

// running is a sidecar started in-process.
type running struct {
	s      *Sidecar
	log    *logBuf
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config, opts Options) *running {
	t.Helper()
	lb := &logBuf{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, log: lb, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("sidecar log:\n%s", lb.String())
		}
	})
	return r
}

// stop cancels the sidecar and waits for Run to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(wait):
		t.Fatalf("sidecar did not stop within %s", wait)
	}
}

// readState reads the state file as the test sees it.
func readState(t *testing.T, cfg Config) State {
	t.Helper()
	data, err := os.ReadFile(cfg.StateFile)
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	st, _, err := DecodeState(data)
	if err != nil {
		t.Fatalf("decode state: %v\n%s", err, data)
	}
	return st
}

// writeResult writes a result file atomically, as agents should.
func writeResult(t *testing.T, cfg Config, id string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(cfg.ResultsDir, id+".json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(cfg.ResultsDir, id+".json")); err != nil {
		t.Fatal(err)
	}
}

func taskID(n int) string { return fmt.Sprintf("task-%016x", n) }
