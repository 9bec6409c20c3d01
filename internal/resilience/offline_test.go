package resilience

import (
	"context"
	"errors"
	"testing"

	"github.com/agentcom/agentcom/internal/store"
)

func TestOfflineCommands(t *testing.T) {
	e := newEnv(t, Config{})
	e.putAll(25)
	fragment(e)
	ctx := context.Background()
	if _, err := e.c.Backup(ctx); err != nil {
		t.Fatal(err)
	}
	names := store.AllTables()

	// While the hub holds the files, every command refuses.
	rep, err := CheckOffline(ctx, e.dir, names, Config{})
	if err != nil || rep.OK || rep.Tables[0].Status != "in_use" {
		t.Fatalf("check while running: %+v, %v", rep.Tables[0], err)
	}
	if _, err := CompactOffline(ctx, e.dir, names, Config{}, "", false, nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("compact while running: %v", err)
	}
	if _, err := RestoreOffline(ctx, e.dir, names, Config{}, store.TaskQueue, "", false); !errors.Is(err, ErrInUse) {
		t.Fatalf("restore while running: %v", err)
	}
	e.close()

	rep, err = CheckOffline(ctx, e.dir, names, Config{})
	if err != nil || !rep.OK {
		t.Fatalf("check: %+v, %v", rep, err)
	}
	for _, ct := range rep.Tables {
		if ct.Status != "ok" || len(ct.Backups) != 1 || ct.Backups[0].Status != "ok" {
			t.Fatalf("check %+v", ct)
		}
	}

	resp, err := CompactOffline(ctx, e.dir, names, Config{}, "", false, nil)
	if err != nil || resp.TablesCompacted != 1 || resp.Results[3].Status != "compacted" {
		t.Fatalf("compact: %+v, %v", resp, err)
	}
	if _, err := CompactOffline(ctx, e.dir, names, Config{}, "nope", false, nil); !errors.Is(err, ErrUnknownTable) {
		t.Fatalf("compact unknown: %v", err)
	}
	one, err := CompactOffline(ctx, e.dir, names, Config{}, store.Tokens, true, nil)
	if err != nil || one.TablesCompacted != 1 || len(one.Results) != 1 {
		t.Fatalf("compact one: %+v, %v", one, err)
	}

	// A damaged table and a damaged backup show up in check.
	damages["zeroed header"](t, store.TablePath(e.dir, store.Config), store.Config)
	files, _ := newLayout(e.dir, Config{}).listBackups(store.ThreadMessages)
	damages["truncation"](t, files[0].Path, store.ThreadMessages)
	rep, _ = CheckOffline(ctx, e.dir, names, Config{})
	if rep.OK || rep.Tables[6].Status != "corrupt" || rep.Tables[7].Backups[0].Status != "corrupt" {
		t.Fatalf("check damage: %+v / %+v", rep.Tables[6], rep.Tables[7].Backups)
	}

	// Restore works on the damaged table; dry run first.
	dry, err := RestoreOffline(ctx, e.dir, names, Config{}, store.Config, "", true)
	if err != nil || dry.Status != "dry_run" || dry.RecordCount != 25 || dry.RecordsBefore != nil {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	res, err := RestoreOffline(ctx, e.dir, names, Config{}, store.Config, "", false)
	if err != nil || res.Status != "restored" || res.RecordCount != 25 || res.AsidePath == "" {
		t.Fatalf("restore: %+v, %v", res, err)
	}
	if _, err := RestoreOffline(ctx, e.dir, names, Config{}, store.ThreadMessages, "", false); !errors.Is(err, ErrNoBackup) {
		t.Fatalf("restore with only a damaged backup: %v", err)
	}
	if _, err := RestoreOffline(ctx, e.dir, names, Config{}, "nope", "", false); !errors.Is(err, ErrUnknownTable) {
		t.Fatalf("restore unknown: %v", err)
	}
	rep, _ = CheckOffline(ctx, e.dir, names, Config{})
	if rep.Tables[6].Status != "ok" {
		t.Fatalf("after restore: %+v", rep.Tables[6])
	}
	e.open()
	e.expect(store.Config, 25)
}
