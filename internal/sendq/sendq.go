// Package sendq is the outbound frame queue of one WebSocket: bounded in
// frames and in bytes, so a client that stops reading holds a known
// amount of the hub's memory before it is disconnected.
//
// The queue starts with no storage and grows (doubling) only while frames
// wait, and gives its storage back once drained: with 10,000 idle sockets
// a preallocated 256-slot channel each was 60 MB doing nothing.
package sendq

import "sync"

// minSlots is the first allocation of a queue that gets a frame: most
// sockets never have more than a reply or two waiting.
const minSlots = 4

// keepSlots is the largest ring a drained queue keeps; a larger one (left
// by a burst) is dropped so the memory goes back to the heap.
const keepSlots = 16

// Queue holds frames waiting for a socket's single reader (the writer
// goroutine). Push never blocks; it reports a full queue and the caller
// disconnects the client.
type Queue struct {
	maxFrames int
	maxBytes  int64

	mu    sync.Mutex
	ring  [][]byte // len(ring) is a power of two (or 0)
	head  int      // index of the oldest frame
	n     int      // frames waiting
	bytes int64    // bytes waiting or taken and not yet Done
	ready chan struct{}
}

// New returns a queue of at most frames frames and maxBytes bytes. One
// frame larger than maxBytes still fits in an empty queue, so no frame is
// undeliverable because of its size alone.
func New(frames int, maxBytes int64) *Queue {
	return &Queue{maxFrames: max(frames, 1), maxBytes: maxBytes, ready: make(chan struct{}, 1)}
}

// Push queues b and reports whether it fit.
func (q *Queue) Push(b []byte) bool {
	sz := int64(len(b))
	q.mu.Lock()
	if q.n >= q.maxFrames || (q.bytes+sz > q.maxBytes && q.bytes != 0) {
		q.mu.Unlock()
		return false
	}
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)&(len(q.ring)-1)] = b
	q.n++
	q.bytes += sz
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// grow doubles the ring (from minSlots), keeping the frames in order.
func (q *Queue) grow() {
	size := max(minSlots, 2*len(q.ring))
	ring := make([][]byte, size)
	for i := range q.n {
		ring[i] = q.ring[(q.head+i)&(len(q.ring)-1)]
	}
	q.ring, q.head = ring, 0
}

// Ready has a value after a Push; a reader that found the queue empty
// waits on it (it may wake to an empty queue: Pop again decides).
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Pop takes the oldest frame; the caller calls Done with it once written.
func (q *Queue) Pop() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil, false
	}
	return q.takeLocked(), true
}

// PopBatch appends up to max frames (oldest first) to dst, for a writer
// that writes several at once; it calls Done with each once written.
func (q *Queue) PopBatch(dst [][]byte, max int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n > 0 && max > 0 {
		dst = append(dst, q.takeLocked())
		max--
	}
	return dst
}

func (q *Queue) takeLocked() []byte {
	b := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) & (len(q.ring) - 1)
	q.n--
	if q.n == 0 {
		q.head = 0
		if len(q.ring) > keepSlots {
			q.ring = nil
		}
	}
	return b
}

// Done releases the bytes of a frame the reader took.
func (q *Queue) Done(b []byte) {
	q.mu.Lock()
	q.bytes -= int64(len(b))
	q.mu.Unlock()
}

// Len is the number of frames waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Bytes is the number of bytes waiting (or taken and not yet Done).
func (q *Queue) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}
