package resilience

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/agentcom/agentcom/internal/store"
)

// DrillResponse is the result of a restore drill.
type DrillResponse struct {
	Timestamp int64         `json:"timestamp"`
	Results   []DrillResult `json:"results"`
}

// DrillResult is one table's drill: its newest backup restored into the
// scratch directory, opened as the hub opens a table, checked, and its
// record count compared with the backup's. Status ok, error, or skipped
// (no backup yet).
type DrillResult struct {
	Table      string `json:"table"`
	Status     string `json:"status"`
	BackupUsed string `json:"backup_used,omitempty"`
	Records    int    `json:"records"`
	DurationMs int64  `json:"duration_ms"`
	Reason     string `json:"reason,omitempty"`
}

// Drill proves every table's newest backup restorable, without touching
// the live tables. It runs after a scheduled backup when one is due (see
// Config.DrillInterval) and can be run on demand.
func (c *Coordinator) Drill(ctx context.Context) (DrillResponse, error) {
	if err := c.lockOp(ctx); err != nil {
		return DrillResponse{}, err
	}
	defer c.unlockOp()
	resp := DrillResponse{Timestamp: c.now().UnixMilli(), Results: []DrillResult{}}
	var failures []Failure
	anyOK := false
	for _, name := range c.names {
		if err := ctx.Err(); err != nil {
			return resp, err
		}
		r := c.drillTable(name)
		resp.Results = append(resp.Results, r)
		now := c.now().UnixMilli()
		c.mu.Lock()
		st := c.state(name)
		switch r.Status {
		case "ok":
			anyOK = true
			st.lastDrillAt, st.lastDrillError = now, ""
			st.lastVerifiedAt = now
		case "error":
			st.lastDrillError = r.Reason
			failures = append(failures, Failure{Table: name, Reason: r.Reason})
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.lastDrill = resp.Timestamp
	c.mu.Unlock()
	if anyOK {
		c.publish(EventDrillComplete, DrillCompleteEvent(resp))
	}
	if len(failures) > 0 {
		c.log.Error("restore drill failed", "event", "restore_drill_failed", "failures", len(failures))
		c.publish(EventDrillFailed, DrillFailedEvent{Timestamp: resp.Timestamp, Failures: failures, Reason: summary(failures)})
	}
	return resp, nil
}

func (c *Coordinator) drillTable(name string) DrillResult {
	start := time.Now()
	r := DrillResult{Table: name}
	fail := func(err error) DrillResult {
		r.Status, r.Reason, r.DurationMs = "error", reason(err), ms(time.Since(start))
		return r
	}
	files, err := c.layout.listBackups(name)
	if err != nil {
		return fail(err)
	}
	if len(files) == 0 {
		r.Status, r.Reason = "skipped", "no backup yet"
		return r
	}
	b := files[0]
	r.BackupUsed = b.Name
	want, err := store.CheckFile(b.Path)
	if err != nil {
		return fail(err)
	}
	scratch := filepath.Join(c.layout.scratch, name+store.FileExt)
	if err := os.MkdirAll(c.layout.scratch, 0o700); err != nil {
		return fail(err)
	}
	defer store.RemoveTableFile(scratch)
	_ = os.Remove(scratch)
	if _, err := store.RestoreFile(b.Path, scratch, ""); err != nil {
		return fail(err)
	}
	t, err := store.OpenTable(name, scratch, store.Options{})
	if err != nil {
		return fail(fmt.Errorf("restored copy does not open: %w", err))
	}
	got, cerr := t.CheckCount()
	n, nerr := t.Count()
	if err := t.Close(); err != nil && cerr == nil {
		cerr = err
	}
	switch {
	case cerr != nil:
		return fail(fmt.Errorf("restored copy fails its check: %w", cerr))
	case nerr != nil:
		return fail(nerr)
	case got != want || n != want:
		return fail(fmt.Errorf("restored copy holds %d records (check %d), the backup %d", n, got, want))
	}
	r.Status, r.Records, r.DurationMs = "ok", n, ms(time.Since(start))
	return r
}
