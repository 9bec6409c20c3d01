package tasks_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasks"
)

// BenchmarkArchivePassSteady measures a hub's archive pass in its steady
// state on the embedded store: 1,000 tasks the queue ended past the
// retention move, beside 20,000 that ended within it and stay. ns/op is
// the pass.
//
//	go test -run '^$' -bench ArchivePassSteady ./internal/tasks/
func BenchmarkArchivePassSteady(b *testing.B) {
	const due, recent = 1000, 20_000
	d, db, err := boltdriver.OpenDir(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	clk := newClock()
	cfg := tasks.DefaultConfig()
	cfg.Now = clk.Now
	q, err := tasks.New(d.Tasks(), bus.New(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	arch, err := tasks.NewArchiver(q, tasks.ArchiveConfig{Retention: time.Hour, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	// Ended far in the clock's future: never due during the benchmark.
	storeEnded(b, d.Tasks(), "task-recent", recent, clk.Now().Add(1000*time.Hour).UnixMilli())
	if _, err := arch.RunOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	pick := func(*tasks.Task) (string, bool) { return "a1", false }
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range due {
			_, t, _, err := q.SubmitAssign(tasks.SubmitParams{Description: fmt.Sprint("due ", j)}, pick)
			if err != nil || t == nil {
				b.Fatal(err)
			}
			if _, _, err := q.Complete(t.ID, "a1", t.Generation, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
		clk.Advance(2 * time.Hour)
		b.StartTimer()
		res, err := arch.RunOnce(context.Background())
		if err != nil || res.Moved != due {
			b.Fatalf("pass: %+v, %v", res, err)
		}
	}
}
