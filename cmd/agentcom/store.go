package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/store"
)

// runStore is offline storage maintenance on the data directory of a
// stopped hub: check, compact, restore. The work is in package resilience;
// this only parses flags and prints.
func runStore(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(env.stderr, "usage: agentcom store <check|compact|restore> [flags]\n\n"+
			"  check                                        verify every table and every backup\n"+
			"  compact [--table T] [--force]                compact tables (all by default)\n"+
			"  restore --table T [--backup NAME] [--dry-run] restore a table from a verified backup\n\n"+
			"All work offline on --data (default ./data, env AGENTCOM_DATA_DIR); stop the hub first.\n"+
			"Backups are read from --backups (default <data>/backups, env AGENTCOM_BACKUP_DIR).")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	fs := newFlagSet(env, "store "+sub, "[flags]")
	data := fs.String("data", envOr(env, "AGENTCOM_DATA_DIR", "data"), "data directory (env AGENTCOM_DATA_DIR)")
	backups := fs.String("backups", envOr(env, "AGENTCOM_BACKUP_DIR", ""), "backup directory (default <data>/backups)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	table := fs.String("table", "", "table id (compact: only this table; restore: required)")
	force := fs.Bool("force", false, "compact: ignore the fragmentation threshold")
	backup := fs.String("backup", "", "restore: backup file name (default: the newest that verifies)")
	dryRun := fs.Bool("dry-run", false, "restore: only show what would change")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	cfg := resilience.Config{BackupDir: *backups}
	names := store.AllTables()
	var result any
	var err error
	switch sub {
	case "check":
		var rep resilience.CheckReport
		rep, err = resilience.CheckOffline(ctx, *data, names, cfg)
		result = rep
		if err == nil && !*asJSON {
			printCheck(env.stdout, rep)
		}
		if err == nil && !rep.OK {
			err = errors.New("problems found (see above)")
		}
	case "compact":
		var rep resilience.CompactAllResponse
		rep, err = resilience.CompactOffline(ctx, *data, names, cfg, *table, *force, nil)
		result = rep
		if err == nil && !*asJSON {
			printCompact(env.stdout, rep)
		}
		if err == nil && rep.TablesFailed > 0 {
			err = fmt.Errorf("%d table(s) failed to compact", rep.TablesFailed)
		}
	case "restore":
		if *table == "" {
			fmt.Fprintln(env.stderr, "agentcom store restore: --table is required")
			return errUsage
		}
		var rep resilience.RestoreResponse
		rep, err = resilience.RestoreOffline(ctx, *data, names, cfg, *table, *backup, *dryRun)
		result = rep
		if err == nil && !*asJSON {
			printRestore(env.stdout, rep)
		}
	default:
		fmt.Fprintf(env.stderr, "agentcom store: unknown subcommand %q (check, compact, restore)\n", sub)
		return errUsage
	}
	if *asJSON && result != nil {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(result); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
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
