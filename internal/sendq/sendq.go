// Package sendq is the outbound frame queue of one WebSocket: bounded in
// frames and in bytes, so a client that stops reading holds a known
// amount of the hub's memory before it is disconnected.
package sendq

import "sync/atomic"

// Queue holds frames waiting for a socket's single writer. Push never
// blocks; it reports a full queue and the caller disconnects the client.
type Queue struct {
	ch       chan []byte
	maxBytes int64
	bytes    atomic.Int64
}

// New returns a queue of at most frames frames and maxBytes bytes. One
// frame larger than maxBytes still fits in an empty queue, so no frame is
// undeliverable because of its size alone.
func New(frames int, maxBytes int64) *Queue {
	return &Queue{ch: make(chan []byte, frames), maxBytes: maxBytes}
}

// Push queues b and reports whether it fit.
func (q *Queue) Push(b []byte) bool {
	n := int64(len(b))
	if total := q.bytes.Add(n); total > q.maxBytes && total != n {
		q.bytes.Add(-n)
		return false
	}
	select {
	case q.ch <- b:
		return true
	default:
		q.bytes.Add(-n)
		return false
	}
}

// C is where the writer takes frames; it calls Done after each.
func (q *Queue) C() <-chan []byte { return q.ch }

// Done releases the bytes of a frame the writer took.
func (q *Queue) Done(b []byte) { q.bytes.Add(-int64(len(b))) }

// Len is the number of frames waiting.
func (q *Queue) Len() int { return len(q.ch) }

// Bytes is the number of bytes waiting.
func (q *Queue) Bytes() int64 { return q.bytes.Load() }
