package resilience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/agentcom/agentcom/internal/store"
)

// StartupReport says what OpenDB found and did, per table.
type StartupReport struct {
	Tables []StartupTable `json:"tables"`
}

// StartupTable is one table at startup. Action: "ok" (verified clean),
// "created" (new, empty), "restored" (damaged or missing, restored from
// BackupUsed) or "degraded" (damaged or missing with no usable backup: now
// empty, the damaged file kept at AsidePath).
type StartupTable struct {
	Table   string `json:"table"`
	Action  string `json:"action"`
	Records int    `json:"records"`
	// Skipped: the full check did not run, because the table's clean-close
	// marker matched its file (cleanmark.go); Records is then not counted.
	Skipped    bool     `json:"skipped,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	BackupUsed string   `json:"backup_used,omitempty"`
	BackupTime int64    `json:"backup_time,omitempty"`
	AsidePath  string   `json:"aside_path,omitempty"`
	Problems   []string `json:"problems,omitempty"` // backups that could not be used
}

// Recovered lists the tables restored or degraded at startup.
func (r *StartupReport) Recovered() []string {
	var out []string
	for _, t := range r.Tables {
		if t.Action == "restored" || t.Action == "degraded" {
			out = append(out, t.Table)
		}
	}
	return out
}

// OpenDB opens the hub's tables, before any domain package reads them.
// Every existing table file is verified in full first, unless its
// clean-close marker shows it unchanged since a clean close; a damaged one (or a
// missing one that has backups) is restored from its newest backup that
// verifies, or, with none, replaced by an empty table in degraded mode
// (marker file written; NoteStartup announces it). Damaged files are kept
// under <data>/corrupt. An I/O error that is not damage stops the start.
func OpenDB(ctx context.Context, dir string, names []string, cfg Config, logger *slog.Logger) (*store.DB, *StartupReport, error) {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("component", "resilience")
	l := newLayout(dir, cfg)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data dir: %w", err)
	}
	// MkdirAll leaves an existing directory's mode alone: the data holds
	// hashed tokens and every message, so it is the owner's only.
	if fi, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	} else if perm := fi.Mode().Perm(); perm != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("data dir %s has mode %#o and cannot be restricted to 0700: %w", dir, perm, err)
		}
		log.Warn("data directory was readable by others: mode set to 0700", "event", "data_dir_mode_fixed",
			"dir", dir, "old_mode", fmt.Sprintf("%#o", perm))
	}
	rep := &StartupReport{}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, rep, err
		}
		st, err := startTable(l, cfg, name)
		if err != nil {
			return nil, rep, err
		}
		logStartup(log, st)
		rep.Tables = append(rep.Tables, st)
	}
	db, err := store.Open(dir, names, store.Options{})
	if err == nil {
		return db, rep, nil
	}
	// The full check passed but bbolt refused a file: treat that table as
	// damaged, recover it, and try once more.
	for i, name := range names {
		t, oerr := store.OpenTable(name, l.tablePath(name), store.Options{})
		if oerr == nil {
			_ = t.Close()
			continue
		}
		if !errors.Is(oerr, store.ErrCorrupt) {
			return nil, rep, oerr
		}
		rep.Tables[i] = recoverFile(l, cfg, name, "table file does not open: "+reason(oerr))
		logStartup(log, rep.Tables[i])
	}
	db, err = store.Open(dir, names, store.Options{})
	if err != nil {
		return nil, rep, err
	}
	return db, rep, nil
}

// startTable checks one table file and recovers it when needed.
func startTable(l layout, cfg Config, name string) (StartupTable, error) {
	path := l.tablePath(name)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		files, lerr := l.listBackups(name)
		if lerr != nil {
			return StartupTable{}, lerr
		}
		if len(files) == 0 {
			return StartupTable{Table: name, Action: "created"}, nil
		}
		return recoverFile(l, cfg, name, "table file missing"), nil
	} else if err != nil {
		return StartupTable{}, fmt.Errorf("start %s: %w", name, err)
	}
	if store.CleanMarkerMatches(path) {
		// Closed cleanly and unchanged since (store/cleanmark.go says why
		// a marker can never vouch for a file written after it): the
		// check, which reads every page, would find what it found then.
		return StartupTable{Table: name, Action: "ok", Skipped: true}, nil
	}
	n, err := store.CheckFile(path)
	switch {
	case err == nil:
		return StartupTable{Table: name, Action: "ok", Records: n}, nil
	case errors.Is(err, store.ErrCorrupt):
		return recoverFile(l, cfg, name, "damaged at start: "+reason(err)), nil
	default:
		return StartupTable{}, fmt.Errorf("start %s: %w", name, err)
	}
}

// recoverFile restores a closed table file from its newest usable backup,
// or resets it empty and marks it degraded.
func recoverFile(l layout, cfg Config, name, why string) StartupTable {
	st := StartupTable{Table: name, Reason: why}
	path := l.tablePath(name)
	aside := l.asidePath(name, cfg.Now(), true)
	files, err := l.listBackups(name)
	if err != nil {
		st.Problems = append(st.Problems, reason(err))
	}
	for _, f := range files {
		n, err := store.RestoreFile(f.Path, path, aside)
		if err != nil {
			st.Problems = append(st.Problems, f.Name+": "+reason(err))
			continue
		}
		st.Action, st.Records, st.BackupUsed, st.BackupTime = "restored", n, f.Name, f.Time.UnixMilli()
		if _, err := os.Stat(aside); err == nil {
			st.AsidePath = aside
		}
		_ = l.removeMarker(name)
		return st
	}
	if err := store.ResetFile(path, aside); err != nil {
		st.Problems = append(st.Problems, "reset: "+reason(err))
	}
	st.Action = "degraded"
	if _, err := os.Stat(aside); err == nil {
		st.AsidePath = aside
	}
	why += "; no usable backup"
	if len(st.Problems) > 0 {
		why += " (" + strings.Join(st.Problems, "; ") + ")"
	}
	st.Reason = why
	_ = l.writeMarker(marker{Table: name, Since: cfg.Now().UnixMilli(), Reason: why, AsidePath: st.AsidePath, Trigger: TriggerAuto, Startup: true})
	return st
}

func logStartup(log *slog.Logger, st StartupTable) {
	switch st.Action {
	case "restored":
		log.Warn("table restored from backup at start", "event", "table_restored_from_backup_at_start", "table", st.Table, "backup", st.BackupUsed, "records", st.Records, "reason", st.Reason, "aside", st.AsidePath)
	case "degraded":
		// "Running empty (degraded mode)" is logged by NoteStartup, once
		// the hub really runs; a start that fails later never says it.
		log.Error("table damaged with no usable backup: replaced by an empty table", "event", "table_replaced_empty",
			"table", st.Table, "reason", st.Reason, "aside", st.AsidePath)
	default:
		log.Debug("table opened", "event", "table_opened", "table", st.Table, "action", st.Action, "records", st.Records)
	}
}

// NoteStartup records what OpenDB did and publishes it: recovery_complete
// (trigger "startup") for restored tables, degraded_mode for degraded ones.
// Call it once subscribers (dashboard, notifier) are wired.
func (c *Coordinator) NoteStartup(rep *StartupReport) {
	if rep == nil {
		return
	}
	for _, st := range rep.Tables {
		if c.db.Table(st.Table) == nil {
			continue
		}
		switch st.Action {
		case "restored":
			now := c.now().UnixMilli()
			c.mu.Lock()
			c.state(st.Table).lastRecovery = &RecoveryInfo{At: now, Status: "restored", Trigger: TriggerAuto, BackupUsed: st.BackupUsed, Reason: st.Reason}
			c.mu.Unlock()
			c.publish(EventRecoveryComplete, RecoveryCompleteEvent{
				Timestamp: now, Table: st.Table, BackupUsed: st.BackupUsed, BackupTime: st.BackupTime,
				RecordCount: st.Records, Trigger: TriggerAuto, Startup: true, Reason: st.Reason, AsidePath: st.AsidePath,
			})
		case "degraded":
			m, err := c.layout.readMarker(st.Table)
			if err != nil || m == nil {
				m = &marker{Table: st.Table, Since: c.now().UnixMilli(), Reason: st.Reason, AsidePath: st.AsidePath, Trigger: TriggerAuto, Startup: true}
			}
			c.enterDegraded(*m, nil)
		}
	}
}
