package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
)

// runMessages: every agent sends its share of M direct messages to other
// agents, keeping at most Window unacknowledged (message_sent) at a time;
// delivery is counted when the message frame reaches the recipient.
func runMessages(ctx context.Context, r *runner, res *Result) error {
	o := r.o
	if o.Agents < 2 {
		return errors.New("the messages scenario needs at least 2 agents")
	}
	res.Params = map[string]any{"agents": o.Agents, "messages": o.Messages, "window": o.Window}
	ids := r.agentIDs("msg-agent", o.Agents)
	t, err := startTarget(ctx, o, o.ChildHub, ids)
	if err != nil {
		return err
	}
	defer t.stop()
	res.Hub = t.kind

	credits := make([]chan struct{}, o.Agents)
	for i := range credits {
		credits[i] = make(chan struct{}, o.Window)
	}
	var connected, sent, received, failures atomic.Int64
	var lastRecv atomic.Int64
	notify := make(chan struct{}, 1)
	var firstErr atomic.Pointer[string]
	on := func(a *agent, typ string, data []byte, at time.Time) {
		switch typ {
		case protocol.OutMessage:
			f, err := decodeFrame(data)
			if err != nil || f.Payload.T0 == 0 {
				return
			}
			a.sets[0].add(r.since(f.Payload.T0, at))
			lastRecv.Store(r.now())
			received.Add(1)
			select {
			case notify <- struct{}{}:
			default:
			}
		case protocol.OutMessageSent:
			select {
			case <-credits[a.idx]:
			default:
			}
		case protocol.OutError:
			failures.Add(1)
			s := string(data)
			firstErr.CompareAndSwap(nil, &s)
			select {
			case <-credits[a.idx]:
			default:
			}
		}
	}
	r.prog.begin("messages: connect", func() string { return fmt.Sprintf("%d/%d agents identified", connected.Load(), o.Agents) })
	f, err := r.connectFleet(ctx, t, ids, on, &connected)
	if err != nil {
		return err
	}
	defer f.close()
	defer f.keepAlive(o.PingInterval)()

	r.prog.begin("messages", func() string {
		return fmt.Sprintf("sent %d/%d  delivered %d  errors %d", sent.Load(), o.Messages, received.Load(), failures.Load())
	})
	start := r.now()
	err = parallel(ctx, o.Agents, o.Agents, func(i int) error {
		a := f.agents[i]
		share := o.Messages / o.Agents
		if i < o.Messages%o.Agents {
			share++
		}
		for k := range share {
			select {
			case credits[i] <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			to := ids[(i+1+k%(o.Agents-1))%o.Agents]
			msg := directFrame(to, r.now(), k)
			if err := a.send(msg); err != nil {
				return err
			}
			sent.Add(1)
		}
		return nil
	})
	if err != nil {
		return f.explain(err)
	}
	if err := waitCount(ctx, &received, int64(o.Messages), notify); err != nil {
		return f.explain(fmt.Errorf("%d of %d messages delivered: %w", received.Load(), o.Messages, err))
	}
	elapsed := time.Duration(lastRecv.Load()-start) * time.Microsecond
	lat := f.samples(0)
	res.add(Figure{Name: "delivered", Value: rate(o.Messages, elapsed), Unit: "msg/s"})
	res.goal("delivered", "≥ 50,000 msg/s with 1,000 agents", o.Agents >= 1000, rate(o.Messages, elapsed) >= 50000)
	res.add(Figure{Name: "elapsed", Value: elapsed.Seconds(), Unit: "s"})
	res.add(lat.percentileFigures("send_to_receive")...)
	res.add(Figure{Name: "errors", Value: float64(failures.Load()), Unit: "frames"})
	res.note("each agent sends to the others in turn, at most %d unacknowledged; rate is messages delivered from the first send to the last arrival", o.Window)
	if p := firstErr.Load(); p != nil {
		res.note("first error frame: %s", *p)
	}
	if lost := f.lost(); len(lost) > 0 {
		return fmt.Errorf("hub closed agent sockets (by close code): %v", lost)
	}
	return nil
}
