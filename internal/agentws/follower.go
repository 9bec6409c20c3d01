package agentws

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/wsconn"
)

// openRetry is how often an unanswered open is sent again.
const openRetry = 250 * time.Millisecond

// FollowerConfig configures a follower's relay.
type FollowerConfig struct {
	// Socket supplies the socket limits the follower applies itself: the
	// read limit before the leader raises it, and the send queue.
	Socket Config
	Bus    cluster.Bus
	HubID  string
	// Heartbeat is how often the follower tells the leader it is alive
	// (default 1 s; the leader drops a follower silent for about 5 s).
	Heartbeat time.Duration
	// OpenTimeout is how long a handshake waits for the leader to take
	// the socket before it is refused with 503 (default 5 s).
	OpenTimeout time.Duration
	Log         *slog.Logger
}

// Follower holds agent sockets on a hub that does not lead and relays them
// to the leader, which runs them (see Server.ServeRelay). It writes what
// the leader tells it to and closes when the leader does, so clients see
// the same frames and close codes as on the leader itself.
type Follower struct {
	cfg   FollowerConfig
	log   *slog.Logger
	epoch atomic.Int64 // the leader's term sockets are relayed to; 0: no leader
	inst  string       // this process, among the lives of the hub id
	next  atomic.Uint64

	mu     sync.Mutex
	conns  map[uint64]*fconn
	closed bool
	wg     sync.WaitGroup

	unsub func()
	stop  chan struct{}
}

// NewFollower subscribes to this hub's relay subject and starts the
// heartbeat. Stop ends both.
func NewFollower(cfg FollowerConfig) (*Follower, error) {
	def := DefaultConfig()
	cfg.Socket.ReadLimit = cmp.Or(cfg.Socket.ReadLimit, def.ReadLimit)
	cfg.Socket.SendBuffer = cmp.Or(cfg.Socket.SendBuffer, def.SendBuffer)
	cfg.Socket.SendBytes = cmp.Or(cfg.Socket.SendBytes, def.SendBytes)
	cfg.Heartbeat = cmp.Or(cfg.Heartbeat, time.Second)
	cfg.OpenTimeout = cmp.Or(cfg.OpenTimeout, 5*time.Second)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := cluster.CheckHubID(cfg.HubID); err != nil {
		return nil, err
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	f := &Follower{cfg: cfg, log: cfg.Log.With("component", "relay"), inst: hex.EncodeToString(nonce[:]),
		conns: map[uint64]*fconn{}, stop: make(chan struct{})}
	unsub, err := cfg.Bus.Subscribe(cluster.SubjectHub(cfg.HubID), f.receive)
	if err != nil {
		return nil, fmt.Errorf("relay: subscribe %s: %w", cluster.SubjectHub(cfg.HubID), err)
	}
	f.unsub = unsub
	f.wg.Add(1)
	go f.heartbeat()
	return f, nil
}

func (f *Follower) heartbeat() {
	defer f.wg.Done()
	t := time.NewTicker(f.cfg.Heartbeat)
	defer t.Stop()
	for {
		f.publish(cluster.RelayEnvelope{Kind: cluster.RelayHeartbeat, Epoch: f.epoch.Load()})
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
	}
}

// SetLeader records the leader's term. When the term changes, every
// socket relayed to the old leader is closed with 1012 so its agent
// reconnects (and resumes its task) on the new one; it returns how many.
func (f *Follower) SetLeader(epoch int64) int {
	if old := f.epoch.Swap(epoch); old == epoch || old == 0 {
		return 0
	}
	return f.CloseAll(protocol.CloseRestart, "hub leader changed: reconnect")
}

// CloseAll closes every socket the follower holds.
func (f *Follower) CloseAll(code websocket.StatusCode, reason string) int {
	f.mu.Lock()
	conns := make([]*fconn, 0, len(f.conns))
	for _, c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		c.close(code, reason)
	}
	return len(conns)
}

// Connected is the number of sockets the follower holds.
func (f *Follower) Connected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// Stop closes every socket with 1001, stops the heartbeat and the
// subscription, and waits for them.
func (f *Follower) Stop(ctx context.Context) {
	f.mu.Lock()
	already := f.closed
	f.closed = true
	f.mu.Unlock()
	if already {
		return
	}
	f.CloseAll(protocol.CloseGoingAway, "hub shutting down")
	f.unsub()
	close(f.stop)
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (f *Follower) publish(e cluster.RelayEnvelope) error {
	e.Hub, e.Inst = f.cfg.HubID, f.inst
	b, err := e.Encode()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := f.cfg.Bus.Publish(ctx, cluster.SubjectLeaderIn, b); err != nil {
		return fmt.Errorf("relay: publish to leader: %w", err)
	}
	return nil
}

// receive handles what the leader sends about this hub's sockets.
func (f *Follower) receive(payload []byte) {
	e, err := cluster.DecodeRelay(payload)
	if err != nil || e.Hub != f.cfg.HubID || e.Inst != f.inst {
		// Another process's (an earlier life of this hub id).
		return
	}
	f.mu.Lock()
	c := f.conns[e.Conn]
	f.mu.Unlock()
	if c == nil {
		if e.Kind != cluster.RelayClose && e.Kind != cluster.RelayRefuse {
			// The leader holds a socket this hub no longer has (an open
			// it answered after the handshake gave up): end it there.
			// Seq 0 is outside the socket's sequence: the leader closes.
			_ = f.publish(cluster.RelayEnvelope{Kind: cluster.RelayClosed, Conn: e.Conn, Epoch: e.Epoch})
		}
		return
	}
	if e.Seq != c.recvSeq+1 {
		if e.Seq == 0 && e.Kind == cluster.RelayClose {
			// A leader that does not know the socket closes it.
			c.close(websocket.StatusCode(e.Code), e.Reason)
			return
		}
		f.log.Warn("relay lost messages: closing the socket", "event", "relay_gap", "conn", c.id,
			"want_seq", c.recvSeq+1, "got_seq", e.Seq)
		c.close(protocol.CloseRestart, "hub relay lost frames: reconnect")
		return
	}
	c.recvSeq = e.Seq
	switch e.Kind {
	case cluster.RelayAccept, cluster.RelayRefuse:
		select {
		case c.answer <- e.Kind == cluster.RelayAccept:
		default:
		}
	case cluster.RelayWrite:
		c.out.Send(append([]byte(nil), e.Data...))
	case cluster.RelayClose:
		c.close(websocket.StatusCode(e.Code), e.Reason)
	case cluster.RelayLimit:
		c.limit.Store(e.Limit)
		if ws := c.ws.Load(); ws != nil {
			ws.SetReadLimit(e.Limit)
		}
	case cluster.RelayPing:
		c.ping()
	}
}

func (f *Follower) add(c *fconn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c.id] = c
	f.wg.Add(1)
	return true
}

func (f *Follower) remove(c *fconn) {
	f.mu.Lock()
	delete(f.conns, c.id)
	f.mu.Unlock()
	f.wg.Done()
}

// ServeHTTP asks the leader to take the socket, upgrades it once the
// leader has, and relays it until it closes. The leader applies the same
// caps as to its own sockets: over them, the handshake gets the same 503.
func (f *Follower) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		// Not a handshake: the library's own refusal, as on the leader,
		// without troubling the leader.
		_, _ = websocket.Accept(w, r, nil)
		return
	}
	epoch := f.epoch.Load()
	c := &fconn{f: f, id: f.next.Add(1), epoch: epoch, answer: make(chan bool, 1)}
	c.out = wsconn.New(wsconn.Config{SendBuffer: f.cfg.Socket.SendBuffer, SendBytes: f.cfg.Socket.SendBytes,
		SlowConsumer: func(frames int, bytes int64) {
			f.log.Warn("client not reading, disconnecting", "event", "slow_consumer", "conn", c.id,
				"queued_frames", frames, "queued_bytes", bytes)
		}})
	c.limit.Store(f.cfg.Socket.ReadLimit)
	if epoch == 0 || !f.add(c) {
		unavailable(w, "no leader to relay to")
		return
	}
	defer f.remove(c)
	open := cluster.RelayEnvelope{Kind: cluster.RelayOpen, Remote: r.RemoteAddr}
	if err := c.send(open); err != nil {
		f.log.Warn("relay open failed", "event", "relay_publish_failed", "err", err)
		unavailable(w, "leader unreachable")
		return
	}
	t := time.NewTimer(f.cfg.OpenTimeout)
	defer t.Stop()
	// A leader that has not started its relay for the term yet (it learns
	// of its election as the followers do) drops the open: it is sent
	// again, unchanged (the leader ignores a second open of a socket it
	// knows), until an answer comes.
	retry := time.NewTicker(openRetry)
	defer retry.Stop()
	open.Hub, open.Inst, open.Conn, open.Epoch, open.Seq = f.cfg.HubID, f.inst, c.id, c.epoch, 1
	var accepted, answered bool
wait:
	for {
		select {
		case accepted = <-c.answer:
			answered = true
			break wait
		case <-retry.C:
			if err := f.publish(open); err != nil {
				f.log.Warn("relay open failed", "event", "relay_publish_failed", "err", err)
			}
		case <-t.C:
			break wait
		case <-r.Context().Done():
			break wait
		case <-c.out.Closing():
			// Closed while waiting (a leader change, a stop).
			break wait
		}
	}
	if !accepted {
		if !answered {
			// The leader may still take it: tell it the socket is gone.
			_ = c.send(cluster.RelayEnvelope{Kind: cluster.RelayClosed})
			unavailable(w, "leader did not answer")
			return
		}
		refuseTooMany(w)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true,
		OnPongReceived: func(context.Context, []byte) { _ = c.send(cluster.RelayEnvelope{Kind: cluster.RelayPong}) }})
	if err != nil {
		_ = c.send(cluster.RelayEnvelope{Kind: cluster.RelayClosed})
		return
	}
	c.ws.Store(ws)
	ws.SetReadLimit(c.limit.Load())
	// Closed between the leader's answer and the upgrade, the socket
	// closes at once with the code it was given.
	c.out.Serve(r.Context(), ws, func(ctx context.Context) { c.relay(ctx, ws) })
}

// unavailable answers a handshake the follower cannot relay.
func unavailable(w http.ResponseWriter, detail string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = fmt.Fprintf(w, `{"error":"leader_unavailable","detail":%q}`+"\n", detail)
}

// fconn is a socket a follower holds.
type fconn struct {
	f      *Follower
	id     uint64
	epoch  int64
	answer chan bool
	ws     atomic.Pointer[websocket.Conn]
	limit  atomic.Int64
	// out writes what the leader sends, and closes as it says.
	out *wsconn.Conn

	// recvSeq is the last envelope's Seq from the leader; only receive
	// touches it.
	recvSeq uint64
	// sendMu orders numbering and publishing of this socket's envelopes.
	sendMu  sync.Mutex
	sendSeq uint64

	pinging atomic.Bool
}

// send publishes an envelope about this socket to the leader.
func (c *fconn) send(e cluster.RelayEnvelope) error {
	e.Conn, e.Epoch = c.id, c.epoch
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.sendSeq++
	e.Seq = c.sendSeq
	return c.f.publish(e)
}

// relay sends the client's frames to the leader until the socket closes;
// the leader then learns it is gone.
func (c *fconn) relay(ctx context.Context, ws *websocket.Conn) {
	defer func() { _ = c.send(cluster.RelayEnvelope{Kind: cluster.RelayClosed}) }()
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		err = c.send(cluster.RelayEnvelope{Kind: cluster.RelayFrame, Binary: typ == websocket.MessageBinary, Data: data})
		if errors.Is(err, cluster.ErrPayloadTooLarge) {
			c.close(websocket.StatusMessageTooBig, "frame too large to relay")
			return
		}
		if err != nil {
			c.f.log.Warn("relay to leader failed: closing the socket", "event", "relay_publish_failed", "err", err)
			c.close(protocol.CloseRestart, "hub relay failed: reconnect")
			return
		}
	}
}

// ping sends the client a WebSocket ping, one at a time; the pong goes to
// the leader through OnPongReceived.
func (c *fconn) ping() {
	ws := c.ws.Load()
	if ws == nil || !c.pinging.CompareAndSwap(false, true) {
		return
	}
	c.f.mu.Lock()
	if c.f.closed {
		c.f.mu.Unlock()
		c.pinging.Store(false)
		return
	}
	c.f.wg.Add(1)
	c.f.mu.Unlock()
	go func() {
		defer c.f.wg.Done()
		defer c.pinging.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		go func() {
			select {
			case <-c.out.Closing():
				cancel()
			case <-ctx.Done():
			}
		}()
		_ = ws.Ping(ctx)
	}()
}

// close starts the close handshake once, after the frames already queued
// are written, as conn.close does on the leader.
func (c *fconn) close(code websocket.StatusCode, reason string) { c.out.Close(code, reason) }
