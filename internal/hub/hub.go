// Package hub assembles the AgentCom hub: it opens the storage, builds the
// domain services, wires the transports to them and runs the background
// loops. It is the only package that knows every other one.
package hub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/agentws"
	"github.com/agentcom/agentcom/internal/alerts"
	"github.com/agentcom/agentcom/internal/api"
	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/dashboard"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/metrics"
	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/ratelimit"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/scheduler"
	"github.com/agentcom/agentcom/internal/settings"
	"github.com/agentcom/agentcom/internal/startstop"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasklog"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Config is everything the hub can be told at start. As in net/http, the
// zero value of every field is usable: a zero duration or limit means the
// documented default (DefaultConfig shows them), never "off"; what can be
// switched off says so with nil or a negative value. New applies the
// defaults once (withDefaults), so no code below it sees a zero.
type Config struct {
	Addr    string // listen address, e.g. ":4000"
	DataDir string
	// Store is where the hub keeps its state: "" or "bolt" for the
	// embedded store in DataDir, or a postgres:// URL.
	Store   string
	Version string
	Log     *slog.Logger

	OpenRegistration bool
	JoinSecret       string
	// AdminAgents may call POST /api/admin/reset without an admin token
	// (the original's ADMIN_AGENTS).
	AdminAgents []string
	// DashboardToken makes the dashboard, its socket and the metrics need
	// a token even when the hub listens on loopback only.
	DashboardToken bool
	// AllowedHosts are the host names (besides IP literals and localhost)
	// the hub answers to; requests to any other Host are refused. A
	// loopback-only hub always checks; others check once this is set.
	AllowedHosts []string

	Socket    agentws.Config
	HTTP      HTTPConfig
	Scheduler scheduler.Config
	Queue     tasks.Config
	// Messaging bounds channels and analytics (zero fields: defaults).
	Messaging messaging.Limits
	// RateLimits per agent and action class, and per HTTP caller; nil
	// disables rate limiting.
	RateLimits ratelimit.Limits
	// AcceptTimeout is how long an assigned task waits for task_accepted
	// (default 60 s; negative: for ever).
	AcceptTimeout time.Duration
	// AlertInterval is how often the alert rules run (default 30 s).
	AlertInterval time.Duration
	// BusyHold is how long an agent that declined a task is skipped
	// (default 60 s; negative: not at all).
	BusyHold time.Duration
	// MailboxEvictInterval is how often expired mailbox messages are
	// removed (default 1 h); POST /api/admin/mailbox/evict runs it now.
	MailboxEvictInterval time.Duration
	// TaskLogs bounds the agents' live output kept in memory.
	TaskLogs tasklog.Config
	// TaskArchive moves ended tasks older than its Retention (default 7
	// days; tasks.RetentionForever: never) from the live table to the
	// archive (internal/tasks/archive.go). Zero fields: defaults.
	TaskArchive tasks.ArchiveConfig

	// Dashboard tunes the operator dashboard and web push (VAPID keys from
	// the environment go in Dashboard.VAPIDPublicKey/VAPIDPrivateKey).
	Dashboard dashboard.Config
	// Resilience tunes backups, compaction, drills and recovery.
	Resilience resilience.Config
	// Storage overrides what the dashboard shows and drives as storage
	// (tests); nil means the hub's own resilience coordinator.
	Storage dashboard.Storage
	// Cluster makes the hub one of several sharing a database (see
	// cluster.go); nil is a single hub.
	Cluster *ClusterConfig
	// LoadHook, when set, runs once the storage is open and before the
	// stored tasks load; an error fails the start. Tests block in it to
	// hold a hub in its loading state (loading.go) for as long as they
	// look at it.
	LoadHook func(context.Context) error

	// progress is what a hub that serves while it loads reports of its
	// load (set by StartLoading and buildDomain; nil: nobody asks).
	progress *loadProgress
}

// HTTPConfig bounds what one HTTP connection may hold. WebSocket
// connections leave these limits once upgraded (they have their own).
// Zero fields take DefaultHTTPConfig's values.
type HTTPConfig struct {
	ReadHeaderTimeout time.Duration // time to send the request headers
	ReadTimeout       time.Duration // time to send a whole request, body included
	IdleTimeout       time.Duration // how long an idle keep-alive connection stays open
	MaxHeaderBytes    int
}

// DefaultHTTPConfig holds the documented defaults: generous for an 8 MiB
// body on a slow link, short enough that held connections are released.
func DefaultHTTPConfig() HTTPConfig {
	return HTTPConfig{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
}

// withDefaults fills every zero field that has a default.
func (hc HTTPConfig) withDefaults() HTTPConfig {
	def := DefaultHTTPConfig()
	hc.ReadHeaderTimeout = cmp.Or(hc.ReadHeaderTimeout, def.ReadHeaderTimeout)
	hc.ReadTimeout = cmp.Or(hc.ReadTimeout, def.ReadTimeout)
	hc.IdleTimeout = cmp.Or(hc.IdleTimeout, def.IdleTimeout)
	hc.MaxHeaderBytes = cmp.Or(hc.MaxHeaderBytes, def.MaxHeaderBytes)
	return hc
}

// withDefaults fills the hub's own zero fields; the components' configs
// apply their defaults in their own New.
func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	c.AcceptTimeout = cmp.Or(c.AcceptTimeout, def.AcceptTimeout)
	c.AlertInterval = cmp.Or(c.AlertInterval, def.AlertInterval)
	c.BusyHold = cmp.Or(c.BusyHold, def.BusyHold)
	c.MailboxEvictInterval = cmp.Or(c.MailboxEvictInterval, def.MailboxEvictInterval)
	c.HTTP = c.HTTP.withDefaults()
	if c.TaskArchive.Log == nil {
		c.TaskArchive.Log = c.Log
	}
	return c
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Addr: ":4000", DataDir: "data", Version: "dev",
		RateLimits: ratelimit.DefaultLimits(),
		Socket:     agentws.DefaultConfig(), HTTP: DefaultHTTPConfig(), Scheduler: scheduler.DefaultConfig(), Queue: tasks.DefaultConfig(),
		AcceptTimeout: 60 * time.Second, AlertInterval: 30 * time.Second, BusyHold: 60 * time.Second, MailboxEvictInterval: time.Hour,
		Dashboard: dashboard.DefaultConfig(),
	}
}

// Hub is a running hub.
type Hub struct {
	cfg Config
	log *slog.Logger

	DB *store.DB
	// Driver is the storage the domain packages use (the bolt driver over
	// DB today; PostgreSQL with --store postgres://).
	Driver    storage.Driver
	Bus       *bus.Bus
	Tokens    *auth.Tokens
	Presence  *presence.Directory
	Messaging *messaging.Service
	Settings  *settings.Store
	Queue     *tasks.Queue
	Agents    *agents.Registry
	Scheduler *scheduler.Scheduler
	Sockets   *agentws.Server
	API       *api.Server
	Limiter   *ratelimit.Limiter // nil when rate limiting is off
	Metrics   *metrics.Metrics
	Alerts    *alerts.Manager
	Dashboard *dashboard.Dashboard
	Storage   *resilience.Coordinator
	TaskLogs  *tasklog.Store
	// Archiver archives ended tasks past the retention; it runs where the
	// queue does (in a cluster, on the leader only).
	Archiver *tasks.Archiver

	startup *resilience.StartupReport
	// clu is set in cluster mode: the domain fields above stay nil on the
	// hub itself and live in the domain hub built while it leads.
	clu *clusterMode

	listener net.Listener
	http     *http.Server
	// services are every background service of the hub, started in order
	// by run and stopped in reverse by Shutdown: nothing else starts a
	// goroutine that outlives a call.
	services startstop.Group
	// evictor removes expired mailbox messages periodically and when the
	// admin route asks (api.Core.EvictMailboxes, which never blocks).
	evictor *startstop.Triggered
	started time.Time
}

// New opens the data directory and builds the hub without starting it.
// Every table is checked first; a damaged one is restored from its newest
// verified backup, or started empty in degraded mode, before anything
// reads it.
func New(cfg Config) (*Hub, error) {
	return newHub(context.Background(), cfg)
}

// newHub is New with a load that stops when ctx ends.
func newHub(ctx context.Context, cfg Config) (*Hub, error) {
	cfg = cfg.withDefaults()
	if err := cfg.TaskArchive.WithDefaults().Check(); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if cfg.Cluster != nil {
		return newClustered(cfg)
	}
	if cfg.progress == nil {
		cfg.progress = newLoadProgress()
	}
	h := &Hub{cfg: cfg, log: cfg.Log, Bus: bus.New(), started: time.Now()}
	if err := h.openStorage(ctx); err != nil {
		return nil, err
	}
	cfg.progress.startTasks(h.storedTasks())
	if err := h.build(ctx); err != nil {
		h.closeStorage()
		return nil, err
	}
	h.registerReloaders()
	return h, nil
}

// registerReloaders rebuilds in-memory state after a table is restored
// from a backup, and reconciles the live system with the restored data.
func (h *Hub) registerReloaders() {
	if h.Storage == nil {
		return
	}
	for _, r := range h.reloaders() {
		for _, t := range r.tables {
			h.Storage.RegisterReloader(t, func(context.Context) error { return r.reload() })
		}
	}
}

// reloader rebuilds the in-memory state that tables feed.
type reloader struct {
	tables []string
	reload func() error
}

// reloaders lists every piece of in-memory state built from a table: a
// restore of one of the tables, and an admin reset, rebuild it.
func (h *Hub) reloaders() []reloader {
	return []reloader{
		{[]string{store.Tokens}, func() error {
			err := h.Tokens.Reload()
			h.closeRevoked()
			return err
		}},
		{[]string{store.Config}, h.Settings.Reload},
		// The channel cache; the other message tables back no memory
		// (the bolt driver's sequences only ever move forward).
		{[]string{store.AgentChannels}, h.Messaging.Channels.Reload},
		// Tasks held by connected agents that the restored queue no longer
		// shows as theirs are released; the queue's indexes are rebuilt.
		{[]string{store.TaskQueue, store.TaskDeadLetter}, h.Scheduler.Reconcile},
	}
}

func (h *Hub) build(ctx context.Context) error {
	var err error
	if h.cfg.LoadHook != nil {
		if err := h.cfg.LoadHook(ctx); err != nil {
			return fmt.Errorf("hub: load hook: %w", err)
		}
	}
	h.evictor = startstop.Trigger("mailbox_evict", h.cfg.MailboxEvictInterval, h.evictMailboxes)
	if h.Tokens, err = auth.New(h.Driver.Tokens()); err != nil {
		return err
	}
	if bad := h.Tokens.NonConforming(); len(bad) > 0 {
		h.log.Warn("tokens bound to agent ids that break the agent-id rule can no longer identify; revoke them and create new ones",
			"component", "auth", "event", "nonconforming_agent_ids", "agent_ids", bad, "rule", protocol.AgentIDRule)
	}
	if h.Settings, err = settings.New(h.Driver.Settings()); err != nil {
		return err
	}
	h.Presence = presence.New(h.Bus)
	msgs := h.Driver.Messages()
	chans, err := messaging.NewChannels(msgs, h.cfg.Messaging)
	if err != nil {
		return err
	}
	mb, hist, threads := messaging.NewMailbox(msgs), messaging.NewHistory(msgs), messaging.NewThreads(msgs)
	qcfg := h.cfg.Queue
	qcfg.Loaded = &h.cfg.progress.loaded
	qcfg.TrackEnded = h.cfg.TaskArchive.Enabled()
	if h.Queue, err = tasks.NewContext(ctx, h.Driver.Tasks(), h.Bus, qcfg); err != nil {
		return err
	}
	if h.Archiver, err = tasks.NewArchiver(h.Queue, h.cfg.TaskArchive); err != nil {
		return err
	}
	var sched *scheduler.Scheduler
	h.Agents = agents.New(h.Bus, agents.Config{
		Now:             h.cfg.Scheduler.Now,
		AcceptTimeout:   h.cfg.AcceptTimeout,
		BusyHold:        h.cfg.BusyHold,
		OnAcceptTimeout: func(a, t string) { sched.AcceptTimeout(a, t) },
		OnBusyOver:      func(string) { sched.Kick() },
		OnState:         func(a string, s agents.State) { h.Presence.SetState(a, string(s)) },
	})
	sched = scheduler.New(h.Queue, h.Agents, h.cfg.Scheduler, h.log)
	h.Scheduler = sched
	src := metrics.Sources{Queue: h.Queue, Agents: h.Agents, DB: h.DB}
	if h.Storage != nil {
		src.Storage = h.Storage
	}
	h.Metrics = metrics.New(h.Bus, src)
	if err := seedUsage(h.Queue, h.Metrics); err != nil {
		h.log.Warn("usage sums not seeded from the stored tasks", "component", "hub", "event", "usage_seed_failed", "err", err)
	}
	h.TaskLogs = tasklog.New(h.cfg.TaskLogs)
	deps := agentws.Deps{Tokens: h.Tokens, Presence: h.Presence, Scheduler: sched, Log: h.log, Observer: h.Metrics, TaskLogs: h.TaskLogs}
	if h.cfg.RateLimits != nil {
		h.Limiter = ratelimit.New(h.cfg.RateLimits)
		deps.Limiter = h.Limiter
	}
	h.Sockets = agentws.New(h.cfg.Socket, deps)
	h.Messaging = messaging.NewService(mb, hist, chans, threads, messaging.NewAnalyticsLimited(h.cfg.Messaging.WithDefaults().MaxTrackedAgents), h.Sockets, h.Tokens, h.Bus, h.log)
	if err := h.Messaging.FollowStoredIDs(ctx); err != nil {
		return err
	}
	h.Sockets.SetMessaging(h.Messaging)
	sched.SetPusher(h.Sockets)

	h.API = api.NewServer(h.Tokens, h.LoopbackOnly(), api.NewHosts(isLoopback(h.cfg.Addr), h.cfg.AllowedHosts), h.log)
	if h.Limiter != nil {
		h.API.SetLimiter(h.Limiter)
	}
	h.API.SetObserver(h.Metrics)
	// A body carries at most one task: its metadata plus room for the
	// description and the other fields.
	h.API.SetMaxBody(max(api.DefaultMaxBody, int64(h.cfg.Queue.MaxMetadataBytes)+128<<10))
	core := &api.Core{Server: h.API, Tokens: h.Tokens, Presence: h.Presence, Agents: h.Agents, Messaging: h.Messaging,
		Settings: h.Settings, Revoked: h.closeRevoked, OpenRegistration: h.cfg.OpenRegistration, JoinSecret: h.cfg.JoinSecret,
		EvictMailboxes: h.evictor.Trigger, Version: h.cfg.Version}
	taskRoutes := &api.Tasks{Server: h.API, Queue: h.Queue, Scheduler: sched, Presence: h.Presence, NotifyCancel: h.Sockets.PushCancel, Logs: h.TaskLogs}
	h.Alerts = alerts.New(h.Settings, h.Queue, idleCounter{h.Agents}, protection{h.Storage}, h.Bus)
	h.API.Handle(h.storageRoutes()...)
	h.API.Handle((&api.Alerts{Server: h.API, Manager: h.Alerts}).Routes()...)
	h.API.Handle((&api.Reset{AdminAgents: h.cfg.AdminAgents, Delay: 500 * time.Millisecond, Do: h.Reset}).Routes()...)
	h.API.Handle(core.Routes()...)
	h.API.Handle(taskRoutes.Routes()...)
	h.API.Handle(
		api.Route{Method: "GET", Path: "/ws", Access: api.Public, Raw: h.Sockets, Unlimited: true},
		api.Route{Method: "GET", Path: "/metrics", Access: api.Dashboard, Raw: h.Metrics.Handler()},
		api.Route{Method: "GET", Path: "/api/metrics", Access: api.Dashboard, Handler: func(*api.Request) api.Response {
			return api.JSON(http.StatusOK, h.Metrics.Summary())
		}},
	)

	h.Dashboard, err = dashboard.New(h.cfg.Dashboard, dashboard.Deps{Bus: h.Bus, Queue: h.Queue, Scheduler: sched,
		Agents: h.Agents, Presence: h.Presence, Tokens: h.Tokens,
		Storage: storageFor(h), NotifyCancel: h.Sockets.PushCancel,
		Series: h.Driver.Series(), Alerts: h.Alerts, Messages: dashboard.ServiceMessages{S: h.Messaging},
		PushSubscriptions: h.Driver.PushSubscriptions(), DataDir: h.cfg.DataDir, SharedKeys: h.sharedSettings(), Log: h.log})
	if err != nil {
		return err
	}
	h.API.Handle(h.Dashboard.Routes()...)
	return nil
}

// Handler is the hub's HTTP handler (for tests that bring their own server).
func (h *Hub) Handler() http.Handler { return h.API }

// Start listens on the configured address and runs the background loops
// until Shutdown.
func (h *Hub) Start() error {
	ln, err := net.Listen("tcp", h.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", h.cfg.Addr, err)
	}
	return h.Serve(ln)
}

// Serve runs the hub on an existing listener.
func (h *Hub) Serve(ln net.Listener) error {
	if h.clu != nil {
		return h.serveCluster(ln)
	}
	h.listener = ln
	h.http = h.newHTTPServer(h.API)
	if err := h.run(h.serveHTTP(ln)); err != nil {
		return err
	}
	h.log.Info("hub listening", "component", "hub", "event", "listening", "addr", ln.Addr().String(),
		"store", h.storeName(), "version", h.cfg.Version)
	return nil
}

func (h *Hub) newHTTPServer(handler http.Handler) *http.Server {
	hc := h.cfg.HTTP
	return &http.Server{Handler: handler,
		ReadHeaderTimeout: hc.ReadHeaderTimeout,
		ReadTimeout:       hc.ReadTimeout,
		IdleTimeout:       hc.IdleTimeout,
		MaxHeaderBytes:    hc.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn)}
}

// serveHTTP is the service that serves h.http on ln. Shutdown drains the
// connections gracefully first; the service's Stop closes what is left and
// waits for Serve to return.
func (h *Hub) serveHTTP(ln net.Listener) startstop.Service {
	done := make(chan struct{})
	return startstop.Hooks("http", func(context.Context) error {
		go func() {
			defer close(done)
			if err := h.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.log.Error("http server stopped", "event", "http_failed", "err", err)
			}
		}()
		return nil
	}, func() {
		_ = h.http.Close()
		<-done
	})
}

// run starts every background service of the domain, then extra (the
// front end: the HTTP server), as one group that Shutdown stops. The
// components block in Run(ctx); only the hub starts them.
func (h *Hub) run(extra ...startstop.Service) error {
	g := startstop.Group{
		startstop.Func("metrics", h.Metrics.Run),
		startstop.Func("alerts", func(ctx context.Context) { h.Alerts.Run(ctx, h.cfg.AlertInterval) }),
		startstop.Func("scheduler", h.Scheduler.Run),
		startstop.Func("tasklog", func(ctx context.Context) { h.TaskLogs.Follow(ctx, h.Bus, taskOfEvent) }),
		startstop.Func("agent_sockets", h.Sockets.Run),
		h.evictor,
	}
	if h.Limiter != nil {
		g = append(g, startstop.Every("ratelimit_sweep", time.Minute, func(context.Context) { h.Limiter.Sweep(time.Minute) }))
	}
	if h.cfg.TaskArchive.Retention != tasks.RetentionForever {
		g = append(g, h.Archiver)
	}
	g = append(g, startstop.Func("dashboard", h.Dashboard.Run))
	if h.Driver.Name() != "bolt" {
		g = append(g, startstop.Every("shared_refresh", sharedRefreshInterval, h.refreshShared))
	}
	// Everyone who reports storage events has subscribed: tell them what
	// the startup check found, then run the schedules.
	if h.Storage != nil {
		var cancel context.CancelFunc
		g = append(g, startstop.Hooks("storage", func(ctx context.Context) error {
			h.Storage.NoteStartup(h.startup)
			ctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
			h.Storage.Start(ctx)
			return nil
		}, func() {
			cancel()
			h.Storage.Wait()
		}))
	}
	h.services = append(g, extra...)
	if err := h.services.Start(context.Background()); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

// Reset closes every agent socket (code 1012: agents reconnect) and
// rebuilds in-memory state from the tables, like the original's hub reset.
// Analytics, which live only in memory, start over.
func (h *Hub) Reset() {
	n := h.Sockets.CloseAll(protocol.CloseRestart, "hub reset by an admin: reconnect")
	var errs []error
	for _, r := range h.reloaders() {
		errs = append(errs, r.reload())
	}
	h.Messaging.Analytics.Reset()
	h.log.Warn("hub reset", "component", "hub", "event", "hub_reset", "sockets_closed", n, "err", errors.Join(errs...))
}

// sharedRefreshInterval is how soon a hub on a shared store follows the
// token revocations and setting changes made through another hub.
const sharedRefreshInterval = 5 * time.Second

// refreshShared reloads the tokens and settings from a store other hubs
// write too, and closes the sockets of tokens revoked elsewhere.
func (h *Hub) refreshShared(ctx context.Context) {
	n, err := h.Tokens.Refresh(ctx)
	if err == nil {
		err = h.Settings.Reload()
	}
	if err != nil {
		h.log.Warn("refresh tokens and settings from the shared store", "component", "hub", "event", "shared_refresh_failed", "err", err)
	}
	if n > 0 {
		h.closeRevoked()
	}
}

// sharedSettings is the settings store when other hubs may share it, nil
// for the embedded store (whose data directory is this hub's alone).
func (h *Hub) sharedSettings() storage.SettingsStore {
	if h.Driver.Name() == "bolt" {
		return nil
	}
	return h.Driver.Settings()
}

// closeRevoked closes every agent and dashboard socket whose token no
// longer holds.
func (h *Hub) closeRevoked() {
	n := h.Sockets.CloseRevoked()
	if h.Dashboard != nil {
		n += h.Dashboard.CloseRevoked()
	}
	if n > 0 {
		h.log.Info("sockets of revoked tokens closed", "component", "hub", "event", "revoked_sockets_closed", "count", n)
	}
}

// LoopbackOnly reports whether the dashboard is open without a token.
// In a cluster no request is local: a follower forwards every caller's
// requests from its own address.
func (h *Hub) LoopbackOnly() bool {
	return isLoopback(h.cfg.Addr) && !h.cfg.DashboardToken && h.cfg.Cluster == nil
}

// HasOperatorToken reports whether an admin or viewer token exists.
func (h *Hub) HasOperatorToken() bool {
	if h.Tokens == nil {
		// A cluster hub that does not lead has no token table open; the
		// leader's own check is the one that counts.
		return true
	}
	for _, t := range h.Tokens.List() {
		if t.Role == auth.RoleAdmin || t.Role == auth.RoleViewer {
			return true
		}
	}
	return false
}

// Addr is the address the hub listens on.
func (h *Hub) Addr() string { return h.listener.Addr().String() }

// URL is the hub's base URL on loopback.
func (h *Hub) URL() string { return "http://" + h.Addr() }

// Shutdown stops accepting, closes every socket with 1001, waits for the
// loops, and flushes and closes every table.
func (h *Hub) Shutdown(ctx context.Context) error {
	if h.clu != nil {
		return h.shutdownCluster(ctx)
	}
	var errs []error
	// Within ctx: finish the requests in flight, then close every agent
	// socket with 1001; then stop the services (which close what is left).
	if h.http != nil {
		if err := h.http.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	h.Sockets.Shutdown(ctx)
	h.services.Stop()
	h.Agents.Stop()
	if err := h.closeStorage(); err != nil {
		errs = append(errs, err)
	}
	h.log.Info("hub stopped", "component", "hub", "event", "stopped")
	return errors.Join(errs...)
}

func (h *Hub) evictMailboxes(ctx context.Context) {
	n, err := h.Messaging.Mailbox.Evict(ctx, h.Settings.MailboxTTL())
	if err != nil {
		h.log.Error("mailbox eviction failed", "component", "messaging", "event", "mailbox_evict_failed", "err", err)
		return
	}
	if n > 0 {
		h.log.Info("mailbox messages expired", "component", "messaging", "event", "mailbox_evicted", "count", n)
	}
}

// storageFor is the storage view the dashboard drives: the configured
// override (tests), else the hub's coordinator.
func storageFor(h *Hub) dashboard.Storage {
	if h.cfg.Storage != nil {
		return h.cfg.Storage
	}
	if pg, ok := h.Driver.(*pgdriver.Driver); ok {
		return externalStorage{pg}
	}
	return resilience.AnyResults{C: h.Storage}
}

// protection adapts the coordinator to the alert rules. Without one (a
// PostgreSQL store, whose backups the hub does not make) there is nothing
// to alert on.
type protection struct{ c *resilience.Coordinator }

// LastBackup is the oldest of the tables' last successful backups: the
// hub is only as protected as its least recently backed-up table.
func (p protection) LastBackup() time.Time {
	if p.c == nil {
		return time.Now()
	}
	var oldest time.Time
	for i, t := range p.c.Protection() {
		if t.LastBackup.IsZero() {
			return time.Time{}
		}
		if i == 0 || t.LastBackup.Before(oldest) {
			oldest = t.LastBackup
		}
	}
	return oldest
}

func (p protection) DegradedTables() []string {
	if p.c == nil {
		return nil
	}
	var out []string
	for _, t := range p.c.Protection() {
		if t.Degraded {
			out = append(out, t.Table)
		}
	}
	return out
}

// idleCounter adapts the agent registry to the alert rules.
type idleCounter struct{ r *agents.Registry }

func (c idleCounter) IdleCount() int { return c.r.Counts()[agents.Idle] }

// seedUsage adds the usage stored on every task to the metrics' sums, so
// they survive a restart. Each task's usage is attributed to the agent of
// its last attempt and the hour the task last changed.
func seedUsage(q *tasks.Queue, m *metrics.Metrics) error {
	for _, u := range q.StoredUsage() {
		m.AddUsage(u.Agent, u.At, u.Usage)
	}
	return nil
}

// taskOfEvent is the task a task event is about.
func taskOfEvent(e bus.Event) string {
	if d, ok := e.Data.(tasks.EventData); ok {
		return d.TaskID
	}
	return ""
}

// isLoopback reports whether addr binds only loopback interfaces.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
