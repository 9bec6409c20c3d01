package tasks_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasks"
)

// writeRecord puts a task record straight into task_queue, as a crash
// between two writes would leave it.
func (e *env) writeRecord(t *tasks.Task, version uint64) {
	e.t.Helper()
	b, err := json.Marshal(t)
	if err != nil {
		e.t.Fatal(err)
	}
	v := append(binary.BigEndian.AppendUint64(nil, version), b...)
	if err := e.db.MustTable(store.TaskQueue).Update(func(tx *store.Tx) error { return tx.Put([]byte(t.ID), v) }); err != nil {
		e.t.Fatal(err)
	}
}

// TestReloadReleasesWaitingTasks: a dependent's state is derived from its
// dependencies' records, so a dependency found completed at load (the hub
// died between the completion's write and the dependent's release)
// releases the dependent, and one found cancelled cancels it.
func TestReloadReleasesWaitingTasks(t *testing.T) {
	e := newEnv(t, tasks.DefaultConfig())
	a := e.submit(tasks.SubmitParams{Description: "a"})
	b := e.submit(tasks.SubmitParams{Description: "b", DependsOn: []string{a.ID}})
	c := e.submit(tasks.SubmitParams{Description: "c", DependsOn: []string{b.ID}})
	if b.Status != tasks.StatusWaiting || c.Status != tasks.StatusWaiting {
		t.Fatalf("statuses %s %s", b.Status, c.Status)
	}
	done := e.get(a.ID)
	done.Status = tasks.StatusCompleted
	e.close()
	e.open()
	e.writeRecord(done, 50)
	e.reopen()
	if got := e.get(b.ID).Status; got != tasks.StatusQueued {
		t.Fatalf("b after reload: %s", got)
	}
	if got := e.get(c.ID).Status; got != tasks.StatusWaiting {
		t.Fatalf("c after reload: %s", got)
	}
	if st := e.Q.Stats(); st.ByStatus["waiting"] != 1 || st.ByStatus["queued"] != 1 {
		t.Fatalf("stats %v", st.ByStatus)
	}
	if _, _, err := e.Q.Cancel(b.ID, "op", true, "no"); err != nil {
		t.Fatal(err)
	}
	cc := e.get(c.ID)
	if cc.Status != tasks.StatusCancelled || cc.CancelledBy != "hub" {
		t.Fatalf("c after b's cancel: %s by %s", cc.Status, cc.CancelledBy)
	}
}

// TestScheduledTaskWaitsForRunAt: run_at holds a task as scheduled; the
// timer is part of NextDue; at its time PromoteDue queues it.
func TestScheduledTaskWaitsForRunAt(t *testing.T) {
	e := newEnv(t, tasks.DefaultConfig())
	at := e.clk.Ms() + time.Hour.Milliseconds()
	task := e.submit(tasks.SubmitParams{Description: "later", RunAt: at})
	if task.Status != tasks.StatusScheduled || e.Q.NextDue().UnixMilli() != at {
		t.Fatalf("status %s, next due %v", task.Status, e.Q.NextDue())
	}
	if got := e.assignTo("w"); got != nil {
		t.Fatalf("scheduled task assigned: %v", got.ID)
	}
	e.reopen()
	e.clk.Advance(time.Hour - time.Millisecond)
	if n, err := e.Q.PromoteDue(); n != 0 || err != nil {
		t.Fatalf("promoted %d early (%v)", n, err)
	}
	e.clk.Advance(time.Millisecond)
	if n, err := e.Q.PromoteDue(); n != 1 || err != nil {
		t.Fatalf("promoted %d (%v)", n, err)
	}
	if got := e.assignTo("w"); got == nil || got.ID != task.ID {
		t.Fatalf("assigned %v", got)
	}
}

// scheduled returns the tasks a schedule enqueued, by tick.
func scheduledTicks(t *testing.T, e *env, name string) map[int64]int {
	t.Helper()
	ts, _, err := e.Q.List(tasks.Filter{Status: tasks.StatusQueued})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]int{}
	for _, x := range ts {
		if x.Schedule == name {
			out[x.ScheduleTick]++
		}
	}
	return out
}

// TestScheduleTicks: one task per tick; ticks missed while the hub was
// down are enqueued once at start (the latest); a clock set back never
// repeats a tick; a paused schedule does not catch up on resume.
func TestScheduleTicks(t *testing.T) {
	e := newEnv(t, tasks.DefaultConfig())
	e.clk.Advance(time.Duration(60_000-e.clk.Ms()%60_000) * time.Millisecond) // on a minute
	start := e.clk.Ms()
	if _, err := e.Q.AddSchedule(tasks.Schedule{Name: "m", Cron: "* * * * *", Task: tasks.ScheduleTask{Description: "tick"}}, "op"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Q.AddSchedule(tasks.Schedule{Name: "m", Cron: "* * * * *", Task: tasks.ScheduleTask{Description: "tick"}}, "op"); !errors.Is(err, tasks.ErrScheduleExists) {
		t.Fatalf("second add: %v", err)
	}
	if n, _ := e.Q.PromoteDue(); n != 0 {
		t.Fatalf("fired %d before the first tick", n)
	}
	e.clk.Advance(time.Minute)
	if n, _ := e.Q.PromoteDue(); n != 1 {
		t.Fatalf("fired %d at the first tick", n)
	}
	if n, _ := e.Q.PromoteDue(); n != 0 {
		t.Fatalf("fired the same tick again: %d", n)
	}
	// Down for ten minutes: one task, for the latest missed tick.
	e.close()
	e.clk.Advance(10 * time.Minute)
	e.open()
	if n, _ := e.Q.PromoteDue(); n != 1 {
		t.Fatalf("fired %d after downtime", n)
	}
	ticks := scheduledTicks(t, e, "m")
	if len(ticks) != 2 || ticks[start+60_000] != 1 || ticks[start+11*60_000] != 1 {
		t.Fatalf("ticks %v", ticks)
	}
	// The clock goes back an hour: nothing fires until it passes the last tick again.
	e.clk.Advance(-time.Hour)
	if n, _ := e.Q.PromoteDue(); n != 0 {
		t.Fatalf("fired %d after the clock went back", n)
	}
	e.clk.Advance(time.Hour + time.Minute)
	if n, _ := e.Q.PromoteDue(); n != 1 {
		t.Fatalf("fired %d after the clock caught up", n)
	}
	// Paused for a while: resume does not catch up.
	if _, err := e.Q.SetSchedulePaused("m", true, "op"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(5 * time.Minute)
	if n, _ := e.Q.PromoteDue(); n != 0 {
		t.Fatalf("paused schedule fired %d", n)
	}
	if _, err := e.Q.SetSchedulePaused("m", false, "op"); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.Q.PromoteDue(); n != 0 {
		t.Fatalf("resume caught up %d ticks", n)
	}
	if s, _ := e.Q.GetSchedule("m"); s.NextRun <= e.clk.Ms() {
		t.Fatalf("next run %d not after now %d", s.NextRun, e.clk.Ms())
	}
	if err := e.Q.RemoveSchedule("m", "op"); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if ss := e.Q.Schedules(); len(ss) != 0 {
		t.Fatalf("removed schedule came back: %v", ss)
	}
}

// TestScheduleWithLostTimeZoneStillLoads: a stored schedule that no
// longer compiles is kept with its error and the queue opens.
func TestScheduleWithLostTimeZoneStillLoads(t *testing.T) {
	e := newEnv(t, tasks.DefaultConfig())
	rec, _ := json.Marshal(map[string]any{"name": "x", "cron": "@daily", "timezone": "Nowhere/Gone", "task": map[string]any{"description": "d"}})
	if err := e.db.MustTable(store.TaskQueue).Update(func(tx *store.Tx) error { return tx.Put([]byte("wf:schedule:x"), rec) }); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	s, err := e.Q.GetSchedule("x")
	if err != nil || s.Error == "" || s.NextRun != 0 {
		t.Fatalf("schedule %+v, %v", s, err)
	}
	if n, err := e.Q.PromoteDue(); n != 0 || err != nil {
		t.Fatalf("broken schedule fired: %d %v", n, err)
	}
}

// TestPauseSurvivesReopen: pauses are stored; a paused lane's tasks are
// not offered to the picker.
func TestPauseSurvivesReopen(t *testing.T) {
	e := newEnv(t, tasks.DefaultConfig())
	low := e.submit(tasks.SubmitParams{Description: "low", Priority: tasks.PriorityLow})
	if ok, err := e.Q.Pause(tasks.PauseLane, "low", "op"); !ok || err != nil {
		t.Fatalf("pause: %v %v", ok, err)
	}
	e.reopen()
	if p := e.Q.PausedState(); len(p.Lanes) != 1 || p.Lanes[0] != "low" {
		t.Fatalf("paused after reopen: %+v", p)
	}
	if got := e.assignTo("w"); got != nil {
		t.Fatalf("paused lane assigned %s", got.ID)
	}
	if !e.get(low.ID).Paused {
		t.Fatal("task not shown as paused")
	}
	if ok, err := e.Q.Resume(tasks.PauseLane, "low", "op"); !ok || err != nil {
		t.Fatalf("resume: %v %v", ok, err)
	}
	if got := e.assignTo("w"); got == nil || got.ID != low.ID {
		t.Fatalf("after resume: %v", got)
	}
}

// TestDisconnectDeadLetterSettlesDependents: a task dead-lettered because
// its holders kept disconnecting (ReclaimAgent) fails its dependents as a
// dead letter from a failed report does; a dependent is not left waiting
// on a task that can no longer complete.
func TestDisconnectDeadLetterSettlesDependents(t *testing.T) {
	cfg := noBackoff()
	cfg.MaxDisconnectReclaims = 1
	e := newEnv(t, cfg)
	a := e.submit(tasks.SubmitParams{Description: "a"})
	b := e.submit(tasks.SubmitParams{Description: "b", DependsOn: []string{a.ID}})
	e.assignID(a.ID, "agent-1")
	got, err := e.Q.ReclaimAgent("agent-1", tasks.ReasonDisconnect)
	if err != nil || len(got) != 1 || got[0].Status != tasks.StatusDeadLetter {
		t.Fatalf("reclaim = %+v, %v", got, err)
	}
	if bb := e.get(b.ID); bb.Status != tasks.StatusCancelled || bb.CancelledBy != "hub" {
		t.Fatalf("dependent after its dependency's dead letter: %s by %q", bb.Status, bb.CancelledBy)
	}
}
