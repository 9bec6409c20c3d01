package bench

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// runIdle: N agents connect and then only ping, each every PingInterval,
// the pings spread evenly. The hub's resident memory is read before and
// after, and its CPU time over the hold. With a HubCommand the hub runs as
// a child process so the figures are the hub's alone.
func runIdle(ctx context.Context, r *runner, res *Result) error {
	o := r.o
	res.Params = map[string]any{"agents": o.Agents, "hold": o.Duration.String(), "ping_interval": o.PingInterval.String()}
	ids := r.agentIDs("idle-agent", o.Agents)
	t, err := startTarget(ctx, o, o.HubCommand != nil, ids)
	if err != nil {
		return err
	}
	defer t.stop()
	res.Hub = t.kind
	measurable := t.pid != 0

	// Let the fresh hub settle before the baseline.
	if err := sleep(ctx, min(time.Second, o.Duration)); err != nil {
		return err
	}
	var base procMem
	if measurable {
		if base, err = readMem(t.pid); err != nil {
			return err
		}
	}

	pingAt := make([]atomic.Int64, o.Agents)
	var connected, pongs atomic.Int64
	on := func(a *agent, typ string, _ []byte, at time.Time) {
		if typ == "pong" {
			if t0 := pingAt[a.idx].Load(); t0 > 0 {
				a.sets[0].add(r.since(t0, at))
			}
			pongs.Add(1)
		}
	}
	r.prog.begin("idle: connect", func() string { return fmt.Sprintf("%d/%d agents identified", connected.Load(), o.Agents) })
	connStart := time.Now()
	f, err := r.connectFleet(ctx, t, ids, on, &connected)
	if err != nil {
		return err
	}
	defer f.close()
	connTime := time.Since(connStart)

	var pinged atomic.Int64
	r.prog.begin("idle: hold", func() string {
		return fmt.Sprintf("%d agents, %d pings, %d pongs", o.Agents, pinged.Load(), pongs.Load())
	})
	var cpu0 time.Duration
	if measurable {
		if cpu0, err = readCPU(t.pid); err != nil {
			return err
		}
	}
	holdStart := time.Now()
	var peak procMem
	err = pingFor(ctx, f, o.PingInterval, o.Duration, func(a *agent) error {
		pingAt[a.idx].Store(r.now())
		pinged.Add(1)
		return a.send([]byte(`{"type":"ping","protocol_version":1}`))
	}, func() {
		if measurable {
			if m, err := readMem(t.pid); err == nil && m.RSS > peak.RSS {
				peak = m
			}
		}
	})
	if err != nil {
		return f.explain(err)
	}
	hold := time.Since(holdStart)
	if o.HeapProfile != "" {
		if err := writeProfile("heap", o.HeapProfile); err != nil {
			return err
		}
		res.note("heap profile of this process with the connections open: %s", o.HeapProfile)
	}
	// Pongs still in flight are waited for, so the reader writes are done.
	if err := waitCount(ctx, &pongs, pinged.Load(), nil); err != nil {
		return f.explain(fmt.Errorf("%d of %d pings answered: %w", pongs.Load(), pinged.Load(), err))
	}

	res.add(Figure{Name: "connect_all", Value: connTime.Seconds(), Unit: "s"})
	if measurable {
		cpu1, err := readCPU(t.pid)
		if err != nil {
			return err
		}
		end, err := readMem(t.pid)
		if err != nil {
			return err
		}
		if end.RSS > peak.RSS {
			peak = end
		}
		perConn := float64(end.RSS-base.RSS) / float64(o.Agents)
		res.add(Figure{Name: "rss_before", Value: mb(base.RSS), Unit: "MB"},
			Figure{Name: "rss_connected", Value: mb(end.RSS), Unit: "MB"},
			Figure{Name: "rss_peak_during_hold", Value: mb(peak.RSS), Unit: "MB"},
			Figure{Name: "rss_per_connection", Value: perConn / 1024, Unit: "KB"},
			Figure{Name: "rss_projected_10k", Value: mb(base.RSS + int64(perConn*10000)), Unit: "MB"},
			Figure{Name: "cpu_during_hold", Value: 100 * (cpu1 - cpu0).Seconds() / hold.Seconds(), Unit: "% of a core"})
		res.goal("rss_connected", "≤ 500 MB with 10,000 agents", o.Agents >= 10000, end.RSS <= 500<<20)
		res.goal("rss_projected_10k", "≤ 500 MB (projection, not a measurement)", false, false)
		if t.kind == KindInProcess {
			res.note("in-process: memory and CPU are the whole process, the %d client connections included; run with a hub command (agentcom bench does) to measure the hub alone", o.Agents)
		}
	} else {
		res.note("remote hub: memory and CPU are not measurable from here")
	}
	res.add(Figure{Name: "pings", Value: float64(pinged.Load()), Unit: "pings"})
	res.add(f.samples(0).percentileFigures("ping_to_pong")...)
	res.note("memory is VmRSS of the hub process from /proc; per connection = (RSS after the hold - RSS before connecting) / agents")
	if lost := f.lost(); len(lost) > 0 {
		return fmt.Errorf("hub closed agent sockets (by close code): %v", lost)
	}
	return nil
}

// pingFor pings the agents round robin for d, spreading one interval's
// pings evenly over it, and calls sample about once a second.
func pingFor(ctx context.Context, f *fleet, interval, d time.Duration, ping func(*agent) error, sample func()) error {
	n := len(f.agents)
	step := max(interval/time.Duration(n), time.Microsecond)
	start := time.Now()
	nextSample := start
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		due := start.Add(time.Duration(i) * step)
		if due.Sub(start) >= d {
			return nil
		}
		if now := time.Now(); now.After(nextSample) {
			sample()
			nextSample = now.Add(time.Second)
		}
		if wait := time.Until(due); wait > 0 {
			if err := sleep(ctx, wait); err != nil {
				return err
			}
		}
		if err := ping(f.agents[i%n]); err != nil {
			return err
		}
	}
}

// keepAlive pings every agent every interval, as the sidecar does, so
// the hub's reaper leaves the sockets open through long phases. It stops
// when stop is called.
func (f *fleet) keepAlive(interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = pingFor(ctx, f, interval, time.Duration(math.MaxInt64), func(a *agent) error {
			_ = a.send([]byte(`{"type":"ping","protocol_version":1}`)) // a dead socket shows in fleet.lost
			return nil
		}, func() {})
	}()
	return func() {
		cancel()
		<-done
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
