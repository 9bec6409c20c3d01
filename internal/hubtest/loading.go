package hubtest

import (
	"context"
	"net"
	"testing"

	"github.com/agentcom/agentcom/internal/hub"
)

// HoldLoad is a hub.Config.LoadHook that closes reached when the load
// gets to it and holds the load there until release is closed (or the
// load is cancelled): a test sees the hub loading for as long as it
// needs, with no timing.
func HoldLoad(reached chan<- struct{}, release <-chan struct{}) func(context.Context) error {
	return func(ctx context.Context) error {
		close(reached)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// StartLoading starts a hub that serves while it loads
// (hub.StartLoading) on 127.0.0.1:0, and returns it with its base URL.
// The caller shuts it down.
func StartLoading(t testing.TB, cfg hub.Config) (*hub.Loading, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = ln.Addr().String()
	l, err := hub.StartLoading(cfg, ln)
	if err != nil {
		t.Fatalf("start loading: %v", err)
	}
	return l, "http://" + ln.Addr().String()
}
