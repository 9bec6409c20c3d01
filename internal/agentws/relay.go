package agentws

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/sendq"
)

// The leader's side of the relay: sockets that follower hubs hold run here
// as conns whose transport is the cluster bus, through the same code as
// local sockets (identify, limits, dispatch, send queue, close codes,
// revocation, reaping). Nothing in the domain can tell them apart.

// relayKey names a relayed socket: the follower holding it (its id and
// process) and its number there.
type relayKey struct {
	hub  string
	inst string
	conn uint64
}

// follower is what the leader last heard from one follower hub.
type follower struct {
	inst string
	at   time.Time
}

type relay struct {
	srv   *Server
	bus   cluster.Bus
	epoch int64
	ctx   context.Context

	mu      sync.Mutex
	conns   map[relayKey]*conn
	seen    map[string]follower // by hub id
	stopped bool
	wg      sync.WaitGroup
}

// errRelayGone is what a relayed socket's Read returns once it is closed.
var errRelayGone = errors.New("agentws: relayed socket closed")

// publishTimeout bounds one relay publish: a bus that cannot take a
// message for this long counts as down for that socket.
const publishTimeout = 10 * time.Second

// Relay starts running the sockets that followers relay to this hub
// while it leads in term epoch; it is subscribed when Relay returns. A
// follower not heard from for silence (no heartbeat, no frame) loses its
// sockets: its agents count as disconnected, exactly as when a local
// socket drops. stop ends the relay and every relayed socket still open,
// and waits for them.
func (s *Server) Relay(b cluster.Bus, epoch int64, silence time.Duration) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &relay{srv: s, bus: b, epoch: epoch, ctx: ctx, conns: map[relayKey]*conn{}, seen: map[string]follower{}}
	unsub, err := b.Subscribe(cluster.SubjectLeaderIn, r.receive)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("relay: subscribe %s: %w", cluster.SubjectLeaderIn, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(silence/5, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.dropSilent(silence)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		unsub()
		r.stop()
	}, nil
}

// stop ends every relayed socket still open (the hub stops relaying) and
// waits for their cleanup.
func (r *relay) stop() {
	r.mu.Lock()
	r.stopped = true
	conns := make([]*conn, 0, len(r.conns))
	for _, c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		// The agent is to reconnect to whoever leads next (this hub again,
		// in a new term, or another): the same 1012 its follower sends
		// when it learns of the new term, whichever reaches it first.
		c.close(protocol.CloseRestart, "hub leader changed: reconnect")
		c.ws.(*remote).gone()
	}
	r.wg.Wait()
}

func (r *relay) receive(payload []byte) {
	e, err := cluster.DecodeRelay(payload)
	if err != nil {
		r.srv.log.Debug("relay message dropped", "event", "relay_bad_envelope", "err", err)
		return
	}
	key := relayKey{e.Hub, e.Inst, e.Conn}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	var replaced []*conn
	if prev, ok := r.seen[e.Hub]; ok && prev.inst != e.Inst {
		// The hub restarted (or, misconfigured, two hubs share an id):
		// the sockets of the process it replaced are gone.
		replaced = r.connsOfLocked(e.Hub, prev.inst)
		r.srv.log.Warn("follower hub restarted: the sockets of its previous process are disconnected",
			"event", "relay_hub_restarted", "hub_id", e.Hub, "sockets", len(replaced))
	}
	r.seen[e.Hub] = follower{inst: e.Inst, at: time.Now()}
	c := r.conns[key]
	r.mu.Unlock()
	for _, old := range replaced {
		old.ws.(*remote).gone()
	}
	if e.Kind == cluster.RelayHeartbeat {
		return
	}
	if e.Epoch != r.epoch {
		// Meant for another term: the follower is about to learn of this
		// leader and reconnect its sockets.
		return
	}
	if c != nil && e.Kind != cluster.RelayOpen {
		rt := c.ws.(*remote)
		if e.Kind == cluster.RelayClosed && e.Seq == 0 {
			// The follower no longer has the socket (it gave up on the
			// handshake before this leader's answer came).
			rt.gone()
			return
		}
		if e.Seq != rt.recvSeq+1 {
			r.srv.log.Warn("relay lost messages: closing the socket", "event", "relay_gap", "hub_id", e.Hub,
				"agent_id", c.agentID(), "want_seq", rt.recvSeq+1, "got_seq", e.Seq)
			c.close(protocol.CloseRestart, "hub relay lost frames: reconnect")
			rt.gone()
			return
		}
		rt.recvSeq = e.Seq
	}
	switch e.Kind {
	case cluster.RelayOpen:
		if c == nil && e.Seq == 1 {
			r.open(key, e.Remote)
		}
	case cluster.RelayFrame:
		if c == nil {
			// A socket this leader does not know (it dropped the follower
			// as silent, or took over since): the agent must reconnect.
			// Seq 0: outside the socket's sequence, which this leader
			// never saw.
			_ = r.send(cluster.RelayEnvelope{Kind: cluster.RelayClose, Hub: e.Hub, Inst: e.Inst, Conn: e.Conn,
				Code: int(protocol.CloseRestart), Reason: "relay lost: reconnect"})
			return
		}
		c.ws.(*remote).push(e.Data, e.Binary)
	case cluster.RelayPong:
		if c != nil {
			c.heard()
		}
	case cluster.RelayClosed:
		if c != nil {
			c.ws.(*remote).gone()
		}
	}
}

// open admits a relayed socket as ServeHTTP admits a local one, and tells
// the follower whether to upgrade it.
func (r *relay) open(key relayKey, remoteAddr string) {
	s := r.srv
	if !s.admit(remoteIP(remoteAddr)) {
		_ = r.send(cluster.RelayEnvelope{Kind: cluster.RelayRefuse, Hub: key.hub, Inst: key.inst, Conn: key.conn, Seq: 1})
		return
	}
	rt := &remote{r: r, key: key, in: sendq.New(s.cfg.SendBuffer, 2*s.cfg.ReportLimit), goneCh: make(chan struct{}), recvSeq: 1}
	rt.limit.Store(s.cfg.ReadLimit)
	c := newConn(s, rt, s.nextID.Add(1), remoteAddr)
	rt.c = c
	r.mu.Lock()
	if r.stopped {
		// Stopped since receive looked: stop's Wait must not race an Add.
		r.mu.Unlock()
		s.unadmit(remoteIP(remoteAddr))
		return
	}
	r.conns[key] = c
	r.wg.Add(1)
	r.mu.Unlock()
	_ = rt.send(cluster.RelayEnvelope{Kind: cluster.RelayAccept})
	go func() {
		defer r.wg.Done()
		s.serve(r.ctx, c)
		r.mu.Lock()
		if r.conns[key] == c {
			delete(r.conns, key)
		}
		r.mu.Unlock()
	}()
}

// dropSilent ends the sockets of every follower not heard from for
// silence: the hub holding them is gone or cut off.
func (r *relay) dropSilent(silence time.Duration) {
	now := time.Now()
	r.mu.Lock()
	var lost []*conn
	for hub, f := range r.seen {
		if now.Sub(f.at) <= silence {
			continue
		}
		delete(r.seen, hub)
		lost = append(lost, r.connsOfLocked(hub, f.inst)...)
		r.srv.log.Warn("follower hub silent: its agents are disconnected", "event", "relay_hub_silent", "hub_id", hub)
	}
	r.mu.Unlock()
	for _, c := range lost {
		c.ws.(*remote).gone()
	}
}

// connsOfLocked lists the relayed sockets of one follower process.
func (r *relay) connsOfLocked(hub, inst string) []*conn {
	var out []*conn
	for k, c := range r.conns {
		if k.hub == hub && k.inst == inst {
			out = append(out, c)
		}
	}
	return out
}

// send publishes one envelope to the follower it names.
func (r *relay) send(e cluster.RelayEnvelope) error {
	e.Epoch = r.epoch
	b, err := e.Encode()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := r.bus.Publish(ctx, cluster.SubjectHub(e.Hub), b); err != nil {
		return fmt.Errorf("relay: publish to hub %s: %w", e.Hub, err)
	}
	return nil
}

// remote is the transport of a socket a follower holds.
type remote struct {
	r   *relay
	key relayKey
	c   *conn
	// in holds the frames the follower relayed, not yet read; the first
	// byte of each says text (0) or binary (1).
	in       *sendq.Queue
	limit    atomic.Int64
	goneOnce sync.Once
	goneCh   chan struct{}
	// recvSeq is the last envelope's Seq from the follower; only the
	// relay's receive touches it.
	recvSeq uint64
	// sendMu orders numbering and publishing of this socket's envelopes.
	sendMu  sync.Mutex
	sendSeq uint64
}

// send numbers and publishes an envelope about this socket.
func (rt *remote) send(e cluster.RelayEnvelope) error {
	e.Hub, e.Inst, e.Conn = rt.key.hub, rt.key.inst, rt.key.conn
	rt.sendMu.Lock()
	defer rt.sendMu.Unlock()
	rt.sendSeq++
	e.Seq = rt.sendSeq
	return rt.r.send(e)
}

// push queues a frame from the client. The bus cannot push back as TCP
// does, so a client whose frames pile up faster than the hub handles
// them is closed.
func (rt *remote) push(data []byte, binary bool) {
	b := make([]byte, 1+len(data))
	if binary {
		b[0] = 1
	}
	copy(b[1:], data)
	if !rt.in.Push(b) {
		rt.r.srv.log.Warn("relayed client sends faster than the hub handles", "event", "relay_inbound_full",
			"agent_id", rt.c.agentID(), "hub_id", rt.key.hub)
		rt.c.close(protocol.ClosePolicy, "too many frames in flight")
	}
}

func (rt *remote) gone() { rt.goneOnce.Do(func() { close(rt.goneCh) }) }

// Read returns the next relayed frame. Frames the client sent before it
// closed are still read, as TCP delivers them before the close.
func (rt *remote) Read(ctx context.Context) (websocket.MessageType, []byte, error) {
	b, ok := rt.in.Pop()
	for !ok {
		select {
		case <-rt.in.Ready():
			b, ok = rt.in.Pop()
		case <-rt.goneCh:
			if b, ok = rt.in.Pop(); !ok {
				return 0, nil, errRelayGone
			}
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
	rt.in.Done(b)
	if int64(len(b)-1) > rt.limit.Load() {
		// The follower enforces the limit on the socket itself; this
		// covers a frame that crossed a limit change.
		_ = rt.Close(websocket.StatusMessageTooBig, fmt.Sprintf("read limited at %d bytes", rt.limit.Load()))
		return 0, nil, errRelayGone
	}
	typ := websocket.MessageText
	if b[0] == 1 {
		typ = websocket.MessageBinary
	}
	return typ, b[1:], nil
}

func (rt *remote) Write(ctx context.Context, _ websocket.MessageType, p []byte) error {
	select {
	case <-rt.goneCh:
		return errRelayGone
	default:
	}
	return rt.send(cluster.RelayEnvelope{Kind: cluster.RelayWrite, Data: p})
}

// Ping asks the follower to ping the client; the pong comes back as a
// RelayPong and counts like a local one.
func (rt *remote) Ping(context.Context) error {
	return rt.send(cluster.RelayEnvelope{Kind: cluster.RelayPing})
}

// Close tells the follower to close the socket once the frames written
// before are out, and ends reading. The hub holding the socket is not the
// one going away when the leader shuts down: for the agent that is a
// change of leader, so 1001 becomes 1012 (reconnect at once).
func (rt *remote) Close(code websocket.StatusCode, reason string) error {
	defer rt.gone()
	if code == protocol.CloseGoingAway {
		code, reason = protocol.CloseRestart, "hub leader changed: reconnect"
	}
	return rt.send(cluster.RelayEnvelope{Kind: cluster.RelayClose, Code: int(code), Reason: reason})
}

func (rt *remote) SetReadLimit(n int64) {
	rt.limit.Store(n)
	if err := rt.send(cluster.RelayEnvelope{Kind: cluster.RelayLimit, Limit: n}); err != nil {
		rt.r.srv.log.Warn("relay limit not sent", "event", "relay_publish_failed", "hub_id", rt.key.hub, "err", err)
	}
}
