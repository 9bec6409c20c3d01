package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }

// busKind is one Bus implementation under test.
type busKind struct {
	name string
	// open sets up a cluster for t and returns what makes the bus of one
	// more of its hubs (each with connections of its own; the local bus
	// has only one hub, so every "hub" shares it).
	open func(t testing.TB) func() cluster.Bus
}

func busKinds() []busKind {
	return []busKind{
		{"local", func(t testing.TB) func() cluster.Bus {
			b := cluster.NewLocalBus()
			t.Cleanup(func() { b.Close() })
			return func() cluster.Bus { return b }
		}},
		{"postgres", func(t testing.TB) func() cluster.Bus {
			pool := migratedPool(t)
			return func() cluster.Bus {
				b, err := cluster.NewPGBus(context.Background(), pool, cluster.PGBusConfig{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { b.Close() })
				return b
			}
		}},
		{"nats", func(t testing.TB) func() cluster.Bus {
			url := testenv.NATS(t)
			return func() cluster.Bus {
				b, err := cluster.NewNATSBus(url, cluster.NATSBusConfig{Name: t.Name()})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { b.Close() })
				return b
			}
		}},
	}
}

// migratedPool opens a pool on a fresh schema with the cluster tables.
func migratedPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pgdriver.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// prefix is a subject prefix of the test's own (NATS subjects, and
// PostgreSQL channels within a schema, are shared by every test).
func prefix(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + "."
}

// collector records what a subscriber receives.
type collector struct {
	mu   sync.Mutex
	got  [][]byte
	more chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) fn(p []byte) {
	c.mu.Lock()
	c.got = append(c.got, p)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

// wait returns the first n messages once they are there. The bound only
// turns a lost message into a failure instead of a hung test.
func (c *collector) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if len(c.got) >= n {
			out := append([][]byte(nil), c.got[:n]...)
			c.mu.Unlock()
			return out
		}
		have := len(c.got)
		c.mu.Unlock()
		select {
		case <-c.more:
		case <-deadline.C:
			t.Fatalf("received %d of %d messages", have, n)
		}
	}
}

func subscribe(t *testing.T, b cluster.Bus, subject string, c *collector) func() {
	t.Helper()
	unsub, err := b.Subscribe(subject, c.fn)
	if err != nil {
		t.Fatal(err)
	}
	return unsub
}

func publish(t *testing.T, b cluster.Bus, subject string, p []byte) {
	t.Helper()
	if err := b.Publish(context.Background(), subject, p); err != nil {
		t.Fatalf("publish %d bytes on %s: %v", len(p), subject, err)
	}
}

func TestBus(t *testing.T) {
	for _, k := range busKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Run("Order", func(t *testing.T) { testOrder(t, k.open(t)) })
			t.Run("FanOut", func(t *testing.T) { testFanOut(t, k.open(t)) })
			t.Run("Identical", func(t *testing.T) { testIdentical(t, k.open(t)) })
			t.Run("Large", func(t *testing.T) { testLarge(t, k.open(t)) })
			t.Run("Unsubscribe", func(t *testing.T) { testUnsubscribe(t, k.open(t)) })
			t.Run("Close", func(t *testing.T) { testClose(t, k.open(t)) })
			t.Run("Subjects", func(t *testing.T) { testSubjects(t, k.open(t)) })
		})
	}
}

// testOrder: what one bus publishes on a subject arrives in order, at a
// subscriber on another hub and on the publishing hub itself, and
// subjects do not mix.
func testOrder(t *testing.T, open func() cluster.Bus) {
	a, b := open(), open()
	p := prefix(t)
	remote, local, other := newCollector(), newCollector(), newCollector()
	subscribe(t, b, p+"order", remote)
	subscribe(t, a, p+"order", local)
	subscribe(t, b, p+"other", other)
	const n = 300
	for i := range n {
		publish(t, a, p+"order", fmt.Appendf(nil, "m%d", i))
	}
	publish(t, a, p+"other", []byte("x"))
	for _, c := range []*collector{remote, local} {
		for i, m := range c.wait(t, n) {
			if want := fmt.Sprintf("m%d", i); string(m) != want {
				t.Fatalf("message %d is %q, want %q", i, m, want)
			}
		}
	}
	if got := other.wait(t, 1); string(got[0]) != "x" {
		t.Fatalf("other subject got %q", got[0])
	}
}

// testFanOut: one publish reaches every subscriber on every hub.
func testFanOut(t *testing.T, open func() cluster.Bus) {
	p := prefix(t)
	var buses []cluster.Bus
	var cs []*collector
	for range 3 {
		b := open()
		buses = append(buses, b)
		for range 2 {
			c := newCollector()
			subscribe(t, b, p+"fan", c)
			cs = append(cs, c)
		}
	}
	publish(t, buses[1], p+"fan", []byte("one"))
	publish(t, buses[2], p+"fan", []byte("two"))
	for _, c := range cs {
		got := c.wait(t, 2)
		// Two publishers: each one's messages are in order, the two
		// interleave in any way.
		seen := map[string]bool{string(got[0]): true, string(got[1]): true}
		if !seen["one"] || !seen["two"] {
			t.Fatalf("got %q", got)
		}
	}
}

// testIdentical: identical messages published at once are each
// delivered (PostgreSQL folds identical notifications of a transaction;
// the bus must not let that show).
func testIdentical(t *testing.T, open func() cluster.Bus) {
	a, b := open(), open()
	p := prefix(t)
	c := newCollector()
	subscribe(t, b, p+"same", c)
	const publishers, each = 8, 50
	var wg sync.WaitGroup
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := a.Publish(context.Background(), p+"same", []byte("same")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c.wait(t, publishers*each)
}

// testLarge: payloads of every size up to MaxPayload, binary and text,
// arrive intact and in order among small ones; larger are refused.
func testLarge(t *testing.T, open func() cluster.Bus) {
	a, b := open(), open()
	p := prefix(t)
	c := newCollector()
	subscribe(t, b, p+"large", c)
	text := func(n int) []byte { return bytes.Repeat([]byte("é"), n/2) }
	bin := func(n int) []byte {
		out := make([]byte, n)
		_, _ = rand.Read(out)
		return out
	}
	msgs := [][]byte{
		{}, {0}, text(7996), bin(5000), bin(6000), text(8000), bin(100 << 10),
		[]byte("small"), bin(3 << 20), []byte("small2"), bin(cluster.MaxPayload),
	}
	for _, m := range msgs {
		publish(t, a, p+"large", m)
	}
	for i, got := range c.wait(t, len(msgs)) {
		if !bytes.Equal(got, msgs[i]) {
			t.Fatalf("message %d: got %d bytes, want %d (or different content)", i, len(got), len(msgs[i]))
		}
	}
	err := a.Publish(context.Background(), p+"large", make([]byte, cluster.MaxPayload+1))
	if !errors.Is(err, cluster.ErrPayloadTooLarge) {
		t.Fatalf("publish over MaxPayload: %v, want ErrPayloadTooLarge", err)
	}
}

// testUnsubscribe: an unsubscribed handler gets nothing more, the others
// go on; a handler may unsubscribe itself; a subject whose last
// subscriber left can be subscribed again.
func testUnsubscribe(t *testing.T, open func() cluster.Bus) {
	a, b := open(), open()
	p := prefix(t)
	first, second := newCollector(), newCollector()
	unsubFirst := subscribe(t, b, p+"u", first)
	subscribe(t, b, p+"u", second)
	publish(t, a, p+"u", []byte("1"))
	first.wait(t, 1)
	second.wait(t, 1)
	unsubFirst()
	unsubFirst() // twice is harmless
	publish(t, a, p+"u", []byte("2"))
	second.wait(t, 2)
	// The subject's messages reach its handlers in subscription order, one
	// message at a time: second has "2", so first was passed over.
	if n := first.count(); n != 1 {
		t.Fatalf("unsubscribed handler got %d messages, want 1", n)
	}

	self := newCollector()
	var unsubSelf func()
	var ready sync.WaitGroup
	ready.Add(1)
	unsubSelf, err := b.Subscribe(p+"self", func(m []byte) {
		ready.Wait()
		self.fn(m)
		unsubSelf()
	})
	if err != nil {
		t.Fatal(err)
	}
	ready.Done()
	after := newCollector()
	publish(t, a, p+"self", []byte("1"))
	self.wait(t, 1)
	subscribe(t, b, p+"self", after) // the subject again, after its last subscriber left
	publish(t, a, p+"self", []byte("2"))
	after.wait(t, 1)
	if n := self.count(); n != 1 {
		t.Fatalf("handler that unsubscribed itself got %d messages, want 1", n)
	}
}

// testClose: a closed bus refuses to publish and subscribe, calls no
// handler any more, and closes twice without harm; the other hubs go on.
func testClose(t *testing.T, open func() cluster.Bus) {
	a, b := open(), open()
	p := prefix(t)
	onA, onB := newCollector(), newCollector()
	subscribe(t, a, p+"c", onA)
	subscribe(t, b, p+"c", onB)
	publish(t, b, p+"c", []byte("before"))
	onA.wait(t, 1)
	onB.wait(t, 1)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := b.Publish(context.Background(), p+"c", []byte("after")); !errors.Is(err, cluster.ErrBusClosed) {
		t.Fatalf("publish after close: %v, want ErrBusClosed", err)
	}
	if _, err := b.Subscribe(p+"c", func([]byte) {}); !errors.Is(err, cluster.ErrBusClosed) {
		t.Fatalf("subscribe after close: %v, want ErrBusClosed", err)
	}
	if a == b {
		return // the local bus: one hub, now closed
	}
	publish(t, a, p+"c", []byte("after"))
	onA.wait(t, 2)
	if n := onB.count(); n != 1 {
		t.Fatalf("closed bus's handler got %d messages, want 1", n)
	}
}

// testSubjects: subjects outside the dotted-name alphabet are refused.
func testSubjects(t *testing.T, open func() cluster.Bus) {
	b := open()
	for _, s := range []string{"", "a..b", ".a", "a.", "a.*", "a.>", "a b", "a\x00b", string(make([]byte, 300))} {
		if err := b.Publish(context.Background(), s, nil); err == nil {
			t.Errorf("publish on %q accepted", s)
		}
		if _, err := b.Subscribe(s, func([]byte) {}); err == nil {
			t.Errorf("subscribe to %q accepted", s)
		}
	}
	long := "agentcom.hub." + string(bytes.Repeat([]byte("h"), 150))
	c := newCollector()
	subscribe(t, b, long, c)
	publish(t, b, long, []byte("ok"))
	c.wait(t, 1)
}
