package dashboard

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/api"
	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/wsconn"
)

// Close codes of dashboard sockets.
const (
	closeNormal       = websocket.StatusCode(protocol.CloseNormal)
	closeGoingAway    = websocket.StatusCode(protocol.CloseGoingAway)
	closeSlowConsumer = websocket.StatusCode(protocol.CloseSlowConsumer)
	closeRevoked      = websocket.StatusCode(protocol.CloseRevoked)
)

// client is one browser socket. Everything sent to it goes through conn
// (a wsconn.Conn: one writer), so the aggregator's fan-out never waits on
// it.
type client struct {
	d      *Dashboard
	conn   *wsconn.Conn
	id     auth.Identity
	canAct bool

	storageBusy atomic.Bool // one storage action at a time per socket
}

// newClient is a socket's state before it is served: frames sent to it
// wait, up to frames frames and bytes bytes.
func newClient(d *Dashboard, id auth.Identity, frames int, bytes int64) *client {
	return &client{d: d, id: id, canAct: id.IsAdmin(), conn: wsconn.New(wsconn.Config{
		SendBuffer: frames, SendBytes: bytes, FlushTimeout: 2 * time.Second,
		PingInterval: d.cfg.PingInterval, PongTimeout: d.cfg.PongTimeout,
		SlowConsumer: func(frames int, bytes int64) {
			d.log.Warn("dashboard client not reading, disconnecting", "event", "slow_consumer",
				"queued_frames", frames, "queued_bytes", bytes)
		}})}
}

// ServeHTTP upgrades /ws/dashboard. The route's access level already let
// the caller in; here the identity decides whether it may act.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := d.identity(r)
	// Browsers send Origin: only pages served by this hub may open the
	// socket (on a loopback hub that is what keeps other sites' pages
	// from driving it). Clients without Origin (tools) are let in.
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(maxFrameBytes)
	c := newClient(d, id, d.cfg.SendBuffer, d.cfg.SendBytes)
	if !d.sockets.add() {
		ws.Close(closeGoingAway, "hub shutting down")
		return
	}
	defer d.sockets.done()
	c.run(r.Context(), ws)
}

// CloseRevoked closes every socket whose token no longer holds (revoked,
// or gone with a restore of the token table) and returns how many.
func (d *Dashboard) CloseRevoked() int {
	return d.agg.closeClientsIf(func(c *client) bool { return !d.live(c.id) }, closeRevoked, "token revoked")
}

func (d *Dashboard) live(id auth.Identity) bool { return d.tokens == nil || d.tokens.Live(id) }

// identity is who the socket speaks for: what the route's access check
// let in (the local operator on a loopback-only hub, else the token's
// identity). A request that did not come through that check may not act.
func (d *Dashboard) identity(r *http.Request) auth.Identity {
	id, _ := api.Caller(r)
	return id
}

func (c *client) run(ctx context.Context, ws *websocket.Conn) {
	defer c.d.agg.removeClient(c)
	role := string(c.id.Role)
	c.send(helloFrame{Type: "hello", Role: role, CanAct: c.canAct, ServerTime: time.Now().UnixMilli()})
	if !c.d.agg.addClient(c) {
		c.kill(closeGoingAway, "hub shutting down")
	} else if !c.d.live(c.id) {
		// Revoked between the access check and addClient, where
		// CloseRevoked could not see this socket yet.
		c.kill(closeRevoked, "token revoked")
	}
	c.conn.Serve(ctx, ws, func(ctx context.Context) {
		c.sendSnapshot(ctx)
		c.read(ctx, ws)
	})
}

func (c *client) read(ctx context.Context, ws *websocket.Conn) {
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.send(errorFrame("unknown", "", protocol.CodeValidationFailed, "expected a text frame holding a JSON object", nil))
			continue
		}
		f, ferr := decodeFrame(data)
		if ferr != nil {
			detail := "invalid frame"
			if ferr.Code == protocol.CodeInvalidJSON {
				detail = "frame is not JSON"
			}
			c.send(errorFrame(ferr.Type, ferr.Ref, ferr.Code, detail, ferr.Errors))
			continue
		}
		c.handle(ctx, f)
	}
}

func (c *client) sendSnapshot(ctx context.Context) {
	// A socket closed while it waits (revoked, shut down) stops waiting:
	// the aggregator may already have stopped answering.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.conn.Closing():
			cancel()
		case <-ctx.Done():
		}
	}()
	s, err := c.d.agg.Snapshot(ctx)
	if err != nil {
		return
	}
	c.enqueue(s.Frame)
}

// enqueue queues an encoded frame without blocking. A client whose queue
// is full is closed: it must not hold memory or slow the others.
func (c *client) enqueue(b []byte) bool { return c.conn.Send(b) }

func (c *client) send(frame any) {
	if _, err := c.conn.SendJSON(frame); err != nil {
		c.d.log.Error("encode dashboard frame", "event", "encode_failed", "err", err)
	}
}

// kill starts closing the socket once; queued frames go out first.
func (c *client) kill(code websocket.StatusCode, reason string) { c.conn.Close(code, reason) }

// errorFrame builds {"type":"error",...}.
func errorFrame(request, ref, code, detail string, errs []protocol.FieldError) errorReply {
	return errorReply{Type: "error", Error: code, Request: request, Detail: detail, Ref: ref, Errors: errs}
}

// helloFrame is the first frame of every dashboard socket. The fields of
// the dashboard's frames are in the order their keys sort, as the maps they
// replaced encoded them.
type helloFrame struct {
	CanAct     bool   `json:"can_act"`
	Role       string `json:"role"`
	ServerTime int64  `json:"server_time"`
	Type       string `json:"type"`
}

// errorReply refuses a client frame.
type errorReply struct {
	Detail  string                `json:"detail"`
	Error   string                `json:"error"`
	Errors  []protocol.FieldError `json:"errors,omitempty"`
	Ref     string                `json:"ref,omitempty"`
	Request string                `json:"request"`
	TaskID  string                `json:"task_id,omitempty"`
	Type    string                `json:"type"`
}

// socketGroup counts live socket handlers so shutdown can wait for them.
type socketGroup struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{}
}

func (g *socketGroup) add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *socketGroup) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.closed && g.n == 0 && g.zero != nil {
		close(g.zero)
		g.zero = nil
	}
}

// closeAndWait refuses new sockets and waits for the live ones to end.
func (g *socketGroup) closeAndWait(ctx context.Context) {
	g.mu.Lock()
	g.closed = true
	if g.n == 0 {
		g.mu.Unlock()
		return
	}
	zero := make(chan struct{})
	g.zero = zero
	g.mu.Unlock()
	select {
	case <-zero:
	case <-ctx.Done():
	}
}
