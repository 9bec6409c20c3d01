package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
)

// runBroadcast: one extra agent broadcasts, one message at a time; the
// next goes once every receiver has the previous one (or after 30 s).
// Per broadcast the time until the last receiver has it is recorded, and
// per receiver the time until it has it.
func runBroadcast(ctx context.Context, r *runner, res *Result) error {
	o := r.o
	res.Params = map[string]any{"receivers": o.Agents, "broadcasts": o.Broadcasts}
	ids := append(r.agentIDs("bcast-agent", o.Agents), r.agentIDs("bcast-sender", 1)...)
	sender := o.Agents
	t, err := startTarget(ctx, o, o.ChildHub, ids)
	if err != nil {
		return err
	}
	defer t.stop()
	res.Hub = t.kind

	got := make([]atomic.Int64, o.Broadcasts)
	allAt := make([]atomic.Int64, o.Broadcasts) // stamp when the last receiver got it
	// sentAt[n] is broadcast n's send stamp, stored before it is sent: a
	// receiver counts a frame only when its stamp is one the sender sent,
	// from the sender, so a frame is never taken for another broadcast.
	sentAt := make([]atomic.Int64, o.Broadcasts)
	senderID := []byte(ids[sender])
	var connected, failures, strays atomic.Int64
	notify := make(chan struct{}, 1)
	on := func(a *agent, typ string, data []byte, at time.Time) {
		switch typ {
		case protocol.OutMessage:
			if a.idx == sender {
				return // the sender's own echo
			}
			st, from, err := messageStamp(data)
			if err != nil || st.T0 == 0 || st.N < 0 || int(st.N) >= len(got) ||
				sentAt[st.N].Load() != st.T0 || !bytes.Equal(from, senderID) {
				strays.Add(1)
				return
			}
			a.sets[0].add(r.since(st.T0, at))
			if got[st.N].Add(1) == int64(o.Agents) {
				allAt[st.N].Store(at.Sub(r.clock).Microseconds())
				select {
				case notify <- struct{}{}:
				default:
				}
			}
		case protocol.OutError:
			failures.Add(1)
		}
	}
	r.prog.begin("broadcast: connect", func() string { return fmt.Sprintf("%d/%d agents identified", connected.Load(), len(ids)) })
	f, err := r.connectFleet(ctx, t, ids, on, &connected)
	if err != nil {
		return err
	}
	defer f.close()
	defer f.keepAlive(o.PingInterval)()

	var current atomic.Int64
	r.prog.begin("broadcast", func() string {
		n := current.Load()
		return fmt.Sprintf("broadcast %d/%d  received by %d/%d", n+1, o.Broadcasts, got[min(n, int64(o.Broadcasts-1))].Load(), o.Agents)
	})
	all := make(latencies, 0, o.Broadcasts)
	incomplete := 0
	for b := range o.Broadcasts {
		current.Store(int64(b))
		t0 := r.now()
		sentAt[b].Store(t0)
		msg := broadcastFrame(t0, b)
		if err := f.agents[sender].send(msg); err != nil {
			return f.explain(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for got[b].Load() < int64(o.Agents) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-notify:
			case <-time.After(50 * time.Millisecond):
			}
		}
		if got[b].Load() < int64(o.Agents) {
			incomplete++
			continue
		}
		all = append(all, time.Duration(allAt[b].Load()-t0)*time.Microsecond)
	}
	slices.Sort(all)
	per := f.samples(0)
	delivered := 0
	for b := range got {
		delivered += int(got[b].Load())
	}
	res.add(Figure{Name: "delivered", Value: float64(delivered), Unit: "frames"},
		Figure{Name: "expected", Value: float64(o.Broadcasts * o.Agents), Unit: "frames"})
	res.add(all.percentileFigures("all_received")...)
	res.add(per.percentileFigures("per_receiver")...)
	res.goal("per_receiver_p99", "all delivered, p99 ≤ 50 ms with 1,000 agents", o.Agents >= 1000,
		delivered == o.Broadcasts*o.Agents && per.quantile(0.99) <= 50*time.Millisecond)
	res.add(Figure{Name: "errors", Value: float64(failures.Load()), Unit: "frames"},
		Figure{Name: "strays", Value: float64(strays.Load()), Unit: "frames"})
	res.note("one sender, %d receivers; a broadcast goes once the previous one reached everyone; all_received is the time until the last receiver has it; "+
		"a receiver counts a message frame only when its sender and stamp are those of a broadcast sent (strays: frames that were not)", o.Agents)
	if incomplete > 0 {
		res.note("%d broadcasts did not reach every receiver within 30 s", incomplete)
	}
	if lost := f.lost(); len(lost) > 0 {
		return fmt.Errorf("hub closed agent sockets (by close code): %v", lost)
	}
	return nil
}
