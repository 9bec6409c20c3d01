// Package bus is the hub's in-process publish/subscribe of typed events.
//
// Every event carries a Payload: a concrete struct of the package that
// publishes it, which names its own topic and type. Consumers get the Go
// type back, never a map, so a renamed JSON tag cannot silently change
// what a consumer sees (the JSON form is only for the browsers).
//
// Two ways to consume, in the spirit of Tailscale's eventbus:
//   - SubscribeTo[T]: one Go type, delivered as that type.
//   - Subscribe: one ordered queue of every event of some topics, for
//     consumers that must see events of different types in the order
//     they happened (the dashboard); they type-switch on Event.Data.
//
// Publishing never blocks: each subscriber has a bounded buffer and events
// that do not fit are dropped and counted for that subscriber. Consumers
// that must not miss anything (the scheduler) are called directly by the
// domain code instead; the bus feeds observers such as the dashboard, push
// notifications and metrics.
package bus

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Topics. An event's type names what happened; its topic groups types.
const (
	TopicTasks    = "tasks"
	TopicAgents   = "agents" // presence and agent state changes
	TopicMessages = "messages"
	TopicStorage  = "storage" // backups, compaction, recovery, drills
	TopicAlerts   = "alerts"
)

// Payload is what an event says happened. Every event type implements it
// with value receivers; EventType is the wire name ("task_completed"),
// the same for every value of a type except where one struct serves
// several kinds (tasks.EventData), which then carries its kind.
type Payload interface {
	Topic() string
	EventType() string
}

// Event is one published payload and when it happened.
type Event struct {
	Time int64   // Unix milliseconds
	Data Payload // never nil for a published event
}

// Topic is the payload's topic ("" without a payload).
func (e Event) Topic() string {
	if e.Data == nil {
		return ""
	}
	return e.Data.Topic()
}

// Type is the payload's event type ("" without a payload).
func (e Event) Type() string {
	if e.Data == nil {
		return ""
	}
	return e.Data.EventType()
}

// MarshalJSON keeps the shape events had when their fields were plain:
// {"topic","type","timestamp","data"}.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Topic string  `json:"topic"`
		Type  string  `json:"type"`
		Time  int64   `json:"timestamp"`
		Data  Payload `json:"data,omitempty"`
	}{e.Topic(), e.Type(), e.Time, e.Data})
}

// Bus fans events out to subscribers.
type Bus struct {
	mu   sync.RWMutex
	subs []subscriber
}

// subscriber is a Sub or a Typed: deliver must not block.
type subscriber interface {
	deliver(Event)
}

// New returns an empty bus.
func New() *Bus { return &Bus{} }

// Publish delivers v, stamped now, to every subscriber that wants it.
func Publish[T Payload](b *Bus, v T) {
	b.publish(Event{Time: time.Now().UnixMilli(), Data: v})
}

// PublishAt is Publish with the time the event happened (Unix ms); a zero
// at is now.
func PublishAt[T Payload](b *Bus, at int64, v T) {
	if at == 0 {
		at = time.Now().UnixMilli()
	}
	b.publish(Event{Time: at, Data: v})
}

func (b *Bus) publish(e Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, s := range b.subs {
		s.deliver(e)
	}
}

func (b *Bus) add(s subscriber) {
	b.mu.Lock()
	b.subs = append(b.subs, s)
	b.mu.Unlock()
}

// remove unsubscribes s and then runs closeC under the lock, so no
// publisher is sending on the channel being closed.
func (b *Bus) remove(s subscriber, closeC func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = slices.DeleteFunc(b.subs, func(x subscriber) bool { return x == s })
	closeC()
}

// Sub is an ordered subscription to every event of some topics. Read
// events from C until Close.
type Sub struct {
	C       <-chan Event
	c       chan Event
	topics  []string
	dropped atomic.Int64
	bus     *Bus
	once    sync.Once
}

// Subscribe returns a subscription to the given topics (all topics when
// none are given) with a buffer of buf events, in publish order.
func (b *Bus) Subscribe(buf int, topics ...string) *Sub {
	c := make(chan Event, buf)
	s := &Sub{C: c, c: c, topics: slices.Clone(topics), bus: b}
	b.add(s)
	return s
}

// Close unsubscribes and closes C.
func (s *Sub) Close() {
	s.once.Do(func() { s.bus.remove(s, func() { close(s.c) }) })
}

// Dropped is how many events did not fit this subscriber's buffer.
func (s *Sub) Dropped() int64 { return s.dropped.Load() }

func (s *Sub) deliver(e Event) {
	if len(s.topics) > 0 && !slices.Contains(s.topics, e.Topic()) {
		return
	}
	select {
	case s.c <- e:
	default:
		s.dropped.Add(1)
	}
}

// Stamped is one event of a Typed subscription: the payload and when it
// happened (Unix ms).
type Stamped[T any] struct {
	Time int64
	V    T
}

// Typed is a subscription to one payload type. Read from C until Close.
type Typed[T Payload] struct {
	C       <-chan Stamped[T]
	c       chan Stamped[T]
	dropped atomic.Int64
	bus     *Bus
	once    sync.Once
}

// SubscribeTo returns a subscription to every event whose payload is a T,
// with a buffer of buf events.
func SubscribeTo[T Payload](b *Bus, buf int) *Typed[T] {
	c := make(chan Stamped[T], buf)
	s := &Typed[T]{C: c, c: c, bus: b}
	b.add(s)
	return s
}

// Close unsubscribes and closes C.
func (s *Typed[T]) Close() {
	s.once.Do(func() { s.bus.remove(s, func() { close(s.c) }) })
}

// Dropped is how many events did not fit this subscriber's buffer.
func (s *Typed[T]) Dropped() int64 { return s.dropped.Load() }

func (s *Typed[T]) deliver(e Event) {
	v, ok := e.Data.(T)
	if !ok {
		return
	}
	select {
	case s.c <- Stamped[T]{Time: e.Time, V: v}:
	default:
		s.dropped.Add(1)
	}
}
