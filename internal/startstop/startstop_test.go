package startstop_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/startstop"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }

func TestFuncStartReturnsRunningStopWaits(t *testing.T) {
	running := make(chan struct{})
	var returned atomic.Bool
	s := startstop.Func("loop", func(ctx context.Context) {
		close(running)
		<-ctx.Done()
		returned.Store(true)
	})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-running
	// A second Start is a no-op (the run function would close running twice).
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if !returned.Load() {
		t.Fatal("Stop returned before the run function did")
	}
	s.Stop() // no-op
}

func TestFuncRestarts(t *testing.T) {
	var runs atomic.Int32
	s := startstop.Func("loop", func(ctx context.Context) { runs.Add(1); <-ctx.Done() })
	for range 3 {
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		s.Stop()
	}
	if runs.Load() != 3 {
		t.Fatalf("runs %d, want 3", runs.Load())
	}
}

func TestStopWithoutStart(t *testing.T) {
	startstop.Func("never", func(context.Context) {}).Stop()
	startstop.Group{startstop.Func("never", func(context.Context) {})}.Stop()
}

// The caller's context ending does not stop a service: only Stop does, so
// the owner decides the order.
func TestStartContextDoesNotStop(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	s := startstop.Func("loop", func(ctx context.Context) { <-ctx.Done(); close(stopped) })
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-stopped:
		t.Fatal("stopped by the start context")
	default:
	}
	s.Stop()
	<-stopped
}

func TestEveryPanicsAtConstruction(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("Every(%v) did not panic", d)
				}
			}()
			startstop.Every("bad", d, func(context.Context) {})
		}()
	}
}

func TestTriggerRunsWithoutBlocking(t *testing.T) {
	ran := make(chan struct{}, 16)
	tr := startstop.Trigger("evict", time.Hour, func(context.Context) { ran <- struct{}{} })
	// Before the start: coalesces, never blocks, runs once started.
	for range 5 {
		tr.Trigger()
	}
	if err := tr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-ran
	tr.Trigger()
	<-ran
	tr.Stop()
	tr.Trigger() // stopped: still does not block
}

type recorder struct {
	name string
	mu   *sync.Mutex
	log  *[]string
	err  error
}

func (r recorder) Start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	*r.log = append(*r.log, "start "+r.name)
	return nil
}

func (r recorder) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, "stop "+r.name)
}

func TestGroupOrder(t *testing.T) {
	var mu sync.Mutex
	var log []string
	g := startstop.Group{recorder{"a", &mu, &log, nil}, recorder{"b", &mu, &log, nil}}
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	g.Stop()
	if want := []string{"start a", "start b", "stop b", "stop a"}; !slices.Equal(log, want) {
		t.Fatalf("got %v, want %v", log, want)
	}
}

func TestGroupStopsStartedOnError(t *testing.T) {
	var mu sync.Mutex
	var log []string
	boom := errors.New("boom")
	g := startstop.Group{recorder{"a", &mu, &log, nil}, recorder{"b", &mu, &log, boom}, recorder{"c", &mu, &log, nil}}
	if err := g.Start(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if want := []string{"start a", "stop a"}; !slices.Equal(log, want) {
		t.Fatalf("got %v, want %v", log, want)
	}
}

func TestHooks(t *testing.T) {
	var starts, stops int
	boom := errors.New("boom")
	fail := true
	s := startstop.Hooks("storage", func(context.Context) error {
		if fail {
			return boom
		}
		starts++
		return nil
	}, func() { stops++ })
	if err := s.Start(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	s.Stop() // not running: stop hook not called
	fail = false
	_ = s.Start(t.Context())
	_ = s.Start(t.Context())
	s.Stop()
	s.Stop()
	if starts != 1 || stops != 1 {
		t.Fatalf("starts %d stops %d", starts, stops)
	}
}

// Base gives a hand-written service its signals.
type worker struct {
	startstop.Base
}

func (w *worker) Start(ctx context.Context) error {
	ctx, ok, started, stopped := w.StartInit(ctx)
	if !ok {
		return nil
	}
	go func() {
		defer stopped()
		started()
		<-ctx.Done()
	}()
	return nil
}

func TestBaseSignals(t *testing.T) {
	var w worker
	st, sp := w.Started(), w.Stopped()
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-st
	select {
	case <-sp:
		t.Fatal("stopped before Stop")
	default:
	}
	w.Stop()
	<-sp
	// The next run has fresh signals.
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-w.Started()
	w.Stop()
	<-w.Stopped()
}
