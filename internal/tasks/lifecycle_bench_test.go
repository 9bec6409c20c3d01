package tasks_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
	"github.com/agentcom/agentcom/internal/tasks"
)

// The task lifecycle's hot paths, one benchmark each, on every driver
// (bolt always; PostgreSQL where testenv.Postgres finds one). They run
// 64 goroutines at once, as a hub's submitters and agents do, so durable
// writes share group commits; ns/op is per task. The setup uses only
// Submit, SubmitBatch and AssignBatch, so the benchmarks also run on
// older queues for before/after comparisons.

// benchDrivers names the drivers the lifecycle benchmarks run on.
func benchDrivers() []string { return storagetest.BenchDrivers() }

// benchQueue opens an empty queue on driver, with no limits (zero
// Config).
func benchQueue(b *testing.B, driver string) *tasks.Queue {
	b.Helper()
	q, err := tasks.New(storagetest.OpenDriver(b, driver).Tasks(), bus.New(), tasks.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return q
}

func benchParams() tasks.SubmitParams {
	return tasks.SubmitParams{Description: "benchmark task", NeededCapabilities: []string{"code"}, SubmittedBy: "bench"}
}

// assigned submits n tasks in batches and assigns them all, each to an
// agent of its own; it returns them.
func assigned(b *testing.B, q *tasks.Queue, n int) []*tasks.Task {
	b.Helper()
	for left := n; left > 0; left -= tasks.MaxBatch {
		items := make([]tasks.BatchItem, min(left, tasks.MaxBatch))
		for i := range items {
			items[i] = tasks.BatchItem{Key: fmt.Sprint(i), Params: benchParams()}
		}
		if _, err := q.SubmitBatch(items); err != nil {
			b.Fatal(err)
		}
	}
	next := 0
	out, err := q.AssignBatch(func(*tasks.Task) (string, bool) {
		next++
		return fmt.Sprintf("agent-%d", next), false
	}, n)
	if err != nil || len(out) != n {
		b.Fatalf("assign: %d of %d, %v", len(out), n, err)
	}
	return out
}

// runParallel runs op(i) b.N times on 64 goroutines, i counting from 0.
func runParallel(b *testing.B, op func(i int) error) {
	var n atomic.Int64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(int(n.Add(1) - 1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTaskSubmit: one durable submission per op.
func BenchmarkTaskSubmit(b *testing.B) {
	for _, drv := range benchDrivers() {
		b.Run(drv, func(b *testing.B) {
			q := benchQueue(b, drv)
			runParallel(b, func(int) error {
				_, err := q.Submit(benchParams())
				return err
			})
		})
	}
}

// BenchmarkTaskAccept: an agent accepts the task it holds (1,000 held
// tasks, accepted over and over).
func BenchmarkTaskAccept(b *testing.B) {
	for _, drv := range benchDrivers() {
		b.Run(drv, func(b *testing.B) {
			q := benchQueue(b, drv)
			ts := assigned(b, q, 1000)
			runParallel(b, func(i int) error {
				t := ts[i%len(ts)]
				_, err := q.Accept(t.ID, t.Holder())
				return err
			})
		})
	}
}

// BenchmarkTaskComplete: an agent completes the task it holds, durably.
func BenchmarkTaskComplete(b *testing.B) {
	for _, drv := range benchDrivers() {
		b.Run(drv, func(b *testing.B) {
			q := benchQueue(b, drv)
			ts := assigned(b, q, b.N)
			runParallel(b, func(i int) error {
				t := ts[i]
				_, _, err := q.Complete(t.ID, t.Holder(), t.Generation, map[string]any{"ok": true}, nil)
				return err
			})
		})
	}
}
