package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
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

// Storage events are the resilience package's (bus.TopicStorage); their
// payloads are read as JSON maps: table, tables, reason, trigger, results,
// failures, backup_used, record_count, duration_ms, bytes_saved and
// timestamp; any other key is forwarded to the browser untouched.

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

// toMap turns a bus payload into a JSON map (storage payloads may be maps
// or structs). A payload that is not an object becomes {"value": ...}.
func toMap(data any) map[string]any {
	if m, ok := data.(map[string]any); ok {
		cp := make(map[string]any, len(m))
		for k, v := range m {
			cp[k] = v
		}
		return roundTrip(cp)
	}
	if data == nil {
		return map[string]any{}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return map[string]any{"value": fmt.Sprint(data)}
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil || m == nil {
		var v any
		_ = json.Unmarshal(b, &v)
		return map[string]any{"value": v}
	}
	return m
}

// asMap is toMap without the copy, for payloads that are only read.
func asMap(data any) map[string]any {
	if m, ok := data.(map[string]any); ok {
		return m
	}
	if m, ok := data.(map[string]string); ok {
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return toMap(data)
}

// roundTrip makes a map JSON-safe (values the encoder cannot take become
// their printed form) so one bad value never breaks a snapshot.
func roundTrip(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		out := make(map[string]any, len(m))
		for k, v := range m {
			if _, err := json.Marshal(v); err != nil {
				out[k] = fmt.Sprint(v)
				continue
			}
			out[k] = v
		}
		return out
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// str reads a string field; non-strings are printed.
func str(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

// num reads a numeric field as int64 (0 when absent or not a number).
func num(m map[string]any, key string) int64 {
	if f, ok := m[key].(float64); ok {
		return int64(f)
	}
	return 0
}

// list reads an array of objects.
func list(m map[string]any, key string) []map[string]any {
	arr, _ := m[key].([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, e := range arr {
		if o, ok := e.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

// tablesOf names the tables a storage event is about: "table", "tables",
// or the tables of its results/failures.
func tablesOf(m map[string]any) []string {
	if t := str(m, "table"); t != "" {
		return []string{t}
	}
	var out []string
	if arr, ok := m["tables"].([]any); ok {
		for _, e := range arr {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	for _, key := range []string{"failures", "results"} {
		if len(out) > 0 {
			break
		}
		for _, r := range list(m, key) {
			if key == "results" && str(r, "status") != "error" && str(r, "status") != "failed" {
				continue
			}
			if t := str(r, "table"); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}
