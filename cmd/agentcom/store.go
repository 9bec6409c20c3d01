package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/store"
)

// storeCommand is offline storage maintenance on the data directory of a
// stopped hub: check, compact, restore. The work is in package resilience;
// this only parses flags and prints.
func storeCommand() *command {
	return &command{name: "store", summary: "offline storage maintenance while the hub is stopped: check, compact, restore",
		about: "All work offline on --data (env AGENTCOM_DATA_DIR, default ./data); stop the hub first.\n" +
			"Backups are read from --backups (env AGENTCOM_BACKUP_DIR, default <data>/backups).",
		subs: []*command{
			{name: "check", summary: "verify every table and every backup", setup: storeCheck},
			{name: "compact", summary: "compact tables (all by default)", setup: storeCompact},
			{name: "restore", summary: "restore a table from a verified backup", setup: storeRestore},
		}}
}

// storeFlags declares the flags every store command shares.
func storeFlags(in *inv) func() (string, resilience.Config) {
	data := in.dataFlag()
	backups := in.fs.String("backups", "", "backup directory (env AGENTCOM_BACKUP_DIR, else <data>/backups)")
	return func() (string, resilience.Config) {
		b := *backups
		if b == "" {
			b = in.env.getenv("AGENTCOM_BACKUP_DIR")
		}
		return dataDir(in.env, *data), resilience.Config{BackupDir: b}
	}
}

// offlineErr names the process holding the data directory.
func offlineErr(dir string, err error) error {
	if errors.Is(err, resilience.ErrInUse) || errors.Is(err, store.ErrLocked) {
		return heldBy(dir, err, "stop that hub first; with the hub running, use 'agentcom admin' instead")
	}
	return err
}

func storeCheck(in *inv) runFunc {
	opts := storeFlags(in)
	return func(ctx context.Context, _ []string) error {
		dir, cfg := opts()
		rep, err := resilience.CheckOffline(ctx, dir, store.AllTables(), cfg)
		if err != nil {
			return offlineErr(dir, err)
		}
		if err := in.emit(rep, func(p *printer) { printCheck(p.w, rep) }); err != nil {
			return err
		}
		for _, t := range rep.Tables {
			if t.Status == "in_use" {
				return offlineErr(dir, resilience.ErrInUse)
			}
		}
		if !rep.OK {
			return errors.New("problems found (see above)")
		}
		return nil
	}
}

func storeCompact(in *inv) runFunc {
	opts := storeFlags(in)
	table := in.fs.String("table", "", "only this table")
	force := in.fs.Bool("force", false, "ignore the fragmentation threshold")
	return func(ctx context.Context, _ []string) error {
		dir, cfg := opts()
		rep, err := resilience.CompactOffline(ctx, dir, store.AllTables(), cfg, *table, *force, nil)
		if err != nil {
			return offlineErr(dir, err)
		}
		if err := in.emit(rep, func(p *printer) { printCompact(p.w, rep) }); err != nil {
			return err
		}
		if rep.TablesFailed > 0 {
			return fmt.Errorf("%d table(s) failed to compact", rep.TablesFailed)
		}
		return nil
	}
}

func storeRestore(in *inv) runFunc {
	opts := storeFlags(in)
	table := in.fs.String("table", "", "the table to restore (required)")
	backup := in.fs.String("backup", "", "backup file name (default: the newest that verifies)")
	dryRun := in.fs.Bool("dry-run", false, "only show what would change")
	return func(ctx context.Context, _ []string) error {
		if *table == "" {
			return in.usagef("--table is required")
		}
		dir, cfg := opts()
		rep, err := resilience.RestoreOffline(ctx, dir, store.AllTables(), cfg, *table, *backup, *dryRun)
		if err != nil {
			return offlineErr(dir, err)
		}
		return in.emit(rep, func(p *printer) { printRestore(p.w, rep) })
	}
}

func printCheck(w io.Writer, rep resilience.CheckReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSTATUS\tRECORDS\tBACKUPS\tDETAIL")
	for _, t := range rep.Tables {
		ok, bad := 0, 0
		var newest string
		for i, b := range t.Backups {
			if b.Status == "ok" {
				ok++
			} else {
				bad++
			}
			if i == 0 {
				newest = " newest " + time.UnixMilli(b.Time).UTC().Format(time.RFC3339)
			}
		}
		backups := fmt.Sprintf("%d ok", ok)
		if bad > 0 {
			backups += fmt.Sprintf(", %d BAD", bad)
		}
		detail := t.Error
		if t.Degraded != nil {
			detail = strings.TrimSpace("DEGRADED since " + time.UnixMilli(t.Degraded.Since).UTC().Format(time.RFC3339) + ": " + t.Degraded.Reason + " " + detail)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s%s\t%s\n", t.Table, t.Status, t.Records, backups, newest, detail)
	}
	tw.Flush()
	for _, t := range rep.Tables {
		for _, b := range t.Backups {
			if b.Status != "ok" {
				fmt.Fprintf(w, "backup %s: %s: %s\n", b.Name, b.Status, b.Error)
			}
		}
	}
}

func printCompact(w io.Writer, rep resilience.CompactAllResponse) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSTATUS\tFRAGMENTATION\tBYTES BEFORE\tBYTES AFTER\tDURATION\tDETAIL")
	for _, r := range rep.Results {
		frag, dur := "-", "-"
		if r.Fragmentation != nil {
			frag = fmt.Sprintf("%.1f%%", *r.Fragmentation*100)
		}
		if r.DurationMs != nil {
			dur = fmt.Sprintf("%dms", *r.DurationMs)
		}
		detail := r.Reason
		if r.Retried {
			detail = strings.TrimSpace("retried " + detail)
		}
		after := "-"
		if r.Status == "compacted" {
			after = fmt.Sprint(r.BytesAfter)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Table, r.Status, frag, r.BytesBefore, after, dur, detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d compacted, %d skipped, %d failed\n", rep.TablesCompacted, rep.TablesSkipped, rep.TablesFailed)
}

func printRestore(w io.Writer, rep resilience.RestoreResponse) {
	backup, when := "", ""
	if rep.BackupUsed != nil {
		backup = *rep.BackupUsed
	}
	if rep.BackupTime != nil {
		when = time.UnixMilli(*rep.BackupTime).UTC().Format(time.RFC3339)
	}
	before := "unreadable"
	if rep.RecordsBefore != nil {
		before = fmt.Sprint(*rep.RecordsBefore)
	}
	switch rep.Status {
	case "dry_run":
		fmt.Fprintf(w, "would restore %s from %s (taken %s): records now %s, in the backup %d\n", rep.Table, backup, when, before, rep.RecordCount)
	default:
		fmt.Fprintf(w, "restored %s from %s (taken %s): %d records (before: %s)\n", rep.Table, backup, when, rep.RecordCount, before)
		if rep.AsidePath != "" {
			fmt.Fprintf(w, "the replaced file is kept at %s\n", rep.AsidePath)
		}
	}
}
