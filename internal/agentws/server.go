// Package agentws serves the agent socket, /ws: the original hub's
// protocol, frame for frame, over WebSocket. It translates frames into
// calls on the domain packages and domain deliveries into frames; it holds
// no domain state beyond who is connected.
package agentws

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/scheduler"
	"github.com/agentcom/agentcom/internal/tasklog"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Config tunes the socket layer. Zero values take the defaults.
type Config struct {
	// IdleTimeout closes a socket that sent no frame at all for this long.
	IdleTimeout time.Duration
	// StaleAfter closes an identified socket whose agent sent no ping for
	// this long (the reaper).
	StaleAfter time.Duration
	// ReapInterval is how often idle and stale sockets are looked for.
	ReapInterval time.Duration
	// SendBuffer is how many frames may wait for a slow client before it
	// is disconnected.
	SendBuffer int
	// SendBytes caps the bytes waiting for a slow client the same way (one
	// larger frame still goes to a client with nothing waiting).
	SendBytes int64
	// ReadLimit caps one inbound frame, in bytes; a larger frame of another
	// type is refused with a validation error.
	ReadLimit int64
	// ReportLimit caps task_complete and task_failed frames of an
	// identified agent: the original sidecar sends the whole result file.
	// A frame over it closes the socket (1009).
	ReportLimit int64
	// IdentifyTimeout closes a socket that has not identified this long
	// after it opened; pings before identify do not extend it.
	IdentifyTimeout time.Duration
	// MaxUnidentified caps sockets not yet identified, in all and per
	// remote address; a handshake over either cap is refused with 503.
	MaxUnidentified        int
	MaxUnidentifiedPerAddr int
	// PingInterval is how long an identified socket may go without a ping
	// before the hub sends it a WebSocket ping; its pong counts as the
	// agent's ping (clients that never send ping frames stay connected
	// while their socket is alive).
	PingInterval time.Duration
	// ViolationLimit validation failures within ViolationWindow close the
	// socket; the agent then waits a cooldown before identifying again.
	ViolationLimit  int
	ViolationWindow time.Duration
	Cooldowns       []time.Duration
	// PresenceWindow is the shortest time presence changes wait before
	// the sockets are told, so that a burst (a fleet starting) reaches
	// each socket in few frames; the wait grows by 100 µs per identified
	// socket, up to 1 s, keeping the wake-ups of all the sockets'
	// writers a small share of the CPU.
	PresenceWindow time.Duration
	// PresenceBatch is the most changes one presence frame (protocol
	// version 2) lists; more send a resync frame instead.
	PresenceBatch int
	// PresenceLog is how many presence changes are kept for sockets that
	// have not been told yet; a version-1 socket further behind is closed
	// as too slow (4005).
	PresenceLog int
	// Now is the server's clock (nil: time.Now): idle and stale checks,
	// the violation window and the cooldowns. Tests inject one to check
	// the cooldowns to the second.
	Now func() time.Time
}

// DefaultConfig holds the original hub's timers.
func DefaultConfig() Config {
	return Config{
		IdleTimeout: 60 * time.Second, StaleAfter: 60 * time.Second, ReapInterval: 30 * time.Second,
		SendBuffer: 256, SendBytes: 4 << 20, ReadLimit: 1 << 20, ReportLimit: 16 << 20,
		IdentifyTimeout: 10 * time.Second, MaxUnidentified: 2048, MaxUnidentifiedPerAddr: 128,
		// Past the sidecars' 30 s pings (they need none), well before StaleAfter.
		PingInterval:   35 * time.Second,
		PresenceWindow: 5 * time.Millisecond, PresenceBatch: 64, PresenceLog: 1 << 16,
		ViolationLimit: 10, ViolationWindow: time.Minute,
		Cooldowns: []time.Duration{30 * time.Second, 60 * time.Second, 300 * time.Second},
	}
}

// Verifier checks tokens, and whether a verified one still holds.
type Verifier interface {
	Verify(token string) (auth.Identity, error)
	Live(id auth.Identity) bool
}

// Limiter decides whether a frame of a rate-limit class (the frame
// table's) from an agent may go through now. It returns how long to wait
// when it may not.
type Limiter interface {
	AllowClass(class, agentID string) (ok bool, retryAfter time.Duration)
}

// Observer is told about traffic, for metrics.
type Observer interface {
	ValidationFailed(frameType string)
	RateLimited(frameType string)
	Connections(n int)
}

// Server is the agent socket endpoint and the registry of live sockets.
type Server struct {
	cfg       Config
	tokens    Verifier
	presence  *presence.Directory
	messaging *messaging.Service
	sched     *scheduler.Scheduler
	limiter   Limiter
	obs       Observer
	logs      *tasklog.Store
	log       *slog.Logger
	now       func() time.Time
	routes    map[string]route // the frame table

	nextID atomic.Uint64

	// identifyMu orders identifies and releases (see takeOver).
	identifyMu sync.Mutex

	mu          sync.RWMutex
	byAgent     map[string]*conn // identified sockets
	all         map[*conn]struct{}
	unident     int            // sockets never identified
	unidentAddr map[string]int // the same, per remote address
	closed      bool
	wg          sync.WaitGroup
	cooldown    *cooldowns

	// feed is the presence changes the sockets read; presMu guards the
	// timer that tells them (one pending at a time) and presStopped.
	feed        *presence.Feed
	presMu      sync.Mutex
	presTimer   *time.Timer
	presStopped bool
}

// Deps are what the server calls into.
type Deps struct {
	Tokens    Verifier
	Presence  *presence.Directory
	Messaging *messaging.Service
	Scheduler *scheduler.Scheduler
	Limiter   Limiter  // optional
	Observer  Observer // optional
	// TaskLogs receives the agents' live output (optional).
	TaskLogs *tasklog.Store
	Log      *slog.Logger
}

// New returns a server. Its Pusher side must be handed to the domain
// (messaging, scheduler) by the caller.
func New(cfg Config, d Deps) *Server {
	def := DefaultConfig()
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, def.IdleTimeout)
	cfg.StaleAfter = cmp.Or(cfg.StaleAfter, def.StaleAfter)
	cfg.ReapInterval = cmp.Or(cfg.ReapInterval, def.ReapInterval)
	cfg.SendBuffer = cmp.Or(cfg.SendBuffer, def.SendBuffer)
	cfg.SendBytes = cmp.Or(cfg.SendBytes, def.SendBytes)
	cfg.ReadLimit = cmp.Or(cfg.ReadLimit, def.ReadLimit)
	cfg.ReportLimit = max(cmp.Or(cfg.ReportLimit, def.ReportLimit), cfg.ReadLimit)
	cfg.IdentifyTimeout = cmp.Or(cfg.IdentifyTimeout, def.IdentifyTimeout)
	cfg.MaxUnidentified = cmp.Or(cfg.MaxUnidentified, def.MaxUnidentified)
	cfg.MaxUnidentifiedPerAddr = cmp.Or(cfg.MaxUnidentifiedPerAddr, def.MaxUnidentifiedPerAddr)
	cfg.PingInterval = cmp.Or(cfg.PingInterval, def.PingInterval)
	cfg.PresenceWindow = cmp.Or(cfg.PresenceWindow, def.PresenceWindow)
	cfg.PresenceBatch = cmp.Or(cfg.PresenceBatch, def.PresenceBatch)
	cfg.PresenceLog = cmp.Or(cfg.PresenceLog, def.PresenceLog)
	cfg.ViolationLimit = cmp.Or(cfg.ViolationLimit, def.ViolationLimit)
	cfg.ViolationWindow = cmp.Or(cfg.ViolationWindow, def.ViolationWindow)
	if cfg.Cooldowns == nil {
		cfg.Cooldowns = def.Cooldowns
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, tokens: d.Tokens, presence: d.Presence, messaging: d.Messaging,
		sched: d.Scheduler, limiter: d.Limiter, obs: d.Observer, logs: d.TaskLogs,
		log: d.Log.With("component", "agentws"), now: cfg.Now, routes: frameRoutes(),
		byAgent: map[string]*conn{}, all: map[*conn]struct{}{}, unidentAddr: map[string]int{}, cooldown: newCooldowns(cfg.Cooldowns),
		feed: presence.NewFeed(cfg.PresenceLog)}
}

// SetMessaging sets the messaging service (built after the server, since
// it pushes through it).
func (s *Server) SetMessaging(m *messaging.Service) { s.messaging = m }

// ServeHTTP upgrades the request and runs the socket until it closes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	addr := remoteIP(r.RemoteAddr)
	if !s.admit(addr) {
		refuseTooMany(w)
		return
	}
	var c *conn
	// Agents are not browsers; the original accepted any origin, and the
	// token inside identify is what authenticates. A pong (to the hub's
	// pings) is proof of life like a ping frame.
	ws, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{InsecureSkipVerify: true,
		OnPongReceived: func(context.Context, []byte) { c.heard() }})
	if err != nil {
		s.unadmit(addr)
		return
	}
	ws.SetReadLimit(s.cfg.ReadLimit)
	c = newConn(s, ws, s.nextID.Add(1), r.RemoteAddr)
	// The socket gets a goroutine of its own (counted in s.wg by start,
	// under the lock Shutdown takes) and this one returns: net/http's
	// connection state (its 4 KiB read and write buffers, the request)
	// stays alive as long as the handler runs, so for the socket's whole
	// life it would hold 8 KiB it no longer uses, and this goroutine's
	// stack grown by the handshake. The request's context ends when the
	// handler returns, and the socket keeps none of it: its values are
	// net/http's own (the server, the local address), which nothing under
	// the socket reads, and holding them kept the request's and the
	// connection's contexts (cancel state, child map, done channel) alive
	// for the socket's life, ~0.5 KB a socket.
	if s.start(c) {
		go s.serveStarted(context.Background(), c)
	}
}

// Buffer sizes of an agent socket once upgraded. net/http hands a
// hijacked connection a 4 KiB reader and a new 4 KiB writer, which the
// socket keeps for its life: 8 KiB of a 10,000-agent hub's memory per
// agent doing nothing. Agent frames are mostly a few hundred bytes; a
// larger one costs a second read or write syscall, not a copy (bufio
// reads and writes past its buffer directly). The read side is the
// smaller: what agents send is pings, acknowledgements and replies
// (identify, ping and task_accepted frames are under 300 bytes), while
// what they receive (task_assign with its description, messages) is
// larger and goes out one write syscall a frame only if it fits.
const (
	socketReadBuffer  = 512
	socketWriteBuffer = 2 << 10
)

// smallBuffers is the ResponseWriter coder/websocket upgrades: its Hijack
// (http.Hijacker, the documented way for the library to take the
// connection) hands over smaller buffers, keeping any bytes the client
// sent after its handshake that net/http had already read.
type smallBuffers struct{ http.ResponseWriter }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("agentws: hijack: %w", err)
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("agentws: hijack: %w", err)
	}
	n := brw.Reader.Buffered()
	if n == 0 {
		return conn, bufio.NewReadWriter(bufio.NewReaderSize(conn, socketReadBuffer), bufio.NewWriterSize(conn, socketWriteBuffer)), nil
	}
	// The early bytes go into the new reader's buffer, not just before
	// conn: the library keeps what is buffered and replaces the reader
	// under it.
	early, _ := brw.Reader.Peek(n)
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(socketReadBuffer, n))
	if _, err := br.Peek(n); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("agentws: hijack: keep early bytes: %w", err)
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, socketWriteBuffer)), nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// refuseTooMany answers a handshake over the unidentified caps.
func refuseTooMany(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"error":"too_many_connections","detail":"too many sockets waiting to identify"}` + "\n"))
}

// serve runs an admitted socket until it closes, then cleans up after it.
func (s *Server) serve(ctx context.Context, c *conn) {
	if s.start(c) {
		s.serveStarted(ctx, c)
	}
}

// start counts an admitted socket among the server's (s.wg included), or
// closes it when the server is shutting down.
func (s *Server) start(c *conn) bool {
	c.addr = remoteIP(c.remote)
	if !s.add(c) {
		s.unadmit(c.addr)
		_ = c.ws.Close(protocol.CloseGoingAway, "hub shutting down")
		return false
	}
	return true
}

// serveStarted runs a started socket until it closes, then cleans up.
func (s *Server) serveStarted(ctx context.Context, c *conn) {
	deadline := time.AfterFunc(s.cfg.IdentifyTimeout, func() {
		if c.agentID() == "" {
			s.log.Info("closing socket that did not identify", "event", "identify_timeout", "remote", c.remote)
			c.close(protocol.CloseIdentifyTimeout, "identify timeout")
		}
	})
	defer s.wg.Done()
	c.run(ctx)
	deadline.Stop()
	s.remove(c)
}

// admit counts a new unidentified socket from addr, unless a cap is
// reached or the server is closed.
func (s *Server) admit(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.unident >= s.cfg.MaxUnidentified || s.unidentAddr[addr] >= s.cfg.MaxUnidentifiedPerAddr {
		return false
	}
	s.unident++
	s.unidentAddr[addr]++
	return true
}

func (s *Server) unadmit(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unadmitLocked(addr)
}

func (s *Server) unadmitLocked(addr string) {
	s.unident--
	if s.unidentAddr[addr]--; s.unidentAddr[addr] <= 0 {
		delete(s.unidentAddr, addr)
	}
}

// identified takes c off the unidentified count (once).
func (s *Server) identified(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.counted {
		c.counted = true
		s.unadmitLocked(c.addr)
	}
}

func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	// Counted under the lock that Shutdown takes to set closed: every
	// accepted socket is counted before Shutdown waits, so the wait
	// covers its cleanup (an Add after the unlock raced with Wait).
	s.wg.Add(1)
	s.all[c] = struct{}{}
	s.observeLocked()
	return true
}

// remoteIP is the address part of a RemoteAddr.
func remoteIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// remove runs the cleanup of a closed socket: presence, analytics, and the
// tasks its agent held, unless a newer socket took the agent over.
func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.all, c)
	if !c.counted {
		c.counted = true
		s.unadmitLocked(c.addr)
	}
	s.observeLocked()
	s.mu.Unlock()
	s.release(c)
}

// release ends c's hold on its agent: presence, analytics and the tasks
// the agent held, unless a newer socket already took the agent over.
func (s *Server) release(c *conn) {
	s.identifyMu.Lock()
	defer s.identifyMu.Unlock()
	s.releaseLocked(c)
}

func (s *Server) releaseLocked(c *conn) {
	s.mu.Lock()
	agent := c.agentID()
	owner := agent != "" && s.byAgent[agent] == c
	if owner {
		delete(s.byAgent, agent)
	}
	shutdown := s.closed
	s.mu.Unlock()
	if !owner {
		return
	}
	s.presence.Unregister(agent)
	s.announce(presence.ChangeLeft, protocol.AgentInfo{AgentID: agent})
	s.messaging.Analytics.RecordDisconnect(agent)
	if shutdown {
		// The hub is stopping, not the agent: its tasks stay assigned and
		// it gets a full lease to come back and continue them.
		return
	}
	s.sched.Disconnect(agent, c.id)
	s.log.Info("agent disconnected", "event", "agent_disconnected", "agent_id", agent)
}

func (s *Server) observeLocked() {
	if s.obs != nil {
		s.obs.Connections(len(s.all))
	}
}

// bind makes c the socket of agent, closing an earlier one.
func (s *Server) bind(agent string, c *conn) {
	s.mu.Lock()
	old := s.byAgent[agent]
	s.byAgent[agent] = c
	s.mu.Unlock()
	if old != nil && old != c {
		s.log.Info("agent connection replaced", "event", "connection_replaced", "agent_id", agent)
		old.close(protocol.CloseReplaced, "replaced by a newer connection for this agent")
	}
}

func (s *Server) conn(agent string) *conn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byAgent[agent]
}

// Run reaps idle and stale sockets until ctx ends.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReapInterval)
	defer t.Stop()
	p := time.NewTicker(max(s.cfg.PingInterval/2, time.Millisecond))
	defer p.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Reap()
		case <-p.C:
			s.pingSilent()
		}
	}
}

// pingSilent sends a WebSocket ping to every identified socket that has
// not pinged (nor answered a ping) for PingInterval, one ping in flight
// per socket. A client that sends other frames but never pings needs them
// too: the stale reaper goes by pings.
func (s *Server) pingSilent() {
	now := s.now()
	s.mu.RLock()
	var silent []*conn
	for c := range s.all {
		if c.agentID() != "" && now.Sub(c.lastPing()) >= s.cfg.PingInterval && c.pinging.CompareAndSwap(false, true) {
			silent = append(silent, c)
		}
	}
	if s.closed {
		silent = nil
	}
	for _, c := range silent {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.pinging.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.PingInterval)
			defer cancel()
			// The pong is handled by OnPongReceived; a missing one is left
			// to the stale and idle reapers.
			_ = c.ws.Ping(ctx)
		}()
	}
	s.mu.RUnlock()
}

// Reap closes sockets that sent nothing for the idle timeout and
// identified sockets whose agent stopped pinging.
func (s *Server) Reap() {
	now := s.now()
	s.mu.RLock()
	var idle, stale []*conn
	for c := range s.all {
		switch {
		case now.Sub(c.lastFrame()) > s.cfg.IdleTimeout:
			idle = append(idle, c)
		case c.agentID() != "" && now.Sub(c.lastPing()) > s.cfg.StaleAfter:
			stale = append(stale, c)
		}
	}
	s.mu.RUnlock()
	for _, c := range idle {
		s.log.Info("closing idle socket", "event", "socket_idle", "agent_id", c.agentID())
		c.close(protocol.CloseIdle, "idle timeout")
	}
	for _, c := range stale {
		s.log.Info("closing stale socket", "event", "socket_stale", "agent_id", c.agentID())
		c.close(protocol.CloseStale, "no ping received")
	}
}

// Shutdown closes every socket with 1001 and waits for their cleanup.
func (s *Server) Shutdown(ctx context.Context) {
	s.ShutdownWith(ctx, protocol.CloseGoingAway, "hub shutting down")
}

// ShutdownWith is Shutdown with another close code: a hub that stops
// leading closes with 1012 so agents reconnect to the new leader at once.
// As with Shutdown, the agents keep their tasks for a lease.
func (s *Server) ShutdownWith(ctx context.Context, code websocket.StatusCode, reason string) {
	s.presMu.Lock()
	s.presStopped = true
	if s.presTimer != nil {
		s.presTimer.Stop()
	}
	s.presMu.Unlock()
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.all))
	for c := range s.all {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(code, reason)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// CloseAll closes every socket with code and reason; agents reconnect and
// identify again. Unlike Shutdown the server keeps accepting, and the
// agents' tasks go back to the queue as on any disconnect.
func (s *Server) CloseAll(code websocket.StatusCode, reason string) int {
	s.mu.RLock()
	conns := make([]*conn, 0, len(s.all))
	for c := range s.all {
		conns = append(conns, c)
	}
	s.mu.RUnlock()
	for _, c := range conns {
		c.close(code, reason)
	}
	return len(conns)
}

// CloseRevoked closes every socket identified with a token that no
// longer holds (revoked, or gone with a restore of the token table),
// whatever agent it identified as, and returns how many.
func (s *Server) CloseRevoked() int {
	s.mu.RLock()
	var revoked []*conn
	for c := range s.all {
		if id := c.identity.Load(); id != nil && !s.tokens.Live(*id) {
			revoked = append(revoked, c)
		}
	}
	s.mu.RUnlock()
	for _, c := range revoked {
		s.log.Info("closing socket of a revoked token", "event", "socket_revoked", "agent_id", c.agentID())
		c.close(protocol.CloseRevoked, "token revoked")
	}
	return len(revoked)
}

// Connected returns the number of open sockets.
func (s *Server) Connected() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.all)
}

// OnlineAgents lists agents with an identified socket (messaging.Pusher),
// in no particular order: every broadcast asks for it, and sorting 1,000
// ids was a tenth of a millisecond before the broadcast's commit.
func (s *Server) OnlineAgents() []string {
	s.mu.RLock()
	out := make([]string, 0, len(s.byAgent))
	for a := range s.byAgent {
		out = append(out, a)
	}
	s.mu.RUnlock()
	return out
}

// Online reports whether agent has an identified socket.
func (s *Server) Online(agent string) bool { return s.conn(agent) != nil }

// PushMessage delivers a direct or broadcast message.
func (s *Server) PushMessage(agent string, m messaging.Message) bool {
	return s.sendOut(agent, pushed(protocol.OutMessage, m))
}

// PushChannelMessage delivers a channel message to a subscriber.
func (s *Server) PushChannelMessage(agent, channel string, m messaging.Message) bool {
	return s.sendOut(agent, protocol.PushedChannelMessage{PushedMessage: pushed(protocol.OutChannelMessage, m), Channel: channel})
}

// PushChannelJoined tells a subscriber another agent joined the channel.
func (s *Server) PushChannelJoined(agent, channel, joined string) bool {
	return s.send(agent, protocol.NewChannelAgentJoined(channel, joined))
}

// PushAssign delivers a task assignment (scheduler.Pusher).
func (s *Server) PushAssign(agent string, t *tasks.Task) bool {
	at := s.now().UnixMilli()
	if t.AssignedAt != nil {
		at = *t.AssignedAt
	}
	var deps []protocol.Dependency
	for _, u := range t.Upstream {
		deps = append(deps, protocol.Dependency{TaskID: u.TaskID, Description: u.Description, Status: string(u.Status),
			Result: u.Result, ResultTruncated: u.ResultTruncated})
	}
	return s.send(agent, protocol.TaskAssign{Type: protocol.OutTaskAssign, TaskID: t.ID, Description: t.Description,
		Metadata: t.Metadata, Generation: t.Generation, AssignedAt: at, CompleteBy: t.CompleteBy, Dependencies: deps})
}

// PushCancel tells an agent its task was cancelled.
func (s *Server) PushCancel(agent, taskID string) bool {
	return s.send(agent, protocol.TaskRevoked{Type: protocol.OutTaskCancelled, TaskID: taskID})
}

// PushRevoke tells an agent the hub took its task back (lease, deadline,
// acceptance timeout), with the original's task_reassign frame; the
// agent stops working on it (scheduler.Revoker).
func (s *Server) PushRevoke(agent, taskID string, gen int64, reason string) bool {
	return s.send(agent, protocol.TaskRevoked{Type: protocol.OutTaskReassign, TaskID: taskID, Generation: &gen, Reason: reason})
}

func (s *Server) send(agent string, frame protocol.Frame) bool {
	c, b := s.encodeFor(agent, frame)
	return c != nil && c.enqueue(b)
}

// encodeFor is agent's socket (nil when it has none) and the frame for it.
func (s *Server) encodeFor(agent string, frame protocol.Frame) (*conn, []byte) {
	c := s.conn(agent)
	if c == nil {
		return nil, nil
	}
	b, err := json.Marshal(frame)
	if err != nil {
		s.log.Error("encode frame", "event", "encode_failed", "agent_id", agent, "err", err)
		return nil, nil
	}
	return c, b
}

// sendOut is send for a message, which reports delivered only once it
// left this hub (written to the socket, or for a relayed one handed to
// the bus): a delivered message's mailbox copy is dropped then, so one
// still in this hub's queue when the hub dies must not count. The wait is
// bounded (deliverWait, publishTimeout for the bus): a recipient that
// reads slowly keeps its copy (it may see the message twice) rather than
// hold up its sender.
func (s *Server) sendOut(agent string, frame protocol.Frame) bool {
	c, b := s.encodeFor(agent, frame)
	if c == nil {
		return false
	}
	n, ok := c.enqueueN(b)
	wait := deliverWait
	if _, relayed := c.ws.(*remote); relayed {
		wait = publishTimeout
	}
	return ok && c.waitWritten(n, wait)
}

// announce records a presence change for the sockets and makes sure they
// are told within the presence window; it returns the change's number.
// Each socket renders the changes it has not sent when its writer runs:
// one frame per recipient per window (version 2), or the original frames
// written back to back (version 1), instead of one frame per change per
// recipient queued at once.
func (s *Server) announce(kind presence.ChangeKind, a protocol.AgentInfo) uint64 {
	seq, err := s.feed.Append(presence.Change{Kind: kind, Agent: a})
	if err != nil {
		s.log.Error("presence change not announced", "event", "encode_failed", "agent_id", a.AgentID, "err", err)
		return s.feed.Head()
	}
	s.presMu.Lock()
	defer s.presMu.Unlock()
	if s.presTimer == nil && !s.presStopped {
		s.presTimer = time.AfterFunc(s.presenceWindow(), s.flushPresence)
	}
	return seq
}

// presenceWindow is PresenceWindow plus 100 µs per identified socket, up
// to 1 s: telling n sockets costs n writer wake-ups, so the window
// grows with n and a fleet start stays linear in agents.
func (s *Server) presenceWindow() time.Duration {
	s.mu.RLock()
	n := len(s.byAgent)
	s.mu.RUnlock()
	return max(s.cfg.PresenceWindow, min(time.Duration(n)*100*time.Microsecond, time.Second))
}

// flushPresence wakes the writer of every socket with presence changes
// to send. It holds presMu throughout, so Shutdown, once it has taken it,
// knows no flush is running.
func (s *Server) flushPresence() {
	s.presMu.Lock()
	defer s.presMu.Unlock()
	s.presTimer = nil
	if s.presStopped {
		return
	}
	s.mu.RLock()
	targets := make([]*conn, 0, len(s.byAgent))
	for _, c := range s.byAgent {
		targets = append(targets, c)
	}
	s.mu.RUnlock()
	for _, c := range targets {
		if r := c.pres.Load(); r != nil && r.Pending() {
			c.out.Kick()
		}
	}
}

// pushed renders a stored message as a pushed frame of type typ.
func pushed(typ string, m messaging.Message) protocol.PushedMessage {
	return protocol.PushedMessage{Type: typ, ID: m.ID, From: m.From, MessageType: m.Type,
		Payload: m.Payload, ReplyTo: m.ReplyTo, Timestamp: m.Timestamp}
}

func agentInfo(e presence.Entry) protocol.AgentInfo {
	return protocol.AgentInfo{AgentID: e.AgentID, Name: e.Name, Status: e.Status, Capabilities: e.Capabilities, ConnectedAt: e.ConnectedAt}
}
