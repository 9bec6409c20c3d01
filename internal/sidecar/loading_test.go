package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
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
// identifies once the hub is ready. Two sidecars refused together come
// back at different moments (jitter), never sooner than the hub asked
// and at most half as long again.
func TestSidecarRetriesALoadingHubAfterRetryAfter(t *testing.T) {
	dir := t.TempDir()
	seed := hubtest.Start(t, dir)
	tokens := []string{seed.Token("agent-1", auth.RoleAgent), seed.Token("agent-2", auth.RoleAgent)}
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

	var rs []*running
	var delays []int64
	for i, token := range tokens {
		scfg := testConfigFor(t, fmt.Sprintf("agent-%d", i+1), token, "ws"+strings.TrimPrefix(base, "http")+"/ws")
		slowBackoff(&scfg)
		// Fixed seeds, so the draws (and the test) are the same every run.
		r := start(t, scfg, Options{Jitter: rand.NewPCG(uint64(i), 14)})
		defer r.stop(t)
		rs = append(rs, r)
		var d int64
		testenv.Eventually(t, "a refused connect that honours Retry-After", func() bool {
			var ok bool
			d, ok = firstRetry(r.log.String())
			return ok
		}, testenv.Within(wait))
		// Retry-After: 2 (seconds).
		if d < 2000 || d > 3000 {
			t.Fatalf("agent-%d retries a loading hub after %d ms, want 2000 to 3000", i+1, d)
		}
		delays = append(delays, d)
	}
	if delays[0] == delays[1] {
		t.Fatalf("both sidecars retry after %d ms: in lockstep", delays[0])
	}
	for _, r := range rs {
		if r.log.has("auth_rejected") || r.log.has("identified") {
			t.Fatalf("while the hub loads: %s", r.log.String())
		}
	}
	close(release)
	for _, r := range rs {
		testenv.Eventually(t, "identified once the hub is ready", func() bool { return r.log.has("identified") }, testenv.Within(wait))
	}
}

// firstRetry is the retry_in_ms of the first refused connect in a
// sidecar's JSON log.
func firstRetry(log string) (int64, bool) {
	for line := range strings.Lines(log) {
		var e struct {
			Event   string `json:"event"`
			RetryIn *int64 `json:"retry_in_ms"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Event == "ws_connect_error" && e.RetryIn != nil {
			return *e.RetryIn, true
		}
	}
	return 0, false
}
