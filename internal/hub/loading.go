package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/startstop"
	"github.com/agentcom/agentcom/internal/store"
)

// Serving while loading. A hub over a deep store takes seconds to check
// its tables and load its tasks; a hub that only listened afterwards
// looked dead for that long (connection refused), so supervisors, load
// balancers and agents could not tell a slow start from a crash.
// StartLoading listens at once and answers every request with a typed
// 503 until the state is loaded: GET /health says "loading" and how far,
// the API and the agent socket refuse with hub_loading and Retry-After
// (agents retry, as they do through any restart), and /dashboard is a page
// that says so and turns into the dashboard when the hub is ready. Nothing
// reads or writes the state before it is loaded: the loading answers touch
// no domain object.

// loadingRetryAfter is the Retry-After of a loading hub's refusals, in
// seconds: short, since a load takes seconds, not minutes.
const loadingRetryAfter = 2

// Load phases, as GET /health names them.
const (
	phaseStorage = "storage" // opening and checking the tables
	phaseTasks   = "tasks"   // loading the stored tasks
	phaseStart   = "starting"
)

// loadProgress is how far a load is. Every field is read by requests
// while the load writes it.
type loadProgress struct {
	phase  atomic.Pointer[string]
	loaded atomic.Int64
	total  atomic.Int64 // < 0: not known
}

func newLoadProgress() *loadProgress {
	p := &loadProgress{}
	p.setPhase(phaseStorage)
	p.total.Store(-1)
	return p
}

func (p *loadProgress) setPhase(s string) { p.phase.Store(&s) }

// startTasks enters the task phase; total < 0 when the count is not known.
func (p *loadProgress) startTasks(total int64) {
	p.total.Store(total)
	p.setPhase(phaseTasks)
}

// health is GET /health's body while loading.
func (p *loadProgress) health(version string) protocol.LoadingHealth {
	b := protocol.LoadingHealth{Service: "agent_com", Status: protocol.StatusLoading, Phase: *p.phase.Load(),
		Loaded: p.loaded.Load(), Version: version}
	if t := p.total.Load(); t >= 0 {
		// The check counted records, the load counts tasks: never say
		// more were loaded than there are.
		t = max(t, b.Loaded)
		b.Total = &t
	}
	return b
}

// storedTasks is how many tasks the start-up check counted in the task
// tables, or -1 when it did not count them (PostgreSQL, or a table whose
// clean-close marker let it skip the check).
func (h *Hub) storedTasks() int64 {
	if h.startup == nil {
		return -1
	}
	var n int64
	for _, t := range h.startup.Tables {
		if t.Table != store.TaskQueue && t.Table != store.TaskDeadLetter {
			continue
		}
		if t.Skipped {
			return -1
		}
		n += int64(t.Records)
	}
	return n
}

// serveLoading answers a request to a hub that is still loading; health
// is how far it is (GET /health's body and the loading page's).
func serveLoading(w http.ResponseWriter, r *http.Request, health protocol.LoadingHealth) {
	w.Header().Set("Retry-After", strconv.Itoa(loadingRetryAfter))
	w.Header().Set("Cache-Control", "no-store")
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case get && r.URL.Path == "/health":
		writeLoadingJSON(w, r, http.StatusServiceUnavailable, health)
	case get && (r.URL.Path == "/dashboard" || r.URL.Path == "/dashboard/"):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// The page's one script is inline; it only reads /health.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_ = loadingPage.Execute(w, health)
		}
	default:
		writeLoadingJSON(w, r, http.StatusServiceUnavailable, protocol.ErrorReply{Error: protocol.CodeHubLoading,
			Detail: "the hub is loading its stored state; retry after the Retry-After seconds"})
	}
}

func writeLoadingJSON(w http.ResponseWriter, r *http.Request, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(body)
	}
}

// loadingPage is the dashboard while the hub loads: it polls /health and
// reloads into the dashboard (keeping the #token fragment) once the hub
// answers 200, rather than show tables it cannot fill yet.
var loadingPage = template.Must(template.New("loading").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AgentCom: hub is loading</title>
<style>body{font:16px system-ui,sans-serif;margin:3em;color:#222}progress{width:24em}</style></head>
<body><h1>AgentCom</h1>
<p id="state">{{if eq .Phase "storage"}}Hub is loading: opening and checking its tables.{{else if eq .Phase "tasks"}}Hub is loading its tasks: {{.Loaded}}{{if .Total}} of {{.Total}}{{end}} so far.{{else}}Hub is loading: starting its services.{{end}}</p>
<progress id="bar"{{if .Total}} max="{{.Total}}" value="{{.Loaded}}"{{end}}></progress>
<p>The dashboard opens by itself when the hub is ready.</p>
<script>
(function poll() {
  fetch('/health', {cache: 'no-store'}).then(function (r) {
    if (r.ok) { location.reload(); return; }
    return r.json().then(function (h) {
      var n = function (x) { return Number(x || 0).toLocaleString('en-US'); };
      var total = (typeof h.total === 'number') ? ' of ' + n(h.total) : '';
      document.getElementById('state').textContent =
        h.phase === 'storage' ? 'Hub is loading: opening and checking its tables.' :
        h.phase === 'tasks' ? 'Hub is loading its tasks: ' + n(h.loaded) + total + ' so far.' :
        'Hub is loading: starting its services.';
      var bar = document.getElementById('bar');
      if (typeof h.total === 'number') { bar.max = Math.max(h.total, 1); bar.value = h.loaded; }
      setTimeout(poll, 1000);
    });
  }).catch(function () { setTimeout(poll, 2000); });
})();
</script></body></html>
`))

// Loading is a hub that listens while it loads: StartLoading returns at
// once, the load runs in the background, and Hub is set once it serves.
type Loading struct {
	cfg      Config
	progress *loadProgress
	srv      *http.Server
	cancel   context.CancelFunc
	hub      atomic.Pointer[Hub]
	done     chan struct{} // closed when the load has ended, either way
	err      error         // the load's error, set before done closes
	served   chan struct{} // closed when srv.Serve has returned
}

// StartLoading serves on ln at once and loads the hub in the background:
// until it is loaded every request is answered 503 (serveLoading); then
// the hub serves them. A cluster hub loads nothing before it leads, so it
// is serving on return (while it leads and builds its domain, it answers
// as a loading hub: serveClusterHTTP).
func StartLoading(cfg Config, ln net.Listener) (*Loading, error) {
	cfg = cfg.withDefaults()
	l := &Loading{cfg: cfg, progress: newLoadProgress(), done: make(chan struct{})}
	if cfg.Cluster != nil {
		defer close(l.done)
		h, err := New(cfg)
		if err != nil {
			return nil, err
		}
		if err := h.Serve(ln); err != nil {
			_ = h.Shutdown(context.Background())
			return nil, err
		}
		l.hub.Store(h)
		return l, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.srv = (&Hub{cfg: cfg, log: cfg.Log}).newHTTPServer(http.HandlerFunc(l.serveHTTP))
	l.served = make(chan struct{})
	go func() {
		defer close(l.served)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Log.Error("http server stopped", "event", "http_failed", "err", err)
		}
	}()
	cfg.Log.Info("hub listening while it loads", "component", "hub", "event", "listening_loading", "addr", ln.Addr().String())
	go l.load(ctx, ln)
	return l, nil
}

func (l *Loading) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.hub.Load(); h != nil {
		h.API.ServeHTTP(w, r)
		return
	}
	serveLoading(w, r, l.progress.health(l.cfg.Version))
}

// load builds the hub and starts its services behind the listening
// server; l.err says why not.
func (l *Loading) load(ctx context.Context, ln net.Listener) {
	defer close(l.done)
	started := time.Now()
	cfg := l.cfg
	cfg.progress = l.progress
	h, err := newHub(ctx, cfg)
	if err != nil {
		l.err = err
		return
	}
	l.progress.setPhase(phaseStart)
	h.listener, h.http = ln, l.srv
	// The server already runs: the hub's services own its stop, so Shutdown
	// stops it as it stops the one Serve starts.
	front := startstop.Hooks("http", func(context.Context) error { return nil }, func() {
		_ = l.srv.Close()
		<-l.served
	})
	if err := h.run(front); err != nil {
		// run stopped what it had started; the server stays for Shutdown.
		h.Agents.Stop()
		l.err = errors.Join(err, h.closeStorage())
		return
	}
	l.hub.Store(h)
	// The same line as a hub that loads before it listens (Serve): it
	// says the hub serves.
	h.log.Info("hub listening", "component", "hub", "event", "listening", "addr", ln.Addr().String(), "store", h.storeName(),
		"version", h.cfg.Version, "tasks_loaded", l.progress.loaded.Load(), "load_ms", time.Since(started).Milliseconds())
}

// Done is closed when the load has ended: Err then says whether it failed
// and Hub is the serving hub.
func (l *Loading) Done() <-chan struct{} { return l.done }

// Err is the load's error, once Done is closed.
func (l *Loading) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

// Hub is the hub once loaded (nil before, and after a failed load).
func (l *Loading) Hub() *Hub { return l.hub.Load() }

// Shutdown stops the hub: during the load it ends the load (which stops
// at its next check of the context and closes what it opened) and the
// listener; after it, it is the hub's Shutdown.
func (l *Loading) Shutdown(ctx context.Context) error {
	if l.cancel != nil {
		l.cancel()
	}
	<-l.done
	if h := l.hub.Load(); h != nil {
		return h.Shutdown(ctx)
	}
	err := l.srv.Shutdown(ctx)
	_ = l.srv.Close()
	<-l.served
	if err != nil {
		return fmt.Errorf("hub: stop while loading: %w", err)
	}
	return nil
}
