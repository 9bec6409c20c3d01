package sidecar

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/testenv"
)

// A hub that is still loading refuses the socket with 503 and
// Retry-After: the sidecar takes it as "come back then", not as a
// rejected token and not through its backoff (an hour here), and
// identifies once the hub is ready.
func TestSidecarRetriesALoadingHubAfterRetryAfter(t *testing.T) {
	dir := t.TempDir()
	seed := hubtest.Start(t, dir)
	token := seed.Token("agent-1", auth.RoleAgent)
	seed.Stop()

	reached, release := make(chan struct{}), make(chan struct{})
	cfg := hub.DefaultConfig()
	cfg.DataDir, cfg.RateLimits = dir, nil
	cfg.LoadHook = hubtest.HoldLoad(reached, release)
	l, base := hubtest.StartLoading(t, cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Shutdown(ctx); err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
	})
	<-reached

	scfg := testConfigFor(t, "agent-1", token, "ws"+strings.TrimPrefix(base, "http")+"/ws")
	slowBackoff(&scfg)
	r := start(t, scfg, Options{})
	defer r.stop(t)
	testenv.Eventually(t, "a refused connect that honours Retry-After", func() bool {
		log := r.log.String()
		return strings.Contains(log, `"event":"ws_connect_error"`) && strings.Contains(log, `"retry_in_ms":2000`)
	}, testenv.Within(wait))
	if r.log.has("auth_rejected") || r.log.has("identified") {
		t.Fatalf("while the hub loads: %s", r.log.String())
	}
	close(release)
	testenv.Eventually(t, "identified once the hub is ready", func() bool { return r.log.has("identified") }, testenv.Within(wait))
}
