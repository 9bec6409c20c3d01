package hub_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/cluster"
)

// memBus is an in-memory cluster.Bus with the interface's semantics:
// every subscriber of a subject gets every message, one at a time, in
// publish order. Each hub gets its own link (memLink); cutting a link
// makes its hub deaf and mute, as a hub that died.
type memBus struct {
	mu   sync.Mutex
	subs map[string][]*memSub
}

func newMemBus() *memBus { return &memBus{subs: map[string][]*memSub{}} }

type memSub struct {
	link *memLink
	fn   func([]byte)
	ch   chan []byte
	quit chan struct{}
	done chan struct{}
}

func (s *memSub) run() {
	defer close(s.done)
	for {
		select {
		case <-s.quit:
			return
		case p := <-s.ch:
			if !s.link.isCut() {
				s.fn(p)
			}
		}
	}
}

// memLink is one hub's connection to the bus.
type memLink struct {
	bus *memBus
	mu  sync.Mutex
	cut bool
	own []*memSub
}

func (b *memBus) link() *memLink { return &memLink{bus: b} }

func (l *memLink) isCut() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cut
}

// kill cuts the link: nothing this hub publishes arrives, nothing
// published reaches it.
func (l *memLink) kill() {
	l.mu.Lock()
	l.cut = true
	l.mu.Unlock()
}

func (l *memLink) Publish(ctx context.Context, subject string, payload []byte) error {
	if len(payload) > cluster.MaxPayload {
		return cluster.ErrPayloadTooLarge
	}
	if l.isCut() {
		return nil
	}
	p := append([]byte(nil), payload...)
	// Under the bus lock, so one subject's messages enter every queue in
	// one order.
	l.bus.mu.Lock()
	defer l.bus.mu.Unlock()
	for _, s := range l.bus.subs[subject] {
		select {
		case s.ch <- p:
		case <-s.quit:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (l *memLink) Subscribe(subject string, fn func([]byte)) (func(), error) {
	s := &memSub{link: l, fn: fn, ch: make(chan []byte, 1<<14), quit: make(chan struct{}), done: make(chan struct{})}
	l.bus.mu.Lock()
	l.bus.subs[subject] = append(l.bus.subs[subject], s)
	l.bus.mu.Unlock()
	l.mu.Lock()
	l.own = append(l.own, s)
	l.mu.Unlock()
	go s.run()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.bus.mu.Lock()
			list := l.bus.subs[subject]
			for i, x := range list {
				if x == s {
					l.bus.subs[subject] = append(list[:i:i], list[i+1:]...)
					break
				}
			}
			l.bus.mu.Unlock()
			close(s.quit)
			// A subscriber unsubscribing from inside its own callback
			// cannot wait for itself.
			select {
			case <-s.done:
			default:
			}
		})
	}, nil
}

func (l *memLink) Close() error {
	l.mu.Lock()
	own := l.own
	l.own = nil
	l.mu.Unlock()
	for _, s := range own {
		select {
		case <-s.quit:
		default:
			close(s.quit)
		}
		<-s.done
	}
	return nil
}

// election is a controllable election shared by the hubs of a test: the
// test says who leads.
type election struct {
	mu       sync.Mutex
	cur      cluster.Leader
	electors []*testElector
}

func (e *election) elector(self string) *testElector {
	el := &testElector{e: e, self: self, ch: make(chan cluster.Leader, 64)}
	e.mu.Lock()
	e.electors = append(e.electors, el)
	e.mu.Unlock()
	return el
}

// elect makes l the leader, telling every hub.
func (e *election) elect(t *testing.T, l cluster.Leader) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cur = l
	for _, el := range e.electors {
		select {
		case el.ch <- l:
		default:
			t.Fatal("elector change queue full")
		}
	}
}

type testElector struct {
	e    *election
	self string
	ch   chan cluster.Leader
}

func (el *testElector) Start(context.Context) error {
	if el.Leader().HubID == "" {
		return errors.New("test election: no leader yet")
	}
	return nil
}
func (el *testElector) Stop() {}
func (el *testElector) Leader() cluster.Leader {
	el.e.mu.Lock()
	defer el.e.mu.Unlock()
	return el.e.cur
}
func (el *testElector) Changes() <-chan cluster.Leader { return el.ch }
func (el *testElector) Self() string                   { return el.self }
