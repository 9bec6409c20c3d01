package tasks_test

import (
	"testing"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
	"github.com/agentcom/agentcom/internal/tasks"
)

// restarter returns a function that opens a queue on drv's storage,
// closing the one opened before (a restart over the same data).
func restarter(t *testing.T, drv storagetest.DriverKind) func() *tasks.Queue {
	open := drv.Open(t)
	var d storage.Driver
	t.Cleanup(func() {
		if d != nil {
			d.Close()
		}
	})
	return func() *tasks.Queue {
		t.Helper()
		if d != nil {
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
		}
		d = nil
		d = open()
		q, err := tasks.New(d.Tasks(), bus.New(), noBackoff())
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
}

// TestQueueOnEveryDriver runs a task's life (dependencies, completion,
// failure into the dead letter, retry, deadline expiry, pauses,
// schedules) on each storage driver, restarting in between, and checks
// that every restart finds the state the queue left.
func TestQueueOnEveryDriver(t *testing.T) {
	for _, drv := range storagetest.Drivers() {
		t.Run(drv.Name, func(t *testing.T) {
			restart := restarter(t, drv)
			q := restart()
			assign := func(id, agent string) *tasks.Task {
				t.Helper()
				got, err := q.AssignBatch(func(tk *tasks.Task) (string, bool) {
					if tk.ID == id {
						return agent, false
					}
					return "", false
				}, 1)
				if err != nil || len(got) != 1 {
					t.Fatalf("assign %s: %v %v", id, got, err)
				}
				return got[0]
			}
			status := func(id string) tasks.Status {
				t.Helper()
				tk, err := q.Get(id)
				if err != nil {
					t.Fatalf("get %s: %v", id, err)
				}
				return tk.Status
			}

			a, err := q.Submit(tasks.SubmitParams{Description: "first", SubmittedBy: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			b, err := q.Submit(tasks.SubmitParams{Description: "second", DependsOn: []string{a.ID}, SubmittedBy: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			poison, err := q.Submit(tasks.SubmitParams{Description: "poison", MaxRetries: intp(1), SubmittedBy: "bob"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := q.Pause(tasks.PauseCapability, "gpu", "op"); err != nil {
				t.Fatal(err)
			}
			if _, err := q.AddSchedule(tasks.Schedule{Name: "nightly", Cron: "0 3 * * *", Task: tasks.ScheduleTask{Description: "n"}}, "op"); err != nil {
				t.Fatal(err)
			}
			got := assign(a.ID, "agent-1")
			if _, _, err := q.Complete(a.ID, "agent-1", got.Generation, map[string]any{"ok": true}, nil); err != nil {
				t.Fatal(err)
			}
			got = assign(poison.ID, "agent-2")
			if _, outcome, _, err := q.Fail(poison.ID, "agent-2", got.Generation, "boom", nil); err != nil || outcome != tasks.OutcomeDeadLetter {
				t.Fatalf("fail: %s %v", outcome, err)
			}

			q = restart()
			if s := status(a.ID); s != tasks.StatusCompleted {
				t.Fatalf("a is %s", s)
			}
			if s := status(b.ID); s != tasks.StatusQueued {
				t.Fatalf("b is %s", s)
			}
			if s := status(poison.ID); s != tasks.StatusDeadLetter {
				t.Fatalf("poison is %s", s)
			}
			if st := q.Stats(); st.DeadLetter != 1 || st.ByStatus["completed"] != 1 || st.ByStatus["queued"] != 1 {
				t.Fatalf("stats %+v", st)
			}
			if p := q.PausedState(); len(p.Capabilities) != 1 || p.Capabilities[0] != "gpu" {
				t.Fatalf("paused %+v", p)
			}
			if _, err := q.GetSchedule("nightly"); err != nil {
				t.Fatal(err)
			}
			dl, n, err := q.ListDeadLetter(tasks.Filter{SubmittedBy: "bob"})
			if err != nil || n != 1 || dl[0].ID != poison.ID || dl[0].LastError != "boom" {
				t.Fatalf("dead letter %v %d %v", dl, n, err)
			}
			done, n, err := q.List(tasks.Filter{Status: tasks.StatusCompleted, SubmittedBy: "alice"})
			if err != nil || n != 1 || done[0].ID != a.ID {
				t.Fatalf("completed %v %d %v", done, n, err)
			}
			found, n, err := q.Search(tasks.Filter{Text: "POISON"})
			if err != nil || n != 1 || found[0].ID != poison.ID {
				t.Fatalf("search %v %d %v", found, n, err)
			}

			if _, err := q.RetryDeadLetter(poison.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := q.RetryDeadLetter(poison.ID); err == nil {
				t.Fatal("a second retry succeeded")
			}
			if _, _, err := q.Expire(b.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := q.Resume(tasks.PauseCapability, "gpu", "op"); err != nil {
				t.Fatal(err)
			}
			if err := q.RemoveSchedule("nightly", "op"); err != nil {
				t.Fatal(err)
			}

			q = restart()
			if s := status(poison.ID); s != tasks.StatusQueued {
				t.Fatalf("retried task is %s", s)
			}
			if s := status(b.ID); s != tasks.StatusDeadLetter {
				t.Fatalf("expired task is %s", s)
			}
			if st := q.Stats(); st.DeadLetter != 1 || st.ByStatus["queued"] != 1 {
				t.Fatalf("stats %+v", st)
			}
			if p := q.PausedState(); len(p.Capabilities) != 0 || len(q.Schedules()) != 0 {
				t.Fatalf("workflow records survived their removal: %+v %v", p, q.Schedules())
			}
		})
	}
}
