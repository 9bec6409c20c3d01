package boltdriver_test

import (
	"fmt"
	"testing"

	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
	"github.com/agentcom/agentcom/internal/store"
)

// BenchmarkAppendDirect: direct-message appends on durable tables in a
// temp dir, from 1 sender (one batch per message: its latency) and from
// 64 at once (their batches: the throughput), with and without a mailbox
// copy.
func BenchmarkAppendDirect(b *testing.B) {
	for _, senders := range []int{1, 64} {
		for _, copies := range []bool{false, true} {
			b.Run(fmt.Sprintf("senders=%d/copy=%v", senders, copies), func(b *testing.B) {
				d, db, err := boltdriver.OpenDir(b.TempDir(), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { db.Close() })
				storagetest.BenchAppendDirect(b, d.Messages(), senders, copies)
			})
		}
	}
}

// BenchmarkDeliverDirect: direct messages to connected recipients (a
// pending copy, dropped after the push) from a fleet's 1,000 senders at
// once: the bolt store's share of the messages scenario.
func BenchmarkDeliverDirect(b *testing.B) {
	d, db, err := boltdriver.OpenDir(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	storagetest.BenchDeliverDirect(b, d.Messages(), 1000)
}
