package resilience

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"
)

// BackupResponse is the result of a backup run and the JSON answer of
// POST /api/admin/backup: the original's fields (status, tables_total,
// tables_success, results) plus timestamp, trigger and backup_dir.
type BackupResponse struct {
	// Status is BackupComplete when every table was backed up,
	// BackupPartial when some were, BackupFailed when none was (or there
	// is no table); per-table outcomes are in results.
	Status        string         `json:"status"`
	TablesTotal   int            `json:"tables_total"`
	TablesSuccess int            `json:"tables_success"`
	Results       []BackupResult `json:"results"`
	Timestamp     int64          `json:"timestamp"`
	Trigger       string         `json:"trigger"`
	BackupDir     string         `json:"backup_dir"`
}

// BackupResult is one table's outcome. Status "ok": path and size are
// set, and the copy was verified (integrity check and record count) before
// it got its final name. Status "error": reason says why; no file under a
// backup name was written.
type BackupResult struct {
	Table    string   `json:"table"`
	Status   string   `json:"status"` // ok | error
	Path     string   `json:"path,omitempty"`
	Size     int64    `json:"size,omitempty"`
	Records  *int     `json:"records,omitempty"`
	Verified bool     `json:"verified,omitempty"`
	Pruned   []string `json:"pruned,omitempty"` // older backups removed by retention
	Reason   string   `json:"reason,omitempty"`
}

// Backup run statuses.
const (
	BackupComplete = "complete"
	BackupPartial  = "partial"
	BackupFailed   = "failed"
)

// Backup backs up every table now (POST /api/admin/backup): a consistent
// snapshot of each while writes continue, written to a temp name, fsynced,
// verified, renamed; then retention keeps the newest Config.Retention per
// table. A table that fails does not stop the run. It waits for any other
// maintenance operation to finish; the error is only ctx's.
func (c *Coordinator) Backup(ctx context.Context) (BackupResponse, error) {
	return c.backup(ctx, TriggerManual)
}

func (c *Coordinator) backup(ctx context.Context, trigger string) (BackupResponse, error) {
	if err := c.lockOp(ctx); err != nil {
		return BackupResponse{}, err
	}
	defer c.unlockOp()
	at := c.now()
	resp := BackupResponse{
		TablesTotal: len(c.names), Results: []BackupResult{},
		Timestamp: at.UnixMilli(), Trigger: trigger, BackupDir: c.layout.backups,
	}
	var done []string
	var failures []Failure
	for _, name := range c.names {
		if err := ctx.Err(); err != nil {
			return resp, err
		}
		res := c.backupTable(name, at)
		resp.Results = append(resp.Results, res)
		if res.Status == "ok" {
			resp.TablesSuccess++
			done = append(done, name)
		} else {
			failures = append(failures, Failure{Table: name, Reason: res.Reason})
		}
	}
	switch {
	case resp.TablesSuccess == resp.TablesTotal && resp.TablesTotal > 0:
		resp.Status = BackupComplete
	case resp.TablesSuccess > 0:
		resp.Status = BackupPartial
	default:
		resp.Status = BackupFailed
	}
	c.mu.Lock()
	c.lastBackup = &resp
	c.mu.Unlock()
	level := slog.LevelInfo
	if resp.Status != BackupComplete {
		level = slog.LevelError
	}
	c.log.Log(context.Background(), level, "backup run", "event", "backup_run", "status", resp.Status, "trigger", trigger,
		"tables_ok", resp.TablesSuccess, "tables_total", resp.TablesTotal)
	if len(done) > 0 {
		c.publish(EventBackupComplete, BackupCompleteEvent{
			Timestamp: resp.Timestamp, TablesBackedUp: done, BackupDir: c.layout.backups,
			Trigger: trigger, Results: resp.Results,
		})
	}
	if len(failures) > 0 {
		c.publish(EventBackupFailed, BackupFailedEvent{Timestamp: resp.Timestamp, Failures: failures, Reason: summary(failures), Trigger: trigger})
	}
	return resp, nil
}

// backupTable writes and verifies one table's backup, then prunes.
func (c *Coordinator) backupTable(name string, at time.Time) BackupResult {
	fail := func(err error) BackupResult {
		c.mu.Lock()
		c.state(name).lastBackupError = reason(err)
		c.mu.Unlock()
		c.log.Error("backup failed", "event", "backup_failed", "table", name, "error", reason(err))
		return BackupResult{Table: name, Status: "error", Reason: reason(err)}
	}
	t, err := c.table(name)
	if err != nil {
		return fail(err)
	}
	path := c.layout.newBackupPath(name, at)
	info, err := t.BackupVerified(path)
	if err != nil {
		// A copy failing verification was also reported to ReportError
		// by the store (ErrCorrupt): the worker checks the live table.
		return fail(err)
	}
	pruned, perr := c.layout.prune(name, c.cfg.Retention)
	if perr != nil {
		c.log.Warn("backup retention", "event", "backup_retention", "table", name, "error", perr.Error())
	}
	now := c.now().UnixMilli()
	c.mu.Lock()
	st := c.state(name)
	st.lastBackupAt = at.UnixMilli()
	st.lastBackupFile = filepath.Base(path)
	st.lastVerifiedAt = now
	st.lastBackupError = ""
	c.mu.Unlock()
	records := info.Records
	return BackupResult{
		Table: name, Status: "ok", Path: path, Size: info.Bytes,
		Records: &records, Verified: true, Pruned: pruned,
	}
}
