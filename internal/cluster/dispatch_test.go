package cluster_test

import (
	"context"
	"testing"

	"github.com/agentcom/agentcom/internal/cluster"
)

// TestQueueBound: a subscriber that does not return holds at most
// QueueLimit messages of its subject waiting; the rest are dropped (the
// bus is at most once), and delivery goes on once it returns.
func TestQueueBound(t *testing.T) {
	b := cluster.NewLocalBusConfig(cluster.BusConfig{QueueLimit: 10})
	defer b.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	c := newCollector()
	first := true
	if _, err := b.Subscribe("q", func(p []byte) {
		if first {
			first = false
			close(entered)
			<-release
		}
		c.fn(p)
	}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	publish(t, b, "q", []byte("first"))
	<-entered
	for range 50 {
		if err := b.Publish(ctx, "q", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.Dropped(); n != 40 {
		t.Fatalf("%d dropped, want 40", n)
	}
	close(release)
	c.wait(t, 11)
	publish(t, b, "q", []byte("last"))
	got := c.wait(t, 12)
	if string(got[0]) != "first" || string(got[11]) != "last" {
		t.Fatalf("got %q … %q", got[0], got[11])
	}
	// "last" came after the 10 that waited: nothing more is on its way.
	if n := c.count(); n != 12 {
		t.Fatalf("%d delivered, want 12 (first, the 10 queued, last)", n)
	}
}
