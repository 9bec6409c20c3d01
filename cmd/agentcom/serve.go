package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/ratelimit"
	"github.com/agentcom/agentcom/internal/store"
)

func serveCommand() *command {
	return &command{name: "serve", summary: "start the hub (HTTP + WebSocket, embedded storage)", noJSON: true, setup: runServe}
}

func runServe(in *inv) runFunc {
	env, fs := in.env, in.fs
	addr := fs.String("addr", defaultAddr(env), "listen address (env PORT sets the port of the default :4000)")
	data := fs.String("data", envOr(env, "AGENTCOM_DATA_DIR", "data"), "data directory (env AGENTCOM_DATA_DIR)")
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
	rateSpec := fs.String("rate-limits", env.getenv("AGENTCOM_RATE_LIMITS"), "rate limits over the defaults, class=per_second:burst,... classes: messages, tasks, channels, other, http; 0:0 disables one; \"off\" disables all (env AGENTCOM_RATE_LIMITS)")
	return func(ctx context.Context, _ []string) error {
		cfg := hub.DefaultConfig()
		if *rateSpec == "off" {
			cfg.RateLimits = nil
		} else {
			limits, err := ratelimit.Parse(*rateSpec)
			if err != nil {
				return in.usagef("--rate-limits: %v", err)
			}
			cfg.RateLimits = limits
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
		h, err := hub.New(cfg)
		if errors.Is(err, store.ErrLocked) {
			return heldBy(*data, err, "stop the other hub first, or start this one with another --data")
		}
		if err != nil {
			return fmt.Errorf("start hub: %w", err)
		}
		if err := h.Start(); err != nil {
			h.Shutdown(context.Background())
			if errors.Is(err, syscall.EADDRINUSE) {
				return withHint(err, "another program listens on %s: stop it, or choose another --addr (or PORT)", *addr)
			}
			return err
		}
		fmt.Fprintf(env.stderr, "AgentCom hub %s listening on %s (dashboard: %s/dashboard)\n", version, h.Addr(), displayURL(h.Addr()))
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
