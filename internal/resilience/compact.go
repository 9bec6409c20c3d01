package resilience

import (
	"context"
	"math"
	"time"

	"github.com/agentcom/agentcom/internal/store"
)

// historyCap is how many compaction runs the history keeps.
const historyCap = 20

// CompactResult is one table's compaction outcome, in run results, the
// history and events. Status "compacted", "skipped" (reason
// "below_threshold") or "error" (reason says why). duration_ms is present
// for compacted and error; retried only when the retry succeeded. Our
// additions: bytes before/after, the fragmentation that decided, and how
// long the table's users were paused.
type CompactResult struct {
	Table         string   `json:"table"`
	Status        string   `json:"status"`
	DurationMs    *int64   `json:"duration_ms,omitempty"`
	Reason        string   `json:"reason,omitempty"`
	Retried       bool     `json:"retried,omitempty"`
	BytesBefore   int64    `json:"bytes_before,omitempty"`
	BytesAfter    int64    `json:"bytes_after,omitempty"`
	BytesSaved    int64    `json:"bytes_saved,omitempty"`
	Fragmentation *float64 `json:"fragmentation_ratio,omitempty"`
	PauseMs       *int64   `json:"pause_ms,omitempty"`
}

// CompactAllResponse answers POST /api/admin/compact: the original's
// fields plus tables_failed, timestamp and trigger.
type CompactAllResponse struct {
	Status          string          `json:"status"` // always "complete"
	TablesTotal     int             `json:"tables_total"`
	TablesCompacted int             `json:"tables_compacted"`
	TablesSkipped   int             `json:"tables_skipped"`
	TablesFailed    int             `json:"tables_failed"`
	Results         []CompactResult `json:"results"`
	Timestamp       int64           `json:"timestamp"`
	Trigger         string          `json:"trigger"`
}

// CompactOneResponse answers POST /api/admin/compact/:table_name: the
// original's table, status and duration_ms (0 when skipped), plus reason,
// retried and sizes.
type CompactOneResponse struct {
	Table       string `json:"table"`
	Status      string `json:"status"`
	DurationMs  int64  `json:"duration_ms"`
	Reason      string `json:"reason,omitempty"`
	Retried     bool   `json:"retried,omitempty"`
	BytesBefore int64  `json:"bytes_before,omitempty"`
	BytesAfter  int64  `json:"bytes_after,omitempty"`
}

// CompactionRun is one history entry: one run, however started.
type CompactionRun struct {
	Timestamp int64           `json:"timestamp"`
	Trigger   string          `json:"trigger"`
	Results   []CompactResult `json:"results"`
}

// CompactAll compacts every table, one at a time (POST /api/admin/compact).
// Tables below the fragmentation threshold are skipped unless force.
func (c *Coordinator) CompactAll(ctx context.Context, force bool) (CompactAllResponse, error) {
	return c.compactAll(ctx, force, TriggerManual)
}

func (c *Coordinator) compactAll(ctx context.Context, force bool, trigger string) (CompactAllResponse, error) {
	if err := c.lockOp(ctx); err != nil {
		return CompactAllResponse{}, err
	}
	defer c.unlockOp()
	resp := CompactAllResponse{Status: "complete", TablesTotal: len(c.names), Results: []CompactResult{}, Trigger: trigger}
	resp.Timestamp = c.now().UnixMilli()
	for _, name := range c.names {
		if err := ctx.Err(); err != nil {
			return resp, err
		}
		r := c.compactTable(name, force)
		resp.Results = append(resp.Results, r)
		switch r.Status {
		case "compacted":
			resp.TablesCompacted++
		case "skipped":
			resp.TablesSkipped++
		default:
			resp.TablesFailed++
		}
	}
	c.finishCompaction(resp.Timestamp, trigger, resp.Results)
	return resp, nil
}

// Compact compacts one table (POST /api/admin/compact/:table_name), with
// the same threshold, retry, history entry and events as a full run. An
// unknown table gives an *UnknownTableError.
func (c *Coordinator) Compact(ctx context.Context, table string, force bool) (CompactOneResponse, error) {
	if _, err := c.table(table); err != nil {
		return CompactOneResponse{}, err
	}
	if err := c.lockOp(ctx); err != nil {
		return CompactOneResponse{}, err
	}
	defer c.unlockOp()
	at := c.now().UnixMilli()
	r := c.compactTable(table, force)
	c.finishCompaction(at, TriggerManual, []CompactResult{r})
	out := CompactOneResponse{
		Table: r.Table, Status: r.Status, Reason: r.Reason, Retried: r.Retried,
		BytesBefore: r.BytesBefore, BytesAfter: r.BytesAfter,
	}
	if r.DurationMs != nil {
		out.DurationMs = *r.DurationMs
	}
	return out, nil
}

// finishCompaction records a run in the history and publishes its events.
func (c *Coordinator) finishCompaction(at int64, trigger string, results []CompactResult) {
	run := CompactionRun{Timestamp: at, Trigger: trigger, Results: results}
	var failures []Failure
	c.mu.Lock()
	c.history = append([]CompactionRun{run}, c.history...)
	if len(c.history) > historyCap {
		c.history = c.history[:historyCap]
	}
	c.lastCompact = at
	for _, r := range results {
		switch r.Status {
		case "compacted":
			c.state(r.Table).lastCompactionAt = at
		case "error":
			failures = append(failures, Failure{Table: r.Table, Reason: r.Reason})
		}
	}
	c.mu.Unlock()
	c.publish(EventCompactionComplete, CompactionCompleteEvent{Timestamp: at, Results: results, Trigger: trigger})
	if len(failures) > 0 {
		c.publish(EventCompactionFailed, CompactionFailedEvent{Timestamp: at, Failures: failures, Reason: summary(failures), Trigger: trigger})
	}
}

// compactTable runs one table's compaction with retry-once: a failure is
// retried immediately (re-checking the threshold); durations add up.
// Caller holds the maintenance slot.
func (c *Coordinator) compactTable(name string, force bool) CompactResult {
	t, err := c.table(name)
	if err != nil {
		return CompactResult{Table: name, Status: "error", Reason: reason(err)}
	}
	r, err := c.compactOnce(t, force)
	if err == nil {
		return r
	}
	first := *r.DurationMs
	c.log.Warn("compaction failed, retrying once", "event", "compaction_failed_retrying_once", "table", name, "error", reason(err))
	r2, err2 := c.compactOnce(t, force)
	if r2.Status == "skipped" {
		return r2
	}
	total := first + *r2.DurationMs
	r2.DurationMs = &total
	if err2 != nil {
		c.log.Error("compaction failed after retry", "event", "compaction_failed_after_retry", "table", name, "error", reason(err2))
		return r2
	}
	r2.Retried = true
	return r2
}

// compactOnce runs one attempt. The error is nil for compacted and
// skipped; for an error result it is the cause.
func (c *Coordinator) compactOnce(t *store.Table, force bool) (CompactResult, error) {
	r := CompactResult{Table: t.Name()}
	start := time.Now()
	elapsed := func() *int64 { d := ms(time.Since(start)); return &d }
	st, err := t.Stats()
	if err != nil {
		r.Status, r.Reason, r.DurationMs = "error", reason(err), elapsed()
		return r, err
	}
	frag := round3(st.Fragmentation)
	r.Fragmentation, r.BytesBefore = &frag, st.FileBytes
	if !force && !c.worthCompacting(st) {
		r.Status, r.Reason = "skipped", "below_threshold"
		return r, nil
	}
	rep, err := t.CompactReport()
	r.DurationMs = elapsed()
	r.BytesBefore = rep.BytesBefore
	if err != nil {
		r.Status, r.Reason = "error", reason(err)
		return r, err
	}
	pause := ms(rep.Pause)
	r.Status, r.BytesAfter, r.PauseMs = "compacted", rep.BytesAfter, &pause
	r.BytesSaved = max(rep.BytesBefore-rep.BytesAfter, 0)
	return r, nil
}

// worthCompacting: fragmentation at or above the threshold and enough
// wasted bytes to matter (see Config.MinWasteBytes).
func (c *Coordinator) worthCompacting(st store.Stats) bool {
	return st.Fragmentation >= c.cfg.CompactThreshold && st.FreeBytes >= c.cfg.MinWasteBytes
}

// highlyFragmented is the health warning's test, with the same floor.
func (c *Coordinator) highlyFragmented(st store.Stats) bool {
	return st.Fragmentation > c.cfg.HighFragmentation && st.FreeBytes >= c.cfg.MinWasteBytes
}

// CompactionHistory returns the last runs, newest first.
func (c *Coordinator) CompactionHistory() []CompactionRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]CompactionRun, len(c.history))
	copy(out, c.history)
	return out
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
