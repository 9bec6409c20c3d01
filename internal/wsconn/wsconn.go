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

// cutter is a Transport that can be cut at once, with no close handshake
// (*websocket.Conn's CloseNow). Writes to one are bounded by a timer the
// Conn reuses for every frame, which cuts the socket if it fires, rather
// than by a context per frame: coder/websocket registers a
// context.AfterFunc for every write whose context can end, and with the
// context.WithTimeout around it that was four allocations, two locked
// registrations and a timer per frame, a third of the hub's CPU per frame
// in a 1,000-agent broadcast beside the write syscall itself.
type cutter interface {
	CloseNow() error
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

	// The writer runs only while there is something to write: an idle
	// socket holds no writer goroutine (nor its stack). wmu guards the
	// fields below; again is set by every kick, so a writer about to stop
	// sees work that arrived after its last look.
	wmu      sync.Mutex
	t        Transport
	ctx      context.Context
	running  bool
	again    bool
	finished bool        // the transport is closed: no writer starts again
	pingT    *time.Timer // the next keep-alive ping
	wg       sync.WaitGroup
	src      atomic.Pointer[sourceRef]

	// wdog bounds the write in progress to a cutter transport (see
	// writeCut): writeAt is when it started (since wbase, plus one; 0
	// while none is) and wdog, armed while wdogOn, looks at it (watch).
	// Serve makes wdog, under wmu, and sets wbase and wctx, the context
	// such writes get (Serve's without its cancel), before any writer
	// starts.
	wdog    *time.Timer
	wdogOn  atomic.Bool
	writeAt atomic.Int64
	wbase   time.Time
	wctx    context.Context
}

// Source supplies frames that wait nowhere but are rendered when the
// writer runs (presence changes: rendered late, a burst of them becomes
// one frame, or a pair that cancels out none). Next appends what is due
// to dst.
type Source interface {
	Next(dst [][]byte) [][]byte
}

type sourceRef struct{ Source }

// maxBatch is how many queued frames a writer takes at a time: a fan-out
// worker (KickAll), which writes one batch per socket before it leaves a
// longer backlog to the socket's own writer goroutine, and which then
// writes writerBatch at a time.
const (
	maxBatch    = 32
	writerBatch = 4
)

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
	n, ok := c.Enqueue(b)
	if ok {
		c.Kick()
	}
	return n, ok
}

// Enqueue is SendN without starting the writer: the caller then calls
// Kick, or KickAll for many sockets at once.
func (c *Conn) Enqueue(b []byte) (uint64, bool) {
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
	c.Kick()
}

// SetSource makes src a source of frames for the writer, after the
// queued ones; Kick tells the writer it has some.
func (c *Conn) SetSource(src Source) { c.src.Store(&sourceRef{src}) }

// Kick makes sure a writer runs: it starts one when none is running (and
// Serve has started), and otherwise has the running one look again
// before it stops.
func (c *Conn) Kick() {
	if c.claim() {
		go c.write()
	}
}

// claim makes the caller the writer when none is running (and Serve has
// started), and otherwise has the running one look again before it
// stops. The claimant writes (drain) and calls wg.Done once it gives the
// writer role up.
func (c *Conn) claim() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.again = true
	if c.t == nil || c.running || c.finished {
		return false
	}
	c.running = true
	c.wg.Add(1)
	return true
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

// Serve runs the socket over t: the writer (started whenever there is
// something to write) and the pings in the background while read, the
// owner's read loop, runs in this goroutine. When read returns the socket
// closes (1000 unless a close already started), and Serve returns once
// the close handshake ended and every goroutine it started has returned.
// read must return once its reads of t fail, which they do once the
// writer closed t.
func (c *Conn) Serve(parent context.Context, t Transport, read func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if _, ok := t.(cutter); ok && parent.Done() != nil {
		// Writes to a cutter do not watch ctx (see cutter): an owner's
		// cancel still cuts the socket, through one registration for the
		// socket's life instead of one per frame.
		stop := context.AfterFunc(parent, func() { _ = t.(cutter).CloseNow() })
		defer stop()
	}
	c.wmu.Lock()
	c.t, c.ctx, c.wctx = t, ctx, context.WithoutCancel(ctx)
	if cut, ok := t.(cutter); ok {
		c.wbase = time.Now()
		c.wdog = time.AfterFunc(c.cfg.WriteTimeout, func() { c.watch(cut) })
		c.wdog.Stop()
	}
	if c.cfg.PingInterval > 0 {
		c.pingT = time.AfterFunc(c.cfg.PingInterval, c.ping)
	}
	c.wmu.Unlock()
	// Frames (or a close) that came before Serve.
	c.Kick()
	read(ctx)
	c.Close(protocol.CloseNormal, "")
	// Cancelling ctx would cut the connection: the close handshake, and
	// the frames queued before it, go first.
	<-c.closed
	cancel()
	c.wmu.Lock()
	if c.pingT != nil {
		c.pingT.Stop()
	}
	c.wmu.Unlock()
	c.wg.Wait()
	if c.wdog != nil {
		c.wdog.Stop()
	}
}

// write is the writer goroutine: it writes queued frames, then the
// source's, until there are none, and stops; once the close started it
// flushes what was queued and closes t.
//
// coder/websocket (v1.8.15) flushes its buffered writer at the end of
// every message (Conn.writeFrame flushes on fin) and has no call that
// writes several messages before one flush, so each frame is still one
// write syscall; what the batch saves is the wake-ups and the locking
// per frame. Corking the net.Conn under the library would be a hack
// around it, not done here.
func (c *Conn) write() {
	defer c.wg.Done()
	// A small batch: a goroutine starts with a small stack, and a larger
	// array on it cost a stack copy per start (more than its allocation
	// on the heap had); a socket with a backlog still takes it a few
	// frames a lock.
	var arr [writerBatch][]byte
	c.drain(arr[:0], false)
}

// drain writes as the writer (claim) until there is nothing to write,
// then gives the role up, and reports true; the caller then calls
// wg.Done. With shared (a goroutine writing for many sockets, KickAll) it
// writes one batch at most and leaves what may take long, the close
// handshake, to a writer goroutine of the socket's own: it reports false
// when there is more to do, still holding the role, and the caller starts
// that goroutine (write). buf is the room for a batch (empty, with the
// batch's size as its capacity), the caller's: on the writer's stack,
// it is no allocation per wake-up.
func (c *Conn) drain(buf [][]byte, shared bool) bool {
	written := 0
	for {
		c.wmu.Lock()
		c.again = false
		t, ctx := c.t, c.ctx
		c.wmu.Unlock()
		for {
			if shared && (written >= maxBatch || c.isClosing()) {
				return false
			}
			if c.isClosing() {
				c.finish(ctx, t)
				return true
			}
			batch := c.out.PopBatch(buf[:0], cap(buf))
			queued := len(batch)
			if queued == 0 {
				if r := c.src.Load(); r != nil {
					// Not into arr: it would escape through the
					// interface, one allocation per wake-up.
					batch = r.Next(nil)
				}
			}
			if len(batch) == 0 {
				break
			}
			written += len(batch)
			for i, b := range batch {
				err := c.writeOne(ctx, t, b, i < queued)
				batch[i] = nil
				if err != nil {
					// The socket is broken: nothing more can be flushed.
					for j := i + 1; j < queued; j++ {
						c.out.Done(batch[j])
						batch[j] = nil
					}
					c.Close(protocol.CloseNormal, "")
					if shared {
						return false // the writer goroutine closes t
					}
					c.finishNow(t)
					return true
				}
			}
		}
		c.wmu.Lock()
		if !c.again {
			c.running = false
			c.wmu.Unlock()
			return true
		}
		c.wmu.Unlock()
	}
}

// KickAll is Kick for many sockets at once (a broadcast's): rather than a
// goroutine per socket whose writer is not running (its start, schedule,
// stack growth and exit: a tenth of the hub's CPU per frame in a 1,000-
// agent broadcast), a few goroutines take the sockets one after another
// and write for each (drain). A socket with more to write than one batch,
// or closing, gets a writer of its own as Kick would start.
//
// A write that blocks (a client that stopped reading, its TCP window
// full) holds only the goroutine doing it: the others take the sockets
// left. Should every one of them be held, another starts each
// fanStall, so a few stuck clients delay the rest of a broadcast by
// milliseconds, not by a write timeout.
func KickAll(cs []*Conn) {
	claimed := make([]*Conn, 0, len(cs))
	for _, c := range cs {
		if c.claim() {
			claimed = append(claimed, c)
		}
	}
	switch len(claimed) {
	case 0:
		return
	case 1:
		go claimed[0].write()
		return
	}
	f := &fan{cs: claimed}
	f.seen = -1
	for range min((len(claimed)+fanPerWorker-1)/fanPerWorker, fanWorkers) {
		go f.work()
	}
	f.mu.Lock()
	f.stall = time.AfterFunc(fanStall, f.check)
	f.mu.Unlock()
}

// Fan-out workers (KickAll): one per fanPerWorker sockets, at most
// fanWorkers (a few per core keep both cores writing while one waits),
// and one more each fanStall while none of them takes a socket.
const (
	fanPerWorker = 64
	fanWorkers   = 8
	fanStall     = 5 * time.Millisecond
)

// fan is one KickAll: the sockets claimed, and the next to take.
type fan struct {
	cs   []*Conn
	next atomic.Int64

	mu    sync.Mutex // guards stall and seen (check runs on the timer)
	stall *time.Timer
	seen  int64
}

// work takes sockets and writes for each until none is left.
func (f *fan) work() {
	var arr [maxBatch][]byte
	for {
		i := f.next.Add(1) - 1
		if i >= int64(len(f.cs)) {
			return
		}
		c := f.cs[i]
		if c.drain(arr[:0], true) {
			c.wg.Done()
		} else {
			go c.write()
		}
	}
}

// check runs every fanStall while sockets wait to be taken: when none was
// taken since the last look, every worker is held by a write, and one
// more starts.
func (f *fan) check() {
	next := f.next.Load()
	if next >= int64(len(f.cs)) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if next == f.seen {
		go f.work()
	}
	f.seen = next
	f.stall.Reset(fanStall)
}

func (c *Conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// finish flushes what was queued before the close and closes t.
func (c *Conn) finish(ctx context.Context, t Transport) {
	c.flush(ctx, t)
	// Close waits for the client's close frame; a client that never
	// answers is cut off by the transport's own timeout.
	c.finishNow(t)
}

// finishNow closes t; no writer starts after it.
func (c *Conn) finishNow(t Transport) {
	c.wmu.Lock()
	c.finished = true
	c.wmu.Unlock()
	_ = t.Close(c.code, c.reason)
	close(c.closed)
}

// writeOne writes b; queued frames (not the source's) are counted for
// WaitWritten and their bytes released.
func (c *Conn) writeOne(ctx context.Context, t Transport, b []byte, queued bool) error {
	var err error
	if _, ok := t.(cutter); ok {
		err = c.writeCut(t, b)
	} else {
		wctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
		err = t.Write(wctx, websocket.MessageText, b)
		cancel()
	}
	if !queued {
		return err
	}
	c.out.Done(b)
	if err == nil {
		c.written.Add(1)
	}
	c.wake()
	return err
}

// writeCut writes b to a cutter under the watchdog: a write still
// blocked after WriteTimeout (a client that stopped reading, its TCP
// window full) is cut off, as an expired write context would have done.
// The write gets ctx without its cancel, so the library registers nothing
// for it; Serve cancels ctx only once the socket is closed, and an owner's
// cancel cuts the socket (Serve).
//
// The write only notes when it started: the timer is armed when it is not
// already, and re-arms itself while writes go on (watch), so a busy
// socket's timer fires about once per WriteTimeout instead of being reset
// and stopped around every frame (two locked timer-heap updates per
// frame, a twentieth of a broadcast's CPU per socket beside the write).
func (c *Conn) writeCut(t Transport, b []byte) error {
	c.writeAt.Store(int64(time.Since(c.wbase)) + 1)
	if !c.wdogOn.Load() && c.wdogOn.CompareAndSwap(false, true) {
		c.wdog.Reset(c.cfg.WriteTimeout)
	}
	err := t.Write(c.wctx, websocket.MessageText, b)
	c.writeAt.Store(0)
	return err
}

// watch is the watchdog's timer: it cuts the socket when the write in
// progress started WriteTimeout ago or more, waits for the rest of its
// time when it started later, and disarms when no write is in progress.
// A write that starts while it disarms either sees wdogOn false and arms
// the timer, or started before the second look here, which arms it.
func (c *Conn) watch(cut cutter) {
	c.wmu.Lock()
	wdog := c.wdog
	c.wmu.Unlock()
	if at := c.writeAt.Load(); at != 0 {
		if left := c.cfg.WriteTimeout - (time.Since(c.wbase) - time.Duration(at-1)); left > 0 {
			wdog.Reset(left)
			return
		}
		_ = cut.CloseNow()
		return
	}
	c.wdogOn.Store(false)
	if c.writeAt.Load() != 0 && c.wdogOn.CompareAndSwap(false, true) {
		wdog.Reset(c.cfg.WriteTimeout)
	}
}

// flush writes what was queued before the close, starting no write after
// FlushTimeout; each write keeps its own WriteTimeout, so a client that
// is slowly draining its backlog still gets the close frame behind it.
func (c *Conn) flush(ctx context.Context, t Transport) {
	deadline := time.Now().Add(c.cfg.FlushTimeout)
	for time.Now().Before(deadline) {
		b, ok := c.out.Pop()
		if !ok || c.writeOne(ctx, t, b, true) != nil {
			return
		}
	}
}

// ping is the keep-alive, run by the socket's timer every PingInterval
// (no goroutine waits between pings): a client that does not answer
// within PongTimeout (a sleeping laptop, a dropped network) is closed.
func (c *Conn) ping() {
	c.wmu.Lock()
	if c.finished || c.isClosing() {
		c.wmu.Unlock()
		return
	}
	c.wg.Add(1)
	ctx, t := c.ctx, c.t
	c.wmu.Unlock()
	defer c.wg.Done()
	pctx, cancel := context.WithTimeout(ctx, c.cfg.PongTimeout)
	err := t.Ping(pctx)
	cancel()
	if err != nil {
		c.Close(protocol.CloseNormal, "no pong")
		return
	}
	c.wmu.Lock()
	if !c.finished {
		c.pingT.Reset(c.cfg.PingInterval)
	}
	c.wmu.Unlock()
}
