package hub_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/store"
)

// A data directory that already exists with a looser mode is restricted
// to 0700 at start, and the hub says so.
func TestExistingDataDirGetsMode0700(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cfg := hub.DefaultConfig()
	cfg.Addr, cfg.DataDir, cfg.RateLimits = "127.0.0.1:0", dir, nil
	cfg.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, h)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Fatalf("data dir mode %#o, want 0700", perm)
	}
	if !strings.Contains(logs.String(), `"event":"data_dir_mode_fixed"`) {
		t.Fatalf("no log line for the mode change:\n%s", logs.String())
	}
}

// A hub whose table was replaced by an empty one at start, and which then
// cannot listen, exits with an error without ever claiming to run in
// degraded mode.
func TestFailedStartDoesNotClaimDegradedMode(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(store.TablePath(dir, store.AgentMailbox), []byte(strings.Repeat("not a bbolt file ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var logs syncBuffer
	cfg := hub.DefaultConfig()
	cfg.Addr, cfg.DataDir, cfg.RateLimits = busy.Addr().String(), dir, nil
	cfg.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err == nil {
		t.Fatal("Start on a busy port succeeded")
	}
	shutdown(t, h)
	out := logs.String()
	if !strings.Contains(out, `"event":"table_replaced_empty"`) {
		t.Fatalf("the replacement is not logged:\n%s", out)
	}
	if strings.Contains(out, "running empty") || strings.Contains(out, "degraded mode") {
		t.Fatalf("a hub that did not start claims degraded mode:\n%s", out)
	}
}

func shutdown(t *testing.T, h *hub.Hub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Logf("shutdown: %v", err)
	}
}
