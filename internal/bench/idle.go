package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
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
		// Only pongs to the measured pings count, not those to the pings
		// that kept the agents alive while the fleet connected.
		if typ == protocol.OutPong {
			if t0 := pingAt[a.idx].Swap(0); t0 > 0 {
				a.sets[0].add(r.since(t0, at))
				pongs.Add(1)
			}
		}
	}
	r.prog.begin("idle: connect", func() string { return fmt.Sprintf("%d/%d agents identified", connected.Load(), o.Agents) })
	var cpuConn0 time.Duration
	if measurable {
		if cpuConn0, err = readCPU(t.pid); err != nil {
			return err
		}
	}
	connStart := time.Now()
	f, err := r.connectFleet(ctx, t, ids, on, &connected)
	if err != nil {
		return err
	}
	defer f.close()
	connTime := time.Since(connStart)
	// The hub's CPU time for the fleet start: on a loaded machine the wall
	// time says more about the neighbours than about the hub.
	var cpuConnect time.Duration
	if measurable {
		cpu, err := readCPU(t.pid)
		if err != nil {
			return err
		}
		cpuConnect = cpu - cpuConn0
	}

	var pinged, pingFailed atomic.Int64
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
	err = pingLoop(ctx, len(f.agents), func(i int) *agent { return f.agents[i] }, o.PingInterval, o.Duration, func(a *agent) {
		pingAt[a.idx].Store(r.now())
		if a.send([]byte(pingFrame)) != nil {
			pingFailed.Add(1)
			return
		}
		pinged.Add(1)
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
	// Give the pongs still in flight a moment.
	for deadline := time.Now().Add(10 * time.Second); pongs.Load() < pinged.Load() && time.Now().Before(deadline); {
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	open := 0
	for _, a := range f.agents {
		if !a.gone() {
			open++
		}
	}

	res.add(Figure{Name: "connect_all", Value: connTime.Seconds(), Unit: "s"},
		Figure{Name: "connections_open", Value: float64(open), Unit: "sockets"})
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
		perConn := float64(end.RSS-base.RSS) / float64(max(open, 1))
		res.add(Figure{Name: "cpu_connect", Value: cpuConnect.Seconds(), Unit: "s of hub CPU"},
			Figure{Name: "rss_before", Value: mb(base.RSS), Unit: "MB"},
			Figure{Name: "rss_connected", Value: mb(end.RSS), Unit: "MB"},
			Figure{Name: "rss_peak_during_hold", Value: mb(peak.RSS), Unit: "MB"},
			Figure{Name: "rss_per_connection", Value: perConn / 1024, Unit: "KB"},
			Figure{Name: "rss_projected_10k", Value: mb(base.RSS + int64(perConn*10000)), Unit: "MB"},
			Figure{Name: "cpu_during_hold", Value: 100 * (cpu1 - cpu0).Seconds() / hold.Seconds(), Unit: "% of a core"})
		res.goal("rss_connected", "≤ 500 MB with 10,000 agents", o.Agents >= 10000, end.RSS <= 500<<20)
		res.goal("rss_projected_10k", "≤ 500 MB (projection, not a measurement)", false, false)
		if t.kind == KindInProcess {
			// Where the memory goes, for this process (hub and clients).
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			res.add(Figure{Name: "go_heap_inuse", Value: mb(int64(ms.HeapInuse)), Unit: "MB"},
				Figure{Name: "go_stack_inuse", Value: mb(int64(ms.StackInuse)), Unit: "MB"},
				Figure{Name: "goroutines", Value: float64(runtime.NumGoroutine()), Unit: "goroutines"})
			res.note("in-process: memory and CPU are the whole process, the %d client connections included; run with a hub command (agentcom bench does) to measure the hub alone", o.Agents)
		}
	} else {
		res.note("remote hub: memory and CPU are not measurable from here")
	}
	if o.HeapProfile != "" {
		if err := writeProfile("heap", o.HeapProfile); err != nil {
			return err
		}
		res.note("heap profile of this process with the connections open: %s", o.HeapProfile)
	}
	// The readers must stop before their samples are read.
	lost := f.lost()
	f.close()
	res.add(Figure{Name: "pings", Value: float64(pinged.Load()), Unit: "pings"},
		Figure{Name: "pings_unanswered", Value: float64(pinged.Load() - pongs.Load()), Unit: "pings"})
	res.add(f.samples(0).percentileFigures("ping_to_pong")...)
	res.note("memory is VmRSS of the hub process from /proc; per connection = (RSS after the hold - RSS before connecting) / sockets still open")
	if len(lost) > 0 || pingFailed.Load() > 0 {
		return fmt.Errorf("the hub closed agent sockets (count by close code): %v; %d pings could not be sent", lost, pingFailed.Load())
	}
	return nil
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
