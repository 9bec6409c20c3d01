package pgdriver

import (
	"context"
	"fmt"
)

// Health is what the hub reports about a PostgreSQL store in place of the
// embedded store's file health: the server, the schema version and each
// table's rows (the planner's estimate, free to read) and size on disk.
type Health struct {
	Driver        string        `json:"driver"`
	Server        string        `json:"server_version"`
	SchemaVersion int           `json:"schema_version"`
	LatestSchema  int           `json:"latest_schema_version"`
	DatabaseBytes int64         `json:"database_size_bytes"`
	Tables        []TableHealth `json:"tables"`
	// Maintenance says where backups, verification and restore are done
	// for this store: by PostgreSQL's own tools, not by the hub.
	Maintenance string `json:"maintenance"`
}

// TableHealth is one table of Health. The field names match the embedded
// store's health rows, so the dashboard shows both alike.
type TableHealth struct {
	Table       string `json:"table"`
	Status      string `json:"status"`
	RecordCount int64  `json:"record_count"`
	SizeBytes   int64  `json:"file_size_bytes"`
}

// MaintenanceNote is the answer to the hub's file-maintenance routes
// (backup, compact, restore, drill) on PostgreSQL.
const MaintenanceNote = "the store is PostgreSQL: back it up and restore it with PostgreSQL's tools " +
	"(pg_dump/pg_restore, or base backups with WAL archiving for point-in-time recovery); " +
	"PostgreSQL verifies pages itself (enable data checksums) and autovacuum compacts; " +
	"the hub's file backups, compaction, restore and drills apply to the embedded store only"

// Health reads the store's health.
func (d *Driver) Health(ctx context.Context) (Health, error) {
	h := Health{Driver: "postgres", Maintenance: MaintenanceNote, Tables: []TableHealth{}}
	var err error
	if h.SchemaVersion, h.LatestSchema, err = SchemaVersion(ctx, d.pool); err != nil {
		return h, fmt.Errorf("postgres health: %w", err)
	}
	if err := d.pool.QueryRow(ctx, "SELECT current_setting('server_version'), pg_database_size(current_database())").
		Scan(&h.Server, &h.DatabaseBytes); err != nil {
		return h, fmt.Errorf("postgres health: %w", err)
	}
	rows, err := d.pool.Query(ctx, `
		SELECT c.relname, greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid)
		FROM pg_class c
		WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
		ORDER BY c.relname`)
	if err != nil {
		return h, fmt.Errorf("postgres health: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		t := TableHealth{Status: "ok"}
		if err := rows.Scan(&t.Table, &t.RecordCount, &t.SizeBytes); err != nil {
			return h, fmt.Errorf("postgres health: %w", err)
		}
		h.Tables = append(h.Tables, t)
	}
	return h, rows.Err()
}
