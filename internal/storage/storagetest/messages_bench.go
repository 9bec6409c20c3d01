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
	benchSenders(b, senders, func(i uint64) error {
		_, err := appendDirect(ctx, ms, i, withCopy, false)
		return err
	})
}

// BenchDeliverDirect runs b.N direct messages to connected recipients
// from senders goroutines at once, the store's share of the hub's
// delivered path (messaging.Service.Send): the append with a pending
// mailbox copy, then the copy dropped as once the push left the hub.
func BenchDeliverDirect(b *testing.B, ms storage.MessageStore, senders int) {
	ctx := context.Background()
	benchSenders(b, senders, func(i uint64) error {
		res, err := appendDirect(ctx, ms, i, true, true)
		if err != nil {
			return err
		}
		to := fmt.Sprintf("agent-%d", i%1000)
		return ms.DropCopies(ctx, []storage.CopyRef{{Agent: to, Seq: res.MailboxSeqs[0]}})
	})
}

// benchSenders runs b.N calls of one, numbered from 1, from senders
// goroutines at once (one: in the benchmark's goroutine).
func benchSenders(b *testing.B, senders int, one func(i uint64) error) {
	var n atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	if senders <= 1 {
		for b.Loop() {
			if err := one(n.Add(1)); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	// RunParallel starts parallelism × GOMAXPROCS goroutines.
	b.SetParallelism(max(1, senders/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := one(n.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// appendDirect appends direct message number i, with a mailbox copy
// (pending: one for a connected recipient) when withCopy.
func appendDirect(ctx context.Context, ms storage.MessageStore, i uint64, withCopy, pending bool) (storage.AppendResult, error) {
	to := fmt.Sprintf("agent-%d", i%1000)
	id := fmt.Sprintf("bm%d", i)
	body := fmt.Appendf(nil, `{"id":%q,"from":"agent-x","to":%q,"type":"chat","payload":{"text":"benchmark message"},"reply_to":null,"timestamp":%d}`, id, to, i)
	a := storage.Append{StoredAt: int64(i),
		Message: storage.MessageRow{ID: id, From: "agent-x", To: to, Timestamp: int64(i), Body: body}}
	if withCopy {
		a.Copies = []storage.MailboxCopy{{Agent: to, Body: body, Pending: pending}}
	}
	return ms.AppendMessage(ctx, a)
}
