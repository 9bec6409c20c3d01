package resilience

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/store"
)

// Every table file damaged before start (each kind of damage): OpenDB
// detects it, restores the newest backup, keeps the damaged file, and
// NoteStartup announces each recovery.
func TestCorruptionBeforeStartRestoresEveryTable(t *testing.T) {
	for kind, damage := range damages {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.putAll(40)
			if _, err := e.c.Backup(context.Background()); err != nil {
				t.Fatal(err)
			}
			e.putAll(60) // written after the backup: lost with the damaged file
			e.close()
			for _, name := range store.AllTables() {
				damage(t, store.TablePath(e.dir, name), name)
			}
			e.open()
			for i, st := range e.rep.Tables {
				if st.Action != "restored" || st.Records != 40 || st.BackupUsed == "" || st.AsidePath == "" {
					t.Fatalf("startup %d: %+v", i, st)
				}
			}
			if got := e.rep.Recovered(); len(got) != len(store.AllTables()) {
				t.Fatalf("recovered %v", got)
			}
			for _, name := range store.AllTables() {
				e.expect(name, 40)
				e.expectRangeOK(name)
				if len(e.asideFiles(name)) != 1 {
					t.Fatalf("%s: damaged file not kept", name)
				}
				ev := e.waitEvent(EventRecoveryComplete, nil)
				d := ev.Data.(RecoveryCompleteEvent)
				if d.Trigger != TriggerAuto || !d.Startup || d.RecordCount != 40 || d.BackupUsed == "" {
					t.Fatalf("event %+v", d)
				}
			}
			// Restored tables take writes, and the hub is healthy apart
			// from nothing: the backups are still there.
			e.put(store.TaskQueue, 1000, 1)
			if h := e.c.Health(); h.Status == StatusCritical {
				t.Fatalf("health after restore: %v", h.Reasons)
			}
		})
	}
}

// The same with no backup at all: degraded mode, never a success.
func TestCorruptionBeforeStartWithoutBackupDegrades(t *testing.T) {
	for kind, damage := range damages {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.putAll(40)
			e.close()
			damage(t, store.TablePath(e.dir, store.AgentMailbox), store.AgentMailbox)
			e.open()
			st := e.rep.Tables[2]
			if st.Table != store.AgentMailbox || st.Action != "degraded" || st.AsidePath == "" || !strings.Contains(st.Reason, "no usable backup") {
				t.Fatalf("startup %+v", st)
			}
			kept, err := store.CheckFile(st.AsidePath)
			if err == nil || !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("kept file should be the damaged one: %d, %v", kept, err)
			}
			e.expect(store.AgentMailbox, 0)
			e.expect(store.TaskQueue, 40)
			e.put(store.AgentMailbox, 0, 1) // usable, empty
			ev := e.waitEvent(EventDegradedMode, nil)
			d := ev.Data.(DegradedModeEvent)
			if d.Table != store.AgentMailbox || !d.DataLost || d.AsidePath == "" || d.Trigger != TriggerAuto || !d.Startup {
				t.Fatalf("event %+v", d)
			}
			for _, ev := range e.drain() {
				if ev.Type() == EventRecoveryComplete {
					t.Fatalf("degraded mode reported as a recovery: %+v", ev)
				}
			}
			h := e.c.Health()
			if h.Status != StatusCritical || h.HealthStatus != "unhealthy" || !slices.Equal(h.DegradedTables, []string{store.AgentMailbox}) || h.Tables[2].Status != "degraded" {
				t.Fatalf("health %+v", h)
			}
			// The condition survives a restart until acknowledged.
			e.reopen()
			if h := e.c.Health(); h.Status != StatusCritical || h.Tables[2].Degraded == nil {
				t.Fatalf("degraded lost on restart: %v", h.Reasons)
			}
			if err := e.c.AcknowledgeDegraded(store.AgentMailbox); err != nil {
				t.Fatal(err)
			}
			if err := e.c.AcknowledgeDegraded(store.AgentMailbox); !errors.Is(err, ErrNotDegraded) {
				t.Fatalf("second ack: %v", err)
			}
			if h := e.c.Health(); slices.Contains(h.DegradedTables, store.AgentMailbox) {
				t.Fatalf("still degraded: %v", h.Reasons)
			}
		})
	}
}

// A missing table file with backups is restored at start.
func TestMissingTableFileRestoredFromBackup(t *testing.T) {
	e := newEnv(t, Config{})
	e.putAll(7)
	if _, err := e.c.Backup(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.close()
	if err := os.Remove(store.TablePath(e.dir, store.Tokens)); err != nil {
		t.Fatal(err)
	}
	e.open()
	if st := e.rep.Tables[9]; st.Action != "restored" || st.Reason != "table file missing" {
		t.Fatalf("startup %+v", st)
	}
	e.expect(store.Tokens, 7)
}

// Damage to a running table, each table and each kind of damage: the next
// read reports it, the worker confirms it with a full check and restores
// the newest backup with the table's users paused, the reloaders rebuild,
// events are emitted; the other tables keep working throughout.
func TestCorruptionWhileRunningRestoresEachTable(t *testing.T) {
	for kind, damage := range damages {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.putAll(30)
			recs := map[string]*recorder{}
			for _, name := range store.AllTables() {
				recs[name] = e.register(name)
			}
			if _, err := e.c.Backup(context.Background()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); e.c.Wait() }()
			e.c.Start(ctx)
			e.drain()
			for _, name := range store.AllTables() {
				path := store.TablePath(e.dir, name)
				damage(t, path, name)
				err := e.db.Table(name).View(func(tx *store.Tx) error {
					return tx.ForEach(func(k, v []byte) error { return nil })
				})
				if !errors.Is(err, store.ErrCorrupt) {
					t.Fatalf("%s: read after damage: %v", name, err)
				}
				ev := e.waitEvent(EventRecoveryComplete, func(ev bus.Event) bool {
					return ev.Data.(RecoveryCompleteEvent).Table == name
				})
				d := ev.Data.(RecoveryCompleteEvent)
				if d.Trigger != TriggerAuto || d.RecordCount != 30 || d.AsidePath == "" {
					t.Fatalf("%s: event %+v", name, d)
				}
				e.expect(name, 30)
				e.expectRangeOK(name)
				e.put(name, 30, 1) // takes writes again
				if n, gerr := recs[name].count(); n != 1 || gerr != nil {
					t.Fatalf("%s: reloader calls %d, %v", name, n, gerr)
				}
				if len(e.asideFiles(name)) != 1 {
					t.Fatalf("%s: damaged file not kept", name)
				}
				h := e.c.Health()
				i := slices.IndexFunc(h.Tables, func(th TableHealth) bool { return th.Table == name })
				if r := h.Tables[i].LastRecovery; r == nil || r.Status != "restored" || r.Trigger != TriggerAuto {
					t.Fatalf("%s: health recovery %+v", name, r)
				}
			}
			// Each table was restored exactly once.
			for _, ev := range e.drain() {
				if ev.Type() == EventRecoveryComplete || ev.Type() == EventRecoveryFailed || ev.Type() == EventDegradedMode {
					t.Fatalf("extra event %s %+v", ev.Type(), ev.Data)
				}
			}
		})
	}
}

// The same with no backup: degraded mode, the damaged file preserved.
func TestCorruptionWhileRunningWithoutBackupDegrades(t *testing.T) {
	for kind, damage := range damages {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.putAll(30)
			rec := e.register(store.ChannelHistory)
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); e.c.Wait() }()
			e.c.Start(ctx)
			damage(t, store.TablePath(e.dir, store.ChannelHistory), store.ChannelHistory)
			_ = e.db.Table(store.ChannelHistory).View(func(tx *store.Tx) error {
				return tx.ForEach(func(k, v []byte) error { return nil })
			})
			ev := e.waitEvent(EventDegradedMode, nil)
			d := ev.Data.(DegradedModeEvent)
			if d.Table != store.ChannelHistory || !d.DataLost || d.Trigger != TriggerAuto || d.AsidePath == "" {
				t.Fatalf("event %+v", d)
			}
			if _, err := os.Stat(d.AsidePath); err != nil {
				t.Fatalf("damaged file not kept: %v", err)
			}
			e.expect(store.ChannelHistory, 0)
			e.put(store.ChannelHistory, 0, 3)
			e.expect(store.TaskQueue, 30)
			if n, gerr := rec.count(); n != 1 || gerr != nil {
				t.Fatalf("reloader %d, %v", n, gerr)
			}
			h := e.c.Health()
			if h.Status != StatusCritical || h.Tables[5].Status != "degraded" {
				t.Fatalf("health %+v", h.Reasons)
			}
			// A manual restore with no backup refuses and touches nothing.
			resp, err := e.c.Restore(ctx, store.ChannelHistory, "", false)
			if !errors.Is(err, ErrNoBackup) || resp.Status != "failed" {
				t.Fatalf("restore without backup: %+v, %v", resp, err)
			}
			e.expect(store.ChannelHistory, 3)
		})
	}
}

// A storage error that is not damage (closed table, disk errors) never
// triggers a restore; a stale report on a healthy table is checked and
// dropped.
func TestReportsThatAreNotDamageDoNothing(t *testing.T) {
	e := newEnv(t, Config{})
	e.putAll(5)
	if _, err := e.c.Backup(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.c.ReportError(store.TaskQueue, errors.New("write /x: no space left on device"))
	e.c.ReportError(store.TaskQueue, store.ErrClosed)
	e.c.ReportError(store.AgentMailbox, errors.Join(store.ErrCorrupt, errors.New("stale report")))
	e.c.HandlePending(context.Background())
	for _, ev := range e.drain() {
		if ev.Type() != EventBackupComplete {
			t.Fatalf("unexpected event %s", ev.Type())
		}
	}
	e.expect(store.AgentMailbox, 5)
	h := e.c.Health()
	if h.Status != StatusWarning || !strings.Contains(strings.Join(h.Reasons, ";"), "no space left") {
		t.Fatalf("health %v", h.Reasons)
	}
}
