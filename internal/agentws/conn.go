package agentws

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/sendq"
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
// run; everything sent to the client goes through the out queue, written
// by a single writer so pushes from other goroutines never block on a slow
// client.
type conn struct {
	srv    *Server
	ws     transport
	id     uint64
	remote string
	addr   string // remote IP, for the unidentified caps
	out    *sendq.Queue

	counted bool        // taken off the unidentified count; guarded by srv.mu
	pinging atomic.Bool // a hub ping is in flight

	agent     atomic.Pointer[string]
	identity  atomic.Pointer[auth.Identity] // the token identify verified
	lastIn    atomic.Int64                  // unix ms of the last inbound frame
	lastPingT atomic.Int64                  // unix ms of the last ping (or identify)

	closeOnce sync.Once
	done      chan struct{} // closed when the socket starts closing
	closed    chan struct{} // closed when the close handshake ended

	// enqMu numbers frames as they enter out: queued counts them, written
	// counts those the writer has written, and wrote is closed (and
	// replaced) at each write, for pushes that wait for their frame.
	enqMu   sync.Mutex
	queued  uint64
	written atomic.Uint64
	wroteMu sync.Mutex
	wrote   chan struct{}

	// violations in the current window; only the reader touches them.
	violations  int
	windowStart time.Time
}

func newConn(s *Server, ws transport, id uint64, remote string) *conn {
	c := &conn{srv: s, ws: ws, id: id, remote: remote, out: sendq.New(s.cfg.SendBuffer, s.cfg.SendBytes),
		done: make(chan struct{}), closed: make(chan struct{})}
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

// run reads and handles frames until the socket closes.
func (c *conn) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop(ctx)
	}()
	defer func() {
		c.close(protocol.CloseNormal, "")
		// Cancelling ctx would cut the connection, so the close
		// handshake (and the frames queued before it) goes first.
		<-c.closed
		cancel()
		<-writerDone
	}()
	for {
		typ, data, err := c.ws.Read(ctx)
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
		if stop := c.handle(ctx, data); stop {
			return
		}
	}
}

func (c *conn) writeLoop(ctx context.Context) {
	for {
		select {
		case <-c.done:
			return
		case b := <-c.out.C():
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.ws.Write(wctx, websocket.MessageText, b)
			cancel()
			c.out.Done(b)
			if err == nil {
				c.written.Add(1)
			}
			c.wake()
			if err != nil {
				c.close(protocol.CloseNormal, "")
				return
			}
		}
	}
}

// enqueue queues a frame for the client. A client too slow to drain its
// queue is disconnected rather than allowed to hold memory or stall
// senders; the frame is reported as not delivered.
func (c *conn) enqueue(b []byte) bool {
	_, ok := c.enqueueN(b)
	return ok
}

// enqueueN is enqueue that also returns the frame's number, for
// waitWritten.
func (c *conn) enqueueN(b []byte) (uint64, bool) {
	select {
	case <-c.done:
		return 0, false
	default:
	}
	c.enqMu.Lock()
	ok := c.out.Push(b)
	if ok {
		c.queued++
	}
	n := c.queued
	c.enqMu.Unlock()
	if ok {
		return n, true
	}
	c.srv.log.Warn("client not reading, disconnecting", "event", "slow_consumer", "agent_id", c.agentID(),
		"queued_frames", c.out.Len(), "queued_bytes", c.out.Bytes())
	c.close(protocol.CloseSlowConsumer, "client too slow to read its frames")
	return 0, false
}

// wake tells waitWritten a frame was written.
func (c *conn) wake() {
	c.wroteMu.Lock()
	defer c.wroteMu.Unlock()
	if c.wrote != nil {
		close(c.wrote)
		c.wrote = nil
	}
}

// waitWritten waits until frame n has been written (for a relayed socket:
// handed to the bus), and reports whether it was, within d.
func (c *conn) waitWritten(n uint64, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		c.wroteMu.Lock()
		if c.wrote == nil {
			c.wrote = make(chan struct{})
		}
		ch := c.wrote
		c.wroteMu.Unlock()
		if c.written.Load() >= n {
			return true
		}
		select {
		case <-ch:
		case <-c.closed:
			return c.written.Load() >= n
		case <-t.C:
			return false
		}
	}
}

// reply sends a frame to this socket only.
func (c *conn) reply(frame any) {
	b, err := marshal(frame)
	if err != nil {
		return
	}
	c.enqueue(b)
}

// close starts the close handshake once. Frames already queued are
// flushed first, within a short grace period, so a reply sent just before
// a policy close still reaches the client.
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		go func() {
			deadline := time.Now().Add(time.Second)
			for c.out.Len() > 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			close(c.done)
			// Close waits for the client's close frame; a client that
			// never answers is cut off by the library's own timeout.
			_ = c.ws.Close(code, reason)
			close(c.closed)
		}()
	})
}

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
