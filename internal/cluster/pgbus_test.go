package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/testenv"
)

func pgBus(t *testing.T, pool *pgxpool.Pool, cfg cluster.PGBusConfig) *cluster.PGBus {
	t.Helper()
	b, err := cluster.NewPGBus(context.Background(), pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// until publishes on subject (each time a new numbered message) until c
// has received one, polling, and returns what c then holds. It proves a
// bus back at work after a lost session: messages sent while it was
// disconnected are lost, by design.
func until(t *testing.T, pub cluster.Bus, subject string, c *collector) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; c.count() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the bus did not recover")
		}
		// A publish on a session just ended fails; the next one reconnects.
		_ = pub.Publish(context.Background(), subject, fmt.Appendf(nil, "probe%d", i))
		select {
		case <-c.more:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return c.count()
}

// checkAfterProbes waits for the n messages m0… published after until's
// probes (some probes may still arrive among them) and checks their order.
func checkAfterProbes(t *testing.T, c *collector, n int) {
	t.Helper()
	for have := n; ; have++ {
		var got []string
		for _, m := range c.wait(t, have) {
			if !bytes.HasPrefix(m, []byte("probe")) {
				got = append(got, string(m))
			}
		}
		if len(got) < n {
			continue
		}
		for j, m := range got {
			if want := fmt.Sprintf("m%d", j); m != want {
				t.Fatalf("after reconnect message %d is %q, want %q", j, m, want)
			}
		}
		return
	}
}

// TestPGBusReconnect: a bus whose sessions the server ends listens and
// publishes again, in order.
func TestPGBusReconnect(t *testing.T) {
	pools, apps := testPools(t, 2)
	a := pgBus(t, pools[0], cluster.PGBusConfig{})
	b := pgBus(t, pools[1], cluster.PGBusConfig{})
	p := prefix(t)
	c := newCollector()
	subscribe(t, b, p+"r", c)
	for _, i := range []int{1, 0} { // the listener's sessions, then the publisher's
		if n := terminate(t, pools[1-i], apps[i], "true"); n == 0 {
			t.Fatalf("no session of %s to end", apps[i])
		}
		c = newCollector()
		unsub := subscribe(t, b, p+"r", c)
		until(t, a, p+"r", c)
		for j := range 20 {
			publish(t, a, p+"r", fmt.Appendf(nil, "m%d", j))
		}
		checkAfterProbes(t, c, 20)
		unsub()
	}
}

// TestPGBusStoredCleanup: stored payloads are deleted once older than
// PayloadTTL.
func TestPGBusStoredCleanup(t *testing.T) {
	pool := migratedPool(t)
	b := pgBus(t, pool, cluster.PGBusConfig{PayloadTTL: time.Second})
	p := prefix(t)
	c := newCollector()
	subscribe(t, b, p+"s", c)
	publish(t, b, p+"s", make([]byte, 100<<10))
	c.wait(t, 1)
	count := func() int {
		var n int
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM cluster_bus_payloads").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("%d stored payloads, want 1", n)
	}
	deadline := time.Now().Add(60 * time.Second)
	for count() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stored payload was never deleted")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPGBusSchemas: buses of clusters in two schemas of one database do
// not hear each other on the same subject.
func TestPGBusSchemas(t *testing.T) {
	a := pgBus(t, migratedPool(t), cluster.PGBusConfig{})
	b := pgBus(t, migratedPool(t), cluster.PGBusConfig{})
	p := prefix(t)
	c := newCollector()
	subscribe(t, a, p+"x", c)
	// NOTIFY delivers in commit order across the database: had b's message
	// leaked, it would come first.
	publish(t, b, p+"x", []byte("other cluster"))
	publish(t, a, p+"x", []byte("own"))
	if got := c.wait(t, 1); string(got[0]) != "own" {
		t.Fatalf("got %q from the other schema's cluster", got[0])
	}
}

// TestPGBusStoredGone: a hub so far behind that a stored payload was
// deleted before it fetched it loses that message (at most once) and
// goes on with the next.
func TestPGBusStoredGone(t *testing.T) {
	pool := migratedPool(t)
	a := pgBus(t, pool, cluster.PGBusConfig{PayloadTTL: time.Second})
	b := pgBus(t, pool, cluster.PGBusConfig{})
	p := prefix(t)
	entered, release := make(chan struct{}), make(chan struct{})
	c := newCollector()
	first := true
	subscribe(t, b, p+"g", c)
	// A second handler, after c, holds the subject up.
	unsub, err := b.Subscribe(p+"g", func([]byte) {
		if first {
			first = false
			close(entered)
			<-release
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	publish(t, a, p+"g", []byte("small"))
	<-entered
	publish(t, a, p+"g", make([]byte, 100<<10))
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM cluster_bus_payloads").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stored payload was never deleted")
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(release)
	publish(t, a, p+"g", []byte("next"))
	got := c.wait(t, 2)
	if string(got[0]) != "small" || string(got[1]) != "next" {
		t.Fatalf("got %q, %q; want small, next (the stored one lost)", got[0], got[1][:min(len(got[1]), 10)])
	}
}

// TestPGBusUnmigrated: a database without the cluster tables is refused
// with what to do.
func TestPGBusUnmigrated(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := cluster.NewPGBus(context.Background(), pool, cluster.PGBusConfig{}); err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("bus on an unmigrated database: %v", err)
	}
}
