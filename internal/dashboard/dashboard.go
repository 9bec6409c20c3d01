package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/api"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/webpush"
)

//go:embed web
var webFS embed.FS

// Dashboard is the assembled dashboard: aggregator, sockets, notifier and
// routes.
type Dashboard struct {
	cfg          Config
	agg          *Aggregator
	notifier     *Notifier
	sched        Scheduler
	storage      Storage
	tokens       Verifier
	notifyCancel func(agentID, taskID string) bool
	messagesSrc  MessageSource
	log          *slog.Logger
	assets       fs.FS

	keys *webpush.Keys          // nil: push disabled
	subs *webpush.Subscriptions // nil: push disabled

	sockets socketGroup
	actions actionGroup
	runCtx  context.Context
	stop    context.CancelFunc
}

// New builds the dashboard. With a push subscription table it loads (or
// creates, mode 0600) the VAPID keys in the data directory, unless both
// keys are given in the config.
func New(cfg Config, d Deps) (*Dashboard, error) {
	cfg = cfg.withDefaults()
	if d.Bus == nil || d.Queue == nil || d.Scheduler == nil || d.Agents == nil || d.Presence == nil {
		return nil, errors.New("dashboard: bus, queue, scheduler, agents and presence are required")
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "dashboard")
	d.Log = log
	assets, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, fmt.Errorf("dashboard assets: %w", err)
	}
	db := &Dashboard{cfg: cfg, sched: d.Scheduler, storage: d.Storage, tokens: d.Tokens,
		notifyCancel: d.NotifyCancel, messagesSrc: d.Messages, log: log, assets: assets}
	// Until Run starts, actions run against a context that never ends.
	db.runCtx, db.stop = context.WithCancel(context.Background())
	db.agg = NewAggregator(cfg, d)
	var sender PushSender
	if d.PushSubscriptions != nil {
		keys, err := resolveKeys(cfg, d)
		if err != nil {
			db.agg.sub.Close()
			return nil, fmt.Errorf("dashboard push keys: %w", err)
		}
		policy := webpush.EndpointPolicy{AllowPrivate: cfg.PushAllowPrivate}
		s, err := webpush.NewSender(keys, webpush.SenderOptions{Client: cfg.PushClient, Endpoints: policy})
		if err != nil {
			db.agg.sub.Close()
			return nil, fmt.Errorf("dashboard push sender: %w", err)
		}
		db.keys = keys
		db.subs = webpush.NewSubscriptions(d.PushSubscriptions, policy)
		sender = webpush.NewNotifier(s, db.subs, webpush.NotifierOptions{})
	}
	db.notifier = NewNotifier(cfg, d.Bus, sender, db.agg.Health, log)
	return db, nil
}

// keysTimeout bounds reading (or creating) the shared VAPID keys.
const keysTimeout = 30 * time.Second

// resolveKeys finds the VAPID keys: the configuration's, else the shared
// store's, else the data directory's file.
func resolveKeys(cfg Config, d Deps) (*webpush.Keys, error) {
	if d.SharedKeys != nil {
		ctx, cancel := context.WithTimeout(context.Background(), keysTimeout)
		defer cancel()
		return webpush.ResolveSharedKeys(ctx, cfg.VAPIDPublicKey, cfg.VAPIDPrivateKey, d.SharedKeys)
	}
	return webpush.ResolveKeys(cfg.VAPIDPublicKey, cfg.VAPIDPrivateKey, filepath.Join(d.DataDir, webpush.KeysFileName))
}

// Aggregator returns the dashboard's aggregator.
func (d *Dashboard) Aggregator() *Aggregator { return d.agg }

// Notifier returns the dashboard's push notifier.
func (d *Dashboard) Notifier() *Notifier { return d.notifier }

// Run runs the aggregator and the notifier until ctx ends, then closes
// every socket and waits for them and for running storage actions.
func (d *Dashboard) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { d.agg.Run(ctx) })
	wg.Go(func() { d.notifier.Run(ctx) })
	<-ctx.Done()
	d.stop()
	wg.Wait()
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.sockets.closeAndWait(wctx)
	d.actions.wait()
}

// Routes returns the dashboard's routes for the hub's route table.
func (d *Dashboard) Routes() []api.Route {
	return []api.Route{
		{Method: "GET", Path: "/dashboard", Access: api.Public, Raw: d.asset("index.html", "text/html; charset=utf-8")},
		{Method: "GET", Path: "/dashboard/app.js", Access: api.Public, Raw: d.asset("app.js", "application/javascript; charset=utf-8")},
		{Method: "GET", Path: "/dashboard/app.css", Access: api.Public, Raw: d.asset("app.css", "text/css; charset=utf-8")},
		{Method: "GET", Path: "/sw.js", Access: api.Public, Raw: d.asset("sw.js", "application/javascript; charset=utf-8")},
		{Method: "GET", Path: "/favicon.ico", Access: api.Public, Raw: d.asset("favicon.ico", "image/x-icon")},
		{Method: "GET", Path: "/api/dashboard/state", Access: api.Dashboard, Handler: d.state},
		{Method: "GET", Path: "/api/dashboard/agents/{agent_id}/timeline", Access: api.Dashboard, Handler: d.timeline},
		{Method: "GET", Path: "/api/dashboard/series", Access: api.Dashboard, Handler: d.series},
		{Method: "GET", Path: "/api/dashboard/messages", Access: api.Dashboard, Handler: d.messages},
		{Method: "GET", Path: "/api/dashboard/vapid-key", Access: api.Public, Handler: d.vapidKey},
		{Method: "POST", Path: "/api/dashboard/push-subscribe", Access: api.DashboardAdmin, Handler: d.pushSubscribe,
			// webpush.ParseSubscription checks the body, with its own field
			// errors (keys.p256dh): the server checks nothing before it.
			Body: protocol.BodyEmpty},
		{Method: "GET", Path: "/ws/dashboard", Access: api.Dashboard, Raw: d},
	}
}

// asset serves one embedded file. The page must work offline and from
// the binary alone: nothing is fetched from elsewhere.
func (d *Dashboard) asset(name, contentType string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(d.assets, name)
		if err != nil {
			http.Error(w, "missing asset", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		switch name {
		case "sw.js":
			h.Set("Service-Worker-Allowed", "/")
		case "index.html":
			h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
			h.Set("Referrer-Policy", "no-referrer")
		}
		_, _ = w.Write(b)
	})
}

func (d *Dashboard) state(r *api.Request) api.Response {
	s, err := d.agg.Snapshot(r.Context())
	if err != nil {
		return api.Err(http.StatusServiceUnavailable, "unavailable", "detail", "dashboard not running")
	}
	return api.JSON(http.StatusOK, json.RawMessage(s.Data))
}

func (d *Dashboard) timeline(r *api.Request) api.Response {
	id := r.PathValue("agent_id")
	return api.JSON(http.StatusOK, protocol.Timeline{AgentID: id, Entries: d.agg.Timeline(id)})
}

func (d *Dashboard) vapidKey(*api.Request) api.Response {
	if d.keys == nil {
		return api.Err(http.StatusServiceUnavailable, "push_unavailable")
	}
	return api.JSON(http.StatusOK, protocol.VAPIDKey{VAPIDPublicKey: d.keys.PublicKeyBase64()})
}

// pushSubscribe stores a browser's PushSubscription.toJSON() after
// validating it (the original stored anything).
func (d *Dashboard) pushSubscribe(r *api.Request) api.Response {
	if d.subs == nil {
		return api.Err(http.StatusServiceUnavailable, "push_unavailable")
	}
	raw, err := json.Marshal(r.Body)
	if err != nil {
		return api.Err(http.StatusBadRequest, protocol.CodeInvalidJSON)
	}
	sub, err := webpush.ParseSubscription(raw)
	if err == nil {
		err = d.subs.Add(r.Context(), sub)
	}
	var se *webpush.SubscriptionError
	switch {
	case errors.As(err, &se):
		field := se.Field
		if field == "" {
			field = "message"
		}
		code := protocol.ErrInvalidValue
		if se.Reason == "required" {
			code = protocol.ErrRequired
		}
		return api.JSON(http.StatusBadRequest, protocol.ValidationReply{Error: protocol.CodeValidationFailed,
			Errors: []protocol.FieldError{{Field: field, Error: code, Detail: se.Reason}}})
	case errors.Is(err, webpush.ErrTooManySubscriptions):
		return api.Err(http.StatusConflict, "too_many_subscriptions")
	case err != nil:
		return api.Internal(r, "storage_error", err)
	}
	return api.JSON(http.StatusOK, protocol.StatusReply{Status: "subscribed"})
}

// actionGroup tracks storage actions running for sockets.
type actionGroup struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed bool
}

func (g *actionGroup) add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *actionGroup) done() { g.wg.Done() }

func (g *actionGroup) wait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}
