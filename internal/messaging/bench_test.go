package messaging_test

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
)

// benchPusher stands in for the socket layer: every agent is online and a
// push only counts.
type benchPusher struct {
	online []string
	pushed atomic.Int64
}

func (p *benchPusher) PushMessage(string, messaging.Message) bool { p.pushed.Add(1); return true }
func (p *benchPusher) PushChannelMessage(string, string, messaging.Message) bool {
	p.pushed.Add(1)
	return true
}
func (p *benchPusher) PushMessages(to []string, _ messaging.Message) int {
	p.pushed.Add(int64(len(to)))
	return len(to)
}
func (p *benchPusher) PushChannelMessages(to []string, _ string, _ messaging.Message) int {
	p.pushed.Add(int64(len(to)))
	return len(to)
}
func (p *benchPusher) PushChannelJoined(string, string, string) bool { return true }
func (p *benchPusher) Online(string) bool                            { return true }
func (p *benchPusher) OnlineAgents() []string                        { return p.online }

type benchDirectory []string

func (d benchDirectory) Agents() []string { return d }

func (d benchDirectory) HasAgent(a string) bool { return slices.Contains(d, a) }

// newBenchService builds the messaging service over durable tables in a
// temp dir, with agents online.
func newBenchService(b *testing.B, agents int) (*messaging.Service, *benchPusher) {
	b.Helper()
	db, err := store.Open(b.TempDir(), store.AllTables(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	d, err := boltdriver.New(db)
	if err != nil {
		b.Fatal(err)
	}
	ms := d.Messages()
	chans, err := messaging.NewChannels(ms, messaging.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	mb, hist, threads := messaging.NewMailbox(ms), messaging.NewHistory(ms), messaging.NewThreads(ms)
	ids := make([]string, agents)
	for i := range ids {
		ids[i] = "agent-" + strconv.Itoa(i)
	}
	p := &benchPusher{online: ids}
	svc := messaging.NewService(mb, hist, chans, threads, messaging.NewAnalytics(), p, benchDirectory(ids), bus.New(),
		slog.New(slog.DiscardHandler))
	return svc, p
}

func chat(from, to string, n int) messaging.Message {
	return messaging.Message{From: from, To: to, Payload: map[string]any{"text": "benchmark message", "n": n}}
}

// BenchmarkSendDirect routes direct messages between online agents from
// many senders at once (as many sockets do): stored in the history and the
// thread index, then pushed. Every message is durable before it is pushed.
func BenchmarkSendDirect(b *testing.B) {
	for _, senders := range []int{1, 64} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			svc, _ := newBenchService(b, 1000)
			var n atomic.Int64
			b.SetParallelism(senders)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(n.Add(1))
					if _, err := svc.Send(chat("agent-"+strconv.Itoa(i%1000), "agent-"+strconv.Itoa((i+1)%1000), i), nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSendBroadcast sends a broadcast to 1,000 online agents.
func BenchmarkSendBroadcast(b *testing.B) {
	svc, p := newBenchService(b, 1000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := svc.Send(messaging.Message{From: "agent-0", To: messaging.Broadcast, Payload: map[string]any{"n": i}}, nil); err != nil {
			b.Fatal(err)
		}
	}
	if got := p.pushed.Load(); got != int64(i)*1000 {
		b.Fatalf("pushed %d, want %d", got, i*1000)
	}
}

// BenchmarkHistoryAppend appends to the global history from many
// goroutines at once.
func BenchmarkHistoryAppend(b *testing.B) {
	svc, _ := newBenchService(b, 1)
	var n atomic.Int64
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := chat("a", "b", int(n.Add(1)))
			svc.Stamp(&m)
			if _, err := svc.History.Append(b.Context(), m, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMailboxEnqueue queues messages for offline agents from many
// goroutines at once.
func BenchmarkMailboxEnqueue(b *testing.B) {
	svc, _ := newBenchService(b, 1)
	var n atomic.Int64
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			to := "agent-" + strconv.Itoa(i%1000)
			m := chat("a", to, i)
			svc.Stamp(&m)
			if _, err := svc.Mailbox.Enqueue(b.Context(), to, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMailboxPoll reads a full mailbox (the cap, 100 messages).
func BenchmarkMailboxPoll(b *testing.B) {
	svc, _ := newBenchService(b, 1)
	for i := range messaging.MailboxCap {
		m := chat("a", "agent-1", i)
		svc.Stamp(&m)
		if _, err := svc.Mailbox.Enqueue(b.Context(), "agent-1", m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		msgs, _, err := svc.Mailbox.Poll(b.Context(), "agent-1", 0, messaging.MailboxCap)
		if err != nil || len(msgs) != messaging.MailboxCap {
			b.Fatalf("poll: %d messages, %v", len(msgs), err)
		}
	}
}
