package tasks_test

import (
	"testing"

	"github.com/agentcom/agentcom/internal/tasks"
)

// BenchmarkSubmit measures durable submissions: each returns only once
// the task is fsynced. Serial: one submitter, one fsync per task.
func BenchmarkSubmit(b *testing.B) {
	e := newEnv(b, tasks.DefaultConfig())
	p := tasks.SubmitParams{Description: "benchmark task", NeededCapabilities: []string{"code"}, SubmittedBy: "bench"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Q.Submit(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmitParallel: many submitters at once share fsyncs through
// the store's group commit; ns/op is per task.
func BenchmarkSubmitParallel(b *testing.B) {
	e := newEnv(b, tasks.DefaultConfig())
	p := tasks.SubmitParams{Description: "benchmark task", NeededCapabilities: []string{"code"}, SubmittedBy: "bench"}
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Q.Submit(p); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
