package agentws

import (
	"log/slog"
	"testing"
	"time"
)

// The cooldown sequence README documents (30 s, 60 s, then 300 s for
// every later flood) and its decay: after four times the longest step of
// good behaviour the count starts over.
func TestCooldownSteps(t *testing.T) {
	steps := DefaultConfig().Cooldowns
	c := newCooldowns(steps)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if c.remaining("a", t0) != 0 {
		t.Fatal("cooldown without a flood")
	}
	now := t0
	for i, want := range []time.Duration{30 * time.Second, 60 * time.Second, 300 * time.Second, 300 * time.Second} {
		c.record("a", now)
		if got := c.remaining("a", now); got != want {
			t.Fatalf("flood %d: cooldown %v, want %v", i+1, got, want)
		}
		if got := c.remaining("a", now.Add(want-time.Millisecond)); got != time.Millisecond {
			t.Fatalf("flood %d: 1 ms before the end, %v left", i+1, got)
		}
		if got := c.remaining("a", now.Add(want)); got > 0 {
			t.Fatalf("flood %d: still cooling at its end: %v", i+1, got)
		}
		if c.remaining("b", now) != 0 {
			t.Fatal("another agent cools down too")
		}
		now = now.Add(want)
	}
	// 4 x 300 s later the count is forgotten: the next flood costs 30 s.
	now = now.Add(4*300*time.Second + time.Millisecond)
	if c.remaining("a", now) != 0 {
		t.Fatal("cooling after the decay")
	}
	c.record("a", now)
	if got := c.remaining("a", now); got != 30*time.Second {
		t.Fatalf("after the decay: %v, want 30s", got)
	}
}

func TestZeroConfigTakesDocumentedDefaults(t *testing.T) {
	d := DefaultConfig()
	if d.ViolationLimit != 10 || d.ViolationWindow != time.Minute || d.IdleTimeout != time.Minute ||
		d.StaleAfter != time.Minute || d.ReapInterval != 30*time.Second || d.SendBuffer <= 0 || d.ReadLimit <= 0 {
		t.Fatalf("defaults %+v", d)
	}
	s := New(Config{}, Deps{Log: slog.New(slog.DiscardHandler)})
	if s.cfg.ViolationLimit != d.ViolationLimit || len(s.cfg.Cooldowns) != 3 || s.cfg.Now == nil {
		t.Fatalf("zero config became %+v", s.cfg)
	}
}
