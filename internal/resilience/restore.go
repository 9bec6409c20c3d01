package resilience

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/agentcom/agentcom/internal/store"
)

// RestoreResponse answers POST /api/admin/restore/:table_name. A restore
// has status "restored" with the original's table, backup_used,
// record_count and file_size, plus the backup's time, the record count
// before, where the replaced file was kept and any reload errors. A dry
// run has status "dry_run" and says what would change; nothing is touched.
// A failed restore has status "failed" and error (HTTP 500 in the
// original).
type RestoreResponse struct {
	Status        string   `json:"status"` // restored | dry_run | failed
	Table         string   `json:"table"`
	BackupUsed    *string  `json:"backup_used"`
	BackupTime    *int64   `json:"backup_time,omitempty"`
	RecordCount   int      `json:"record_count"`
	FileSize      int64    `json:"file_size"`
	RecordsBefore *int     `json:"records_before,omitempty"` // nil when the live table cannot be read
	RecordsDelta  *int     `json:"records_delta,omitempty"`  // record_count - records_before
	AsidePath     string   `json:"aside_path,omitempty"`
	ReloadErrors  []string `json:"reload_errors,omitempty"`
	Error         string   `json:"error,omitempty"`
}

// Restore replaces a table with a verified backup: the newest one that
// verifies, or the one named by backupName (a file name from the table's
// backup directory). With dryRun nothing is touched and the response says
// what would change. With no usable backup it refuses and touches nothing:
// ErrNoBackup, ErrBackupNotFound or ErrBackupUnusable (the response then
// has status "failed"). The replaced file is kept under <data>/replaced.
// Users of the table pause (gates) while the file is swapped and the
// reloaders rebuild their state. A successful restore ends degraded mode.
func (c *Coordinator) Restore(ctx context.Context, table, backupName string, dryRun bool) (RestoreResponse, error) {
	t, err := c.table(table)
	if err != nil {
		return RestoreResponse{}, err
	}
	if err := c.lockOp(ctx); err != nil {
		return RestoreResponse{}, err
	}
	defer c.unlockOp()
	failed := func(err error) (RestoreResponse, error) {
		return RestoreResponse{Status: "failed", Table: table, Error: reason(err)}, err
	}
	b, records, err := pickBackup(c.layout, table, backupName)
	if err != nil {
		return failed(err)
	}
	resp := RestoreResponse{Table: table, BackupUsed: &b.Name, RecordCount: records, FileSize: b.Size}
	bt := b.Time.UnixMilli()
	resp.BackupTime = &bt
	if n, err := t.Count(); err == nil {
		delta := records - n
		resp.RecordsBefore, resp.RecordsDelta = &n, &delta
	}
	if dryRun {
		resp.Status = "dry_run"
		return resp, nil
	}
	out, err := c.restoreFrom(ctx, t, b, TriggerManual, "")
	if err != nil {
		return failed(err)
	}
	resp.Status = "restored"
	resp.RecordCount, resp.AsidePath, resp.ReloadErrors = out.records, out.aside, out.reloadErrors
	if fi, err := os.Stat(t.Path()); err == nil {
		resp.FileSize = fi.Size()
	}
	return resp, nil
}

// pickBackup finds the backup to restore: the named one (which must
// verify), or the newest that verifies. It returns its record count.
func pickBackup(l layout, table, name string) (backupFile, int, error) {
	files, err := l.listBackups(table)
	if err != nil {
		return backupFile{}, 0, err
	}
	if name != "" {
		for _, f := range files {
			if f.Name == name {
				n, err := store.CheckFile(f.Path)
				if err != nil {
					return backupFile{}, 0, fmt.Errorf("%w: %s: %v", ErrBackupUnusable, name, err)
				}
				return f, n, nil
			}
		}
		return backupFile{}, 0, fmt.Errorf("%w: %q for table %s", ErrBackupNotFound, name, table)
	}
	var bad []string
	for _, f := range files {
		n, err := store.CheckFile(f.Path)
		if err == nil {
			return f, n, nil
		}
		bad = append(bad, f.Name+": "+reason(err))
	}
	if len(bad) > 0 {
		return backupFile{}, 0, fmt.Errorf("%w for %s (%d backups fail verification: %s)", ErrNoBackup, table, len(bad), strings.Join(bad, "; "))
	}
	return backupFile{}, 0, fmt.Errorf("%w for %s", ErrNoBackup, table)
}

type restoreOutcome struct {
	records      int
	aside        string
	reloadErrors []string
}

// restoreFrom swaps backup b in for table t with its users paused, runs
// the reloaders, records the outcome and publishes recovery_complete or
// recovery_failed. Caller holds the maintenance slot.
func (c *Coordinator) restoreFrom(ctx context.Context, t *store.Table, b backupFile, trigger, why string) (restoreOutcome, error) {
	name := t.Name()
	aside := c.layout.asidePath(name, c.now(), trigger != TriggerManual)
	var out restoreOutcome
	err := c.swapPaused(ctx, name, func() error {
		n, err := t.Restore(b.Path, aside)
		out.records = n
		return err
	}, &out.reloadErrors)
	now := c.now().UnixMilli()
	if err != nil {
		c.recordRecovery(name, &RecoveryInfo{At: now, Status: "failed", Trigger: trigger, BackupUsed: b.Name, Reason: reason(err)}, false)
		c.log.Error("restore failed", "event", "restore_failed", "table", name, "backup", b.Name, "trigger", trigger, "error", reason(err))
		c.publish(EventRecoveryFailed, RecoveryFailedEvent{Timestamp: now, Table: name, Reason: reason(err), Trigger: trigger})
		return out, err
	}
	if _, statErr := os.Stat(aside); statErr == nil {
		out.aside = aside
	}
	c.recordRecovery(name, &RecoveryInfo{At: now, Status: "restored", Trigger: trigger, BackupUsed: b.Name, Reason: why, ReloadErrors: out.reloadErrors}, true)
	c.log.Warn("table restored from backup", "event", "table_restored_from_backup", "table", name, "backup", b.Name, "records", out.records, "trigger", trigger, "aside", out.aside)
	c.publish(EventRecoveryComplete, RecoveryCompleteEvent{
		Timestamp: now, Table: name, BackupUsed: b.Name, BackupTime: b.Time.UnixMilli(),
		RecordCount: out.records, Trigger: trigger, Reason: why, AsidePath: out.aside,
		ReloadErrors: out.reloadErrors,
	})
	return out, nil
}

// swapPaused holds table's gates around swap and the reloaders.
func (c *Coordinator) swapPaused(ctx context.Context, table string, swap func() error, reloadErrs *[]string) error {
	c.mu.Lock()
	gates := append([]sync.Locker(nil), c.gates[table]...)
	reloaders := append([]func(context.Context) error(nil), c.reloaders[table]...)
	c.mu.Unlock()
	for _, g := range gates {
		g.Lock()
	}
	defer func() {
		for i := len(gates) - 1; i >= 0; i-- {
			gates[i].Unlock()
		}
	}()
	if err := swap(); err != nil {
		return err
	}
	for _, fn := range reloaders {
		if err := fn(ctx); err != nil {
			*reloadErrs = append(*reloadErrs, reason(err))
			c.log.Error("reload after restore", "event", "reload_after_restore", "table", table, "error", reason(err))
		}
	}
	return nil
}

// recordRecovery stores the last recovery; a successful restore ends
// degraded mode.
func (c *Coordinator) recordRecovery(table string, info *RecoveryInfo, clearDegraded bool) {
	if clearDegraded {
		if err := c.layout.removeMarker(table); err != nil {
			c.log.Error("remove degraded marker", "event", "remove_degraded_marker", "table", table, "error", err.Error())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state(table)
	st.lastRecovery = info
	if clearDegraded {
		st.degraded = nil
		st.lastError = ""
	}
}

// handleCorruption is the automatic path for a reported corruption: the
// live table is checked first (a report can be stale: an earlier restore
// may already have replaced the file); a damaged table is restored from the
// newest backup that verifies, trying older ones if needed; with none it
// enters degraded mode.
func (c *Coordinator) handleCorruption(ctx context.Context, table string, report error) {
	t, err := c.table(table)
	if err != nil {
		return
	}
	if err := c.lockOp(ctx); err != nil {
		return
	}
	defer c.unlockOp()
	if _, err := t.CheckCount(); err == nil {
		c.log.Info("reported damage not confirmed by a full check", "event", "reported_damage_not_confirmed_by_a_full", "table", table, "report", reason(report))
		return
	} else if !errors.Is(err, store.ErrCorrupt) {
		c.log.Error("cannot check reported table", "event", "cannot_check_reported_table", "table", table, "error", reason(err))
		return
	}
	c.recoverTable(ctx, t, TriggerAuto, "corruption detected: "+reason(report))
}

// recoverTable restores t from the newest usable backup or degrades it.
// Caller holds the maintenance slot.
func (c *Coordinator) recoverTable(ctx context.Context, t *store.Table, trigger, why string) {
	name := t.Name()
	files, err := c.layout.listBackups(name)
	if err != nil {
		c.log.Error("list backups", "event", "list_backups", "table", name, "error", reason(err))
	}
	var problems []string
	for _, f := range files {
		if _, err := store.CheckFile(f.Path); err != nil {
			problems = append(problems, f.Name+" fails verification: "+reason(err))
			continue
		}
		if _, err := c.restoreFrom(ctx, t, f, trigger, why); err != nil {
			problems = append(problems, f.Name+": "+reason(err))
			continue
		}
		return
	}
	cause := why + "; no usable backup"
	if len(problems) > 0 {
		cause += " (" + strings.Join(problems, "; ") + ")"
	}
	c.degrade(ctx, t, trigger, cause)
}

// degrade resets t to an empty table, keeping the damaged file aside, and
// makes the condition loud and persistent: a marker file (critical health
// until acknowledged or restored), degraded_mode event and push.
func (c *Coordinator) degrade(ctx context.Context, t *store.Table, trigger, why string) {
	name := t.Name()
	aside := c.layout.asidePath(name, c.now(), true)
	var reloadErrs []string
	err := c.swapPaused(ctx, name, func() error { return t.Reset(aside) }, &reloadErrs)
	now := c.now().UnixMilli()
	if err != nil {
		c.recordRecovery(name, &RecoveryInfo{At: now, Status: "failed", Trigger: trigger, Reason: why + "; reset failed: " + reason(err)}, false)
		c.log.Error("degraded-mode reset failed", "event", "degraded_mode_reset_failed", "table", name, "error", reason(err))
		c.publish(EventRecoveryFailed, RecoveryFailedEvent{Timestamp: now, Table: name, Reason: why + "; reset failed: " + reason(err), Trigger: trigger})
		return
	}
	if _, err := os.Stat(aside); err != nil {
		aside = ""
	}
	c.enterDegraded(marker{Table: name, Since: now, Reason: why, AsidePath: aside, Trigger: trigger}, reloadErrs)
}

// enterDegraded records and announces degraded mode.
func (c *Coordinator) enterDegraded(m marker, reloadErrs []string) {
	if err := c.layout.writeMarker(m); err != nil {
		c.log.Error("write degraded marker", "event", "write_degraded_marker", "table", m.Table, "error", err.Error())
	}
	c.mu.Lock()
	st := c.state(m.Table)
	st.degraded = &m
	st.lastRecovery = &RecoveryInfo{At: m.Since, Status: "degraded", Trigger: m.Trigger, Reason: m.Reason, ReloadErrors: reloadErrs}
	c.mu.Unlock()
	c.log.Error("table running empty after data loss (degraded mode)", "event", "table_running_empty_after_data_loss_degr", "table", m.Table, "reason", m.Reason, "aside", m.AsidePath)
	c.publish(EventDegradedMode, DegradedModeEvent{
		Timestamp: m.Since, Table: m.Table, Reason: m.Reason, AsidePath: m.AsidePath, Trigger: m.Trigger,
		Startup: m.Startup, DataLost: true,
	})
}

// AcknowledgeDegraded ends the degraded-mode alarm of a table after the
// operator dealt with it (the damaged file stays where it was kept).
func (c *Coordinator) AcknowledgeDegraded(table string) error {
	if _, err := c.table(table); err != nil {
		return err
	}
	c.mu.Lock()
	st := c.state(table)
	was := st.degraded != nil
	st.degraded = nil
	c.mu.Unlock()
	if err := c.layout.removeMarker(table); err != nil {
		return fmt.Errorf("acknowledge %s: %w", table, err)
	}
	if !was {
		return fmt.Errorf("acknowledge %s: %w", table, ErrNotDegraded)
	}
	c.log.Info("degraded mode acknowledged", "event", "degraded_mode_acknowledged", "table", table)
	return nil
}

// Backups lists a table's backups, newest first, as the admin API shows
// them (name, time, size).
func (c *Coordinator) Backups(table string) ([]BackupInfo, error) {
	if _, err := c.table(table); err != nil {
		return nil, err
	}
	files, err := c.layout.listBackups(table)
	if err != nil {
		return nil, err
	}
	out := make([]BackupInfo, len(files))
	for i, f := range files {
		out[i] = BackupInfo{Name: f.Name, Time: f.Time.UnixMilli(), Size: f.Size, Path: filepath.Join(c.layout.backupDir(table), f.Name)}
	}
	return out, nil
}

// BackupInfo describes one backup file.
type BackupInfo struct {
	Name string `json:"name"`
	Time int64  `json:"time"`
	Size int64  `json:"size"`
	Path string `json:"path"`
}
