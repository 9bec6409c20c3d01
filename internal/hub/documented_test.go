package hub_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/ratelimit"
	"github.com/agentcom/agentcom/internal/settings"
)

// TestDocumentedDefaults pins every number README's "Rate limits" and
// "Timers" paragraphs state to the defaults the hub runs with. The
// behaviour behind each is tested elsewhere (docs/testing.md); this test
// fails when a default drifts from what the operator reads.
func TestDocumentedDefaults(t *testing.T) {
	c := hub.DefaultConfig()
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, README says %v", name, got, want)
		}
	}
	check("acceptance timeout", c.AcceptTimeout, 60*time.Second)
	check("task lease", c.Scheduler.LeaseTTL, 5*time.Minute)
	check("lease/deadline sweep", c.Scheduler.SweepInterval, 30*time.Second)
	check("retry backoff base", c.Queue.BackoffBase, 5*time.Second)
	check("retry backoff max", c.Queue.BackoffMax, 5*time.Minute)
	check("socket idle timeout", c.Socket.IdleTimeout, 60*time.Second)
	check("stale-ping threshold", c.Socket.StaleAfter, 60*time.Second)
	check("reaper interval", c.Socket.ReapInterval, 30*time.Second)
	check("mailbox eviction interval", c.MailboxEvictInterval, time.Hour)
	check("mailbox retention", time.Duration(settings.DefaultMailboxTTLMs)*time.Millisecond, 7*24*time.Hour)
	check("refused frames before close", c.Socket.ViolationLimit, 10)
	check("identify timeout", c.Socket.IdentifyTimeout, 10*time.Second)
	check("unidentified sockets", c.Socket.MaxUnidentified, 2048)
	check("unidentified sockets per address", c.Socket.MaxUnidentifiedPerAddr, 128)
	check("hub ping after", c.Socket.PingInterval, 35*time.Second)
	check("frame limit", c.Socket.ReadLimit, int64(1<<20))
	check("report limit", c.Socket.ReportLimit, int64(16<<20))
	check("send queue frames", c.Socket.SendBuffer, 256)
	check("send queue bytes", c.Socket.SendBytes, int64(4<<20))
	check("dashboard send queue bytes", c.Dashboard.SendBytes, int64(8<<20))
	check("disconnect reclaims before dead letter", c.Queue.MaxDisconnectReclaims, 5)
	check("HTTP header timeout", c.HTTP.ReadHeaderTimeout, 10*time.Second)
	check("HTTP read timeout", c.HTTP.ReadTimeout, time.Minute)
	check("HTTP idle timeout", c.HTTP.IdleTimeout, 2*time.Minute)
	check("HTTP header bytes", c.HTTP.MaxHeaderBytes, 64<<10)
	check("refused-frame window", c.Socket.ViolationWindow, time.Minute)
	if want := []time.Duration{30 * time.Second, 60 * time.Second, 300 * time.Second}; !slices.Equal(c.Socket.Cooldowns, want) {
		t.Errorf("cooldowns = %v, README says %v", c.Socket.Cooldowns, want)
	}
	want := ratelimit.Limits{
		ratelimit.ClassMessages: {PerSecond: 50, Burst: 100},
		ratelimit.ClassChannels: {PerSecond: 20, Burst: 40},
		ratelimit.ClassOther:    {PerSecond: 50, Burst: 100},
		ratelimit.ClassHTTP:     {PerSecond: 50, Burst: 100},
		ratelimit.ClassTasks:    {PerSecond: 20, Burst: 50},
		ratelimit.ClassPublic:   {PerSecond: 20, Burst: 50},
		ratelimit.ClassRegister: {PerSecond: 1, Burst: 10},
	}
	if len(c.RateLimits) != len(want) {
		t.Errorf("rate classes %v, README documents %v", c.RateLimits, want)
	}
	for class, l := range want {
		check("rate limit "+string(class), c.RateLimits[class], l)
	}
}

// TestMailboxEvictionLoop: the hub evicts expired mailbox messages on its
// own, every MailboxEvictInterval, with the retention from the settings;
// nobody calls POST /api/mailbox/evict here.
func TestMailboxEvictionLoop(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.MailboxEvictInterval = 20 * time.Millisecond })
	h.Token("away", "agent") // a known, offline recipient
	// The shortest retention allowed: 1 s.
	if st, body := h.Do("PUT", "/api/config/mailbox-retention", h.AdminToken, map[string]any{"mailbox_ttl_ms": 1000}); st != http.StatusOK {
		t.Fatalf("set retention: %d %v", st, body)
	}
	if st, body := h.Do("POST", "/api/message", h.AdminToken, map[string]any{"to": "away", "payload": map[string]any{"x": 1}}); st != http.StatusOK {
		t.Fatalf("send: %d %v", st, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, box := h.Do("GET", "/api/mailbox/away", h.AdminToken, nil)
		if box["count"] == float64(0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the eviction loop never removed the expired message: %v", box)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
