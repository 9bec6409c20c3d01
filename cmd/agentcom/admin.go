package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/resilience"
)

// adminCommand drives the storage admin API of a running hub with an
// admin token. For a stopped hub, use `agentcom store`.
func adminCommand() *command {
	return &command{name: "admin", summary: "storage operations on a running hub (admin token)",
		about: "Every admin command takes --hub (env AGENTCOM_HUB) and --token (env AGENTCOM_TOKEN, an admin token).\n" +
			"A refused operation exits 1. For a stopped hub use 'agentcom store'.",
		subs: []*command{
			{name: "backup", summary: "back up every table now (each backup verified)", setup: adminBackup},
			{name: "health", summary: "storage health per table: size, records, fragmentation, backups, drills", setup: adminHealth},
			{name: "compact", summary: "compact one table, or all", synopsis: "[TABLE]", args: [2]int{0, 1}, setup: adminCompact},
			{name: "restore", summary: "restore a table from its newest verified backup (or --backup NAME)", synopsis: "TABLE",
				args: [2]int{1, 1}, setup: adminRestore},
			{name: "backups", summary: "list a table's backups", synopsis: "TABLE", args: [2]int{1, 1}, setup: adminBackups},
			{name: "drill", summary: "restore every newest backup into a scratch directory and check it", setup: adminDrill},
		}}
}

// adminCall sends one admin request and decodes the answer into out;
// backups and compactions of big tables take a while, so the usual client
// timeout does not apply. A non-2xx answer that is a report (a JSON body
// without an error code, such as a backup that missed tables) is decoded
// too and returned as a *reportFailed: the caller prints it, then fails.
func adminCall(ctx context.Context, api *apiOpts, method, path string, out any) error {
	c := api.client().WithHTTPClient(&http.Client{})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	err := c.Do(ctx, method, path, nil, out, nil)
	var ce *client.Error
	if errors.As(err, &ce) && ce.Code == "" && json.Valid(ce.Body) && json.Unmarshal(ce.Body, out) == nil {
		return &reportFailed{status: ce.Status, body: ce.Body}
	}
	return err
}

// reportFailed is an operation the hub reports as failed, with its report.
type reportFailed struct {
	status int
	body   []byte
}

func (r *reportFailed) Error() string {
	var b struct {
		Status string `json:"status"`
	}
	what := "see the report above"
	if json.Unmarshal(r.body, &b) == nil && b.Status != "" {
		what = "status " + b.Status
	}
	return fmt.Sprintf("hub answered %d: %s", r.status, what)
}

// adminRun makes one admin call and prints its answer (or the report of a
// failed operation) as JSON or through human.
func adminRun(ctx context.Context, in *inv, api *apiOpts, method, path string, out any, human func(p *printer)) error {
	err := adminCall(ctx, api, method, path, out)
	var rf *reportFailed
	if err != nil && !errors.As(err, &rf) {
		return err
	}
	if eerr := in.emit(out, human); eerr != nil {
		return eerr
	}
	return err
}

func adminBackup(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, _ []string) error {
		var r resilience.BackupResponse
		if err := adminRun(ctx, in, api, http.MethodPost, "/api/admin/backup", &r, func(p *printer) {
			rows := make([][]cell, 0, len(r.Results))
			for _, b := range r.Results {
				recs := "-"
				if b.Records != nil {
					recs = strconv.Itoa(*b.Records)
				}
				rows = append(rows, []cell{txt(b.Table), styled(b.Status, statusStyle(b.Status)), txt(recs), txt(bytesText(b.Size)), txt(orDash(b.Reason))})
			}
			p.table([]string{"TABLE", "STATUS", "RECORDS", "SIZE", "DETAIL"}, rows)
			p.line("%d of %d tables backed up to %s", r.TablesSuccess, r.TablesTotal, r.BackupDir)
		}); err != nil {
			return err
		}
		if r.TablesSuccess < r.TablesTotal {
			return fmt.Errorf("%d table(s) failed to back up", r.TablesTotal-r.TablesSuccess)
		}
		return nil
	}
}

func adminHealth(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, _ []string) error {
		var h resilience.Health
		return adminRun(ctx, in, api, http.MethodGet, "/api/admin/dets-health", &h, func(p *printer) {
			p.kv([]field{kvs("status", h.Status, statusStyle(h.Status)), kv("backups in", h.BackupDir)})
			for _, r := range h.Reasons {
				p.line("  - %s", r)
			}
			p.line("")
			rows := make([][]cell, 0, len(h.Tables))
			for _, t := range h.Tables {
				rows = append(rows, []cell{txt(t.Table), styled(t.Status, statusStyle(t.Status)), txt(strconv.Itoa(t.RecordCount)),
					txt(bytesText(t.FileSizeBytes)), txt(fmt.Sprintf("%.1f%%", t.FragmentationRatio*100)),
					txt(p.ago(deref64(t.LastBackupAt))), txt(p.ago(deref64(t.LastVerifiedBackupAt))),
					txt(p.ago(deref64(t.LastDrillAt))), txt(p.ago(deref64(t.LastCompactionAt)))})
			}
			p.table([]string{"TABLE", "STATUS", "RECORDS", "SIZE", "FRAG", "BACKUP", "VERIFIED", "DRILL", "COMPACTED"}, rows)
		})
	}
}

func adminCompact(in *inv) runFunc {
	api := in.api()
	force := in.fs.Bool("force", false, "compact even tables below the fragmentation threshold")
	return func(ctx context.Context, pos []string) error {
		q := ""
		if *force {
			q = "?force=true"
		}
		if len(pos) == 0 {
			var r resilience.CompactAllResponse
			if err := adminRun(ctx, in, api, http.MethodPost, "/api/admin/compact"+q, &r, func(p *printer) { printCompact(p.w, r) }); err != nil {
				return err
			}
			if r.TablesFailed > 0 {
				return fmt.Errorf("%d table(s) failed to compact", r.TablesFailed)
			}
			return nil
		}
		var r resilience.CompactOneResponse
		return adminRun(ctx, in, api, http.MethodPost, "/api/admin/compact/"+url.PathEscape(pos[0])+q, &r, func(p *printer) {
			p.line("%s: %s %s", r.Table, p.paint(statusStyle(r.Status), r.Status), strings.TrimSpace(r.Reason))
			if r.Status == "compacted" {
				p.line("%s -> %s in %dms", bytesText(r.BytesBefore), bytesText(r.BytesAfter), r.DurationMs)
			}
		})
	}
}

func adminRestore(in *inv) runFunc {
	api := in.api()
	backup := in.fs.String("backup", "", "restore this backup file name instead of the newest verified one")
	dry := in.fs.Bool("dry-run", false, "show what a restore would change without touching anything")
	return func(ctx context.Context, pos []string) error {
		q := url.Values{}
		if *backup != "" {
			q.Set("backup", *backup)
		}
		if *dry {
			q.Set("dry_run", "true")
		}
		path := "/api/admin/restore/" + url.PathEscape(pos[0])
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		var r resilience.RestoreResponse
		return adminRun(ctx, in, api, http.MethodPost, path, &r, func(p *printer) { printRestore(p.w, r) })
	}
}

func adminBackups(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, pos []string) error {
		var r struct {
			Table   string                  `json:"table"`
			Backups []resilience.BackupInfo `json:"backups"`
		}
		return adminRun(ctx, in, api, http.MethodGet, "/api/admin/backups/"+url.PathEscape(pos[0]), &r, func(p *printer) {
			if len(r.Backups) == 0 {
				p.line("no backups of %s yet; make one: agentcom admin backup", r.Table)
				return
			}
			rows := make([][]cell, 0, len(r.Backups))
			for _, b := range r.Backups {
				rows = append(rows, []cell{txt(b.Name), txt(p.ago(b.Time)), txt(bytesText(b.Size))})
			}
			p.table([]string{"BACKUP", "TAKEN", "SIZE"}, rows)
		})
	}
}

func adminDrill(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, _ []string) error {
		var r resilience.DrillResponse
		failed := 0
		err := adminRun(ctx, in, api, http.MethodPost, "/api/admin/drill", &r, func(p *printer) {
			rows := make([][]cell, 0, len(r.Results))
			for _, d := range r.Results {
				rows = append(rows, []cell{txt(d.Table), styled(d.Status, statusStyle(d.Status)), txt(orDash(d.BackupUsed)),
					txt(strconv.Itoa(d.Records)), txt(fmt.Sprintf("%dms", d.DurationMs)), txt(orDash(d.Reason))})
			}
			p.table([]string{"TABLE", "STATUS", "BACKUP", "RECORDS", "DURATION", "DETAIL"}, rows)
		})
		for _, d := range r.Results {
			if d.Status == "error" {
				failed++
			}
		}
		if err == nil && failed > 0 {
			err = fmt.Errorf("%d table(s) failed the drill", failed)
		}
		return err
	}
}

func deref64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// bytesText renders a size: 512 B, 12.3 KiB, 4.0 MiB.
func bytesText(n int64) string {
	switch {
	case n <= 0:
		return "-"
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
