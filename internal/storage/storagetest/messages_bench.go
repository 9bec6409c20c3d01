package storagetest

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
)

// BenchAppendDirect runs b.N direct-message appends from senders
// goroutines at once on ms, the shape of the hub's hot path: a message to
// one of 1,000 recipients, in the history and the thread index, with a
// mailbox copy for its recipient when withCopy. The drivers' benchmarks
// call it, so their figures compare.
func BenchAppendDirect(b *testing.B, ms storage.MessageStore, senders int, withCopy bool) {
	ctx := context.Background()
	var n atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	if senders <= 1 {
		for b.Loop() {
			if err := appendDirect(ctx, ms, n.Add(1), withCopy); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	// RunParallel starts parallelism × GOMAXPROCS goroutines.
	b.SetParallelism(max(1, senders/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := appendDirect(ctx, ms, n.Add(1), withCopy); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// appendDirect appends direct message number i.
func appendDirect(ctx context.Context, ms storage.MessageStore, i uint64, withCopy bool) error {
	to := fmt.Sprintf("agent-%d", i%1000)
	id := fmt.Sprintf("bm%d", i)
	body := fmt.Appendf(nil, `{"id":%q,"from":"agent-x","to":%q,"type":"chat","payload":{"text":"benchmark message"},"reply_to":null,"timestamp":%d}`, id, to, i)
	a := storage.Append{StoredAt: int64(i),
		Message: storage.MessageRow{ID: id, From: "agent-x", To: to, Timestamp: int64(i), Body: body}}
	if withCopy {
		a.Copies = []storage.MailboxCopy{{Agent: to, Body: body}}
	}
	_, err := ms.AppendMessage(ctx, a)
	return err
}
