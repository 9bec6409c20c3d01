// Package startstop is the one lifecycle of every background service in
// the hub (after River's startstop): Start(ctx) returns once the service
// runs, Stop() returns once it has stopped. Components keep a blocking
// Run(ctx) of their own; only the hub wraps and starts them, so every
// goroutine belongs to a service that stops it.
package startstop

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Service is anything the hub starts and stops.
type Service interface {
	// Start starts the service and returns once it runs. Calling it on a
	// running service does nothing.
	Start(ctx context.Context) error
	// Stop stops the service and returns once it has stopped. Calling it
	// on a stopped (or never started) service does nothing.
	Stop()
}

// Base is embedded by services that run one goroutine. It gives them the
// started and stopped signals tests wait on instead of sleeping.
type Base struct {
	mu      sync.Mutex
	running bool
	cancel  context.CancelFunc
	started chan struct{}
	stopped chan struct{}
}

// StartInit prepares a start. When shouldStart is false the service
// already runs and the caller returns. Otherwise the caller starts its
// goroutine with the returned ctx, which calls started() once it runs and
// defers stopped().
func (b *Base) StartInit(ctx context.Context) (runCtx context.Context, shouldStart bool, started, stopped func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running {
		return nil, false, nil, nil
	}
	b.running = true
	runCtx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if b.started == nil || isClosed(b.stopped) {
		b.started, b.stopped = make(chan struct{}), make(chan struct{})
	}
	st, sp := b.started, b.stopped
	return runCtx, true, sync.OnceFunc(func() { close(st) }), sync.OnceFunc(func() { close(sp) })
}

// signals returns the latest run's channels (the next run's before the
// first start), making them on first use so a zero Base works. b.mu is
// held.
func (b *Base) signals() (started, stopped chan struct{}) {
	if b.started == nil {
		b.started, b.stopped = make(chan struct{}), make(chan struct{})
	}
	return b.started, b.stopped
}

func isClosed(c chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Started is closed once the latest run has started (before the first
// start: once the first run has).
func (b *Base) Started() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, _ := b.signals()
	return st
}

// Stopped is closed once the latest run has stopped.
func (b *Base) Stopped() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, sp := b.signals()
	return sp
}

// Stop cancels the run and waits for its goroutine to call stopped().
func (b *Base) Stop() {
	b.mu.Lock()
	if !b.running {
		b.mu.Unlock()
		return
	}
	cancel, stopped := b.cancel, b.stopped
	b.mu.Unlock()
	cancel()
	<-stopped
	b.mu.Lock()
	b.running = false
	b.mu.Unlock()
}

// fn is a service over a blocking run function.
type fn struct {
	Base
	name string
	run  func(ctx context.Context)
}

// Func makes a service of run, which blocks until ctx ends (a component's
// Run(ctx)). Start returns once run's goroutine is running; Stop cancels
// ctx and waits for run to return.
func Func(name string, run func(ctx context.Context)) Service {
	return &fn{name: name, run: run}
}

func (f *fn) Start(ctx context.Context) error {
	ctx, ok, started, stopped := f.StartInit(ctx)
	if !ok {
		return nil
	}
	go func() {
		defer stopped()
		started()
		f.run(ctx)
	}()
	<-f.Started()
	return nil
}

func (f *fn) String() string { return f.name }

// Every makes a service that calls f every d until stopped. It panics here,
// at construction, when d is not positive, rather than in a goroutine at
// start.
func Every(name string, d time.Duration, f func(ctx context.Context)) Service {
	if d <= 0 {
		panic(fmt.Sprintf("startstop.Every(%q): interval %v is not positive", name, d))
	}
	return Func(name, func(ctx context.Context) { tick(ctx, d, nil, f) })
}

// tick calls f every d, and at once on every value from kick, until ctx
// ends.
func tick(ctx context.Context, d time.Duration, kick <-chan struct{}, f func(ctx context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		f(ctx)
	}
}

// Triggered is a periodic service that can also be asked to run now.
type Triggered struct {
	Service
	kick chan struct{}
}

// Trigger makes a service that calls f every d and whenever Trigger is
// called. It panics at construction when d is not positive.
func Trigger(name string, d time.Duration, f func(ctx context.Context)) *Triggered {
	if d <= 0 {
		panic(fmt.Sprintf("startstop.Trigger(%q): interval %v is not positive", name, d))
	}
	t := &Triggered{kick: make(chan struct{}, 1)}
	t.Service = Func(name, func(ctx context.Context) { tick(ctx, d, t.kick, f) })
	return t
}

// Trigger asks for a run soon. It never blocks: requests made while one is
// pending coalesce into it, and requests while the service is stopped run
// at its next start.
func (t *Triggered) Trigger() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Hooks makes a service of a component whose start and stop are two
// calls (Start(ctx)+Wait, or a server's Serve+Shutdown). start must
// return once running; stop must return once stopped.
func Hooks(name string, start func(ctx context.Context) error, stop func()) Service {
	return &hooks{name: name, start: start, stop: stop}
}

type hooks struct {
	mu      sync.Mutex
	running bool
	name    string
	start   func(ctx context.Context) error
	stop    func()
}

func (h *hooks) Start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running {
		return nil
	}
	if err := h.start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", h.name, err)
	}
	h.running = true
	return nil
}

func (h *hooks) Stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		return
	}
	h.stop()
	h.running = false
}

func (h *hooks) String() string { return h.name }

// Group is services started in order and stopped in reverse order.
type Group []Service

// Start starts every service in order. When one fails, the ones already
// started are stopped and the error returned.
func (g Group) Start(ctx context.Context) error {
	for i, s := range g {
		if err := s.Start(ctx); err != nil {
			g[:i].Stop()
			return err
		}
	}
	return nil
}

// Stop stops every service, the last started first.
func (g Group) Stop() {
	for i := len(g) - 1; i >= 0; i-- {
		g[i].Stop()
	}
}
