package pgdriver_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
)

// benchWriters is how many goroutines write at once: about what the hub
// sees with 30 busy agents (each of their accepts and completions, and
// the scheduler's assignments, is a Put).
const benchWriters = 32

// runWriters calls write(i) b.N times from benchWriters goroutines, i
// counting the calls from 1.
func runWriters(b *testing.B, write func(i uint64) error) {
	var n atomic.Uint64
	b.SetParallelism(max(1, benchWriters/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := write(n.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTaskPut: concurrent one-task Puts, each a new version of one of
// many tasks (the lifecycle's submit/assign/accept/complete writes).
func BenchmarkTaskPut(b *testing.B) {
	ctx := context.Background()
	ts := open(b).Tasks()
	body := []byte(`{"id":"x","status":"assigned","metadata":{},"needed_capabilities":[],"attempts":[]}`)
	runWriters(b, func(i uint64) error {
		row := storage.TaskRow{ID: fmt.Sprintf("task-%d", i%1000), Version: i, Status: "assigned",
			SubmittedBy: "bench", AssignedTo: "agent", CreatedAt: 1, UpdatedAt: int64(i), Body: body}
		return ts.Put(ctx, []storage.TaskRow{row}, nil)
	})
}

// BenchmarkAppendMessage: concurrent direct messages, each with one
// mailbox copy (its recipient offline), to 50 recipients.
func BenchmarkAppendMessage(b *testing.B) {
	ctx := context.Background()
	ms := open(b).Messages()
	runWriters(b, func(i uint64) error {
		to := fmt.Sprintf("b%d", i%50)
		body := fmt.Appendf(nil, `{"id":"m%d","from":"a","to":%q,"content":"hello"}`, i, to)
		_, err := ms.AppendMessage(ctx, storage.Append{StoredAt: int64(i),
			Message: storage.MessageRow{ID: fmt.Sprintf("m%d", i), From: "a", To: to, Body: body},
			Copies:  []storage.MailboxCopy{{Agent: to, Body: body}}})
		return err
	})
}

// BenchmarkPublishChannel: concurrent channel posts on four channels, each
// with one mailbox copy (a subscriber offline).
func BenchmarkPublishChannel(b *testing.B) {
	ctx := context.Background()
	ms := open(b).Messages()
	runWriters(b, func(i uint64) error {
		ch := fmt.Sprintf("ch%d", i%4)
		body := fmt.Appendf(nil, `{"id":"p%d","from":"a","channel":%q,"content":"hello"}`, i, ch)
		_, err := ms.PublishChannel(ctx, ch, storage.Append{StoredAt: int64(i),
			Message: storage.MessageRow{ID: fmt.Sprintf("p%d", i), From: "a", Channel: ch, Body: body},
			Copies:  []storage.MailboxCopy{{Agent: fmt.Sprintf("off%d", i%50), Body: body}}})
		return err
	})
}

// BenchmarkAppendDirect: the bolt driver's benchmark of the same name on
// PostgreSQL: direct-message appends from 1 sender and from many.
func BenchmarkAppendDirect(b *testing.B) {
	for _, senders := range []int{1, 64} {
		for _, copies := range []bool{false, true} {
			b.Run(fmt.Sprintf("senders=%d/copy=%v", senders, copies), func(b *testing.B) {
				storagetest.BenchAppendDirect(b, open(b).Messages(), senders, copies)
			})
		}
	}
}

// BenchmarkDeliverDirect: the bolt driver's benchmark of the same name on
// PostgreSQL.
func BenchmarkDeliverDirect(b *testing.B) {
	storagetest.BenchDeliverDirect(b, open(b).Messages(), 1000)
}
