package resilience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/agentcom/agentcom/internal/store"
)

// The offline operations back `agentcom store check|compact|restore`: they
// work on the data directory of a stopped hub and refuse while a hub holds
// the files.

// ErrInUse: a table file is held open by another process (a running hub).
var ErrInUse = errors.New("table file in use: stop the hub first")

// CheckReport is the result of CheckOffline.
type CheckReport struct {
	OK     bool           `json:"ok"` // every table present verifies and none is degraded
	Tables []CheckedTable `json:"tables"`
}

// CheckedTable is one table of CheckOffline. Status: ok, missing, corrupt,
// in_use or error.
type CheckedTable struct {
	Table    string          `json:"table"`
	Path     string          `json:"path"`
	Status   string          `json:"status"`
	Records  int             `json:"records"`
	Error    string          `json:"error,omitempty"`
	Degraded *DegradedInfo   `json:"degraded,omitempty"`
	Backups  []CheckedBackup `json:"backups"`
}

// CheckedBackup is one backup file, verified. Status ok or corrupt/error.
type CheckedBackup struct {
	Name    string `json:"name"`
	Time    int64  `json:"time"`
	Size    int64  `json:"size"`
	Status  string `json:"status"`
	Records int    `json:"records"`
	Error   string `json:"error,omitempty"`
}

// CheckOffline verifies every table file and every backup under dir.
func CheckOffline(ctx context.Context, dir string, names []string, cfg Config) (CheckReport, error) {
	cfg = cfg.withDefaults()
	l := newLayout(dir, cfg)
	rep := CheckReport{OK: true, Tables: []CheckedTable{}}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		ct := CheckedTable{Table: name, Path: l.tablePath(name), Backups: []CheckedBackup{}}
		busy, err := inUse(ct.Path)
		switch {
		case err != nil:
			ct.Status, ct.Error = "error", reason(err)
		case busy:
			ct.Status, ct.Error = "in_use", ErrInUse.Error()
		default:
			n, err := store.CheckFile(ct.Path)
			switch {
			case err == nil:
				ct.Status, ct.Records = "ok", n
			case errors.Is(err, os.ErrNotExist):
				ct.Status = "missing"
			case errors.Is(err, store.ErrCorrupt):
				ct.Status, ct.Error = "corrupt", reason(err)
			default:
				ct.Status, ct.Error = "error", reason(err)
			}
		}
		if m, err := l.readMarker(name); err == nil && m != nil {
			ct.Degraded = &DegradedInfo{Since: m.Since, Reason: m.Reason, AsidePath: m.AsidePath}
			rep.OK = false
		}
		if ct.Status != "ok" && ct.Status != "missing" {
			rep.OK = false
		}
		files, err := l.listBackups(name)
		if err != nil {
			return rep, err
		}
		for _, f := range files {
			cb := CheckedBackup{Name: f.Name, Time: f.Time.UnixMilli(), Size: f.Size, Status: "ok"}
			if n, err := store.CheckFile(f.Path); err != nil {
				cb.Status, cb.Error = "corrupt", reason(err)
				if !errors.Is(err, store.ErrCorrupt) {
					cb.Status = "error"
				}
			} else {
				cb.Records = n
			}
			ct.Backups = append(ct.Backups, cb)
		}
		rep.Tables = append(rep.Tables, ct)
	}
	return rep, nil
}

// CompactOffline compacts one table (or all when table is "") of a
// stopped hub, with the same threshold and retry as the running hub.
func CompactOffline(ctx context.Context, dir string, names []string, cfg Config, table string, force bool, logger *slog.Logger) (CompactAllResponse, error) {
	db, err := openOffline(dir, names)
	if err != nil {
		return CompactAllResponse{}, err
	}
	defer db.Close()
	c := New(db, nil, cfg, logger)
	if table == "" {
		return c.CompactAll(ctx, force)
	}
	one, err := c.Compact(ctx, table, force)
	if err != nil {
		return CompactAllResponse{}, err
	}
	h := c.CompactionHistory()
	resp := CompactAllResponse{Status: "complete", TablesTotal: 1, Results: h[0].Results, Timestamp: h[0].Timestamp, Trigger: TriggerManual}
	switch one.Status {
	case "compacted":
		resp.TablesCompacted = 1
	case "skipped":
		resp.TablesSkipped = 1
	default:
		resp.TablesFailed = 1
	}
	return resp, nil
}

// openOffline opens every table, reporting a table held by a running hub
// as ErrInUse.
func openOffline(dir string, names []string) (*store.DB, error) {
	for _, name := range names {
		if busy, err := inUse(store.TablePath(dir, name)); err != nil {
			return nil, err
		} else if busy {
			return nil, fmt.Errorf("%s: %w", name, ErrInUse)
		}
	}
	db, err := store.Open(dir, names, store.Options{})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (%v)", ErrInUse, err)
	}
	return db, err
}

// RestoreOffline restores one table of a stopped hub from its newest
// verified backup, or the named one; dryRun only reports. It works on a
// damaged table file too (the file is kept under <data>/corrupt), and a
// successful restore ends that table's degraded mode. The replaced file is
// kept under <data>/replaced. With no usable
// backup it refuses and touches nothing.
func RestoreOffline(ctx context.Context, dir string, names []string, cfg Config, table, backupName string, dryRun bool) (RestoreResponse, error) {
	cfg = cfg.withDefaults()
	l := newLayout(dir, cfg)
	known := false
	for _, n := range names {
		known = known || n == table
	}
	if !known {
		return RestoreResponse{}, &UnknownTableError{Table: table, Valid: names}
	}
	if err := ctx.Err(); err != nil {
		return RestoreResponse{}, err
	}
	failed := func(err error) (RestoreResponse, error) {
		return RestoreResponse{Status: "failed", Table: table, Error: reason(err)}, err
	}
	path := l.tablePath(table)
	if busy, err := inUse(path); err != nil {
		return failed(err)
	} else if busy {
		return failed(ErrInUse)
	}
	b, records, err := pickBackup(l, table, backupName)
	if err != nil {
		return failed(err)
	}
	resp := RestoreResponse{Table: table, BackupUsed: &b.Name, RecordCount: records, FileSize: b.Size}
	bt := b.Time.UnixMilli()
	resp.BackupTime = &bt
	if n, err := store.CheckFile(path); err == nil {
		delta := records - n
		resp.RecordsBefore, resp.RecordsDelta = &n, &delta
	}
	if dryRun {
		resp.Status = "dry_run"
		return resp, nil
	}
	aside := l.asidePath(table, cfg.Now(), false)
	n, err := store.RestoreFile(b.Path, path, aside)
	if err != nil {
		return failed(err)
	}
	if _, err := os.Stat(aside); err == nil {
		resp.AsidePath = aside
	}
	if err := l.removeMarker(table); err != nil {
		return failed(err)
	}
	resp.Status, resp.RecordCount = "restored", n
	return resp, nil
}
