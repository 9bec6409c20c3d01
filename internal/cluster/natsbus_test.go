package cluster_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/testenv"
)

// TestNATSNamespace: buses of two clusters (two databases' ids) on one
// NATS server do not hear each other on the same subject; the hubs of
// one cluster do.
func TestNATSNamespace(t *testing.T) {
	url := testenv.NATS(t)
	ctx := context.Background()
	idA, err := cluster.ClusterID(ctx, migratedPool(t))
	if err != nil {
		t.Fatal(err)
	}
	idB, err := cluster.ClusterID(ctx, migratedPool(t))
	if err != nil {
		t.Fatal(err)
	}
	if idA == idB || len(idA) != 32 {
		t.Fatalf("cluster ids %q and %q", idA, idB)
	}
	open := func(ns string) cluster.Bus {
		b, err := cluster.NewNATSBus(url, cluster.NATSBusConfig{Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	a1, a2, b1 := open(idA), open(idA), open(idB)
	c := newCollector()
	subscribe(t, a1, "agentcom.leader.in", c)
	// b1's Close flushes (a round trip), so its message reaches the server
	// before a2's: had it leaked, it would arrive first.
	publish(t, b1, "agentcom.leader.in", []byte("other cluster"))
	if err := b1.Close(); err != nil { // flushes
		t.Fatal(err)
	}
	publish(t, a2, "agentcom.leader.in", []byte("own"))
	if err := a2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := c.wait(t, 1); string(got[0]) != "own" {
		t.Fatalf("got %q from the other cluster", got[0])
	}
	if _, err := cluster.NewNATSBus(url, cluster.NATSBusConfig{Namespace: "a.*"}); err == nil {
		t.Fatal("namespace with a wildcard accepted")
	}
}

// TestNATSBusReconnect: a bus whose connection to the server breaks
// reconnects and subscribes again by itself.
func TestNATSBusReconnect(t *testing.T) {
	raw := testenv.NATS(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newFreezer(t, u.Host)
	a, err := cluster.NewNATSBus(raw, cluster.NATSBusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := cluster.NewNATSBus("nats://"+proxy.addr(), cluster.NATSBusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	p := prefix(t)
	c := newCollector()
	subscribe(t, b, p+"r", c)
	proxy.cut()
	c = newCollector()
	unsub := subscribe(t, b, p+"r", c)
	defer unsub()
	until(t, a, p+"r", c)
	for j := range 20 {
		publish(t, a, p+"r", fmt.Appendf(nil, "m%d", j))
	}
	checkAfterProbes(t, c, 20)
}
