package tasks

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/agentcom/agentcom/internal/storage"
)

// loadDecoder reads, on every core, the stored tasks a reload hands it
// while the store's scan goes on: decoding was most of a restart over a
// deep queue, and the scan itself is one goroutine. A task that is not
// active is only summarized (counted, its key and dependencies noted:
// Get and List read it from storage when asked); the active ones, and
// those carrying a usage report, are decoded in full. Rows are copied (the
// store's buffers are valid only during its callback) in batches, so the
// copies in flight stay bounded by the channel.
type loadDecoder struct {
	in      chan []pendingRow
	batch   []pendingRow
	arena   []byte // the current batch's body copies
	wg      sync.WaitGroup
	results [][]decodedRow // one per worker: no lock on the hot path
	errs    []error        // one per worker: the first decode error it met
	// progress, when set, counts the rows decoded so far (nil: none).
	progress *atomic.Int64
}

type pendingRow struct {
	table storage.TaskTable
	row   storage.TaskRow
}

// decodedRow is a loaded task: its summary, and the task itself when it
// was decoded in full (nil otherwise).
type decodedRow struct {
	table storage.TaskTable
	s     summary
	t     *Task
}

// loadBatch is how many rows go to a worker at once: large enough that
// the channel is not the cost, small enough to spread a small load.
const loadBatch = 256

// startLoadDecoder starts one worker per core; wait stops them. progress,
// when set, counts the decoded rows (one add per batch).
func startLoadDecoder(progress *atomic.Int64) *loadDecoder {
	n := max(runtime.GOMAXPROCS(0), 1)
	d := &loadDecoder{in: make(chan []pendingRow, 2*n), results: make([][]decodedRow, n), errs: make([]error, n),
		progress: progress}
	in := d.in // stop clears the field
	for w := range n {
		d.wg.Go(func() {
			for batch := range in {
				if d.errs[w] != nil {
					continue // drain: the load fails anyway
				}
				for _, p := range batch {
					r, err := loadRow(p.table, p.row)
					if err != nil {
						d.errs[w] = err
						break
					}
					d.results[w] = append(d.results[w], r)
				}
				if d.progress != nil {
					d.progress.Add(int64(len(batch)))
				}
			}
		})
	}
	return d
}

// add queues r for decoding, copying its body. It reports ctx's error
// once a batch is full and ctx has ended: a hub shut down while loading
// stops here rather than read the rest of the table.
func (d *loadDecoder) add(ctx context.Context, table storage.TaskTable, r storage.TaskRow) error {
	// One allocation per batch rather than per row. Should append move
	// the arena, earlier rows keep the old one, which holds their bytes.
	start := len(d.arena)
	d.arena = append(d.arena, r.Body...)
	r.Body = d.arena[start:len(d.arena):len(d.arena)]
	d.batch = append(d.batch, pendingRow{table, r})
	if len(d.batch) == loadBatch {
		d.in <- d.batch
		// The next batch is likely the size of this one.
		d.batch, d.arena = make([]pendingRow, 0, loadBatch), make([]byte, 0, len(d.arena))
		return ctx.Err()
	}
	return nil
}

// stop ends the workers (also when the load fails half way).
func (d *loadDecoder) stop() {
	if d.in != nil {
		close(d.in)
		d.in = nil
		d.wg.Wait()
	}
}

// wait decodes what is left, stops the workers and returns every decoded
// task, or the first error a worker met.
func (d *loadDecoder) wait() ([]decodedRow, error) {
	if len(d.batch) > 0 {
		d.in <- d.batch
		d.batch = nil
	}
	d.stop()
	n := 0
	for w, err := range d.errs {
		if err != nil {
			return nil, err
		}
		n += len(d.results[w])
	}
	out := make([]decodedRow, 0, n)
	for _, rs := range d.results {
		out = append(out, rs...)
	}
	return out, nil
}

// loadRow summarizes a stored task, or decodes it in full when the
// reload needs all of it (or when the summary reader cannot vouch for
// the body: then the decoder answers, or reports the error).
func loadRow(table storage.TaskTable, r storage.TaskRow) (decodedRow, error) {
	s, ok := summarize(r.Body, table == storage.TasksLive)
	if ok && !s.HasUsage && (table != storage.TasksLive || !s.Status.Active()) {
		return decodedRow{table: table, s: s}, nil
	}
	t, err := taskOf(r)
	if err != nil {
		return decodedRow{}, err
	}
	s = summary{ID: t.ID, Status: t.Status, Priority: t.Priority, CreatedAt: t.CreatedAt,
		UpdatedAt: t.UpdatedAt, UniqueKey: t.UniqueKey, UniqueUntil: t.UniqueUntil, DependsOn: t.DependsOn, HasUsage: t.Usage != nil}
	return decodedRow{table: table, s: s, t: t}, nil
}
