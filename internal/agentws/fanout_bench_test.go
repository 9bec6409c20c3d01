package agentws

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/protocol"
)

// discard is a socket whose writes succeed at once. It can be cut
// (CloseNow), as a *websocket.Conn can: wsconn bounds writes to such a
// socket with its watchdog, the path local agent sockets take. wrote,
// when set, counts the writes, and hit gets a value when the count
// reaches target.
type discard struct {
	done   chan struct{}
	wrote  *atomic.Int64
	target *atomic.Int64
	hit    chan struct{}
}

func (d discard) Read(ctx context.Context) (websocket.MessageType, []byte, error) {
	select {
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	case <-d.done:
		return 0, nil, context.Canceled
	}
}

func (d discard) Write(context.Context, websocket.MessageType, []byte) error {
	if d.wrote != nil && d.wrote.Add(1) == d.target.Load() {
		d.hit <- struct{}{}
	}
	return nil
}
func (discard) Ping(context.Context) error               { return nil }
func (discard) Close(websocket.StatusCode, string) error { return nil }
func (discard) CloseNow() error                          { return nil }
func (discard) SetReadLimit(int64)                       {}

// BenchmarkBroadcastFanOut is one broadcast to 1,000 identified sockets,
// until every socket's writer has written it (the broadcast scenario's
// "time until all have it" without the network): "shared" is the
// broadcast path (one encoding, the same bytes queued to every socket),
// "per-recipient" encodes and queues the frame for each socket in turn
// (the path broadcasts took before).
func BenchmarkBroadcastFanOut(b *testing.B) {
	const n = 1000
	s := &Server{cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), now: time.Now, byAgent: map[string]*conn{}}
	s.cfg.PingInterval = 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	agents := make([]string, n)
	var wrote, target atomic.Int64
	hit := make(chan struct{}, 1)
	for i := range n {
		agents[i] = fmt.Sprintf("agent-%04d", i)
		t := discard{done: stop, wrote: &wrote, target: &target, hit: hit}
		c := newConn(s, t, uint64(i+1), "bench")
		s.byAgent[agents[i]] = c
		wg.Go(func() { c.out.Serve(context.Background(), t, func(ctx context.Context) { _, _, _ = t.Read(ctx) }) })
	}
	b.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	m := messaging.Message{ID: "0123456789abcdef", From: "agent-x", To: messaging.Broadcast, Type: "chat",
		Payload: map[string]any{"text": "hello everyone, the build is green again"}, Timestamp: 1739350000000}
	// expect arms the wait for the next n writes; waitAll waits for them.
	expect := func() { target.Store(wrote.Load() + n) }
	waitAll := func() {
		select {
		case <-hit:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d sockets wrote the frame", wrote.Load()-(target.Load()-n), n)
		}
	}
	b.Run("shared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			expect()
			if got := s.PushMessages(agents, m); got != n {
				b.Fatalf("reached %d of %d", got, n)
			}
			waitAll()
		}
	})
	b.Run("per-recipient", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			expect()
			for _, a := range agents {
				if !s.send(a, pushed(protocol.OutMessage, m)) {
					b.Fatal("not queued")
				}
			}
			waitAll()
		}
	})
}
