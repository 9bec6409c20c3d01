package wsconn_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/wsconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeWS records what the Conn does to its transport.
type fakeWS struct {
	mu       sync.Mutex
	frames   []string
	code     websocket.StatusCode
	reason   string
	closes   int
	gone     chan struct{}
	writeErr error
	pingErr  error
	pinged   chan struct{}
}

func newFake() *fakeWS { return &fakeWS{gone: make(chan struct{}), pinged: make(chan struct{}, 1)} }

func (f *fakeWS) Write(_ context.Context, _ websocket.MessageType, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		return f.writeErr
	}
	f.frames = append(f.frames, string(p))
	return nil
}

func (f *fakeWS) Ping(context.Context) error {
	select {
	case f.pinged <- struct{}{}:
	default:
	}
	return f.pingErr
}

func (f *fakeWS) Close(code websocket.StatusCode, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes++
	if f.closes == 1 {
		f.code, f.reason = code, reason
		close(f.gone)
	}
	return nil
}

// read is an owner's read loop: it ends when the transport is closed, as
// a real Read fails then.
func (f *fakeWS) read(context.Context) { <-f.gone }

func (f *fakeWS) result() ([]string, websocket.StatusCode, string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.frames...), f.code, f.reason, f.closes
}

// A client whose queue is full is closed with 4005, once; nothing more is
// queued after that, and what was queued still goes out before the close.
func TestSlowConsumerClosed4005(t *testing.T) {
	var calls int
	var sawFrames int
	c := wsconn.New(wsconn.Config{SendBuffer: 2, SendBytes: 1 << 20, SlowConsumer: func(frames int, _ int64) {
		calls++
		sawFrames = frames
	}})
	if !c.Send([]byte("1")) || !c.Send([]byte("2")) {
		t.Fatal("frames within the buffer refused")
	}
	if c.Send([]byte("3")) {
		t.Fatal("a frame beyond the buffer was queued")
	}
	select {
	case <-c.Closing():
	default:
		t.Fatal("the slow client is not closing")
	}
	if code, _ := c.CloseStatus(); code != protocol.CloseSlowConsumer {
		t.Fatalf("close code %d", code)
	}
	if c.Send([]byte("4")) {
		t.Fatal("a closing socket queued a frame")
	}
	c.Send([]byte("5"))
	if calls != 1 || sawFrames != 2 {
		t.Fatalf("slow consumer reported %d times with %d frames", calls, sawFrames)
	}
	ws := newFake()
	c.Serve(context.Background(), ws, ws.read)
	frames, code, _, closes := ws.result()
	if strings.Join(frames, ",") != "1,2" || code != protocol.CloseSlowConsumer || closes != 1 {
		t.Fatalf("wrote %v, closed %d (%d times)", frames, code, closes)
	}
}

// Bounded in bytes as well: one frame over the cap fits an empty queue,
// the next one closes the socket.
func TestByteCap(t *testing.T) {
	c := wsconn.New(wsconn.Config{SendBuffer: 100, SendBytes: 10})
	if !c.Send([]byte("123456789012")) {
		t.Fatal("one frame over the byte cap refused by an empty queue")
	}
	if c.Send([]byte("1")) {
		t.Fatal("a frame beyond the byte cap was queued")
	}
	if code, _ := c.CloseStatus(); code != protocol.CloseSlowConsumer {
		t.Fatalf("close code %d", code)
	}
}

// Frames queued before a close are written before the close frame, in
// order, with the close's code; a second close changes nothing.
func TestCloseFlushesQueuedFrames(t *testing.T) {
	c := wsconn.New(wsconn.Config{})
	ws := newFake()
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Serve(context.Background(), ws, func(ctx context.Context) {
			close(started)
			ws.read(ctx)
		})
	}()
	<-started
	for _, f := range []string{"a", "b", "c"} {
		c.Send([]byte(f))
	}
	c.Close(protocol.ClosePolicy, "too many validation errors")
	c.Close(protocol.CloseNormal, "")
	<-done
	frames, code, reason, closes := ws.result()
	if strings.Join(frames, ",") != "a,b,c" || code != protocol.ClosePolicy || reason != "too many validation errors" || closes != 1 {
		t.Fatalf("wrote %v, closed %d %q (%d times)", frames, code, reason, closes)
	}
	select {
	case <-c.Closed():
	default:
		t.Fatal("Serve returned before the transport closed")
	}
}

// The owner's read loop ending (the client went away) closes with 1000.
func TestReadEndClosesNormally(t *testing.T) {
	c := wsconn.New(wsconn.Config{})
	ws := newFake()
	c.Serve(context.Background(), ws, func(context.Context) {})
	if _, code, _, _ := ws.result(); code != protocol.CloseNormal {
		t.Fatalf("closed %d", code)
	}
}

// A write that fails ends the socket without waiting for a flush.
func TestWriteErrorCloses(t *testing.T) {
	c := wsconn.New(wsconn.Config{})
	ws := newFake()
	ws.writeErr = errors.New("broken pipe")
	c.Send([]byte("x"))
	c.Serve(context.Background(), ws, ws.read)
	if _, code, _, closes := ws.result(); code != protocol.CloseNormal || closes != 1 {
		t.Fatalf("closed %d (%d times)", code, closes)
	}
}

// With keep-alive on, a ping that fails (no pong in time) closes the
// socket.
func TestKeepAliveClosesWithoutPong(t *testing.T) {
	c := wsconn.New(wsconn.Config{PingInterval: time.Millisecond})
	ws := newFake()
	ws.pingErr = context.DeadlineExceeded
	c.Serve(context.Background(), ws, ws.read)
	if _, code, reason, _ := ws.result(); code != protocol.CloseNormal || reason != "no pong" {
		t.Fatalf("closed %d %q", code, reason)
	}
}

// Over a real WebSocket: the client reads every frame queued before a
// close, then the close code.
func TestRealSocketFlushThenClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c := wsconn.New(wsconn.Config{})
		for i := range 50 {
			c.Send([]byte(`{"n":` + string(rune('0'+i%10)) + `}`))
		}
		c.Close(protocol.CloseReplaced, "replaced by a newer connection for this agent")
		c.Serve(r.Context(), ws, func(ctx context.Context) {
			for {
				if _, _, err := ws.Read(ctx); err != nil {
					return
				}
			}
		})
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	n := 0
	for {
		if _, _, err = ws.Read(ctx); err != nil {
			break
		}
		n++
	}
	if n != 50 || websocket.CloseStatus(err) != protocol.CloseReplaced {
		t.Fatalf("read %d frames, then %v", n, err)
	}
}

// WaitWritten tells a sender when its frame left for the transport, and
// that it never will once the socket closed without writing it.
func TestWaitWritten(t *testing.T) {
	c := wsconn.New(wsconn.Config{})
	n1, ok1 := c.SendN([]byte("a"))
	n2, ok2 := c.SendN([]byte("b"))
	if !ok1 || !ok2 || n2 != n1+1 {
		t.Fatalf("numbers %d %v, %d %v", n1, ok1, n2, ok2)
	}
	ws := newFake()
	served := make(chan struct{})
	go func() {
		defer close(served)
		c.Serve(context.Background(), ws, ws.read)
	}()
	if !c.WaitWritten(n2, time.Minute) {
		t.Fatal("frame 2 not reported written")
	}
	c.Close(protocol.CloseNormal, "")
	<-served

	broken := wsconn.New(wsconn.Config{})
	n, _ := broken.SendN([]byte("x"))
	bws := newFake()
	bws.writeErr = errors.New("bus down")
	brokenDone := make(chan struct{})
	go func() {
		defer close(brokenDone)
		broken.Serve(context.Background(), bws, bws.read)
	}()
	if broken.WaitWritten(n, time.Minute) {
		t.Fatal("a frame that failed to write reported written")
	}
	<-brokenDone
}

// nullWS is a transport that takes every write at once.
type nullWS struct{ gone chan struct{} }

func (nullWS) Write(context.Context, websocket.MessageType, []byte) error { return nil }
func (nullWS) Ping(context.Context) error                                 { return nil }
func (n nullWS) Close(websocket.StatusCode, string) error {
	close(n.gone)
	return nil
}

// BenchmarkSendWrite is frames sent from another goroutine and written by
// the Conn's writer (started on demand), per frame; the transport's cost
// is left out.
func BenchmarkSendWrite(b *testing.B) {
	c := wsconn.New(wsconn.Config{SendBuffer: 1 << 20, SendBytes: 1 << 40})
	t := nullWS{gone: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Serve(context.Background(), t, func(context.Context) { <-t.gone })
	}()
	frame := make([]byte, 200)
	var last uint64
	for b.Loop() {
		last, _ = c.SendN(frame)
	}
	c.WaitWritten(last, time.Minute)
	b.StopTimer()
	c.Close(websocket.StatusNormalClosure, "")
	<-done
}

// onceSource hands out its frames on the first Next after Kick.
type onceSource struct {
	mu     sync.Mutex
	frames [][]byte
}

func (s *onceSource) Next(dst [][]byte) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst = append(dst, s.frames...)
	s.frames = nil
	return dst
}

func (s *onceSource) add(f string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames = append(s.frames, []byte(f))
}

// The writer starts when there is something to write and stops when there
// is not: queued frames go first, then the source's; frames sent after
// the writer stopped start it again, and a Kick makes it read the source.
func TestWriterOnDemandWithSource(t *testing.T) {
	c := wsconn.New(wsconn.Config{})
	ws := newFake()
	src := &onceSource{}
	c.SetSource(src)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Serve(context.Background(), ws, ws.read)
	}()
	src.add("p1")
	n1, _ := c.SendN([]byte("a"))
	c.WaitWritten(n1, 5*time.Second)
	// The writer read the source after the queue, or will on this Kick.
	c.Kick()
	n2, _ := c.SendN([]byte("b"))
	c.WaitWritten(n2, 5*time.Second)
	src.add("p2")
	c.Kick()
	c.Close(protocol.CloseNormal, "")
	<-done
	frames, _, _, _ := ws.result()
	got := strings.Join(frames, ",")
	if got != "a,p1,b,p2" && got != "a,p1,b" {
		t.Fatalf("wrote %s", got)
	}
}

// stalledClient serves one socket whose client never reads: the test
// gets the hub-side Conn's Serve outcome once Serve returned. Frames of
// 64 KiB are queued until the loopback buffers are full, so a write
// blocks for good; the queue is large enough that the 4005 cap is not
// what ends it.
func stalledClient(t *testing.T, cfg wsconn.Config, serveCtx func(r *http.Request) context.Context) <-chan struct{} {
	t.Helper()
	served := make(chan struct{})
	frame := []byte(`"` + strings.Repeat("x", 64<<10) + `"`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(served)
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c := wsconn.New(cfg)
		for range 512 {
			c.Send(frame)
		}
		c.Serve(serveCtx(r), ws, func(ctx context.Context) {
			// As the agent socket reads: not watching ctx, so only the
			// Conn's own handling of ctx can end the socket.
			ctx = context.WithoutCancel(ctx)
			for {
				if _, _, err := ws.Read(ctx); err != nil {
					return
				}
			}
		})
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return served
}

// A client that stops reading blocks the socket's write once the TCP
// buffers are full; WriteTimeout cuts the socket (the timer that bounds
// writes to a real WebSocket) and Serve returns.
func TestStalledWriteCutAfterWriteTimeout(t *testing.T) {
	served := stalledClient(t, wsconn.Config{SendBuffer: 1024, SendBytes: 1 << 30, WriteTimeout: 50 * time.Millisecond},
		func(r *http.Request) context.Context { return context.Background() })
	select {
	case <-served:
	case <-time.After(30 * time.Second):
		t.Fatal("a write blocked on a client that does not read was not cut")
	}
}

// Cancelling the context given to Serve cuts a socket whose write is
// blocked, although the writes themselves do not watch a context.
func TestServeCancelCutsBlockedWrite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := stalledClient(t, wsconn.Config{SendBuffer: 1024, SendBytes: 1 << 30, WriteTimeout: time.Hour},
		func(*http.Request) context.Context { return ctx })
	select {
	case <-served:
		t.Fatal("Serve returned before its context ended")
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	select {
	case <-served:
	case <-time.After(30 * time.Second):
		t.Fatal("cancelling Serve's context did not cut the blocked socket")
	}
}

// BenchmarkSendWriteRealSocket is BenchmarkSendWrite over a real
// WebSocket on loopback, one frame at a time (sent, then waited for, as a
// broadcast reaches each idle socket): the transport's cost included, a
// client reading and dropping every frame.
func BenchmarkSendWriteRealSocket(b *testing.B) {
	served := make(chan *wsconn.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c := wsconn.New(wsconn.Config{})
		served <- c
		c.Serve(r.Context(), ws, func(ctx context.Context) {
			for {
				if _, _, err := ws.Read(ctx); err != nil {
					return
				}
			}
		})
	}))
	defer srv.Close()
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}()
	c := <-served
	frame := make([]byte, 200)
	for i := range frame {
		frame[i] = 'x'
	}
	b.ReportAllocs()
	for b.Loop() {
		n, _ := c.SendN(frame)
		c.WaitWritten(n, time.Minute)
	}
	b.StopTimer()
	c.Close(websocket.StatusNormalClosure, "")
	<-read
	<-c.Closed()
}

// serveAll serves n fake sockets and returns them with their transports;
// stop closes every socket and waits for their Serve calls.
func serveAll(t *testing.T, n int, newWS func(i int) (wsconn.Transport, func(context.Context))) (cs []*wsconn.Conn, stop func()) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		c := wsconn.New(wsconn.Config{SendBuffer: 1024, SendBytes: 1 << 30, WriteTimeout: time.Hour})
		ws, read := newWS(i)
		cs = append(cs, c)
		wg.Go(func() { c.Serve(context.Background(), ws, read) })
	}
	return cs, func() {
		for _, c := range cs {
			c.Close(protocol.CloseNormal, "")
		}
		wg.Wait()
	}
}

// KickAll writes a frame queued to many sockets (a broadcast), after what
// each had queued before and in order: a backlog longer than one batch,
// a source's frames, and a socket closing meanwhile (its frames, then its
// close) included.
func TestKickAllWritesEverySocket(t *testing.T) {
	const n = 300
	fakes := make([]*fakeWS, n)
	cs, stop := serveAll(t, n, func(i int) (wsconn.Transport, func(context.Context)) {
		fakes[i] = newFake()
		return fakes[i], fakes[i].read
	})
	src := &onceSource{}
	cs[7].SetSource(src)
	src.add("p")
	var want [n][]string
	for i, c := range cs {
		frames := 1
		if i%50 == 3 {
			frames = 70 // over two batches
		}
		for k := range frames {
			f := "f" + strconv.Itoa(k)
			if _, ok := c.Enqueue([]byte(f)); !ok {
				t.Fatal("not queued")
			}
			want[i] = append(want[i], f)
		}
	}
	cs[11].Close(protocol.ClosePolicy, "closing meanwhile")
	last := make([]uint64, n)
	for i, c := range cs {
		if i == 11 {
			continue
		}
		var ok bool
		if last[i], ok = c.Enqueue([]byte("bcast")); !ok {
			t.Fatal("broadcast not queued")
		}
		want[i] = append(want[i], "bcast")
	}
	wsconn.KickAll(cs)
	for i, c := range cs {
		if i != 11 && !c.WaitWritten(last[i], time.Minute) {
			t.Fatalf("socket %d: the broadcast was not written", i)
		}
	}
	<-cs[11].Closed()
	stop()
	for i, f := range fakes {
		got, code, _, closes := f.result()
		if i == 7 {
			// The source's frame goes whenever the writer finds the queue
			// empty (Serve's first writer may have run between the
			// frames queued here): once, anywhere.
			n := len(got)
			if got = slices.DeleteFunc(got, func(f string) bool { return f == "p" }); len(got) != n-1 {
				t.Fatalf("socket 7 wrote the source's frame %d times", n-len(got))
			}
		}
		if strings.Join(got, ",") != strings.Join(want[i], ",") || closes != 1 {
			t.Fatalf("socket %d wrote %v, want %v (closed %d times)", i, got, want[i], closes)
		}
		if i == 11 && code != protocol.ClosePolicy {
			t.Fatalf("the closing socket closed with %d", code)
		}
	}
}

// stuckWS is a transport whose writes block until release is closed: a
// client that stopped reading, its TCP window full.
type stuckWS struct {
	*fakeWS
	release chan struct{}
	blocked chan struct{}
}

func (s stuckWS) Write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	s.blocked <- struct{}{}
	<-s.release
	return s.fakeWS.Write(ctx, typ, p)
}

// Sockets whose writes block hold up KickAll's other sockets only until
// the stall check starts another worker: with more stuck sockets at the
// front than KickAll starts workers, every other socket still gets its
// frame while they stay stuck.
func TestKickAllPastStuckSockets(t *testing.T) {
	const stuck, healthy = 12, 200
	release := make(chan struct{})
	blocked := make(chan struct{}, stuck)
	cs, stop := serveAll(t, stuck+healthy, func(i int) (wsconn.Transport, func(context.Context)) {
		f := newFake()
		if i < stuck {
			return stuckWS{fakeWS: f, release: release, blocked: blocked}, f.read
		}
		return f, f.read
	})
	defer stop()
	defer close(release)
	last := make([]uint64, len(cs))
	for i, c := range cs {
		last[i], _ = c.Enqueue([]byte("bcast"))
	}
	wsconn.KickAll(cs)
	for i := stuck; i < len(cs); i++ {
		if !cs[i].WaitWritten(last[i], time.Minute) {
			t.Fatalf("socket %d: not written while %d others are stuck", i, stuck)
		}
	}
	for range stuck {
		<-blocked // every stuck socket's write was started, none finished
	}
	for i := range stuck {
		if cs[i].WaitWritten(last[i], 0) {
			t.Fatalf("stuck socket %d reported written", i)
		}
	}
}

// slowWS is a transport that can be cut: its first slow writes each take
// a while, shorter than the write timeout, and the next blocks until the
// socket is cut.
type slowWS struct {
	*fakeWS
	slow     int
	each     time.Duration
	mu       sync.Mutex
	n        int
	cut      chan struct{}
	cutOnce  sync.Once
	cutAfter int // writes done when cut
}

func (s *slowWS) Write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	if n <= s.slow {
		time.Sleep(s.each)
		return s.fakeWS.Write(ctx, typ, p)
	}
	<-s.cut
	return errors.New("cut")
}

func (s *slowWS) CloseNow() error {
	s.cutOnce.Do(func() {
		s.mu.Lock()
		s.cutAfter = s.n - 1
		s.mu.Unlock()
		close(s.cut)
	})
	return nil
}

// The watchdog bounds each write, not a run of them: writes that each end
// within WriteTimeout go on for longer than it uncut, and the one that
// then blocks is cut.
func TestWatchdogBoundsEachWrite(t *testing.T) {
	ws := &slowWS{fakeWS: newFake(), slow: 40, each: 20 * time.Millisecond, cut: make(chan struct{})}
	c := wsconn.New(wsconn.Config{SendBuffer: 100, WriteTimeout: 500 * time.Millisecond})
	for range ws.slow + 1 {
		c.Send([]byte("x"))
	}
	c.Serve(context.Background(), ws, ws.read)
	frames, _, _, _ := ws.result()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if len(frames) != ws.slow || ws.cutAfter != ws.slow {
		t.Fatalf("wrote %d of %d slow frames, cut after %d", len(frames), ws.slow, ws.cutAfter)
	}
}
