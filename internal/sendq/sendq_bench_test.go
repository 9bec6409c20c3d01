package sendq_test

import (
	"testing"

	"github.com/agentcom/agentcom/internal/sendq"
)

// BenchmarkPushPop is one frame through the queue: push, pop, done.
func BenchmarkPushPop(b *testing.B) {
	q := sendq.New(256, 4<<20)
	frame := make([]byte, 200)
	for b.Loop() {
		q.Push(frame)
		f, _ := q.Pop()
		q.Done(f)
	}
}

// BenchmarkPushPopBatch is 32 frames pushed, then taken in one batch, as
// the writer does under load (the ring grows once and is reused).
func BenchmarkPushPopBatch(b *testing.B) {
	q := sendq.New(256, 4<<20)
	frame := make([]byte, 200)
	batch := make([][]byte, 0, 32)
	for b.Loop() {
		for range 32 {
			q.Push(frame)
		}
		batch = q.PopBatch(batch[:0], 32)
		for _, f := range batch {
			q.Done(f)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/frame")
}
