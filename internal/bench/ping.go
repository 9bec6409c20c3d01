package bench

import (
	"context"
	"math"
	"time"
)

// pingLoop pings agents 0..n-1 round robin for d, spreading one interval's
// pings evenly over it, as a fleet of sidecars each pinging every interval
// would. get returns nil for an agent to skip (not connected, or gone).
// sample, when not nil, is called about once a second.
func pingLoop(ctx context.Context, n int, get func(int) *agent, interval, d time.Duration, ping func(*agent), sample func()) error {
	if n == 0 {
		return nil
	}
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
		if now := time.Now(); sample != nil && now.After(nextSample) {
			sample()
			nextSample = now.Add(time.Second)
		}
		if wait := time.Until(due); wait > 0 {
			if err := sleep(ctx, wait); err != nil {
				return err
			}
		}
		if a := get(i % n); a != nil && !a.gone() {
			ping(a)
		}
	}
}

// keepAlive pings agents 0..n-1 every interval, as the sidecar does, so
// the hub's idle and stale timers leave the sockets open through long
// phases (connecting thousands of agents included). A failed ping is left
// to show in fleet.lost. It runs until stop is called.
func keepAlive(n int, get func(int) *agent, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = pingLoop(ctx, n, get, interval, time.Duration(math.MaxInt64), func(a *agent) { _ = a.send([]byte(pingFrame)) }, nil)
	}()
	return func() {
		cancel()
		<-done
	}
}

// keepAlive pings the fleet's agents until stop is called.
func (f *fleet) keepAlive(interval time.Duration) (stop func()) {
	return keepAlive(len(f.agents), func(i int) *agent { return f.agents[i] }, interval)
}
