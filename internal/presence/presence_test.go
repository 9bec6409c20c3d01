package presence

import (
	"slices"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
)

func next(t *testing.T, s *bus.Sub) bus.Event {
	t.Helper()
	select {
	case ev := <-s.C:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return bus.Event{}
	}
}

func TestRegisterDefaultsAndAnnounces(t *testing.T) {
	b := bus.New()
	sub := b.Subscribe(16, bus.TopicAgents)
	defer sub.Close()
	d := New(b)
	at := time.UnixMilli(1_700_000_000_000)
	d.now = func() time.Time { return at }
	e := d.Register(Entry{AgentID: "a1"})
	if e.Name != "a1" || e.Status != "connected" || e.Capabilities == nil || e.ConnectedAt != at.UnixMilli() || e.LastSeen != at.UnixMilli() {
		t.Fatalf("registered %+v", e)
	}
	if ev := next(t, sub); ev.Type() != EventJoined || ev.Data.(Joined).AgentID != "a1" {
		t.Fatalf("event %+v", ev)
	}
	// A re-register (reconnect) keeps the scheduling state unless given.
	d.SetState("a1", "working")
	if e := d.Register(Entry{AgentID: "a1", Name: "renamed"}); e.State != "working" || e.Name != "renamed" {
		t.Fatalf("re-register %+v", e)
	}
	if d.Count() != 1 {
		t.Fatalf("count %d", d.Count())
	}
}

func TestStatusTouchStaleAndUnregister(t *testing.T) {
	b := bus.New()
	sub := b.Subscribe(16, bus.TopicAgents)
	defer sub.Close()
	d := New(b)
	now := time.UnixMilli(1_700_000_000_000)
	d.now = func() time.Time { return now }
	d.Register(Entry{AgentID: "b", Capabilities: []string{"go"}})
	d.Register(Entry{AgentID: "a"})
	next(t, sub)
	next(t, sub)

	if _, ok := d.SetStatus("nobody", "x"); ok {
		t.Fatal("status of an absent agent")
	}
	if e, ok := d.SetStatus("a", "busy"); !ok || e.Status != "busy" {
		t.Fatalf("status %+v", e)
	}
	if ev := next(t, sub); ev.Type() != EventStatusChanged || ev.Data.(StatusChanged).Status != "busy" {
		t.Fatalf("event %+v", ev)
	}

	now = now.Add(time.Minute)
	d.Touch("b")
	if got := d.Stale(now.Add(-time.Second)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("stale %v", got)
	}
	// Entries handed out are copies.
	e, _ := d.Get("b")
	e.Capabilities[0] = "mutated"
	if e2, _ := d.Get("b"); e2.Capabilities[0] != "go" {
		t.Fatal("Get returned shared capabilities")
	}
	if l := d.List(); len(l) != 2 || l[0].AgentID != "a" || l[1].AgentID != "b" {
		t.Fatalf("list %+v", l)
	}

	if !d.Unregister("a") || d.Unregister("a") {
		t.Fatal("unregister reports")
	}
	if ev := next(t, sub); ev.Data != (Left{AgentID: "a"}) {
		t.Fatalf("event %+v", ev)
	}
	select {
	case ev := <-sub.C:
		t.Fatalf("a second unregister announced %+v", ev)
	default:
	}
	if _, ok := d.Get("a"); ok || d.Count() != 1 {
		t.Fatal("still present")
	}
}
