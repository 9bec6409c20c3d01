package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// ErrBusClosed is returned by Publish and Subscribe on a closed bus.
var ErrBusClosed = errors.New("cluster: bus closed")

// BusConfig tunes a bus. The zero value is usable.
type BusConfig struct {
	// Logger receives what the bus cannot report to a caller (a message
	// dropped for a slow subscriber, a lost connection). nil discards.
	Logger *slog.Logger
	// QueueLimit bounds the messages waiting, on this hub, for one
	// subject's subscribers; once it is reached further messages on that
	// subject are dropped (and logged), as the bus is at most once and a
	// stuck subscriber must not grow the hub's memory without bound.
	// 0 means 65536 (the leader's inbound subject carries every
	// follower's frames; bursts must fit).
	QueueLimit int
	// QueueBytes bounds the bytes waiting for one subject's subscribers,
	// alongside QueueLimit. 0 means 4 × MaxPayload.
	QueueBytes int
}

func (c BusConfig) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// message is one delivery waiting in a subject's queue. A payload that
// must be fetched first (PostgreSQL's stored payloads) carries fetch
// instead, run by the subject's goroutine so that a fetch holds up only
// its own subject.
type message struct {
	payload []byte
	size    int
	fetch   func() ([]byte, error)
}

// dispatcher fans the messages of each subject out to that subject's
// subscribers on this hub: one goroutine per subject with subscribers
// calls them one at a time in arrival order. The buses feed it from
// their transports; it is the part the three buses share.
type dispatcher struct {
	log        *slog.Logger
	queueLimit int
	queueBytes int
	// watch and unwatch start and stop the transport's interest in a
	// subject; they run under watchMu, so they never interleave.
	watch   func(subject string) error
	unwatch func(subject string)
	watchMu sync.Mutex

	// dropped counts the messages dropped for slow subscribers, all
	// subjects together (for metrics).
	dropped atomic.Uint64

	mu       sync.Mutex
	closed   bool
	subjects map[string]*subjectQueue
	nextID   uint64
	wg       sync.WaitGroup
}

type subscriber struct {
	id      uint64
	fn      func([]byte)
	removed atomic.Bool
}

type subjectQueue struct {
	subject string
	subs    []*subscriber // copy-on-write: the goroutine reads a snapshot
	queue   []message
	bytes   int
	wake    chan struct{}
	stop    chan struct{}
	dropped uint64
}

func newDispatcher(cfg BusConfig, watch func(string) error, unwatch func(string)) *dispatcher {
	d := &dispatcher{
		log:        cfg.logger(),
		queueLimit: cfg.QueueLimit,
		queueBytes: cfg.QueueBytes,
		watch:      watch,
		unwatch:    unwatch,
		subjects:   map[string]*subjectQueue{},
	}
	if d.queueLimit <= 0 {
		d.queueLimit = 65536
	}
	if d.queueBytes <= 0 {
		d.queueBytes = 4 * MaxPayload
	}
	return d
}

// subscribe adds fn to subject, starting the subject's goroutine and the
// transport's interest when it is the first. watch runs outside mu (the
// transport's receiving goroutine takes mu to deliver), serialized with
// unwatch by watchMu.
func (d *dispatcher) subscribe(subject string, fn func([]byte)) (func(), error) {
	if fn == nil {
		return nil, errors.New("cluster: subscribe: nil handler")
	}
	d.watchMu.Lock()
	defer d.watchMu.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrBusClosed
	}
	q := d.subjects[subject]
	d.mu.Unlock()
	if q == nil {
		if err := d.watch(subject); err != nil {
			return nil, fmt.Errorf("cluster: subscribe %s: %w", subject, err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		if q == nil {
			d.unwatch(subject)
		}
		return nil, ErrBusClosed
	}
	if q == nil {
		q = &subjectQueue{subject: subject, wake: make(chan struct{}, 1), stop: make(chan struct{})}
		d.subjects[subject] = q
		d.wg.Add(1)
		go d.run(q)
	}
	d.nextID++
	s := &subscriber{id: d.nextID, fn: fn}
	subs := make([]*subscriber, 0, len(q.subs)+1)
	q.subs = append(append(subs, q.subs...), s)
	var once sync.Once
	return func() { once.Do(func() { d.unsubscribe(q, s) }) }, nil
}

// unsubscribe removes s. It does not wait for a call of s in progress,
// so a handler may unsubscribe itself; no call of s starts after it.
func (d *dispatcher) unsubscribe(q *subjectQueue, s *subscriber) {
	s.removed.Store(true)
	d.watchMu.Lock()
	defer d.watchMu.Unlock()
	d.mu.Lock()
	if d.subjects[q.subject] != q {
		d.mu.Unlock()
		return // closed, or the subject was already torn down
	}
	subs := make([]*subscriber, 0, len(q.subs))
	for _, o := range q.subs {
		if o != s {
			subs = append(subs, o)
		}
	}
	q.subs = subs
	last := len(subs) == 0
	if last {
		delete(d.subjects, q.subject)
		close(q.stop)
	}
	d.mu.Unlock()
	if last {
		d.unwatch(q.subject)
	}
}

// deliver queues a message for subject's subscribers on this hub; without
// any it is dropped, as the transport may still carry messages of a
// subject just unsubscribed.
func (d *dispatcher) deliver(subject string, m message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.subjects[subject]
	if q == nil {
		return
	}
	if len(q.queue) >= d.queueLimit || q.bytes+m.size > d.queueBytes {
		q.dropped++
		d.dropped.Add(1)
		// Log the first drop and then every thousandth, not each one: a
		// stuck subscriber would otherwise flood the log.
		if q.dropped%1000 == 1 {
			d.log.Warn("cluster bus: subscriber too slow, message dropped",
				"subject", subject, "queued", len(q.queue), "dropped", q.dropped)
		}
		return
	}
	q.queue = append(q.queue, m)
	q.bytes += m.size
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run(q *subjectQueue) {
	defer d.wg.Done()
	for {
		select {
		case <-q.stop:
			return
		case <-q.wake:
		}
		for {
			d.mu.Lock()
			if len(q.queue) == 0 {
				d.mu.Unlock()
				break
			}
			m := q.queue[0]
			q.queue[0] = message{}
			q.queue = q.queue[1:]
			q.bytes -= m.size
			subs := q.subs
			d.mu.Unlock()
			select {
			case <-q.stop:
				return
			default:
			}
			payload := m.payload
			if m.fetch != nil {
				var err error
				if payload, err = m.fetch(); err != nil {
					d.log.Warn("cluster bus: message lost", "subject", q.subject, "err", err)
					continue
				}
			}
			d.call(subs, payload)
		}
	}
}

// call hands payload to each subscriber; every subscriber but the last
// gets a copy, so none can change what another sees.
func (d *dispatcher) call(subs []*subscriber, payload []byte) {
	live := subs[:0:0]
	for _, s := range subs {
		if !s.removed.Load() {
			live = append(live, s)
		}
	}
	for i, s := range live {
		p := payload
		if i < len(live)-1 {
			p = append([]byte(nil), payload...)
		}
		if s.removed.Load() {
			continue
		}
		s.fn(p)
	}
}

// close stops every subject and waits for their goroutines (so it must
// not be called from a handler). It reports whether it was the first.
func (d *dispatcher) close() bool {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return false
	}
	d.closed = true
	for subject, q := range d.subjects {
		delete(d.subjects, subject)
		close(q.stop)
		for _, s := range q.subs {
			s.removed.Store(true)
		}
	}
	d.mu.Unlock()
	d.wg.Wait()
	return true
}

func (d *dispatcher) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// checkPublish validates a publish common to the buses.
func checkPublish(subject string, payload []byte) error {
	if err := checkSubject(subject); err != nil {
		return err
	}
	if len(payload) > MaxPayload {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrPayloadTooLarge, len(payload), MaxPayload)
	}
	return nil
}

// maxSubject bounds a subject's length.
const maxSubject = 200

// checkSubject accepts dotted names of letters, digits, '-' and '_'
// (agentcom.leader.in, agentcom.hub.<id>): what every transport carries
// as is, NATS's wildcards and separators excluded.
func checkSubject(subject string) error {
	if subject == "" || len(subject) > maxSubject {
		return fmt.Errorf("cluster: subject must be 1 to %d bytes", maxSubject)
	}
	prevDot := true
	for i := 0; i < len(subject); i++ {
		c := subject[i]
		switch {
		case c == '.':
			if prevDot {
				return fmt.Errorf("cluster: subject %q has an empty element", subject)
			}
			prevDot = true
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return fmt.Errorf("cluster: subject %q: only letters, digits, '-', '_' and '.' are allowed", subject)
		}
		prevDot = false
	}
	if prevDot {
		return fmt.Errorf("cluster: subject %q ends with '.'", subject)
	}
	return nil
}
