package sidecar

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/coder/websocket"
)

const (
	// readLimit bounds one hub frame; task descriptions can be large.
	readLimit = 16 << 20
	// outQueue is how many frames may wait for the writer before the
	// connection is considered stuck.
	outQueue = 256
	// writeTimeout bounds one frame write.
	writeTimeout = 10 * time.Second
	dialTimeout  = 15 * time.Second
)

// session is one WebSocket connection to the hub. Its reader, writer and
// heartbeat run on their own goroutines, so pings and pongs flow whatever
// the task logic is doing. The event loop only enqueues frames (send never
// blocks) and receives inbound frames as events.
type session struct {
	id     uint64
	url    string // the hub's agent socket
	conn   *websocket.Conn
	log    *slog.Logger
	out    chan []byte
	ctx    context.Context // cancelled when the session is over
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	// identified and authRejected are set by the event loop and read by
	// the connection loop to choose the reconnect delay.
	identified   atomic.Bool
	authRejected atomic.Bool
	lastPong     atomic.Int64 // unix nanoseconds
	// closeCode is the close code the hub sent, -1 if none.
	closeCode atomic.Int32
}

// dial opens a session; its goroutines deliver inbound frames to deliver.
func dial(ctx context.Context, id uint64, url string, hc *http.Client, log *slog.Logger) (*session, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPClient: hc, CompressionMode: websocket.CompressionDisabled})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if busy := busyOf(resp); busy != nil {
			busy.err = err
			return nil, busy
		}
		return nil, err
	}
	conn.SetReadLimit(readLimit)
	// The session context is not derived from ctx: cancelling a Read
	// context closes the socket abruptly, and a stop must be able to close
	// it with a proper 1000 "shutdown" first.
	sctx, scancel := context.WithCancel(context.Background())
	s := &session{id: id, url: url, conn: conn, log: log.With("conn", id), out: make(chan []byte, outQueue), ctx: sctx, cancel: scancel}
	s.lastPong.Store(time.Now().UnixNano())
	s.closeCode.Store(-1)
	return s, nil
}

// start runs the reader, writer and heartbeat goroutines.
func (s *session) start(deliver func(*session, []byte) bool, ping, pongTimeout time.Duration) {
	s.wg.Add(3)
	go s.reader(deliver)
	go s.writer()
	go s.heartbeat(ping, pongTimeout)
}

// done is closed once every goroutine of the session has returned.
func (s *session) wait() { s.wg.Wait() }

// send enqueues a frame without blocking. It returns false when the
// session is over or its queue is full (then the session is closed).
func (s *session) send(v any) bool {
	if s.ctx.Err() != nil {
		return false
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode frame", "event", "send_error", "error", err)
		return false
	}
	select {
	case s.out <- b:
		return true
	default:
		s.log.Warn("hub is not reading; dropping the connection", "event", "send_failed", "reason", "queue_full")
		s.closeNow()
		return false
	}
}

func (s *session) reader(deliver func(*session, []byte) bool) {
	defer s.wg.Done()
	defer s.closeNow()
	for {
		typ, data, err := s.conn.Read(s.ctx)
		if err != nil {
			s.closeCode.Store(int32(websocket.CloseStatus(err)))
			if s.ctx.Err() == nil {
				s.log.Info("connection closed", "event", "ws_close", "code", int(websocket.CloseStatus(err)), "error", err)
			}
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		// Heartbeats are handled here, not in the event loop.
		var head struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(data, &head)
		switch head.Type {
		case protocol.OutPong:
			s.lastPong.Store(time.Now().UnixNano())
			continue
		case protocol.FramePing:
			// The original sidecar answers a ping with the ping frame's
			// shape, typed pong.
			s.send(protocol.Ping{Type: protocol.OutPong, Timestamp: time.Now().UnixMilli(), ProtocolVersion: clientVersion})
			continue
		}
		if !deliver(s, data) {
			return
		}
	}
}

func (s *session) writer() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case b := <-s.out:
			wctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
			err := s.conn.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				if s.ctx.Err() == nil {
					s.log.Warn("write failed", "event", "send_error", "error", err)
				}
				s.closeNow()
				return
			}
		}
	}
}

// heartbeat sends a ping every interval and drops the connection when a
// ping gets no pong within pongTimeout. A ping still unanswered when the
// next one is due is not doubled.
func (s *session) heartbeat(interval, pongTimeout time.Duration) {
	defer s.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	wait := time.NewTimer(pongTimeout)
	wait.Stop()
	defer wait.Stop()
	var sent time.Time
	pending := false
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-wait.C:
			if pending && s.lastPong.Load() < sent.UnixNano() {
				s.log.Warn("no pong from the hub; reconnecting", "event", "heartbeat_timeout", "timeout_ms", pongTimeout.Milliseconds())
				s.closeNow()
				return
			}
			pending = false
		case <-tick.C:
			if pending && s.lastPong.Load() < sent.UnixNano() {
				continue // the previous ping is still waiting for its pong
			}
			sent, pending = time.Now(), true
			if !s.send(protocol.Ping{Type: protocol.FramePing, ProtocolVersion: clientVersion}) {
				return
			}
			wait.Reset(pongTimeout)
		}
	}
}

// closeNow drops the connection without a close handshake.
func (s *session) closeNow() {
	s.closeOnce.Do(func() {
		s.cancel()
		_ = s.conn.CloseNow()
	})
}

// closeGraceful sends a close frame with code and reason and waits up to
// timeout for the hub's answer before dropping the connection. It runs on
// a session goroutine so callers never block on it.
func (s *session) closeGraceful(code websocket.StatusCode, reason string, timeout time.Duration) {
	s.closeOnce.Do(func() {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			done := make(chan struct{})
			go func() {
				_ = s.conn.Close(code, reason)
				close(done)
			}()
			t := time.NewTimer(timeout)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				_ = s.conn.CloseNow()
				<-done
			}
			s.cancel()
		}()
	})
}

// backoff is the reconnect delay: it doubles from min to max and is
// jittered to between half and all of the nominal value. It also draws
// the jitter of the other reconnect delays (jittered), so that a fleet
// of sidecars that lost their hub together (a hub restart, a leader
// change, a hub loading) does not come back in lockstep. It belongs to
// the connection loop, as does its random source.
type backoff struct {
	min, max, cur time.Duration
	rand          *rand.Rand
}

func newBackoff(min, max time.Duration, r *rand.Rand) *backoff {
	return &backoff{min: min, max: max, cur: min, rand: r}
}

func (b *backoff) reset() { b.cur = b.min }

func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(b.cur*2, b.max)
	return b.jittered(d/2, d)
}

// jittered is a delay drawn evenly from [lo, hi].
func (b *backoff) jittered(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(b.rand.Int64N(int64(hi-lo)+1))
}

// retryAfter is the delay after a hub's Retry-After: not sooner than it
// asked (it is loading), spread over up to half as long again, and never
// longer than the backoff's maximum. Where that maximum would narrow the
// spread below a third of the delay (a Retry-After near or above it, when
// the sidecar comes back sooner than asked anyway), the spread reaches
// down to two thirds of the maximum instead: a fleet never lands on one
// instant.
func (b *backoff) retryAfter(after time.Duration) time.Duration {
	d := max(after, minRetryAfter)
	hi := max(min(d+d/2, b.max), minRetryAfter)
	lo := min(d, hi)
	if hi-lo < hi/3 {
		lo = hi - hi/3
	}
	return b.jittered(lo, hi)
}

// failover is the delay before the next hub of hub_urls when one is
// unreachable or goes away: short (at most maxFailoverJitter, and at most
// the first backoff delay) but not zero, so that every agent of a hub
// that went away does not reach the next one in the same instant.
func (b *backoff) failover() time.Duration {
	return b.jittered(0, min(maxFailoverJitter, b.min))
}

// maxFailoverJitter bounds the delay before moving to the next hub.
const maxFailoverJitter = 250 * time.Millisecond

// newJitterSource is the random source of a sidecar that was given none:
// seeded from the operating system, so sidecars started together draw
// different delays.
func newJitterSource() rand.Source {
	var seed [32]byte
	_, _ = cryptorand.Read(seed[:]) // never fails (crypto/rand panics instead)
	return rand.NewChaCha8(seed)
}

// hubBusy is a refused upgrade that says when to come back: 503 with
// Retry-After, as a hub answers while it loads its stored state
// (hub_loading) or a cluster hub while it has no leader. It is no failure
// of this agent's (its token was not even looked at): the sidecar retries
// after RetryAfter rather than after its growing backoff.
type hubBusy struct {
	RetryAfter time.Duration
	err        error
}

func (b *hubBusy) Error() string {
	return fmt.Sprintf("hub busy, retry after %s: %v", b.RetryAfter, b.err)
}
func (b *hubBusy) Unwrap() error { return b.err }

// maxRetryAfter bounds the Retry-After a sidecar honours: a hub cannot
// park its agents for longer than this (the backoff's own maximum also
// applies).
const maxRetryAfter = 5 * time.Minute

// minRetryAfter keeps a "Retry-After: 0" from becoming a tight loop.
const minRetryAfter = 250 * time.Millisecond

// busyOf is the hubBusy a refused upgrade's response says, or nil: only a
// 503 whose Retry-After is a number of seconds counts.
func busyOf(resp *http.Response) *hubBusy {
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		return nil
	}
	secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || secs < 0 {
		return nil
	}
	// Capped before it becomes a Duration: a huge number of seconds
	// would overflow into a negative delay, a retry at once.
	return &hubBusy{RetryAfter: time.Duration(min(secs, int(maxRetryAfter/time.Second))) * time.Second}
}
