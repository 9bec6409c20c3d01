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

// Every event is a bus.Payload on bus.TopicStorage; the push texts they
// call for are dashboard.Rule's.
var (
	_ bus.Payload = BackupCompleteEvent{}
	_ bus.Payload = BackupFailedEvent{}
	_ bus.Payload = CompactionCompleteEvent{}
	_ bus.Payload = CompactionFailedEvent{}
	_ bus.Payload = RecoveryCompleteEvent{}
	_ bus.Payload = RecoveryFailedEvent{}
	_ bus.Payload = DegradedModeEvent{}
	_ bus.Payload = DrillCompleteEvent{}
	_ bus.Payload = DrillFailedEvent{}
)

func (BackupCompleteEvent) Topic() string     { return bus.TopicStorage }
func (BackupFailedEvent) Topic() string       { return bus.TopicStorage }
func (CompactionCompleteEvent) Topic() string { return bus.TopicStorage }
func (CompactionFailedEvent) Topic() string   { return bus.TopicStorage }
func (RecoveryCompleteEvent) Topic() string   { return bus.TopicStorage }
func (RecoveryFailedEvent) Topic() string     { return bus.TopicStorage }
func (DegradedModeEvent) Topic() string       { return bus.TopicStorage }
func (DrillCompleteEvent) Topic() string      { return bus.TopicStorage }
func (DrillFailedEvent) Topic() string        { return bus.TopicStorage }

func (BackupCompleteEvent) EventType() string     { return EventBackupComplete }
func (BackupFailedEvent) EventType() string       { return EventBackupFailed }
func (CompactionCompleteEvent) EventType() string { return EventCompactionComplete }
func (CompactionFailedEvent) EventType() string   { return EventCompactionFailed }
func (RecoveryCompleteEvent) EventType() string   { return EventRecoveryComplete }
func (RecoveryFailedEvent) EventType() string     { return EventRecoveryFailed }
func (DegradedModeEvent) EventType() string       { return EventDegradedMode }
func (DrillCompleteEvent) EventType() string      { return EventDrillComplete }
func (DrillFailedEvent) EventType() string        { return EventDrillFailed }

// summary renders failures as one line: "t1: reason; t2: reason".
func summary(fs []Failure) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Table + ": " + f.Reason
	}
	return strings.Join(parts, "; ")
}

// publish sends an event on the storage topic; a nil bus (offline tools)
// drops it. The payload names its own type; typ only keeps the call sites
// reading as a list of what is announced (the tests wait for events by
// their type, so a payload published under the wrong name fails them).
func (c *Coordinator) publish(typ string, data bus.Payload) {
	if c.bus == nil {
		return
	}
	bus.PublishAt(c.bus, c.now().UnixMilli(), data)
}
