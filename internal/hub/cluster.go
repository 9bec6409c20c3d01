package hub

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/agentws"
	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/startstop"
)

// Cluster mode. Several hubs on one database act as one: the elected
// leader runs the whole domain (queue, scheduler, registry, presence,
// messaging, timers, maintenance, dashboard) exactly as a single hub does;
// every hub accepts agent sockets. A follower relays its sockets to the
// leader over the bus (agentws.Follower, agentws.Server.ServeRelay) and
// forwards every other HTTP request to the leader's advertised URL. The
// wire behaviour and the domain are those of one hub, and the leader sees
// every agent.
//
// Security: a follower forwards requests from its own address, so in
// cluster mode no request counts as local on any hub (LoopbackOnly is
// false: the dashboard, its socket and the metrics need a token
// everywhere). The proxy drops any X-Forwarded-* the client sent and sets
// X-Forwarded-For/Host/Proto itself; the leader uses them for nothing that
// grants access. The original Host header is kept, so the leader's Host
// (DNS rebinding) and same-origin checks judge what the client addressed.
// Per-address limits at the leader (the public HTTP rate limit, the
// unidentified-socket caps) see relayed sockets at the client's address,
// but forwarded HTTP requests at the follower's.

// ClusterConfig puts a hub in a cluster.
type ClusterConfig struct {
	Bus     cluster.Bus
	Elector cluster.Elector
	// HubID names this hub on the bus (default: the elector's Self).
	HubID string
	// AdvertiseURL is where other hubs reach this one over HTTP; the
	// elector publishes it with the lead.
	AdvertiseURL string
	// Silence is how long the leader waits without a word from a follower
	// before its agents count as disconnected (default 5 s).
	Silence time.Duration
	// Heartbeat is how often a follower says it is alive (default 1 s).
	Heartbeat time.Duration
	// OpenTimeout is how long a follower's agent handshake waits for the
	// leader to take the socket before it is refused with 503 (default
	// 5 s).
	OpenTimeout time.Duration
	// ForwardWait is how long a request waits for a leader to forward it
	// to, through a change of leader, before it is answered 503 (default
	// 10 s).
	ForwardWait time.Duration
}

// clusterMode is a cluster hub's state.
type clusterMode struct {
	cfg       ClusterConfig
	follower  *agentws.Follower
	transport *http.Transport
	ctx       context.Context // until Shutdown
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu     sync.Mutex // orders changes of leader
	leader atomic.Pointer[cluster.Leader]
	// domain is the hub that runs the domain while this one leads.
	domain atomic.Pointer[Hub]
	proxy  atomic.Pointer[httputil.ReverseProxy]
	// relay stops the leader's relay of the followers' sockets.
	relayStop func()
	// loading is the load of the domain this hub builds as the new
	// leader (nil when it builds none): requests are answered 503
	// hub_loading meanwhile, and the relay starts only once it is built.
	loading atomic.Pointer[loadProgress]
	// changed is closed (and replaced) at every change of leader and
	// every new domain, for requests waiting for a leader.
	changedMu sync.Mutex
	changed   chan struct{}
}

func newClustered(cfg Config) (*Hub, error) {
	c := *cfg.Cluster
	if c.Bus == nil || c.Elector == nil {
		return nil, errors.New("cluster mode needs a bus and an elector")
	}
	c.HubID = cmp.Or(c.HubID, c.Elector.Self())
	if err := cluster.CheckHubID(c.HubID); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.Silence = cmp.Or(c.Silence, 5*time.Second)
	c.Heartbeat = cmp.Or(c.Heartbeat, time.Second)
	c.ForwardWait = cmp.Or(c.ForwardWait, 10*time.Second)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Hub{cfg: cfg, log: cfg.Log, started: time.Now(),
		clu: &clusterMode{cfg: c, transport: tr}}, nil
}

// Domain is the hub running the domain while this cluster hub leads (nil
// when it follows); a single hub is its own domain.
func (h *Hub) Domain() *Hub {
	if h.clu == nil {
		return h
	}
	return h.clu.domain.Load()
}

// Leader is the leader as this hub last saw it (the zero Leader for a
// single hub).
func (h *Hub) Leader() cluster.Leader {
	if h.clu == nil {
		return cluster.Leader{}
	}
	if l := h.clu.leader.Load(); l != nil {
		return *l
	}
	return cluster.Leader{}
}

// HubID is this hub's id in its cluster ("" for a single hub).
func (h *Hub) HubID() string {
	if h.clu == nil {
		return ""
	}
	return h.clu.cfg.HubID
}

func (h *Hub) serveCluster(ln net.Listener) error {
	m := h.clu
	h.listener = ln
	f, err := agentws.NewFollower(agentws.FollowerConfig{Socket: h.cfg.Socket, Bus: m.cfg.Bus, HubID: m.cfg.HubID,
		Heartbeat: m.cfg.Heartbeat, OpenTimeout: m.cfg.OpenTimeout, Log: h.log})
	if err != nil {
		return err
	}
	m.follower = f
	ctx, cancel := context.WithCancel(context.Background())
	m.ctx, m.cancel = ctx, cancel
	if err := m.cfg.Elector.Start(ctx); err != nil {
		cancel()
		f.Stop(context.Background())
		return fmt.Errorf("cluster: join the election: %w", err)
	}
	h.http = h.newHTTPServer(http.HandlerFunc(h.serveClusterHTTP))
	h.services = startstop.Group{
		startstop.Func("leader_watch", func(ctx context.Context) {
			// The first leader is followed here too, not before the
			// listener opens: a hub elected at start loads its domain
			// (seconds over a deep store) while it already answers, as
			// a loading hub (503 hub_loading), rather than refuse
			// connections meanwhile.
			h.onLeader(ctx, m.cfg.Elector.Leader())
			for {
				select {
				case <-ctx.Done():
					return
				case l, ok := <-m.cfg.Elector.Changes():
					if !ok {
						return
					}
					h.onLeader(ctx, l)
				}
			}
		}),
		h.serveHTTP(ln),
	}
	if err := h.services.Start(ctx); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	l := h.Leader()
	h.log.Info("hub listening", "component", "hub", "event", "listening", "addr", ln.Addr().String(),
		"hub_id", m.cfg.HubID, "leader", l.HubID, "role", h.role(), "version", h.cfg.Version)
	return nil
}

func (h *Hub) role() string {
	if h.Leader().HubID == h.clu.cfg.HubID {
		return "leader"
	}
	return "follower"
}

// onLeader follows a change of leader: this hub starts leading (builds
// and starts the domain from storage), stops leading (stops the domain at
// once), or follows another hub (its relayed sockets reconnect).
func (h *Hub) onLeader(ctx context.Context, l cluster.Leader) {
	m := h.clu
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev := m.leader.Load(); prev != nil && *prev == l {
		return
	}
	defer m.announce()
	m.leader.Store(&l)
	if l.HubID != m.cfg.HubID {
		if d := m.domain.Load(); d != nil {
			h.stepDown(d, protocol.CloseRestart, "hub leader changed: reconnect")
		}
		m.proxy.Store(m.newProxy(l.URL, h.log))
		n := m.follower.SetLeader(l.Epoch)
		h.log.Info("following", "component", "cluster", "event", "leader_changed", "hub_id", m.cfg.HubID,
			"leader", l.HubID, "leader_url", l.URL, "epoch", l.Epoch, "sockets_closed", n)
		return
	}
	if d := m.domain.Load(); d != nil {
		// A new term of this same hub: the relay fences by term.
		m.relayStop()
		h.startRelay(d, l.Epoch)
		return
	}
	m.proxy.Store(nil)
	m.follower.SetLeader(l.Epoch)
	// Sockets relayed to the old leader reconnect, here now.
	n := m.follower.CloseAll(protocol.CloseRestart, "hub leader changed: reconnect")
	d, err := h.buildDomain(ctx)
	if err != nil && ctx.Err() != nil {
		return // shut down while it loaded: nothing to retry
	}
	if err != nil {
		// The election goes on regardless (the database answers it), so
		// the lead would never move: keep trying while this term lasts.
		h.log.Error("elected but the domain did not start: this hub answers 503 and retries while it leads",
			"component", "cluster", "event", "lead_failed", "hub_id", m.cfg.HubID, "err", err)
		h.retryLead(l)
		return
	}
	h.lead(d, l, n)
}

// lead installs the running domain for term l. m.mu is held.
func (h *Hub) lead(d *Hub, l cluster.Leader, socketsClosed int) {
	m := h.clu
	m.domain.Store(d)
	h.startRelay(d, l.Epoch)
	m.announce()
	h.log.Info("leading", "component", "cluster", "event", "leading", "hub_id", m.cfg.HubID, "epoch", l.Epoch,
		"sockets_closed", socketsClosed)
}

// leadRetry is how often a leader whose domain did not start tries again.
const leadRetry = time.Second

// retryLead builds the domain again every leadRetry while term l lasts.
func (h *Hub) retryLead(l cluster.Leader) {
	m := h.clu
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(leadRetry)
		defer t.Stop()
		for {
			select {
			case <-m.ctx.Done():
				return
			case <-t.C:
			}
			if h.tryLead(l) {
				return
			}
		}
	}()
}

// tryLead builds the domain for term l unless the term is over; it
// reports whether to stop trying.
func (h *Hub) tryLead(l cluster.Leader) bool {
	m := h.clu
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.leader.Load(); cur == nil || *cur != l || m.domain.Load() != nil || m.ctx.Err() != nil {
		return true
	}
	d, err := h.buildDomain(m.ctx)
	if err != nil {
		h.log.Warn("the domain still does not start", "component", "cluster", "event", "lead_failed",
			"hub_id", m.cfg.HubID, "err", err)
		return false
	}
	h.lead(d, l, 0)
	return true
}

// buildDomain opens the storage and starts the domain, as a single hub
// does at start. Only the leader builds it.
// It stops when ctx ends (the hub shuts down while it loads). While it
// loads, requests are answered as by a loading hub (m.loading).
func (h *Hub) buildDomain(ctx context.Context) (*Hub, error) {
	m := h.clu
	cfg := h.cfg
	cfg.Cluster = nil
	// Forwarded requests come from the followers' addresses: none is the
	// tokenless local operator.
	cfg.DashboardToken = true
	cfg.progress = newLoadProgress()
	m.loading.Store(cfg.progress)
	defer m.loading.Store(nil)
	d, err := newHub(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d.listener = h.listener
	if err := d.run(); err != nil {
		_ = d.Shutdown(context.Background())
		return nil, err
	}
	return d, nil
}

func (h *Hub) startRelay(d *Hub, epoch int64) {
	m := h.clu
	stop, err := d.Sockets.Relay(m.cfg.Bus, epoch, m.cfg.Silence)
	if err != nil {
		// Followers' sockets then time out at their handshake (503) and
		// their agents retry; this hub's own sockets work.
		h.log.Error("relay of the followers' sockets failed", "component", "cluster", "event", "relay_failed", "err", err)
		stop = func() {}
	}
	m.relayStop = stop
}

// stepDown stops the domain at once: timers first, then every socket
// (closed with code; agents keep their tasks for a lease, as at a
// shutdown), then the relay and the storage.
func (h *Hub) stepDown(d *Hub, code websocket.StatusCode, reason string) {
	m := h.clu
	m.domain.Store(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	d.services.Stop()
	d.Sockets.ShutdownWith(ctx, code, reason)
	m.relayStop()
	if err := d.Shutdown(ctx); err != nil {
		h.log.Error("domain stop", "component", "cluster", "event", "step_down_failed", "err", err)
	}
	h.log.Warn("stopped leading", "component", "cluster", "event", "step_down", "hub_id", m.cfg.HubID)
}

func (h *Hub) shutdownCluster(ctx context.Context) error {
	m := h.clu
	var errs []error
	if h.http != nil {
		if err := h.http.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// The leader watch stops first, so no change of leader starts a retry
	// after the wait below.
	h.services.Stop()
	if m.cancel != nil {
		m.cancel()
		m.wg.Wait()
	}
	// The domain stops before the lead is released: another hub must not
	// load the state while this one may still write it.
	m.mu.Lock()
	if d := m.domain.Load(); d != nil {
		h.stepDown(d, protocol.CloseGoingAway, "hub shutting down")
	}
	m.mu.Unlock()
	if m.cancel != nil {
		m.cfg.Elector.Stop()
	}
	if m.follower != nil {
		m.follower.Stop(ctx)
	}
	m.transport.CloseIdleConnections()
	h.log.Info("hub stopped", "component", "hub", "event", "stopped", "hub_id", m.cfg.HubID)
	return errors.Join(errs...)
}

// serveClusterHTTP routes a request: the domain serves it while this hub
// leads; a follower answers /health itself, relays agent sockets, and
// forwards everything else to the leader.
func (h *Hub) serveClusterHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.clu
	if p := m.loading.Load(); p != nil && m.domain.Load() == nil {
		// This hub leads and loads its domain: nothing waits on a load
		// of seconds; callers (and the followers' health checks) retry.
		health := p.health(h.cfg.Version)
		l := h.Leader()
		health.HubID, health.Role = m.cfg.HubID, h.role()
		peer := peerOf(l)
		health.Leader = &peer
		serveLoading(w, r, health)
		return
	}
	if r.URL.Path == "/health" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		h.clusterHealth(w, r)
		return
	}
	// During a change of leader (the old one dead, the next building its
	// domain) a request waits for the next leader rather than fail.
	// Resent is only what never reached a leader: a refused connection
	// (nothing sent) with a body small enough to keep.
	var body []byte
	resend := r.Body == nil || r.Body == http.NoBody
	if !resend && r.ContentLength >= 0 && r.ContentLength <= maxResendBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxResendBody+1))
		if err != nil {
			clusterUnavailable(w, http.StatusBadRequest, "request body unreadable")
			return
		}
		body, resend = b, len(b) <= maxResendBody
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	deadline := time.Now().Add(m.cfg.ForwardWait)
	for {
		changed := m.changes()
		if d := m.domain.Load(); d != nil {
			d.API.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/ws" && h.Leader().HubID != m.cfg.HubID {
			m.follower.ServeHTTP(w, r)
			return
		}
		detail := "no leader to forward to"
		if h.Leader().HubID == m.cfg.HubID {
			detail = "this hub leads but its domain is not running"
		} else if p := m.proxy.Load(); p != nil {
			if h.forward(p, w, r, resend) {
				return
			}
			detail = "leader unreachable"
			if body != nil {
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
		}
		if resend {
			h.log.Debug("request waits for a leader", "component", "cluster", "event", "forward_waiting",
				"path", r.URL.Path, "detail", detail)
		}
		if !resend || !waitChange(r.Context(), changed, deadline) {
			clusterUnavailable(w, http.StatusServiceUnavailable, detail)
			return
		}
	}
}

// maxResendBody bounds the body kept to send a request again.
const maxResendBody = 1 << 20

// resendKey marks a forwarded request whose refused connection may be
// retried: the proxy's error handler then records the refusal instead of
// answering.
type resendKey struct{}

// forward sends r to the leader. It reports false, having written
// nothing, when the leader refused the connection and resend allows
// another try.
func (h *Hub) forward(p *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request, resend bool) bool {
	if !resend {
		p.ServeHTTP(w, r)
		return true
	}
	refused := new(bool)
	p.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), resendKey{}, refused)))
	return !*refused
}

// waitChange waits for a change of leader until deadline.
func waitChange(ctx context.Context, changed <-chan struct{}, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-changed:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// changes is closed at the next change of leader.
func (m *clusterMode) changes() <-chan struct{} {
	m.changedMu.Lock()
	defer m.changedMu.Unlock()
	if m.changed == nil {
		m.changed = make(chan struct{})
	}
	return m.changed
}

// announce wakes the requests waiting for a leader.
func (m *clusterMode) announce() {
	m.changedMu.Lock()
	defer m.changedMu.Unlock()
	if m.changed != nil {
		close(m.changed)
	}
	m.changed = make(chan struct{})
}

func clusterUnavailable(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "leader_unavailable", "detail": detail})
}

// newProxy forwards to the leader at raw (nil when it is no http URL).
func (m *clusterMode) newProxy(raw string, log *slog.Logger) *httputil.ReverseProxy {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// The Host the client addressed, for the leader's Host and
			// same-origin checks; Rewrite has already dropped any
			// X-Forwarded-* the client sent.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: m.transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var op *net.OpError
			if refused, ok := r.Context().Value(resendKey{}).(*bool); ok && errors.As(err, &op) && op.Op == "dial" {
				// Nothing reached the leader: the caller waits for the
				// next one and sends again.
				*refused = true
				return
			}
			log.Warn("forward to the leader failed", "component", "cluster", "event", "forward_failed",
				"path", r.URL.Path, "err", err)
			clusterUnavailable(w, http.StatusBadGateway, "leader unreachable")
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// errLeaderLoading is a leader's health answer while it loads its domain.
var errLeaderLoading = errors.New("leader health: the leader is loading")

// healthLimit bounds the leader's health answer a follower reads.
const healthLimit = 64 << 10

// clusterHealth answers /health on every hub: the leader's own health
// (the domain's answer, fetched from the leader on a follower) with this
// hub's role, id, leader and relayed sockets at the top level. With no
// reachable leader it is 503.
func (h *Hub) clusterHealth(w http.ResponseWriter, r *http.Request) {
	m := h.clu
	l := h.Leader()
	var leader protocol.Health
	status := http.StatusOK
	answered := true
	switch {
	case m.domain.Load() != nil:
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		m.domain.Load().API.ServeHTTP(rec, r)
		status = rec.code
		_ = json.Unmarshal(rec.body.Bytes(), &leader)
	case l.HubID == m.cfg.HubID:
		status, answered, leader.Status = http.StatusServiceUnavailable, false, "domain_unavailable"
	case l.URL != "":
		if err := m.leaderHealth(r.Context(), l.URL, &leader); err != nil {
			st := "leader_unreachable"
			if errors.Is(err, errLeaderLoading) {
				st = protocol.StatusLoading // the leader is loading its domain
			}
			status, answered, leader = http.StatusServiceUnavailable, false, protocol.Health{Status: st}
		}
	default:
		status, answered, leader.Status = http.StatusServiceUnavailable, false, "no_leader"
	}
	// This hub's view, over whatever the leader's answer said of itself.
	body := protocol.ClusterHealth{HubID: m.cfg.HubID, Role: h.role(), RelayedSockets: m.follower.Connected(),
		Leader:  peerOf(l),
		Service: cmp.Or(leader.Service, "agent_com"), Status: leader.Status, Version: cmp.Or(leader.Version, h.cfg.Version)}
	if answered {
		body.AgentsConnected = &leader.AgentsConnected
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(body)
	}
}

// peerOf is the leader as a cluster hub's /health names it.
func peerOf(l cluster.Leader) protocol.ClusterPeer {
	return protocol.ClusterPeer{HubID: l.HubID, URL: l.URL, Epoch: l.Epoch}
}

func (m *clusterMode) leaderHealth(ctx context.Context, base string, into *protocol.Health) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/health", nil)
	if err != nil {
		return fmt.Errorf("leader health: %w", err)
	}
	resp, err := (&http.Client{Transport: m.transport}).Do(req)
	if err != nil {
		return fmt.Errorf("leader health: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, healthLimit))
	if err != nil {
		return fmt.Errorf("leader health: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var lh protocol.LoadingHealth
		if resp.StatusCode == http.StatusServiceUnavailable && json.Unmarshal(b, &lh) == nil && lh.Status == protocol.StatusLoading {
			return errLeaderLoading
		}
		return fmt.Errorf("leader health: status %d", resp.StatusCode)
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("leader health: %w", err)
	}
	return nil
}

// recorder captures the domain's /health answer to extend it.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header  { return r.header }
func (r *recorder) WriteHeader(code int) { r.code = code }
func (r *recorder) Write(b []byte) (int, error) {
	if r.body.Len()+len(b) > healthLimit {
		return 0, errors.New("health answer too large")
	}
	return r.body.Write(b)
}
