package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/ratelimit"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasklog"
	"github.com/agentcom/agentcom/internal/tasks"
)

func serveCommand() *command {
	return &command{name: "serve", summary: "start the hub (HTTP + WebSocket; embedded storage, or PostgreSQL with --store)", noJSON: true, setup: runServe}
}

func runServe(in *inv) runFunc {
	env, fs := in.env, in.fs
	cfg := hub.DefaultConfig()
	addr := fs.String("addr", defaultAddr(env), "listen address (env PORT sets the port of the default :4000)")
	data := fs.String("data", envOr(env, "AGENTCOM_DATA_DIR", "data"), "data directory (env AGENTCOM_DATA_DIR)")
	storeOpt := in.storeFlag()
	busFlag := fs.String("bus", env.getenv("AGENTCOM_BUS"), "how the hubs of a cluster talk: local (one hub), postgres (LISTEN/NOTIFY on the store; the default with a PostgreSQL store) or nats://host:4222 (env AGENTCOM_BUS)")
	advertise := fs.String("advertise", env.getenv("AGENTCOM_ADVERTISE"), "the http://HOST:PORT other hubs of the cluster reach this one at (default: from --addr when it names a host; env AGENTCOM_ADVERTISE)")
	hubID := fs.String("hub-id", env.getenv("AGENTCOM_HUB_ID"), "this hub's name in the cluster: letters, digits, '-' and '_' (default: the host name and a random suffix; env AGENTCOM_HUB_ID)")
	logFormat := fs.String("log-format", envOr(env, "AGENTCOM_LOG_FORMAT", "auto"), "log format: auto, text or json (env AGENTCOM_LOG_FORMAT)")
	logLevel := fs.String("log-level", envOr(env, "AGENTCOM_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env AGENTCOM_LOG_LEVEL)")
	in.oneOf("log-format", "auto", "text", "json")
	in.oneOf("log-level", "debug", "info", "warn", "error")
	openReg := fs.Bool("open-registration", envBool(env, "AGENTCOM_OPEN_REGISTRATION"), "let anyone register an agent with POST /api/onboard/register (env AGENTCOM_OPEN_REGISTRATION)")
	joinSecret := in.secret("join-secret", "AGENTCOM_JOIN_SECRET", "`SECRET` that lets a registration through when registration is closed")
	backups := fs.String("backups", env.getenv("AGENTCOM_BACKUP_DIR"), "backup directory (default <data>/backups; env AGENTCOM_BACKUP_DIR)")
	firstBackup := fs.Duration("first-backup", 0, "delay before the first scheduled backup (default 1m)")
	backupEvery := fs.Duration("backup-interval", 0, "interval between scheduled backups (default 24h)")
	retention := fs.Int("backup-retention", 0, "verified backups kept per table (default 3)")
	compactEvery := fs.Duration("compaction-interval", 0, "interval between scheduled compactions (default 6h)")
	maxMeta := fs.String("max-task-metadata", envOr(env, "AGENTCOM_MAX_TASK_METADATA", strconv.Itoa(tasks.DefaultMaxMetadataBytes)),
		"largest task metadata accepted, in bytes of JSON (1024 to 4194304; env AGENTCOM_MAX_TASK_METADATA)")
	maxQueued := fs.String("max-queued-per-submitter", envOr(env, "AGENTCOM_MAX_QUEUED_PER_SUBMITTER", strconv.Itoa(tasks.DefaultMaxQueuedPerSubmitter)),
		"unfinished tasks one submitter may hold (1 to 1000000; env AGENTCOM_MAX_QUEUED_PER_SUBMITTER)")
	rateSpec := fs.String("rate-limits", env.getenv("AGENTCOM_RATE_LIMITS"), "rate limits over the defaults, class=per_second:burst,... classes: messages, tasks, channels, other, http, public, register; 0:0 disables one; \"off\" disables all (env AGENTCOM_RATE_LIMITS)")
	allowedHosts := fs.String("allowed-hosts", env.getenv("AGENTCOM_ALLOWED_HOSTS"), "comma-separated host names the hub answers to besides IP literals and localhost; a loopback hub refuses every other Host (DNS rebinding), any hub does once this is set (env AGENTCOM_ALLOWED_HOSTS)")
	pushPrivate := fs.Bool("push-allow-private", envBool(env, "AGENTCOM_PUSH_ALLOW_PRIVATE"), "accept web push endpoints over http or on loopback/private/link-local addresses (tests, closed networks; env AGENTCOM_PUSH_ALLOW_PRIVATE)")
	fs.DurationVar(&cfg.Socket.IdentifyTimeout, "identify-timeout", cfg.Socket.IdentifyTimeout, "close an agent socket that has not identified within this time")
	fs.IntVar(&cfg.Socket.MaxUnidentified, "max-unidentified", cfg.Socket.MaxUnidentified, "agent sockets waiting to identify, in all")
	fs.IntVar(&cfg.Socket.MaxUnidentifiedPerAddr, "max-unidentified-per-addr", cfg.Socket.MaxUnidentifiedPerAddr, "agent sockets waiting to identify, per remote address")
	fs.Int64Var(&cfg.Socket.ReportLimit, "max-report-bytes", cfg.Socket.ReportLimit, "largest task_complete/task_failed frame from an identified agent (other frames: 1 MiB)")
	fs.Int64Var(&cfg.Socket.SendBytes, "send-queue-bytes", cfg.Socket.SendBytes, "bytes that may wait for an agent that does not read before it is disconnected (4005)")
	fs.IntVar(&cfg.Queue.MaxDisconnectReclaims, "max-disconnect-reclaims", cfg.Queue.MaxDisconnectReclaims, "dead-letter a task reclaimed this many times because its agent disconnected (0: never)")
	fs.DurationVar(&cfg.HTTP.ReadHeaderTimeout, "http-read-header-timeout", cfg.HTTP.ReadHeaderTimeout, "time a client has to send request headers")
	fs.DurationVar(&cfg.HTTP.ReadTimeout, "http-read-timeout", cfg.HTTP.ReadTimeout, "time a client has to send a whole request, body included")
	fs.DurationVar(&cfg.HTTP.IdleTimeout, "http-idle-timeout", cfg.HTTP.IdleTimeout, "how long an idle keep-alive connection is kept")
	logKB := fs.String("task-log-kb", envOr(env, "AGENTCOM_TASK_LOG_KB", strconv.Itoa(tasklog.DefaultMaxBytes>>10)),
		"live agent output kept per task, in KiB (1 to 16384; env AGENTCOM_TASK_LOG_KB)")
	logTasks := fs.String("task-log-tasks", envOr(env, "AGENTCOM_TASK_LOG_TASKS", strconv.Itoa(tasklog.DefaultMaxTasks)),
		"tasks whose live output is kept, the most recently written (1 to 1000000; env AGENTCOM_TASK_LOG_TASKS)")
	taskRetention := fs.String("task-retention", envOr(env, "AGENTCOM_TASK_RETENTION", "7d"),
		"completed and cancelled tasks that ended longer ago move to the archive (still shown by task show and the dashboard): a duration such as 168h or 7d, 1h to 3650d, or forever (env AGENTCOM_TASK_RETENTION)")
	return func(ctx context.Context, _ []string) error {
		if err := checkServeBounds(*firstBackup, *backupEvery, *compactEvery, *retention); err != nil {
			return in.usagef("%v", err)
		}
		var err error
		if cfg.TaskArchive.Retention, err = tasks.ParseRetention(*taskRetention); err != nil {
			return in.usagef("--task-retention: %v", err)
		}
		if cfg.Queue.MaxMetadataBytes, err = intInRange("max-task-metadata", *maxMeta, 1024, 4<<20); err != nil {
			return in.usagef("%v", err)
		}
		if cfg.Queue.MaxQueuedPerSubmitter, err = intInRange("max-queued-per-submitter", *maxQueued, 1, 1_000_000); err != nil {
			return in.usagef("%v", err)
		}
		if cfg.TaskLogs.MaxBytes, err = intInRange("task-log-kb", *logKB, 1, 16<<10); err != nil {
			return in.usagef("%v", err)
		}
		cfg.TaskLogs.MaxBytes <<= 10
		if cfg.TaskLogs.MaxTasks, err = intInRange("task-log-tasks", *logTasks, 1, 1_000_000); err != nil {
			return in.usagef("%v", err)
		}
		for _, n := range []struct {
			name string
			bad  bool
		}{
			{"identify-timeout", cfg.Socket.IdentifyTimeout <= 0}, {"max-unidentified", cfg.Socket.MaxUnidentified <= 0},
			{"max-unidentified-per-addr", cfg.Socket.MaxUnidentifiedPerAddr <= 0}, {"max-report-bytes", cfg.Socket.ReportLimit <= 0},
			{"send-queue-bytes", cfg.Socket.SendBytes <= 0},
			{"http-read-header-timeout", cfg.HTTP.ReadHeaderTimeout <= 0}, {"http-read-timeout", cfg.HTTP.ReadTimeout <= 0},
			{"http-idle-timeout", cfg.HTTP.IdleTimeout <= 0},
		} {
			if n.bad {
				return in.usagef("--%s must be positive", n.name)
			}
		}
		if cfg.Queue.MaxDisconnectReclaims < 0 {
			return in.usagef("--max-disconnect-reclaims must be 0 (never) or more")
		}
		for _, h := range strings.Split(*allowedHosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				cfg.AllowedHosts = append(cfg.AllowedHosts, h)
			}
		}
		cfg.Dashboard.PushAllowPrivate = *pushPrivate
		if *rateSpec == "off" {
			cfg.RateLimits = nil
		} else {
			limits, err := ratelimit.Parse(*rateSpec)
			if err != nil {
				return in.usagef("--rate-limits: %v", err)
			}
			cfg.RateLimits = limits
		}
		spec, err := storeOpt()
		if err != nil {
			return in.usagef("%v", err)
		}
		cfg.Store = spec.postgres
		busSpec, err := cluster.ParseBus(*busFlag)
		if err != nil {
			return in.usagef("%v", err)
		}
		if spec.postgres == "" && busSpec.Kind != cluster.BusDefault && busSpec.Kind != cluster.BusLocal {
			return in.usagef("--bus %s joins hubs on one PostgreSQL store: give --store postgres://... too", busSpec)
		}
		log, err := newLogger(env, *logFormat, *logLevel)
		if err != nil {
			return in.usagef("%v", err)
		}
		cfg.Addr, cfg.DataDir, cfg.Version, cfg.Log = *addr, *data, version, log
		cfg.OpenRegistration, cfg.JoinSecret = *openReg, joinSecret()
		for _, a := range strings.Split(env.getenv("ADMIN_AGENTS"), ",") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.AdminAgents = append(cfg.AdminAgents, a)
			}
		}
		cfg.Resilience.BackupDir = *backups
		cfg.Resilience.FirstBackupDelay = *firstBackup
		cfg.Resilience.BackupInterval = *backupEvery
		cfg.Resilience.Retention = *retention
		cfg.Resilience.CompactionInterval = *compactEvery
		cfg.Dashboard.VAPIDPublicKey = env.getenv("VAPID_PUBLIC_KEY")
		cfg.Dashboard.VAPIDPrivateKey = env.getenv("VAPID_PRIVATE_KEY")
		if spec.postgres != "" {
			// Hubs on one PostgreSQL form a cluster (see hub/cluster.go).
			id := cmp.Or(*hubID, hub.DefaultHubID())
			if err := cluster.CheckHubID(id); err != nil {
				return in.usagef("--hub-id: %v", err)
			}
			adv := *advertise
			if adv == "" {
				if adv, err = hub.AdvertiseFor(*addr); err != nil {
					return in.usagef("%v", err)
				}
			} else if err := checkAdvertise(adv); err != nil {
				return in.usagef("%v", err)
			}
			svc, err := hub.OpenCluster(ctx, spec.postgres, busSpec, id, adv, log)
			if err != nil {
				return fmt.Errorf("start hub: %w", err)
			}
			defer svc.Close()
			cfg.Cluster = svc.Config
		}
		// The listener opens first and the hub loads behind it, answering
		// 503 (hub_loading, Retry-After) until it is ready (hub/loading.go).
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return withHint(fmt.Errorf("listen %s: %w", cfg.Addr, err), "another program listens on %s: stop it, or choose another --addr (or PORT)", *addr)
			}
			return fmt.Errorf("listen %s: %w", cfg.Addr, err)
		}
		loading, err := hub.StartLoading(cfg, ln)
		if err != nil {
			_ = ln.Close()
			return loadFailed(*data, err)
		}
		fmt.Fprintf(env.stderr, "AgentCom hub %s loading on %s: /health answers 503 until the stored state is loaded\n", version, ln.Addr())
		select {
		case <-loading.Done():
		case <-ctx.Done():
			log.Info("shutting down while loading", "component", "hub", "event", "shutdown_loading")
			sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			return loading.Shutdown(sctx)
		}
		if err := loading.Err(); err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_ = loading.Shutdown(sctx)
			return loadFailed(*data, err)
		}
		h := loading.Hub()
		fmt.Fprintf(env.stderr, "AgentCom hub %s listening on %s (dashboard: %s/dashboard; store: %s)\n", version, h.Addr(), displayURL(h.Addr()), spec)
		if !h.LoopbackOnly() && !h.HasOperatorToken() {
			fmt.Fprintln(env.stderr, "The hub listens beyond this machine, so the dashboard asks for a token and there is none yet.\n"+
				"Stop the hub and run: agentcom token create --agent ops --admin   (or --role viewer to only watch),\n"+
				"start it again and open /dashboard#token=<that token> (the page keeps it in this browser);\n"+
				"or start it with --addr 127.0.0.1:4000 for a hub on this machine only, whose dashboard needs no token.")
		}
		<-ctx.Done()
		log.Info("shutting down", "component", "hub", "event", "shutdown")
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return h.Shutdown(sctx)
	}
}

// loadFailed is the error of a hub whose load failed.
func loadFailed(data string, err error) error {
	if errors.Is(err, store.ErrLocked) {
		return heldBy(data, err, "stop the other hub first, or start this one with another --data")
	}
	return fmt.Errorf("start hub: %w", err)
}

// Bounds of the serve flags' durations and counts; 0 keeps the default.
// Outside them the hub refuses to start and says which flag and why.
var durationBounds = []struct {
	name   string
	lo, hi time.Duration
}{
	{"first-backup", time.Second, 24 * time.Hour},
	{"backup-interval", time.Minute, 30 * 24 * time.Hour},
	{"compaction-interval", time.Minute, 30 * 24 * time.Hour},
}

func checkServeBounds(firstBackup, backupEvery, compactEvery time.Duration, retention int) error {
	for i, d := range []time.Duration{firstBackup, backupEvery, compactEvery} {
		b := durationBounds[i]
		if d != 0 && (d < b.lo || d > b.hi) {
			return fmt.Errorf("--%s %s is out of range: want %s to %s (or 0 for the default)", b.name, d, b.lo, b.hi)
		}
	}
	if retention < 0 || retention > 100 {
		return fmt.Errorf("--backup-retention %d is out of range: want 1 to 100 (or 0 for the default)", retention)
	}
	return nil
}

// intInRange parses a count flag (or its environment variable) and
// checks its bounds.
func intInRange(name, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("--%s %q is out of range: want an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// checkAdvertise accepts an http(s) URL with a host and nothing after it
// but an optional "/".
func checkAdvertise(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("--advertise %q: want http://HOST:PORT (or https://)", raw)
	}
	return nil
}

func defaultAddr(env *cmdEnv) string {
	if p := env.getenv("PORT"); p != "" {
		return ":" + p
	}
	return ":4000"
}

func displayURL(addr string) string {
	if len(addr) > 0 && addr[0] == ':' {
		return "http://localhost" + addr
	}
	if len(addr) > 5 && addr[:5] == "[::]:" {
		return "http://localhost:" + addr[5:]
	}
	return "http://" + addr
}

func envOr(env *cmdEnv, key, def string) string {
	if v := env.getenv(key); v != "" {
		return v
	}
	return def
}

func envBool(env *cmdEnv, key string) bool {
	switch env.getenv(key) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// newLogger builds the slog logger: text on a terminal, JSON otherwise,
// unless the format is given.
func newLogger(env *cmdEnv, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "auto":
		if isTerminal(env.stderr) {
			return slog.New(slog.NewTextHandler(env.stderr, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(env.stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(env.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(env.stderr, opts)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q (want auto, text or json)", format)
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
