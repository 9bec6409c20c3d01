package agentws

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/wsconn"
)

// transport is the socket I/O under a conn: a WebSocket the hub accepted
// (*websocket.Conn), or one a follower hub holds and relays over the
// cluster bus (remote). Everything above it, from identify to the close
// codes, is the same code for both.
type transport interface {
	Read(ctx context.Context) (websocket.MessageType, []byte, error)
	Write(ctx context.Context, typ websocket.MessageType, p []byte) error
	// Ping sends a WebSocket ping; the pong comes back through conn.heard.
	Ping(ctx context.Context) error
	Close(code websocket.StatusCode, reason string) error
	SetReadLimit(n int64)
}

// conn is one agent socket. Frames are read and handled one at a time in
// run; everything sent to the client goes through out (a wsconn.Conn):
// one writer, so pushes from other goroutines never block on a slow
// client.
type conn struct {
	srv    *Server
	ws     transport
	id     uint64
	remote string
	addr   string // remote IP, for the unidentified caps
	out    *wsconn.Conn

	// pres is where the socket reads presence changes, from identify on.
	pres atomic.Pointer[presence.Reader]

	counted bool        // taken off the unidentified count; guarded by srv.mu
	pinging atomic.Bool // a hub ping is in flight

	agent     atomic.Pointer[string]
	identity  atomic.Pointer[auth.Identity] // the token identify verified
	lastIn    atomic.Int64                  // unix ms of the last inbound frame
	lastPingT atomic.Int64                  // unix ms of the last ping (or identify)

	// violations in the current window; only the reader (or handleAside,
	// which it waits for) touches them.
	violations  int
	windowStart time.Time
}

func newConn(s *Server, ws transport, id uint64, remote string) *conn {
	c := &conn{srv: s, ws: ws, id: id, remote: remote}
	c.out = wsconn.New(wsconn.Config{SendBuffer: s.cfg.SendBuffer, SendBytes: s.cfg.SendBytes,
		SlowConsumer: func(frames int, bytes int64) {
			s.log.Warn("client not reading, disconnecting", "event", "slow_consumer", "agent_id", c.agentID(),
				"queued_frames", frames, "queued_bytes", bytes)
		}})
	now := s.now().UnixMilli()
	c.lastIn.Store(now)
	c.lastPingT.Store(now)
	return c
}

func (c *conn) agentID() string {
	if p := c.agent.Load(); p != nil {
		return *p
	}
	return ""
}

// heard records a pong to the hub's ping: the client is alive, as a ping
// frame would show.
func (c *conn) heard() {
	if c == nil {
		return
	}
	now := c.srv.now().UnixMilli()
	c.lastIn.Store(now)
	if agent := c.agentID(); agent != "" {
		c.lastPingT.Store(now)
		c.srv.presence.Touch(agent)
		c.srv.sched.Heard(agent)
	}
}

func (c *conn) lastFrame() time.Time { return time.UnixMilli(c.lastIn.Load()) }
func (c *conn) lastPing() time.Time  { return time.UnixMilli(c.lastPingT.Load()) }

// followPresence makes the socket, identified as agent in protocol
// version v, read presence changes from sequence number from on.
func (c *conn) followPresence(from uint64, agent string, v int) {
	r := c.srv.feed.NewReader(from, presence.ReaderConfig{Self: agent, Version: v, Batch: c.srv.cfg.PresenceBatch,
		Lost: func() {
			c.srv.log.Warn("client behind on presence, disconnecting", "event", "slow_consumer", "agent_id", agent)
			c.close(protocol.CloseSlowConsumer, "client too slow to read its frames")
		}})
	c.pres.Store(r)
	c.out.SetSource(r)
}

// run reads and handles frames until the socket closes.
func (c *conn) run(ctx context.Context) {
	c.out.Serve(ctx, c.ws, c.read)
}

func (c *conn) read(ctx context.Context) {
	rctx := ctx
	if _, local := c.ws.(*websocket.Conn); local {
		// coder/websocket registers a context.AfterFunc for each read
		// whose context can end, held for as long as the read waits: on
		// an idle socket, for its whole life (the registration and its
		// entry in ctx's child map, ~0.5 KB a socket) and, on a busy one,
		// allocations and locking per frame. ctx ends only once Serve's
		// writer closed the socket, which fails the read anyway.
		rctx = context.WithoutCancel(ctx)
	}
	for {
		typ, data, err := c.ws.Read(rctx)
		if err != nil {
			return
		}
		c.lastIn.Store(c.srv.now().UnixMilli())
		if typ != websocket.MessageText {
			// The original crashed on binary frames; here they are refused
			// like any other frame that is not a JSON object.
			if c.violation() {
				return
			}
			c.reply(protocol.ValidationFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed,
				MessageType: "unknown", Errors: []protocol.FieldError{{Field: "message", Error: protocol.ErrWrongType,
					Detail: "expected a text frame holding a JSON object"}}})
			continue
		}
		handle := c.handle
		if c.agentID() == "" {
			handle = c.handleAside
		}
		if stop := handle(ctx, data); stop {
			return
		}
	}
}

// handleAside handles a frame on a goroutine of its own while the reader
// waits. Frames before identify go there: identify's work (token check,
// registry, presence, store writes) grows a stack to 16 KiB, and the
// reader's stack, once grown, stays that size while the socket idles (a
// stack only shrinks at a GC, which an idle hub hardly runs); 10,000
// idle agents held ~100 MB of stacks the reader needs a fraction of.
// It costs one goroutine start per connection.
func (c *conn) handleAside(ctx context.Context, data []byte) bool {
	done := make(chan bool, 1)
	go func() { done <- c.handle(ctx, data) }()
	return <-done
}

// enqueue queues an encoded frame for the client; false: not delivered
// (closing, or closed now as too slow).
func (c *conn) enqueue(b []byte) bool { return c.out.Send(b) }

// enqueueN is enqueue that also returns the frame's number, for
// waitWritten.
func (c *conn) enqueueN(b []byte) (uint64, bool) { return c.out.SendN(b) }

// waitWritten waits until frame n has been written (for a relayed socket:
// handed to the bus), and reports whether it was, within d.
func (c *conn) waitWritten(n uint64, d time.Duration) bool { return c.out.WaitWritten(n, d) }

// reply sends a frame to this socket only.
func (c *conn) reply(frame protocol.Frame) {
	if _, err := c.out.SendJSON(frame); err != nil {
		c.srv.log.Error("encode frame", "event", "encode_failed", "agent_id", c.agentID(), "err", err)
	}
}

// close starts the close handshake once. Frames already queued are
// flushed first, within a short grace period, so a reply sent just before
// a policy close still reaches the client.
func (c *conn) close(code websocket.StatusCode, reason string) { c.out.Close(code, reason) }

// violation counts a validation failure and reports whether the socket
// was closed for too many.
func (c *conn) violation() bool {
	cfg := c.srv.cfg
	now := c.srv.now()
	if c.violations == 0 || now.Sub(c.windowStart) > cfg.ViolationWindow {
		c.violations, c.windowStart = 0, now
	}
	c.violations++
	if c.violations < cfg.ViolationLimit {
		return false
	}
	if a := c.agentID(); a != "" {
		c.srv.cooldown.record(a, now)
	}
	c.srv.log.Warn("too many validation errors", "event", "validation_disconnect", "agent_id", c.agentID())
	c.close(protocol.ClosePolicy, "too many validation errors")
	return true
}
