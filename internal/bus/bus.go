// Package bus is the hub's in-process publish/subscribe of typed events.
//
// Publishing never blocks: each subscriber has a bounded buffer and events
// that do not fit are dropped and counted for that subscriber. Consumers
// that must not miss anything (the scheduler) are called directly by the
// domain code instead; the bus feeds observers such as the dashboard, push
// notifications and metrics.
package bus

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Topics. An event's Type names what happened; its Topic groups types.
const (
	TopicTasks    = "tasks"
	TopicAgents   = "agents" // presence and agent state changes
	TopicMessages = "messages"
	TopicStorage  = "storage" // backups, compaction, recovery, drills
	TopicAlerts   = "alerts"
)

// Event is one thing that happened in the hub. Data must be JSON-safe: it
// is forwarded to dashboards as is.
type Event struct {
	Topic string `json:"topic"`
	Type  string `json:"type"`
	Time  int64  `json:"timestamp"` // Unix milliseconds
	Data  any    `json:"data,omitempty"`
}

// Bus fans events out to subscribers.
type Bus struct {
	mu   sync.RWMutex
	subs []*Sub
}

// New returns an empty bus.
func New() *Bus { return &Bus{} }

// Sub is one subscription. Read events from C until Close.
type Sub struct {
	C       <-chan Event
	c       chan Event
	topics  []string
	dropped atomic.Int64
	bus     *Bus
	once    sync.Once
}

// Subscribe returns a subscription to the given topics (all topics when
// none are given) with a buffer of buf events.
func (b *Bus) Subscribe(buf int, topics ...string) *Sub {
	c := make(chan Event, buf)
	s := &Sub{C: c, c: c, topics: slices.Clone(topics), bus: b}
	b.mu.Lock()
	b.subs = append(b.subs, s)
	b.mu.Unlock()
	return s
}

// Close unsubscribes and closes C.
func (s *Sub) Close() {
	s.once.Do(func() {
		b := s.bus
		b.mu.Lock()
		b.subs = slices.DeleteFunc(b.subs, func(x *Sub) bool { return x == s })
		close(s.c)
		b.mu.Unlock()
	})
}

// Dropped is how many events did not fit this subscriber's buffer.
func (s *Sub) Dropped() int64 { return s.dropped.Load() }

func (s *Sub) wants(topic string) bool {
	return len(s.topics) == 0 || slices.Contains(s.topics, topic)
}

// Publish delivers e to every subscriber of its topic without blocking. A
// zero Time is set to now.
func (b *Bus) Publish(e Event) {
	if e.Time == 0 {
		e.Time = time.Now().UnixMilli()
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, s := range b.subs {
		if !s.wants(e.Topic) {
			continue
		}
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
}
