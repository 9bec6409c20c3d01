package presence_test

import (
	"fmt"
	"testing"

	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/protocol"
)

// BenchmarkFleetStart is the presence side of n agents connecting: each
// join recorded once, and every connected (version-2) socket told at each
// of a fixed number of windows (the hub's window grows with the number of
// sockets, so a fleet start spans a number of windows that does not grow
// with n). Per agent the cost stays flat from 1,000 to 10,000 agents:
// linear in agents, where one agent_joined per other agent was n²/2
// frames.
func BenchmarkFleetStart(b *testing.B) {
	const windows = 20
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			frames := 0
			for b.Loop() {
				f := presence.NewFeed(1 << 16)
				readers := make([]*presence.Reader, 0, n)
				var dst [][]byte
				for i := range n {
					id := fmt.Sprintf("agent-%05d", i)
					seq, err := f.Append(presence.Change{Kind: presence.ChangeJoined,
						Agent: protocol.AgentInfo{AgentID: id, Name: id, Status: "idle", Capabilities: []string{}}})
					if err != nil {
						b.Fatal(err)
					}
					readers = append(readers, f.NewReader(seq+1, presence.ReaderConfig{Self: id, Version: protocol.VersionPresence}))
					if (i+1)%(n/windows) != 0 {
						continue
					}
					for _, r := range readers {
						for r.Pending() {
							dst = r.Next(dst[:0])
							frames += len(dst)
						}
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/agent")
			b.ReportMetric(float64(frames)/float64(b.N*n), "frames/agent")
		})
	}
}

// BenchmarkNextNothingPending is a socket's writer asking the feed for
// changes when there are none, from many writers at once: what every
// socket's writer does after it wrote a broadcast's frame.
func BenchmarkNextNothingPending(b *testing.B) {
	f := presence.NewFeed(1024)
	if _, err := f.Append(presence.Change{Kind: presence.ChangeJoined, Agent: protocol.AgentInfo{AgentID: "a"}}); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		r := f.NewReader(f.Head(), presence.ReaderConfig{Self: "b", Version: protocol.VersionPresence})
		var dst [][]byte
		for pb.Next() {
			if dst = r.Next(dst[:0]); len(dst) != 0 {
				b.Fatal("a frame with nothing pending")
			}
		}
	})
}
