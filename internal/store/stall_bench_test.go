package store

import (
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The stall benchmarks measure what a compaction or a backup of a table
// with 100k records costs the table's users: 4 writers (one put per Update,
// each a durable commit) and 2 readers run throughout, and the benchmark
// reports the longest single Update and View seen while the operation ran,
// next to the operation's own duration. BenchmarkWriterLatencyBaseline
// reports the same figures with no maintenance running, for comparison
// (fsync latency of the machine).
//
//	go test -run '^$' -bench 'Stall|Baseline' -benchtime 5x ./internal/store/

func BenchmarkCompactWriterStall(b *testing.B) {
	var pause time.Duration
	var caught int
	benchStall(b, func(tb *Table) error {
		rep, err := tb.CompactReport()
		pause = max(pause, rep.Pause)
		caught = max(caught, rep.CaughtUp)
		return err
	})
	b.ReportMetric(float64(pause)/1e6, "max-pause-ms")
	b.ReportMetric(float64(caught), "max-caught-up-keys")
}

func BenchmarkBackupWriterStall(b *testing.B) {
	benchStall(b, func(tb *Table) error {
		_, err := tb.Backup(io.Discard)
		return err
	})
}

func BenchmarkBackupVerifiedWriterStall(b *testing.B) {
	dir := b.TempDir()
	benchStall(b, func(tb *Table) error {
		_, err := tb.BackupVerified(dir + "/b.db")
		return err
	})
}

func BenchmarkWriterLatencyBaseline(b *testing.B) {
	benchStall(b, func(*Table) error {
		time.Sleep(500 * time.Millisecond)
		return nil
	})
}

func benchStall(b *testing.B, op func(*Table) error) {
	const records = 100_000
	tb := openTemp(b, Options{})
	fill(b, tb, 0, records, 100)
	// Delete half so a compaction has real work, as after message expiry.
	if err := tb.Update(func(tx *Tx) error {
		for i := 0; i < records; i += 2 {
			if err := tx.Delete(key(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	var worstW, worstR, opTotal time.Duration
	// grown is how far the table's file grew during one operation: a
	// long read transaction keeps the pages writers free from being
	// reused, so their commits allocate at the end of the file, and every
	// growth is a truncate plus a full fsync inside bbolt's commit
	// (DB.grow), which every writer of the table waits for.
	var grown int64
	size := func() int64 {
		fi, err := os.Stat(tb.path)
		if err != nil {
			b.Fatal(err)
		}
		return fi.Size()
	}
	b.ResetTimer()
	for range b.N {
		stop := make(chan struct{})
		var during atomic.Bool
		var maxW, maxR atomic.Int64
		record := func(m *atomic.Int64, d time.Duration) {
			if !during.Load() {
				return
			}
			for {
				cur := m.Load()
				if int64(d) <= cur || m.CompareAndSwap(cur, int64(d)) {
					return
				}
			}
		}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for {
					select {
					case <-stop:
						return
					default:
					}
					i := rng.IntN(records)
					t0 := time.Now()
					if err := tb.Update(func(tx *Tx) error { return tx.Put(key(i), val(i, 100)) }); err != nil {
						b.Error(err)
						return
					}
					record(&maxW, time.Since(t0))
				}
			})
		}
		for r := range 2 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(r), 2))
				for {
					select {
					case <-stop:
						return
					default:
					}
					t0 := time.Now()
					_ = tb.View(func(tx *Tx) error { tx.Get(key(rng.IntN(records))); return nil })
					record(&maxR, time.Since(t0))
				}
			})
		}
		time.Sleep(100 * time.Millisecond)
		during.Store(true)
		t0, before := time.Now(), size()
		err := op(tb)
		opTotal += time.Since(t0)
		grown = max(grown, size()-before)
		// Let operations that started during op finish and be counted.
		time.Sleep(50 * time.Millisecond)
		during.Store(false)
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		worstW = max(worstW, time.Duration(maxW.Load()))
		worstR = max(worstR, time.Duration(maxR.Load()))
	}
	b.ReportMetric(float64(worstW)/1e6, "max-write-ms")
	b.ReportMetric(float64(worstR)/1e6, "max-read-ms")
	b.ReportMetric(float64(opTotal)/float64(b.N)/1e6, "op-ms")
	b.ReportMetric(float64(grown)/(1<<20), "max-grown-MiB")
}
