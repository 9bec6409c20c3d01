package resilience

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/store"
)

// TestAutoRestoreSkipsDamagedNewestBackup: when the newest backup of a
// damaged table does not verify, startup recovery restores the newest one
// that does, and says which.
func TestAutoRestoreSkipsDamagedNewestBackup(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	e.putAll(40)
	older, err := e.c.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // distinct backup names (millisecond stamps)
	e.putAll(60)
	newer, err := e.c.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.close()
	const table = store.TaskQueue
	var olderPath, newerPath string
	for i, r := range older.Results {
		if r.Table == table {
			olderPath, newerPath = r.Path, newer.Results[i].Path
		}
	}
	damages["zeroed header"](t, newerPath, table)
	damages["zeroed header"](t, store.TablePath(e.dir, table), table)
	e.open()
	for _, st := range e.rep.Tables {
		if st.Table != table {
			continue
		}
		if st.Action != "restored" || st.Records != 40 || st.BackupUsed != filepath.Base(olderPath) {
			t.Fatalf("startup: %+v; want restored from %s with 40 records", st, filepath.Base(olderPath))
		}
	}
	e.expect(table, 40)
	ev := e.waitEvent(EventRecoveryComplete, nil)
	if d := ev.Data.(RecoveryCompleteEvent); d.BackupUsed != filepath.Base(olderPath) {
		t.Fatalf("event names backup %q, want %q", d.BackupUsed, filepath.Base(olderPath))
	}
}
