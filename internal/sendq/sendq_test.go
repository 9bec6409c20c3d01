package sendq_test

import (
	"fmt"
	"testing"

	"github.com/agentcom/agentcom/internal/sendq"
)

// The queue keeps frames in order across growth and wrap-around, refuses
// past its frame and byte caps, and takes one oversized frame when empty.
func TestQueueOrderAndBounds(t *testing.T) {
	q := sendq.New(100, 1<<20)
	next, want := 0, 0
	for round := range 5 {
		for range 7 + round*6 {
			if !q.Push([]byte(fmt.Sprint(next))) {
				t.Fatalf("push %d refused", next)
			}
			next++
		}
		for range 3 + round*5 {
			b, ok := q.Pop()
			if !ok || string(b) != fmt.Sprint(want) {
				t.Fatalf("pop = %q, %v; want %d", b, ok, want)
			}
			q.Done(b)
			want++
		}
	}
	for _, b := range q.PopBatch(nil, 1000) {
		if string(b) != fmt.Sprint(want) {
			t.Fatalf("batch = %q; want %d", b, want)
		}
		q.Done(b)
		want++
	}
	if want != next || q.Len() != 0 || q.Bytes() != 0 {
		t.Fatalf("drained %d of %d; len %d bytes %d", want, next, q.Len(), q.Bytes())
	}
	for i := range 100 {
		if !q.Push([]byte{1}) {
			t.Fatalf("push %d refused", i)
		}
	}
	if q.Push([]byte{1}) {
		t.Fatal("101st frame accepted")
	}
	small := sendq.New(10, 100)
	if !small.Push(make([]byte, 500)) {
		t.Fatal("oversized frame refused by an empty queue")
	}
	if small.Push([]byte{1}) {
		t.Fatal("frame accepted past the byte cap")
	}
	select {
	case <-small.Ready():
	default:
		t.Fatal("Ready not signalled after a push")
	}
}
