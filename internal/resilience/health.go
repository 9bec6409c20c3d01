package resilience

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Health levels (Health.Status) and the original's health_status words.
const (
	StatusOK       = "ok"
	StatusWarning  = "warning"
	StatusCritical = "critical"
)

// backupGrace: how long after start "no backup yet" is not yet a warning
// (on top of Config.FirstBackupDelay).
const backupGrace = 15 * time.Minute

// Health is GET /api/admin/dets-health and the dashboard's dets_health:
// the original's fields (health_status, stale_backup, high_fragmentation,
// last_backup_at, tables, last_backup_results, last_compaction_at,
// compaction_history) plus an overall status with its reasons, degraded
// tables and drill time.
type Health struct {
	HealthStatus      string          `json:"health_status"` // healthy | warning | unhealthy
	StaleBackup       bool            `json:"stale_backup"`
	HighFragmentation bool            `json:"high_fragmentation"`
	LastBackupAt      *int64          `json:"last_backup_at"` // the oldest of the tables' newest backups; null when a table has none
	Tables            []TableHealth   `json:"tables"`
	LastBackupResults []BackupResult  `json:"last_backup_results"` // null before the first run since start
	LastCompactionAt  *int64          `json:"last_compaction_at"`
	CompactionHistory []CompactionRun `json:"compaction_history"`

	LastVerifiedBackupAt *int64 `json:"last_verified_backup_at"` // the oldest of the tables' last verifications

	Status         string   `json:"status"`  // ok | warning | critical
	Reasons        []string `json:"reasons"` // why, most severe first; empty when ok
	DegradedTables []string `json:"degraded_tables"`
	LastDrillAt    *int64   `json:"last_drill_at"`
	BackupDir      string   `json:"backup_dir"`
}

// TableHealth is one table: the original's table, status, record_count,
// file_size_bytes, fragmentation_ratio, plus space use, backup, compaction,
// drill and recovery times (Unix ms, null when never).
type TableHealth struct {
	Table              string  `json:"table"`
	Status             string  `json:"status"` // ok | unavailable | degraded
	RecordCount        int     `json:"record_count"`
	FileSizeBytes      int64   `json:"file_size_bytes"`
	FragmentationRatio float64 `json:"fragmentation_ratio"` // free pages / file size, 3 decimals
	UsedBytes          int64   `json:"used_bytes"`
	WastedBytes        int64   `json:"wasted_bytes"`

	LastBackupAt         *int64 `json:"last_backup_at"`
	LastBackupFile       string `json:"last_backup_file,omitempty"`
	LastVerifiedBackupAt *int64 `json:"last_verified_backup_at"` // when the newest backup was last proven good (write-time check or drill)
	LastBackupError      string `json:"last_backup_error,omitempty"`
	LastCompactionAt     *int64 `json:"last_compaction_at"`
	LastDrillAt          *int64 `json:"last_drill_at"` // last successful restore drill
	LastDrillError       string `json:"last_drill_error,omitempty"`

	Error        string        `json:"error,omitempty"` // why the table is unavailable
	LastError    string        `json:"last_error,omitempty"`
	LastErrorAt  *int64        `json:"last_error_at,omitempty"`
	Degraded     *DegradedInfo `json:"degraded,omitempty"`
	LastRecovery *RecoveryInfo `json:"last_recovery,omitempty"`
}

// DegradedInfo describes a table running empty after data loss.
type DegradedInfo struct {
	Since     int64  `json:"since"`
	Reason    string `json:"reason"`
	AsidePath string `json:"aside_path,omitempty"`
}

// Health computes the storage health now. It reads each table's statistics
// and never waits for a running backup, compaction or restore beyond the
// short pause of a file swap.
func (c *Coordinator) Health() Health {
	now := c.now()
	stats := make(map[string]TableHealth, len(c.names))
	frag := map[string]bool{}
	for _, name := range c.names {
		th := TableHealth{Table: name, Status: "ok"}
		st, err := c.db.Table(name).Stats()
		if err != nil {
			th.Status, th.Error = "unavailable", reason(err)
		} else {
			th.RecordCount, th.FileSizeBytes = st.Records, st.FileBytes
			th.FragmentationRatio = round3(st.Fragmentation)
			th.UsedBytes, th.WastedBytes = st.UsedBytes, st.FreeBytes
			frag[name] = c.highlyFragmented(st)
		}
		stats[name] = th
	}

	c.mu.Lock()
	h := Health{
		Tables: make([]TableHealth, 0, len(c.names)), CompactionHistory: slices.Clone(c.history),
		DegradedTables: []string{}, Reasons: []string{}, BackupDir: c.layout.backups,
	}
	if h.CompactionHistory == nil {
		h.CompactionHistory = []CompactionRun{}
	}
	if c.lastBackup != nil {
		h.LastBackupResults = slices.Clone(c.lastBackup.Results)
	}
	h.LastCompactionAt = optMs(c.lastCompact)
	h.LastDrillAt = optMs(c.lastDrill)
	started := c.started
	var critical, warning []string
	var fragmented, failedBackups, failedDrills, stale, noBackup, storageErrs []string
	oldest, oldestVerified := int64(-1), int64(-1)
	for _, name := range c.names {
		th := stats[name]
		st := c.state(name)
		th.LastBackupAt, th.LastBackupFile = optMs(st.lastBackupAt), st.lastBackupFile
		th.LastVerifiedBackupAt = optMs(st.lastVerifiedAt)
		th.LastBackupError = st.lastBackupError
		th.LastCompactionAt = optMs(st.lastCompactionAt)
		th.LastDrillAt, th.LastDrillError = optMs(st.lastDrillAt), st.lastDrillError
		th.LastError, th.LastErrorAt = st.lastError, optMs(st.lastErrorAt)
		th.LastRecovery = st.lastRecovery
		if st.degraded != nil {
			th.Status = "degraded"
			th.Degraded = &DegradedInfo{Since: st.degraded.Since, Reason: st.degraded.Reason, AsidePath: st.degraded.AsidePath}
			h.DegradedTables = append(h.DegradedTables, name)
			critical = append(critical, fmt.Sprintf("table %s running empty after data loss (degraded mode): %s", name, st.degraded.Reason))
		}
		if th.Error != "" {
			critical = append(critical, fmt.Sprintf("table %s unavailable: %s", name, th.Error))
		}
		if r := st.lastRecovery; r != nil && r.Status == "failed" {
			critical = append(critical, fmt.Sprintf("recovery of %s failed: %s", name, r.Reason))
		}
		if r := st.lastRecovery; r != nil && len(r.ReloadErrors) > 0 {
			warning = append(warning, fmt.Sprintf("state rebuild after restoring %s failed: %s", name, strings.Join(r.ReloadErrors, "; ")))
		}
		if frag[name] {
			fragmented = append(fragmented, name)
		}
		if st.lastBackupError != "" {
			failedBackups = append(failedBackups, name+" ("+st.lastBackupError+")")
		}
		if st.lastDrillError != "" {
			failedDrills = append(failedDrills, name+" ("+st.lastDrillError+")")
		}
		if st.lastError != "" && now.Sub(time.UnixMilli(st.lastErrorAt)) < time.Hour && st.degraded == nil && th.Error == "" {
			storageErrs = append(storageErrs, name+" ("+st.lastError+")")
		}
		switch {
		case st.lastBackupAt == 0:
			noBackup = append(noBackup, name)
			oldest = 0
		case now.Sub(time.UnixMilli(st.lastBackupAt)) > c.cfg.StaleBackupAfter:
			stale = append(stale, name)
		}
		if oldest != 0 && (oldest < 0 || st.lastBackupAt < oldest) {
			oldest = st.lastBackupAt
		}
		if oldestVerified < 0 || st.lastVerifiedAt < oldestVerified {
			oldestVerified = st.lastVerifiedAt
		}
		h.Tables = append(h.Tables, th)
	}
	c.mu.Unlock()

	if oldest > 0 {
		h.LastBackupAt = &oldest
	}
	if oldestVerified > 0 {
		h.LastVerifiedBackupAt = &oldestVerified
	}
	if len(noBackup) > 0 && now.Sub(started) > c.cfg.FirstBackupDelay+backupGrace {
		h.StaleBackup = true
		warning = append(warning, "backup never run: "+strings.Join(noBackup, ", "))
	}
	if len(stale) > 0 {
		h.StaleBackup = true
		age := now.Sub(time.UnixMilli(oldest)) / time.Hour
		warning = append(warning, fmt.Sprintf("backup stale: last backup %dh ago: %s", age, strings.Join(stale, ", ")))
	}
	if len(fragmented) > 0 {
		h.HighFragmentation = true
		warning = append(warning, fmt.Sprintf("fragmentation >%d%%: %s", int(c.cfg.HighFragmentation*100), strings.Join(fragmented, ", ")))
	}
	if len(failedBackups) > 0 {
		warning = append(warning, "last backup failed: "+strings.Join(failedBackups, "; "))
	}
	if len(failedDrills) > 0 {
		warning = append(warning, "restore drill failed: "+strings.Join(failedDrills, "; "))
	}
	if len(storageErrs) > 0 {
		warning = append(warning, "storage errors in the last hour: "+strings.Join(storageErrs, "; "))
	}
	h.Reasons = append(append(h.Reasons, critical...), warning...)
	switch {
	case len(critical) > 0:
		h.Status, h.HealthStatus = StatusCritical, "unhealthy"
	case len(warning) > 0:
		h.Status, h.HealthStatus = StatusWarning, "warning"
	default:
		h.Status, h.HealthStatus = StatusOK, "healthy"
	}
	return h
}

func optMs(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}
