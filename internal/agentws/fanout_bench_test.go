package agentws

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/protocol"
)

// discard is a socket whose writes succeed at once.
type discard struct{ done chan struct{} }

func (d discard) Read(ctx context.Context) (websocket.MessageType, []byte, error) {
	select {
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	case <-d.done:
		return 0, nil, context.Canceled
	}
}
func (discard) Write(context.Context, websocket.MessageType, []byte) error { return nil }
func (discard) Ping(context.Context) error                                 { return nil }
func (discard) Close(websocket.StatusCode, string) error                   { return nil }
func (discard) SetReadLimit(int64)                                         {}

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
	conns := make([]*conn, n)
	for i := range n {
		agents[i] = fmt.Sprintf("agent-%04d", i)
		t := discard{done: stop}
		c := newConn(s, t, uint64(i+1), "bench")
		conns[i] = c
		s.byAgent[agents[i]] = c
		wg.Go(func() { c.out.Serve(context.Background(), t, func(ctx context.Context) { _, _, _ = t.Read(ctx) }) })
	}
	b.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	m := messaging.Message{ID: "0123456789abcdef", From: "agent-x", To: messaging.Broadcast, Type: "chat",
		Payload: map[string]any{"text": "hello everyone, the build is green again"}, Timestamp: 1739350000000}
	frames := uint64(0)
	waitAll := func() {
		frames++
		for _, c := range conns {
			if !c.waitWritten(frames, time.Minute) {
				b.Fatal("a socket did not write its frame")
			}
		}
	}
	b.Run("shared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got := s.PushMessages(agents, m); got != n {
				b.Fatalf("reached %d of %d", got, n)
			}
			waitAll()
		}
	})
	b.Run("per-recipient", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, a := range agents {
				if !s.send(a, pushed(protocol.OutMessage, m)) {
					b.Fatal("not queued")
				}
			}
			waitAll()
		}
	})
}
