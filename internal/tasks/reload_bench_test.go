package tasks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasks"
)

// BenchmarkReload measures a queue's start over stored tasks: 1,000 queued
// tasks beside 0 or 50,000 ended ones (completed, with a result and a
// history, as a long-running hub keeps them), and a deep queue of 50,000
// queued tasks (each decoded in full at start). ns/op is one full load;
// ns/stored-task divides it by every stored task.
//
//	go test -run '^$' -bench Reload -benchtime 5x ./internal/tasks/
func BenchmarkReload(b *testing.B) {
	for _, c := range []struct{ queued, ended int }{{1000, 0}, {1000, 50_000}, {50_000, 0}} {
		b.Run(fmt.Sprintf("queued=%d/ended=%d", c.queued, c.ended), func(b *testing.B) {
			db, err := store.Open(b.TempDir(), store.AllTables(), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			d, err := boltdriver.New(db)
			if err != nil {
				b.Fatal(err)
			}
			st := d.Tasks()
			storeTasks(b, st, c.queued, c.ended)
			q, err := tasks.New(st, bus.New(), tasks.DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			if got := q.Stats().ByStatus; got["queued"] != c.queued || got["completed"] != c.ended {
				b.Fatalf("counts after load: %v", got)
			}
			b.ResetTimer()
			for b.Loop() {
				if err := q.Reload(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.queued+c.ended), "ns/stored-task")
		})
	}
}

// storeTasks writes queued and ended tasks straight to storage, in large
// commits (the queue would take one commit per task or batch).
func storeTasks(b *testing.B, st storage.TaskStore, queued, ended int) {
	b.Helper()
	const now = int64(1_750_000_000_000)
	var rows []storage.TaskRow
	flush := func() {
		if err := st.Put(context.Background(), rows, nil); err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	for i := range queued + ended {
		t := tasks.Task{ID: fmt.Sprintf("task-%08d", i), Description: "reload benchmark task " + fmt.Sprint(i),
			Metadata: map[string]any{"n": i, "source": "bench"}, Priority: i % 4, Status: tasks.StatusQueued,
			NeededCapabilities: []string{"code"}, SubmittedBy: "bench", CreatedAt: now + int64(i), UpdatedAt: now + int64(i),
			History:  []tasks.Event{{Event: "created", Timestamp: now + int64(i), Details: map[string]any{"by": "bench"}}},
			Attempts: []tasks.Attempt{}, MaxRetries: 3}
		if i >= queued {
			agent := "agent-1"
			t.Status, t.AssignedTo, t.Generation = tasks.StatusCompleted, &agent, 1
			t.Result = map[string]any{"output": "done " + fmt.Sprint(i), "files": []any{"a.go", "b.go"}}
			t.History = append(t.History,
				tasks.Event{Event: "assigned", Timestamp: now + int64(i) + 5, Details: map[string]any{"agent": agent}},
				tasks.Event{Event: "completed", Timestamp: now + int64(i) + 9, Details: map[string]any{"agent": agent}})
			t.Attempts = []tasks.Attempt{{AgentID: agent, Generation: 1}}
		}
		body, err := json.Marshal(&t)
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, storage.TaskRow{ID: t.ID, Version: 1, Status: string(t.Status), Priority: t.Priority,
			SubmittedBy: t.SubmittedBy, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Body: body})
		if len(rows) == 2000 {
			flush()
		}
	}
	flush()
}
