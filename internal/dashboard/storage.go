package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/resilience"
)

// Storage is what the dashboard needs from the storage coordinator
// (package resilience). Every result must be JSON-encodable: it goes to
// the browser as is. A nil Storage means the storage panel is unavailable.
type Storage interface {
	// Health returns the storage health view: the dets_health object of
	// the snapshot. The dashboard reads these keys when present:
	//   tables[]: table, status ("ok", "degraded", ...), record_count,
	//     file_size_bytes, fragmentation_ratio, last_backup_at,
	//     last_verified_backup_at
	//   last_backup_at, last_verified_backup_at, last_compaction_at,
	//   compaction_history (newest first), degraded_tables
	Health(ctx context.Context) (any, error)
	// Backup backs every table up now.
	Backup(ctx context.Context) (any, error)
	// Compact compacts one table, or every table when table is "". force
	// skips the fragmentation threshold.
	Compact(ctx context.Context, table string, force bool) (any, error)
	// Restore restores table from backup (the latest when ""). A dry run
	// checks the backup and reports what would happen, changing nothing.
	Restore(ctx context.Context, table, backup string, dryRun bool) (any, error)
}

// ErrStorageUnavailable is returned for storage actions when the hub has
// no storage coordinator.
var ErrStorageUnavailable = errors.New("storage_unavailable")

// storageHealth is what the dashboard reads out of Storage.Health to
// compute health conditions. Unknown keys are ignored.
type storageHealth struct {
	Tables []struct {
		Table                string   `json:"table"`
		Status               string   `json:"status"`
		FragmentationRatio   *float64 `json:"fragmentation_ratio"`
		LastBackupAt         *int64   `json:"last_backup_at"`
		LastVerifiedBackupAt *int64   `json:"last_verified_backup_at"`
	} `json:"tables"`
	LastBackupAt      *int64            `json:"last_backup_at"`
	CompactionHistory []json.RawMessage `json:"compaction_history"`
	DegradedTables    []string          `json:"degraded_tables"`
}

// storageView is the cached result of the last Storage.Health call.
type storageView struct {
	raw       json.RawMessage // nil when unavailable
	parsed    storageHealth
	err       string
	updatedAt int64
}

// fetchStorage calls Storage.Health with a timeout and encodes the result
// once; a failure gives a view with err set and no data.
func fetchStorage(ctx context.Context, s Storage, timeout time.Duration) storageView {
	v := storageView{updatedAt: time.Now().UnixMilli()}
	if s == nil {
		v.err = "storage coordinator not configured"
		return v
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := s.Health(ctx)
	if err != nil {
		v.err = err.Error()
		return v
	}
	raw, err := json.Marshal(res)
	if err != nil {
		v.err = fmt.Sprintf("encode storage health: %v", err)
		return v
	}
	if string(raw) == "null" {
		v.err = "storage health empty"
		return v
	}
	v.raw = raw
	// A shape we do not understand still shows on the page; only the
	// health conditions lose their inputs.
	_ = json.Unmarshal(raw, &v.parsed)
	return v
}

// Storage events are the resilience package's *Event payloads
// (bus.TopicStorage). The aggregator and the push rules read their Go
// fields; storageEntryOf renders them for the browsers.

// storageEntry is a storage event in the events frame and, without
// Results, in the snapshot's storage log. One struct serves every kind:
// a nil pointer leaves out a key the kind does not have, a non-nil one
// keeps it even when zero, as each kind's payload encodes it.
type storageEntry struct {
	AsidePath      *string         `json:"aside_path,omitempty"`
	BackupDir      *string         `json:"backup_dir,omitempty"`
	BackupTime     *int64          `json:"backup_time,omitempty"`
	BackupUsed     *string         `json:"backup_used,omitempty"`
	DataLost       *bool           `json:"data_lost,omitempty"`
	Failures       *[]failureEntry `json:"failures,omitempty"`
	Reason         *string         `json:"reason,omitempty"`
	RecordCount    *int            `json:"record_count,omitempty"`
	ReloadErrors   []string        `json:"reload_errors,omitempty"`
	Results        any             `json:"results,omitempty"` // a typed slice of result entries (nil: null)
	Startup        bool            `json:"startup,omitempty"`
	Table          *string         `json:"table,omitempty"`
	TablesBackedUp *[]string       `json:"tables_backed_up,omitempty"`
	Timestamp      int64           `json:"timestamp"`
	Trigger        *string         `json:"trigger,omitempty"`
	Type           string          `json:"type"`
}

// compactionEntry is one run of the compaction history gathered from
// events.
type compactionEntry struct {
	Results   any    `json:"results"`
	Timestamp int64  `json:"timestamp"`
	Trigger   string `json:"trigger,omitempty"`
}

type failureEntry struct {
	Reason string `json:"reason"`
	Table  string `json:"table"`
}

type backupResultEntry struct {
	Path     string   `json:"path,omitempty"`
	Pruned   []string `json:"pruned,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Records  *int     `json:"records,omitempty"`
	Size     int64    `json:"size,omitempty"`
	Status   string   `json:"status"`
	Table    string   `json:"table"`
	Verified bool     `json:"verified,omitempty"`
}

// compactResultEntry always has duration_ms (0 when not measured).
type compactResultEntry struct {
	BytesAfter    int64    `json:"bytes_after,omitempty"`
	BytesBefore   int64    `json:"bytes_before,omitempty"`
	BytesSaved    int64    `json:"bytes_saved,omitempty"`
	DurationMs    int64    `json:"duration_ms"`
	Fragmentation *float64 `json:"fragmentation_ratio,omitempty"`
	PauseMs       *int64   `json:"pause_ms,omitempty"`
	Reason        string   `json:"reason,omitempty"`
	Retried       bool     `json:"retried,omitempty"`
	Status        string   `json:"status"`
	Table         string   `json:"table"`
}

type drillResultEntry struct {
	BackupUsed string `json:"backup_used,omitempty"`
	DurationMs int64  `json:"duration_ms"`
	Reason     string `json:"reason,omitempty"`
	Records    int    `json:"records"`
	Status     string `json:"status"`
	Table      string `json:"table"`
}

// storageEntryOf renders a storage event; false for any other payload.
func storageEntryOf(p bus.Payload) (storageEntry, bool) {
	var e storageEntry
	switch d := p.(type) {
	case resilience.BackupCompleteEvent:
		rs := make([]backupResultEntry, 0, len(d.Results))
		for _, r := range d.Results {
			rs = append(rs, backupResultEntry{Path: r.Path, Pruned: r.Pruned, Reason: r.Reason, Records: r.Records, Size: r.Size,
				Status: r.Status, Table: r.Table, Verified: r.Verified})
		}
		if d.Results == nil {
			rs = nil
		}
		e.Timestamp, e.BackupDir, e.TablesBackedUp, e.Trigger, e.Results = d.Timestamp, &d.BackupDir, &d.TablesBackedUp, &d.Trigger, rs
	case resilience.BackupFailedEvent:
		e.Timestamp, e.Failures, e.Reason, e.Trigger = d.Timestamp, failureEntries(d.Failures, false), &d.Reason, &d.Trigger
	case resilience.CompactionCompleteEvent:
		// Every result has a table, a status and a duration; an absent
		// list is an empty one.
		rs := make([]compactResultEntry, 0, len(d.Results))
		for _, r := range d.Results {
			c := compactResultEntry{BytesAfter: r.BytesAfter, BytesBefore: r.BytesBefore, BytesSaved: r.BytesSaved,
				Fragmentation: r.Fragmentation, PauseMs: r.PauseMs, Reason: r.Reason, Retried: r.Retried, Status: r.Status, Table: r.Table}
			if r.DurationMs != nil {
				c.DurationMs = *r.DurationMs
			}
			rs = append(rs, c)
		}
		e.Timestamp, e.Trigger, e.Results = d.Timestamp, &d.Trigger, rs
	case resilience.CompactionFailedEvent:
		// Always a list, every failure with a reason.
		e.Timestamp, e.Failures, e.Reason, e.Trigger = d.Timestamp, failureEntries(d.Failures, true), &d.Reason, &d.Trigger
	case resilience.DrillCompleteEvent:
		var rs []drillResultEntry
		if d.Results != nil {
			rs = make([]drillResultEntry, 0, len(d.Results))
		}
		for _, r := range d.Results {
			rs = append(rs, drillResultEntry{BackupUsed: r.BackupUsed, DurationMs: r.DurationMs, Reason: r.Reason, Records: r.Records,
				Status: r.Status, Table: r.Table})
		}
		e.Timestamp, e.Results = d.Timestamp, rs
	case resilience.DrillFailedEvent:
		e.Timestamp, e.Failures, e.Reason = d.Timestamp, failureEntries(d.Failures, false), &d.Reason
	case resilience.RecoveryCompleteEvent:
		e.Timestamp, e.Table, e.BackupUsed, e.BackupTime, e.RecordCount, e.Trigger = d.Timestamp, &d.Table, &d.BackupUsed, &d.BackupTime, &d.RecordCount, &d.Trigger
		e.Startup, e.Reason, e.AsidePath, e.ReloadErrors = d.Startup, nonEmpty(d.Reason), nonEmpty(d.AsidePath), d.ReloadErrors
	case resilience.RecoveryFailedEvent:
		e.Timestamp, e.Table, e.Reason, e.Trigger = d.Timestamp, &d.Table, &d.Reason, &d.Trigger
	case resilience.DegradedModeEvent:
		e.Timestamp, e.Table, e.Reason, e.Trigger, e.DataLost = d.Timestamp, &d.Table, &d.Reason, &d.Trigger, &d.DataLost
		e.AsidePath, e.Startup = nonEmpty(d.AsidePath), d.Startup
	default:
		return storageEntry{}, false
	}
	e.Type = p.EventType()
	return e, true
}

// failureEntries renders failures. normalized (compaction): never null,
// and a failure without a reason says "unknown".
func failureEntries(fs []resilience.Failure, normalized bool) *[]failureEntry {
	var out []failureEntry
	if fs != nil || normalized {
		out = make([]failureEntry, 0, len(fs))
	}
	for _, f := range fs {
		if normalized && f.Reason == "" {
			f.Reason = "unknown"
		}
		out = append(out, failureEntry{Reason: f.Reason, Table: f.Table})
	}
	return &out
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// failedTables names the tables of failures.
func failedTables(fs []resilience.Failure) []string {
	var out []string
	for _, f := range fs {
		if f.Table != "" {
			out = append(out, f.Table)
		}
	}
	return out
}

func failedStatus(s string) bool { return s == "error" || s == "failed" }

// backupErrorTables and drillErrorTables name the tables whose result
// failed.
func backupErrorTables(rs []resilience.BackupResult) []string {
	var out []string
	for _, r := range rs {
		if failedStatus(r.Status) && r.Table != "" {
			out = append(out, r.Table)
		}
	}
	return out
}

func drillErrorTables(rs []resilience.DrillResult) []string {
	var out []string
	for _, r := range rs {
		if failedStatus(r.Status) && r.Table != "" {
			out = append(out, r.Table)
		}
	}
	return out
}

// tablesOrAll is tables, or "all" when a failure names none.
func tablesOrAll(tables []string) []string {
	if len(tables) == 0 {
		return []string{"all"}
	}
	return tables
}

// objectOf is v as a JSON object, for the snapshot's lists that hold
// objects (Snapshot.Alerts, storagePanel.Events); v is one of the entry
// structs above, which always encode.
func objectOf(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}
