package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/internal/store"
)

// runStorage: a table of StorageRecords records (with some deleted space,
// as a live table has) takes durable single-record writes from
// StorageWriters goroutines the whole time; a hot backup and then a
// compaction run meanwhile. The longest write that overlapped each
// operation is its writer stall. It uses the store directly, in this
// process, whatever hub the other scenarios target.
func runStorage(ctx context.Context, r *runner, res *Result) error {
	o := r.o
	res.Hub = "local-store"
	res.Params = map[string]any{"records": o.StorageRecords, "writers": o.StorageWriters}
	dir, err := o.tempDir("store-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tbl, err := store.OpenTable("bench_records", filepath.Join(dir, "bench_records.db"), store.Options{})
	if err != nil {
		return err
	}
	defer tbl.Close()

	// Fill: a quarter more than asked, then delete that quarter, so the
	// file has free pages for the compaction to reclaim.
	extra := o.StorageRecords / 4
	total := o.StorageRecords + extra
	var filled atomic.Int64
	r.prog.begin("storage: fill", func() string { return fmt.Sprintf("%d/%d records", filled.Load(), total) })
	const batch = 2000
	for lo := 0; lo < total; lo += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+batch, total)
		err := tbl.Update(func(tx *store.Tx) error {
			for i := lo; i < hi; i++ {
				if err := tx.Put(recordKey(i), recordValue(i, 0)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		filled.Store(int64(hi))
	}
	err = tbl.Update(func(tx *store.Tx) error {
		for i := 0; i < extra; i++ {
			if err := tx.Delete(recordKey(i * 5)); err != nil { // spread over the file
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}

	// Writers: each records (start, duration) of every write.
	type op struct {
		at  time.Time
		dur time.Duration
	}
	ops := make([][]op, o.StorageWriters)
	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	var werr atomic.Pointer[error]
	for w := range o.StorageWriters {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for n := 1; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				k := rng.IntN(total)
				if k%5 == 0 {
					k++ // multiples of 5 were deleted; update live records only
				}
				start := time.Now()
				err := tbl.Update(func(tx *store.Tx) error { return tx.Put(recordKey(k), recordValue(k, n)) })
				ops[w] = append(ops[w], op{start, time.Since(start)})
				writes.Add(1)
				if err != nil {
					werr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	stopWriters := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	defer stopWriters()

	type window struct{ from, to time.Time }
	var baseline, snapshot, backup, compact window
	var phase atomic.Value
	phase.Store("baseline")
	r.prog.begin("storage", func() string { return fmt.Sprintf("%s, %d writes", phase.Load(), writes.Load()) })
	baseline.from = time.Now()
	if err := sleep(ctx, o.StoragePhase); err != nil {
		return err
	}
	baseline.to = time.Now()

	// The snapshot read alone (to io.Discard) separates what the read
	// transaction costs writers from what writing the file to disk does.
	phase.Store("snapshot")
	snapshot.from = time.Now()
	if _, err := tbl.Backup(io.Discard); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	snapshot.to = time.Now()
	if err := sleep(ctx, o.StoragePhase/2); err != nil {
		return err
	}

	phase.Store("backup")
	backupPath := filepath.Join(dir, "backup.db")
	backup.from = time.Now()
	info, err := tbl.BackupVerified(backupPath)
	backup.to = time.Now()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := sleep(ctx, o.StoragePhase/2); err != nil {
		return err
	}

	phase.Store("compaction")
	compact.from = time.Now()
	rep, err := tbl.CompactReport()
	compact.to = time.Now()
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := sleep(ctx, o.StoragePhase/2); err != nil {
		return err
	}
	stopWriters()
	if p := werr.Load(); p != nil {
		return fmt.Errorf("writer: %w", *p)
	}

	// The stall of a window is the longest write overlapping it.
	stall := func(w window) (time.Duration, int) {
		var longest time.Duration
		n := 0
		for _, list := range ops {
			for _, op := range list {
				if op.at.Before(w.to) && op.at.Add(op.dur).After(w.from) {
					longest = max(longest, op.dur)
					n++
				}
			}
		}
		return longest, n
	}
	var base latencies
	for _, list := range ops {
		for _, op := range list {
			if !op.at.Before(baseline.from) && op.at.Before(baseline.to) {
				base = append(base, op.dur)
			}
		}
	}
	slices.Sort(base)
	sStall, _ := stall(snapshot)
	bStall, bN := stall(backup)
	cStall, cN := stall(compact)
	full := o.StorageRecords >= 100000
	res.add(Figure{Name: "records", Value: float64(o.StorageRecords), Unit: "records"},
		Figure{Name: "baseline_writes", Value: rate(len(base), baseline.to.Sub(baseline.from)), Unit: "writes/s"},
		Figure{Name: "baseline_write_p99", Value: ms(base.quantile(0.99)), Unit: "ms"},
		Figure{Name: "baseline_write_max", Value: ms(base.max()), Unit: "ms"},
		Figure{Name: "snapshot_read_duration", Value: ms(snapshot.to.Sub(snapshot.from)), Unit: "ms"},
		Figure{Name: "snapshot_read_writer_stall", Value: ms(sStall), Unit: "ms"},
		Figure{Name: "backup_duration", Value: ms(backup.to.Sub(backup.from)), Unit: "ms"},
		Figure{Name: "backup_size", Value: mb(info.Bytes), Unit: "MB"},
		Figure{Name: "backup_writer_stall", Value: ms(bStall), Unit: "ms"})
	res.goal("backup_writer_stall", "≤ 10 ms with 100k records", full, bStall <= 10*time.Millisecond)
	res.add(Figure{Name: "compaction_duration", Value: ms(compact.to.Sub(compact.from)), Unit: "ms"},
		Figure{Name: "compaction_before", Value: mb(rep.BytesBefore), Unit: "MB"},
		Figure{Name: "compaction_after", Value: mb(rep.BytesAfter), Unit: "MB"},
		Figure{Name: "compaction_pause", Value: ms(rep.Pause), Unit: "ms"},
		Figure{Name: "compaction_writer_stall", Value: ms(cStall), Unit: "ms"})
	res.goal("compaction_writer_stall", "≤ 1 s with 100k records", full, cStall <= time.Second)
	res.note("%d writers doing one durable Update each, back to back; %d writes overlapped the backup, %d the compaction; the verified backup holds %d records; compaction re-copied %d keys written during its copy",
		o.StorageWriters, bN, cN, info.Records, rep.CaughtUp)
	res.note("snapshot_read = the backup's read transaction streamed to io.Discard (no disk writes); backup = BackupVerified, what the hub's backups run (temp file, fsync, integrity check, rename); compaction = CompactReport (online copy, then a pause for the catch-up and swap; compaction_pause is the store's own figure)")
	res.note("writer stall = the longest single Update that overlapped the operation; baseline = %v of the same writes without maintenance", o.StoragePhase)
	return nil
}

func recordKey(i int) []byte { return binary.BigEndian.AppendUint64([]byte("rec:"), uint64(i)) }

// recordValue is about 200 bytes, roughly a small task or message record.
func recordValue(i, version int) []byte {
	return fmt.Appendf(nil, `{"id":"rec-%012d","version":%d,"status":"queued","description":"benchmark record with a payload `+
		`long enough to resemble a real task description in the queue table","metadata":{"n":%d}}`, i, version, i)
}
