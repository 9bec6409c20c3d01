// Package hubtest starts real hubs on loopback for tests, and speaks to
// them as agents do: over real WebSockets with the original protocol.
package hubtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/ratelimit"
)

// Hub is a hub under test.
type Hub struct {
	*hub.Hub
	T          testing.TB
	Dir        string
	AdminToken string
	cfg        hub.Config
}

// Option changes the hub's config before it starts.
type Option func(*hub.Config)

// FastTimers shortens every timer so tests of timeouts run quickly.
func FastTimers(c *hub.Config) {
	c.AcceptTimeout = 2 * time.Second
	c.BusyHold = 2 * time.Second
	c.Scheduler.SweepInterval = 100 * time.Millisecond
	c.Socket.ReapInterval = 100 * time.Millisecond
}

// WithRateLimits turns rate limiting on with limits.
func WithRateLimits(l ratelimit.Limits) Option { return func(c *hub.Config) { c.RateLimits = l } }

// WithJSONLog sends the hub's logs, as JSON lines at debug level, to w.
func WithJSONLog(w io.Writer) Option {
	return func(c *hub.Config) {
		c.Log = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// NoBackoff retries failed tasks at once.
func NoBackoff(c *hub.Config) { c.Queue.BackoffBase = 0 }

// Start runs a hub on 127.0.0.1:0 over dir (a fresh temp dir when empty)
// and stops it when the test ends. It creates an admin token.
func Start(t testing.TB, dir string, opts ...Option) *Hub {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := hub.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.RateLimits = nil // tests that exercise limits opt in with WithRateLimits
	for _, o := range opts {
		o(&cfg)
	}
	h := &Hub{T: t, Dir: dir, cfg: cfg}
	h.boot()
	tok, err := h.Tokens.Create("admin", auth.RoleAdmin)
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	h.AdminToken = tok
	t.Cleanup(func() { h.Stop() })
	return h
}

func (h *Hub) boot() {
	h.T.Helper()
	hb, err := hub.New(h.cfg)
	if err != nil {
		h.T.Fatalf("start hub: %v", err)
	}
	ln, err := net.Listen("tcp", h.cfg.Addr)
	if err != nil {
		h.T.Fatalf("listen: %v", err)
	}
	if err := hb.Serve(ln); err != nil {
		h.T.Fatalf("serve: %v", err)
	}
	h.Hub = hb
	// A restart keeps the port, so clients' URLs stay valid.
	h.cfg.Addr = ln.Addr().String()
}

// Stop shuts the hub down (idempotent).
func (h *Hub) Stop() {
	if h.Hub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		h.T.Errorf("shutdown: %v", err)
	}
	h.Hub = nil
}

// Restart stops the hub and starts a new one on the same data and port.
func (h *Hub) Restart() {
	h.T.Helper()
	h.Stop()
	h.boot()
}

// Token creates a token for agent with role.
func (h *Hub) Token(agent string, role auth.Role) string {
	h.T.Helper()
	tok, err := h.Tokens.Create(agent, role)
	if err != nil {
		h.T.Fatalf("token: %v", err)
	}
	return tok
}

// WSURL is the agent socket's URL.
func (h *Hub) WSURL() string { return "ws://" + h.Addr() + "/ws" }

// Do sends an HTTP request with a JSON body (nil for none) and returns
// the status and decoded JSON body.
func (h *Hub) Do(method, path, token string, body any) (int, map[string]any) {
	h.T.Helper()
	status, raw := h.DoRaw(method, path, token, body)
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			h.T.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return status, m
}

// DoRaw is Do without decoding.
func (h *Hub) DoRaw(method, path, token string, body any) (int, []byte) {
	h.T.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				h.T.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, h.URL()+path, rd)
	if err != nil {
		h.T.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// Client is a raw agent-socket client.
type Client struct {
	T    testing.TB
	Conn *websocket.Conn
	in   chan map[string]any
	done chan struct{}
	quit chan struct{}
	once sync.Once
	err  error
}

// Dial opens a socket without identifying.
func Dial(t testing.TB, url string) *Client {
	t.Helper()
	c, resp, err := DialWith(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	return NewClient(t, c)
}

// DialWith opens a socket with options (Host, headers such as Origin);
// the response tells why a refused handshake was refused.
func DialWith(url string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, url, opts)
}

// NewClient reads frames from an open socket, closing it when the test ends.
func NewClient(t testing.TB, c *websocket.Conn) *Client {
	c.SetReadLimit(8 << 20)
	cl := &Client{T: t, Conn: c, in: make(chan map[string]any, 4096), done: make(chan struct{}), quit: make(chan struct{})}
	go cl.read()
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Connect dials and identifies as agent with token, waiting for identified.
func (h *Hub) Connect(agent, token string, caps ...string) *Client {
	h.T.Helper()
	c := Dial(h.T, h.WSURL())
	if caps == nil {
		caps = []string{}
	}
	c.Send(map[string]any{"type": "identify", "agent_id": agent, "token": token, "name": agent,
		"capabilities": caps, "client_type": "sidecar", "protocol_version": 1})
	c.Expect("identified")
	return c
}

// Agent creates a token for agent and connects it.
func (h *Hub) Agent(agent string, caps ...string) *Client {
	h.T.Helper()
	return h.Connect(agent, h.Token(agent, auth.RoleAgent), caps...)
}

func (c *Client) read() {
	defer close(c.done)
	for {
		_, data, err := c.Conn.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			c.err = fmt.Errorf("bad frame %q: %w", data, err)
			return
		}
		select {
		case c.in <- m:
		case <-c.quit:
			return
		}
	}
}

// Send writes one frame (a value to marshal, or a raw string).
func (c *Client) Send(frame any) {
	c.T.Helper()
	if err := c.TrySend(frame); err != nil {
		c.T.Fatalf("send: %v", err)
	}
}

// TrySend is Send that returns the write error (the server may have
// closed the socket).
func (c *Client) TrySend(frame any) error {
	var b []byte
	if s, ok := frame.(string); ok {
		b = []byte(s)
	} else {
		var err error
		if b, err = json.Marshal(frame); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Conn.Write(ctx, websocket.MessageText, b)
}

// Next returns the next frame within timeout, or nil.
func (c *Client) Next(timeout time.Duration) map[string]any {
	select {
	case m := <-c.in:
		return m
	case <-time.After(timeout):
		return nil
	case <-c.done:
		select {
		case m := <-c.in:
			return m
		default:
			return nil
		}
	}
}

// Expect skips frames until one of type typ arrives (5 s) and returns it.
func (c *Client) Expect(typ string) map[string]any {
	c.T.Helper()
	return c.ExpectWithin(typ, 5*time.Second)
}

// ExpectWithin is Expect with a timeout.
func (c *Client) ExpectWithin(typ string, d time.Duration) map[string]any {
	c.T.Helper()
	deadline := time.Now().Add(d)
	var seen []string
	for time.Now().Before(deadline) {
		m := c.Next(time.Until(deadline))
		if m == nil {
			break
		}
		if m["type"] == typ {
			return m
		}
		seen = append(seen, fmt.Sprint(m["type"]))
	}
	c.T.Fatalf("no %q frame within %v (saw %v; read error %v)", typ, d, seen, c.err)
	return nil
}

// NoFrame asserts no frame of type typ arrives within d.
func (c *Client) NoFrame(typ string, d time.Duration) {
	c.T.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m := c.Next(time.Until(deadline))
		if m == nil {
			return
		}
		if m["type"] == typ {
			c.T.Fatalf("unexpected %q frame: %v", typ, m)
		}
	}
}

// NoFrameBefore reads frames until one for which sentinel is true (5 s)
// and fails if a frame of type typ comes first. The caller causes the
// sentinel after the action that must not produce typ, on a path the hub
// orders after it; unlike NoFrame the check then has no quiet window that
// a loaded machine could outlast.
func (c *Client) NoFrameBefore(typ string, sentinel func(map[string]any) bool) {
	c.T.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := c.Next(time.Until(deadline))
		if m == nil {
			c.T.Fatalf("no sentinel frame within 5s (read error %v)", c.err)
		}
		if sentinel(m) {
			return
		}
		if m["type"] == typ {
			c.T.Fatalf("unexpected %q frame before the sentinel: %v", typ, m)
		}
	}
}

// Closed waits for the server to close the socket and returns the close
// status and reason.
func (c *Client) Closed(d time.Duration) (websocket.StatusCode, string) {
	c.T.Helper()
	select {
	case <-c.done:
	case <-time.After(d):
		c.T.Fatalf("socket still open after %v", d)
	}
	var ce websocket.CloseError
	if errors.As(c.err, &ce) {
		return ce.Code, ce.Reason
	}
	return -1, fmt.Sprint(c.err)
}

// Close closes the client.
func (c *Client) Close() {
	c.once.Do(func() { close(c.quit) })
	c.Conn.CloseNow()
}
