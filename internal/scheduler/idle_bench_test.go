package scheduler_test

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/scheduler"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
	"github.com/agentcom/agentcom/internal/tasks"
)

// idleFleet is a scheduler over an empty queue on driver with n idle
// agents, each offering one of eight capabilities and "code".
func idleFleet(b *testing.B, driver string, n int) (*scheduler.Scheduler, *tasks.Queue, *agents.Registry) {
	b.Helper()
	q, err := tasks.New(storagetest.OpenDriver(b, driver).Tasks(), bus.New(), tasks.Config{})
	if err != nil {
		b.Fatal(err)
	}
	reg := agents.New(nil, agents.Config{})
	s := scheduler.New(q, reg, scheduler.DefaultConfig(), slog.New(slog.DiscardHandler))
	s.SetPusher(okPusher{})
	for i := range n {
		reg.Connect(fmt.Sprintf("agent-%d", i), "", []string{"code", fmt.Sprintf("cap-%d", i%8)}, uint64(i+1), "")
	}
	return s, q, reg
}

// finish completes what an agent was just given, so it is idle again
// (outside the timed part).
func finish(b *testing.B, s *scheduler.Scheduler, q *tasks.Queue, id string) {
	b.Helper()
	t, err := q.Get(id)
	if err != nil || t.Status != tasks.StatusAssigned {
		b.Fatalf("task %s: %v %v", id, t, err)
	}
	if _, err := s.Complete(t.Holder(), id, t.Generation, nil, nil, nil); err != nil {
		b.Fatal(err)
	}
}

// benchIdle1k times assign(s, q) (which returns the task it had
// assigned) with 1,000 idle agents, on every driver; the agent is freed
// again outside the timed part.
func benchIdle1k(b *testing.B, assign func(b *testing.B, s *scheduler.Scheduler, q *tasks.Queue) string) {
	for _, drv := range storagetest.BenchDrivers() {
		b.Run(drv, func(b *testing.B) {
			s, q, _ := idleFleet(b, drv, 1000)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				id := assign(b, s, q)
				b.StopTimer()
				finish(b, s, q, id)
				b.StartTimer()
			}
		})
	}
}

// idleTask needs two capabilities: a fifth of the idle agents fit it.
func idleTask() tasks.SubmitParams {
	return tasks.SubmitParams{Description: "task", NeededCapabilities: []string{"code", "cap-3"}}
}

// BenchmarkPassIdle1k: one scheduling pass that hands one queued task to
// one of 1,000 idle agents, its write included. Per pass, the old
// registry copied and sorted every idle agent.
func BenchmarkPassIdle1k(b *testing.B) {
	benchIdle1k(b, func(b *testing.B, s *scheduler.Scheduler, q *tasks.Queue) string {
		b.StopTimer()
		t, err := q.Submit(idleTask())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if n := s.Pass(); n != 1 {
			b.Fatalf("pass assigned %d", n)
		}
		return t.ID
	})
}

// BenchmarkSubmitIdle1k: a submission through the scheduler with 1,000
// idle agents, until the assignment is pushed: the task and its
// assignment are one write.
func BenchmarkSubmitIdle1k(b *testing.B) {
	benchIdle1k(b, func(b *testing.B, s *scheduler.Scheduler, _ *tasks.Queue) string {
		t, _, err := s.SubmitTask(idleTask())
		if err != nil {
			b.Fatal(err)
		}
		return t.ID
	})
}
