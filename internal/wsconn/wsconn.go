// Package wsconn is the hub's one WebSocket connection type, under the
// agent socket (local, and relayed over the cluster bus), the follower
// hub's relayed sockets and the dashboard socket: a bounded send queue
// written by a single writer, so senders never wait on a client; a client
// too slow to drain it closed with 4005; a close that flushes what was
// queued before it, then closes with its code; and optional keep-alive
// pings.
package wsconn

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/sendq"
)

// Transport is the socket under a Conn: a *websocket.Conn, or a socket a
// follower hub relays over the cluster bus. The Conn writes, pings and
// closes it; its owner reads it.
type Transport interface {
	Write(ctx context.Context, typ websocket.MessageType, p []byte) error
	Ping(ctx context.Context) error
	Close(code websocket.StatusCode, reason string) error
}

// Config tunes a Conn. Zero values take the defaults documented on each
// field.
type Config struct {
	// SendBuffer is how many frames may wait for the client (default 256).
	SendBuffer int
	// SendBytes caps the bytes waiting (default 4 MiB); one frame larger
	// than it still goes to a client with nothing waiting.
	SendBytes int64
	// WriteTimeout bounds the write of one frame (default 10 s).
	WriteTimeout time.Duration
	// FlushTimeout is how long a close keeps starting writes of the frames
	// queued before it (default 1 s): a reply sent just before a policy
	// close still reaches the client.
	FlushTimeout time.Duration
	// PingInterval, when set, pings the client that often; no pong within
	// PongTimeout (default PingInterval) closes the socket.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// SlowConsumer, when set, is called once when the queue overflows,
	// just before the 4005 close, with what was waiting (for the log).
	SlowConsumer func(frames int, bytes int64)
}

func (c Config) withDefaults() Config {
	if c.SendBuffer <= 0 {
		c.SendBuffer = 256
	}
	if c.SendBytes <= 0 {
		c.SendBytes = 4 << 20
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = time.Second
	}
	if c.PongTimeout <= 0 {
		c.PongTimeout = c.PingInterval
	}
	return c
}

// Conn is one WebSocket's outbound side and its close. Its methods are
// safe from any goroutine.
type Conn struct {
	cfg Config
	out *sendq.Queue

	closeOnce sync.Once
	code      websocket.StatusCode // set once, before closing is closed
	reason    string
	closing   chan struct{} // closed when the close starts
	closed    chan struct{} // closed when the transport is closed

	// enqMu numbers frames as they enter out: queued counts them, written
	// counts those the writer has written, and wrote is closed (and
	// replaced) at each write, for senders that wait for their frame.
	enqMu   sync.Mutex
	queued  uint64
	written atomic.Uint64
	wroteMu sync.Mutex
	wrote   chan struct{}
}

// New returns a Conn with nothing to write to yet: frames sent before
// Serve wait in its queue, and a close before Serve is carried out when
// Serve starts.
func New(cfg Config) *Conn {
	cfg = cfg.withDefaults()
	return &Conn{cfg: cfg, out: sendq.New(cfg.SendBuffer, cfg.SendBytes),
		closing: make(chan struct{}), closed: make(chan struct{})}
}

// Send queues a frame for the client and reports whether it was queued. A
// client whose queue is full is closed with 4005 rather than allowed to
// hold memory or stall the sender; nothing is queued once the close
// started.
func (c *Conn) Send(b []byte) bool {
	_, ok := c.SendN(b)
	return ok
}

// SendN is Send that also returns the frame's number, for WaitWritten.
func (c *Conn) SendN(b []byte) (uint64, bool) {
	select {
	case <-c.closing:
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
	c.closeOnce.Do(func() {
		if c.cfg.SlowConsumer != nil {
			c.cfg.SlowConsumer(c.out.Len(), c.out.Bytes())
		}
		c.start(protocol.CloseSlowConsumer, "client too slow to read its frames")
	})
	return 0, false
}

// WaitWritten waits until frame n (SendN) has been written to the
// transport (for a relayed socket: handed to the bus), and reports
// whether it was, within d.
func (c *Conn) WaitWritten(n uint64, d time.Duration) bool {
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

// wake tells WaitWritten a frame was written (or failed).
func (c *Conn) wake() {
	c.wroteMu.Lock()
	defer c.wroteMu.Unlock()
	if c.wrote != nil {
		close(c.wrote)
		c.wrote = nil
	}
}

// SendJSON encodes v and queues it (Send).
func (c *Conn) SendJSON(v any) (bool, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("wsconn: encode %T: %w", v, err)
	}
	return c.Send(b), nil
}

// Close starts closing the socket with code and reason, once: the frames
// already queued are written first (within FlushTimeout), then the close
// frame. Later calls change nothing.
func (c *Conn) Close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() { c.start(code, reason) })
}

func (c *Conn) start(code websocket.StatusCode, reason string) {
	c.code, c.reason = code, reason
	close(c.closing)
}

// Closing is closed once the close started.
func (c *Conn) Closing() <-chan struct{} { return c.closing }

// Closed is closed once the transport is closed (Serve's close handshake
// ended).
func (c *Conn) Closed() <-chan struct{} { return c.closed }

// CloseStatus is the code and reason the socket closes with; valid once
// Closing is closed.
func (c *Conn) CloseStatus() (websocket.StatusCode, string) {
	select {
	case <-c.closing:
		return c.code, c.reason
	default:
		return 0, ""
	}
}

// Queued is what waits for the client: frames and bytes.
func (c *Conn) Queued() (int, int64) { return c.out.Len(), c.out.Bytes() }

// Serve runs the socket over t: the writer (and the pings) in the
// background while read, the owner's read loop, runs in this goroutine.
// When read returns the socket closes (1000 unless a close already
// started), and Serve returns once the close handshake ended and every
// goroutine it started has returned. read must return once its reads of
// t fail, which they do once the writer closed t.
func (c *Conn) Serve(ctx context.Context, t Transport, read func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { c.write(ctx, t) })
	if c.cfg.PingInterval > 0 {
		wg.Go(func() { c.keepAlive(ctx, t) })
	}
	read(ctx)
	c.Close(protocol.CloseNormal, "")
	// Cancelling ctx would cut the connection: the close handshake, and
	// the frames queued before it, go first.
	<-c.closed
	cancel()
	wg.Wait()
}

// write is the single writer: it writes queued frames until the close
// starts, then flushes and closes t.
func (c *Conn) write(ctx context.Context, t Transport) {
	defer close(c.closed)
	for {
		select {
		case b := <-c.out.C():
			if err := c.writeOne(ctx, t, b); err != nil {
				// The socket is broken: nothing more can be flushed.
				c.Close(protocol.CloseNormal, "")
				_ = t.Close(c.code, c.reason)
				return
			}
		case <-c.closing:
			c.flush(ctx, t)
			// Close waits for the client's close frame; a client that
			// never answers is cut off by the transport's own timeout.
			_ = t.Close(c.code, c.reason)
			return
		}
	}
}

func (c *Conn) writeOne(ctx context.Context, t Transport, b []byte) error {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	err := t.Write(wctx, websocket.MessageText, b)
	c.out.Done(b)
	if err == nil {
		c.written.Add(1)
	}
	c.wake()
	return err
}

// flush writes what was queued before the close, starting no write after
// FlushTimeout; each write keeps its own WriteTimeout, so a client that
// is slowly draining its backlog still gets the close frame behind it.
func (c *Conn) flush(ctx context.Context, t Transport) {
	deadline := time.Now().Add(c.cfg.FlushTimeout)
	for time.Now().Before(deadline) {
		select {
		case b := <-c.out.C():
			if c.writeOne(ctx, t, b) != nil {
				return
			}
		default:
			return
		}
	}
}

// keepAlive pings the client every PingInterval; a client that does not
// answer within PongTimeout (a sleeping laptop, a dropped network) is
// closed.
func (c *Conn) keepAlive(ctx context.Context, t Transport) {
	tick := time.NewTicker(c.cfg.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.closing:
			return
		case <-tick.C:
			pctx, cancel := context.WithTimeout(ctx, c.cfg.PongTimeout)
			err := t.Ping(pctx)
			cancel()
			if err != nil {
				c.Close(protocol.CloseNormal, "no pong")
				return
			}
		}
	}
}
