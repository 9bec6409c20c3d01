// Package tasklog keeps the live output of running agents: the last
// MaxBytes of each task's output, for the last MaxTasks tasks that wrote
// any, in memory. Readers ask for output after an offset and may wait for
// more (long polling).
//
// Offsets count the bytes a task's log received on this hub since it
// started: they are stable while the hub runs and start over after a hub
// restart (which also forgets the output; the sidecar keeps the full log
// on the agent's machine).
package tasklog

import (
	"container/list"
	"context"
	"sync"
	"unicode/utf8"

	"github.com/agentcom/agentcom/internal/bus"
)

// Config bounds the store. Zero values take the defaults.
type Config struct {
	// MaxBytes is how much output is kept per task (the newest).
	MaxBytes int
	// MaxTasks is how many tasks' output is kept (the most recently
	// written); older ones are forgotten.
	MaxTasks int
}

// Defaults.
const (
	DefaultMaxBytes = 64 << 10
	DefaultMaxTasks = 1000
	// MaxRead bounds the output one Read returns.
	MaxRead = 256 << 10
)

// Store is the set of task logs. It is safe for concurrent use.
type Store struct {
	cfg  Config
	mu   sync.Mutex
	logs map[string]*entry
	lru  *list.List // of task ids, most recently written at the front
}

type entry struct {
	buf   []byte
	start int64         // offset of buf[0]
	wake  chan struct{} // closed (and replaced) when the log or the task changes
	elem  *list.Element
}

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxTasks <= 0 {
		cfg.MaxTasks = DefaultMaxTasks
	}
	return &Store{cfg: cfg, logs: map[string]*entry{}, lru: list.New()}
}

// Config returns the store's bounds.
func (s *Store) Config() Config { return s.cfg }

// entryLocked returns the task's entry, creating it (and evicting the
// least recently written one beyond MaxTasks) when create is set.
func (s *Store) entryLocked(id string, create bool) *entry {
	e := s.logs[id]
	if e != nil || !create {
		return e
	}
	e = &entry{wake: make(chan struct{})}
	e.elem = s.lru.PushFront(id)
	s.logs[id] = e
	for s.lru.Len() > s.cfg.MaxTasks {
		old := s.lru.Back()
		oid := old.Value.(string)
		s.lru.Remove(old)
		if oe := s.logs[oid]; oe != nil {
			close(oe.wake)
		}
		delete(s.logs, oid)
	}
	return e
}

// Append adds output to a task's log, keeping the newest MaxBytes.
func (s *Store) Append(id, text string) {
	if text == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryLocked(id, true)
	s.lru.MoveToFront(e.elem)
	e.buf = append(e.buf, text...)
	if over := len(e.buf) - s.cfg.MaxBytes; over > 0 {
		// Never keep half a character at the front.
		for over < len(e.buf) && !utf8.RuneStart(e.buf[over]) {
			over++
		}
		e.start += int64(over)
		e.buf = append(e.buf[:0:0], e.buf[over:]...)
	}
	close(e.wake)
	e.wake = make(chan struct{})
}

// Chunk is a piece of a task's log.
type Chunk struct {
	// Offset is where Data starts; Next is the offset to ask for next.
	Offset int64
	Next   int64
	Data   string
	// Truncated: output between the requested offset and Offset is no
	// longer kept.
	Truncated bool
}

// Read returns the output after offset since (at most MaxRead bytes). A
// since beyond the end (a hub restart reset the offsets) reads from the
// oldest kept output and says Truncated.
func (s *Store) Read(id string, since int64) Chunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.logs[id]
	if e == nil {
		return Chunk{Offset: since, Next: since, Truncated: since > 0}
	}
	end := e.start + int64(len(e.buf))
	c := Chunk{}
	switch {
	case since > end:
		c.Truncated, since = true, e.start
	case since < e.start:
		c.Truncated, since = true, e.start
	}
	c.Offset = since
	b := e.buf[since-e.start:]
	if len(b) > MaxRead {
		n := MaxRead
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		b = b[:n]
	}
	c.Data = string(b)
	c.Next = since + int64(len(b))
	return c
}

// Changed returns a channel closed when the task's log gets output or the
// task changes (Touch). Ask before reading, then wait on it.
func (s *Store) Changed(id string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryLocked(id, true)
	return e.wake
}

// Touch wakes the task's readers (the task changed state).
func (s *Store) Touch(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.logs[id]; e != nil {
		close(e.wake)
		e.wake = make(chan struct{})
	}
}

// Follow touches a task's log on every task event, so readers waiting for
// output learn that the task ended. It returns when ctx ends.
func (s *Store) Follow(ctx context.Context, b *bus.Bus, taskID func(bus.Event) string) {
	sub := b.Subscribe(1024, bus.TopicTasks)
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-sub.C:
			if id := taskID(e); id != "" {
				s.Touch(id)
			}
		}
	}
}
