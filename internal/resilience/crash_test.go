package resilience

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/store"
)

// crashEnv tells a re-executed test binary to act as a hub child:
// "<mode>:<data dir>".
const crashEnv = "RESILIENCE_CRASH_CHILD"

// The table a restore child restores again and again; writers stay off it.
const crashRestoreTable = store.AgentChannels

// crashWriterTables get acknowledged writes while the operation runs.
var crashWriterTables = []string{store.TaskQueue, store.AgentMailbox, store.MessageHistory, store.ChannelHistory}

// TestKillDuringMaintenance kills a hub (SIGKILL) in the middle of a
// backup, a compaction and a restore while writers run, then restarts it:
// every table opens and checks clean with no recovery needed, every
// acknowledged record is there, every file under a backup name verifies,
// and a table being restored holds either its old or its restored content.
func TestKillDuringMaintenance(t *testing.T) {
	if v := os.Getenv(crashEnv); v != "" {
		mode, dir, _ := strings.Cut(v, ":")
		crashChild(mode, dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for _, mode := range []string{"backup", "compact", "restore"} {
		t.Run(mode, func(t *testing.T) {
			rounds := 2
			if raceEnabled {
				rounds = 1
			}
			for round := range rounds {
				dir := t.TempDir()
				backupRecords, liveRecords := prepareCrashDir(t, dir)
				acked := runCrashChild(t, mode, dir, 1+rng.IntN(2), time.Duration(rng.IntN(40))*time.Millisecond)

				db, rep, err := OpenDB(context.Background(), dir, store.AllTables(), Config{}, nil)
				if err != nil {
					t.Fatalf("round %d: restart: %v", round, err)
				}
				for _, st := range rep.Tables {
					if st.Action != "ok" {
						t.Fatalf("round %d: %s needed recovery after the kill: %+v", round, st.Table, st)
					}
				}
				for _, name := range store.AllTables() {
					if err := db.Table(name).Check(); err != nil {
						t.Fatalf("round %d: %s: %v", round, name, err)
					}
				}
				for table, keys := range acked {
					err := db.Table(table).View(func(tx *store.Tx) error {
						for _, k := range keys {
							if tx.Get([]byte(k)) == nil {
								return fmt.Errorf("acknowledged %s lost", k)
							}
						}
						return nil
					})
					if err != nil {
						t.Fatalf("round %d: %s: %v", round, table, err)
					}
				}
				if n, _ := db.Table(crashRestoreTable).Count(); n != backupRecords && n != liveRecords {
					t.Fatalf("round %d: %s holds %d records, neither the live %d nor the backup's %d",
						round, crashRestoreTable, n, liveRecords, backupRecords)
				}
				_ = db.Close()
				files, _ := filepath.Glob(filepath.Join(dir, "backups", "*", "*.db"))
				for _, f := range files {
					if _, err := store.CheckFile(f); err != nil {
						t.Fatalf("round %d: a file under a backup name does not verify: %v", round, err)
					}
				}
				total := 0
				for _, k := range acked {
					total += len(k)
				}
				t.Logf("round %d: %d acknowledged writes intact, %d backup files verify", round, total, len(files))
			}
		})
	}
}

// prepareCrashDir fills a data dir, backs it up once, then adds records
// to the restore table, so a restore visibly changes it.
func prepareCrashDir(t *testing.T, dir string) (backupRecords, liveRecords int) {
	t.Helper()
	db, _, err := OpenDB(context.Background(), dir, store.AllTables(), Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, name := range store.AllTables() {
		n := 200
		if name == store.MessageHistory || name == crashRestoreTable {
			n = 10000 // big enough for operations to take a while
		}
		fillTable(t, db.Table(name), 0, n)
	}
	c := New(db, nil, Config{}, nil)
	if _, err := c.Backup(context.Background()); err != nil {
		t.Fatal(err)
	}
	fillTable(t, db.Table(crashRestoreTable), 10000, 5000)
	return 10000, 15000
}

func fillTable(t *testing.T, tb *store.Table, from, n int) {
	t.Helper()
	err := tb.Update(func(tx *store.Tx) error {
		for i := from; i < from+n; i++ {
			if err := tx.Put(recKey(i), recVal(tb.Name(), i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runCrashChild runs the child and kills it delay after the start of its
// k-th operation once writers have 200 acknowledged writes. It returns the
// acknowledged keys per table.
func runCrashChild(t *testing.T, mode, dir string, k int, delay time.Duration) map[string][]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringMaintenance$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+mode+":"+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string][]string{}
	starts, nacked, killed := 0, 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "ack":
			acked[f[1]] = append(acked[f[1]], f[2])
			nacked++
		case len(f) == 2 && f[0] == "start":
			if nacked >= 200 {
				starts++
			}
			if starts == k && !killed {
				killed = true
				time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
			}
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before operation %d: %v", k, err)
	}
	if ws, ok := err.(*exec.ExitError); !ok || ws.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v", err)
	}
	return acked
}

// crashChild is the hub child: writers print each acknowledged key while
// the operation of mode runs back to back, until the parent kills it.
func crashChild(mode, dir string) {
	fail := func(what string, err error) {
		fmt.Fprintln(os.Stderr, "child", what+":", err)
		os.Exit(2)
	}
	db, _, err := OpenDB(context.Background(), dir, store.AllTables(), Config{}, nil)
	if err != nil {
		fail("open", err)
	}
	c := New(db, nil, Config{}, nil)
	var mu sync.Mutex
	emit := func(line string) {
		mu.Lock()
		os.Stdout.WriteString(line + "\n") // unbuffered: one write per line
		mu.Unlock()
	}
	deadline := time.Now().Add(60 * time.Second) // never outlive a lost parent
	for _, table := range crashWriterTables {
		go func() {
			tb := db.Table(table)
			for i := 0; time.Now().Before(deadline); i++ {
				k := fmt.Sprintf("crash-%d", i)
				if err := tb.Update(func(tx *store.Tx) error { return tx.Put([]byte(k), []byte("v")) }); err != nil {
					fail("write", err)
				}
				emit("ack " + table + " " + k)
			}
		}()
	}
	ctx := context.Background()
	for i := 0; time.Now().Before(deadline); i++ {
		emit(fmt.Sprintf("start %d", i))
		var err error
		switch mode {
		case "backup":
			_, err = c.Backup(ctx)
		case "compact":
			_, err = c.CompactAll(ctx, true)
		case "restore":
			_, err = c.Restore(ctx, crashRestoreTable, "", false)
		}
		if err != nil {
			fail(mode, err)
		}
	}
	os.Exit(3)
}
