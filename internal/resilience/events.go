package resilience

import (
	"strings"

	"github.com/agentcom/agentcom/internal/bus"
)

// Event types published on bus.TopicStorage. Every payload is one of the
// *Event structs below: JSON-safe, reasons are plain strings, times are
// Unix milliseconds.
const (
	EventBackupComplete     = "backup_complete"
	EventBackupFailed       = "backup_failed"
	EventCompactionComplete = "compaction_complete"
	EventCompactionFailed   = "compaction_failed"
	EventRecoveryComplete   = "recovery_complete"
	EventRecoveryFailed     = "recovery_failed"
	EventDegradedMode       = "degraded_mode"
	EventDrillComplete      = "drill_complete"
	EventDrillFailed        = "drill_failed"
)

// Triggers: what started an operation.
const (
	TriggerScheduled = "scheduled"
	TriggerManual    = "manual"
	TriggerAuto      = "auto" // damage found by the hub itself (running, or at start: see Startup)
)

// Failure names one table an operation failed on.
type Failure struct {
	Table  string `json:"table"`
	Reason string `json:"reason"`
}

// BackupCompleteEvent is published after a backup run in which at least
// one table was backed up (a run with failures also publishes
// BackupFailedEvent).
type BackupCompleteEvent struct {
	Timestamp      int64          `json:"timestamp"`
	TablesBackedUp []string       `json:"tables_backed_up"`
	BackupDir      string         `json:"backup_dir"`
	Trigger        string         `json:"trigger"`
	Results        []BackupResult `json:"results"`
}

// BackupFailedEvent lists the tables a backup run could not back up.
// Reason sums the failures up in one line.
type BackupFailedEvent struct {
	Timestamp int64     `json:"timestamp"`
	Failures  []Failure `json:"failures"`
	Reason    string    `json:"reason"`
	Trigger   string    `json:"trigger"`
}

// CompactionCompleteEvent is published after every compaction run,
// whatever started it (schedule, all tables, one table).
type CompactionCompleteEvent struct {
	Timestamp int64           `json:"timestamp"`
	Results   []CompactResult `json:"results"`
	Trigger   string          `json:"trigger"`
}

// CompactionFailedEvent follows CompactionCompleteEvent when a table
// failed, whatever started the run.
type CompactionFailedEvent struct {
	Timestamp int64     `json:"timestamp"`
	Failures  []Failure `json:"failures"`
	Reason    string    `json:"reason"`
	Trigger   string    `json:"trigger"`
}

// RecoveryCompleteEvent: a table was restored from a verified backup.
// Degraded mode is never reported with this event. Startup is set when
// the damage was found by OpenDB before the hub started.
type RecoveryCompleteEvent struct {
	Timestamp    int64    `json:"timestamp"`
	Table        string   `json:"table"`
	BackupUsed   string   `json:"backup_used"`
	BackupTime   int64    `json:"backup_time"`
	RecordCount  int      `json:"record_count"`
	Trigger      string   `json:"trigger"`
	Startup      bool     `json:"startup,omitempty"`
	Reason       string   `json:"reason,omitempty"`
	AsidePath    string   `json:"aside_path,omitempty"`
	ReloadErrors []string `json:"reload_errors,omitempty"`
}

// RecoveryFailedEvent: a restore was attempted and failed.
type RecoveryFailedEvent struct {
	Timestamp int64  `json:"timestamp"`
	Table     string `json:"table"`
	Reason    string `json:"reason"`
	Trigger   string `json:"trigger"`
}

// DegradedModeEvent: a damaged table had no usable backup and now runs
// empty. The damaged file is kept at AsidePath.
type DegradedModeEvent struct {
	Timestamp int64  `json:"timestamp"`
	Table     string `json:"table"`
	Reason    string `json:"reason"`
	AsidePath string `json:"aside_path,omitempty"`
	Trigger   string `json:"trigger"`
	Startup   bool   `json:"startup,omitempty"`
	DataLost  bool   `json:"data_lost"`
}

// DrillCompleteEvent is published after a restore drill in which at least
// one table's backup restored cleanly.
type DrillCompleteEvent struct {
	Timestamp int64         `json:"timestamp"`
	Results   []DrillResult `json:"results"`
}

// DrillFailedEvent lists the tables whose newest backup failed the drill.
type DrillFailedEvent struct {
	Timestamp int64     `json:"timestamp"`
	Failures  []Failure `json:"failures"`
	Reason    string    `json:"reason"`
}

// Push is a web push notification for a storage event.
type Push struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// PushFor returns the notification an event calls for. Failures, automatic
// restores and degraded mode notify; successful backups, compactions,
// drills and manual restores are silent. The texts of the original hub's
// triggers are kept as they were.
func PushFor(e bus.Event) (Push, bool) {
	if e.Topic != bus.TopicStorage {
		return Push{}, false
	}
	const alert, critical = "AgentCom Alert", "AgentCom Critical"
	switch d := e.Data.(type) {
	case CompactionFailedEvent:
		return Push{alert, "DETS compaction failed: " + tables(d.Failures)}, true
	case RecoveryCompleteEvent:
		if d.Trigger == TriggerManual {
			return Push{}, false
		}
		return Push{alert, "DETS auto-restore: " + d.Table + " restored from backup"}, true
	case RecoveryFailedEvent:
		return Push{critical, "DETS recovery FAILED: " + d.Table + " -- " + d.Reason}, true
	case DegradedModeEvent:
		return Push{critical, "Storage DEGRADED: " + d.Table + " running empty after data loss -- " + d.Reason}, true
	case BackupFailedEvent:
		return Push{alert, "Storage backup failed: " + tables(d.Failures)}, true
	case DrillFailedEvent:
		return Push{alert, "Restore drill failed: " + tables(d.Failures)}, true
	}
	return Push{}, false
}

func tables(fs []Failure) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Table
	}
	return strings.Join(names, ", ")
}

// summary renders failures as one line: "t1: reason; t2: reason".
func summary(fs []Failure) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Table + ": " + f.Reason
	}
	return strings.Join(parts, "; ")
}

// publish sends an event on the storage topic; a nil bus (offline tools)
// drops it.
func (c *Coordinator) publish(typ string, data any) {
	if c.bus == nil {
		return
	}
	c.bus.Publish(bus.Event{Topic: bus.TopicStorage, Type: typ, Time: c.now().UnixMilli(), Data: data})
}
