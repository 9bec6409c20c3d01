package tasks_test

import (
	"fmt"
	"testing"

	"github.com/agentcom/agentcom/internal/tasks"
)

// BenchmarkTaskSubmitAssign: a submission that finds an idle agent, the
// assignment stored in the submission's write (one commit for both).
func BenchmarkTaskSubmitAssign(b *testing.B) {
	for _, drv := range benchDrivers() {
		b.Run(drv, func(b *testing.B) {
			q := benchQueue(b, drv)
			runParallel(b, func(i int) error {
				agent := fmt.Sprintf("agent-%d", i)
				_, as, _, err := q.SubmitAssign(benchParams(), func(*tasks.Task) (string, bool) { return agent, false })
				if err == nil && as == nil {
					err = fmt.Errorf("task %d not assigned", i)
				}
				return err
			})
		})
	}
}

// BenchmarkTaskLifecycle: a task's whole life as a hub runs it with an
// idle agent waiting: submitted and assigned in one write, accepted (in
// memory), completed (durable).
func BenchmarkTaskLifecycle(b *testing.B) {
	for _, drv := range benchDrivers() {
		b.Run(drv, func(b *testing.B) {
			q := benchQueue(b, drv)
			runParallel(b, func(i int) error {
				agent := fmt.Sprintf("agent-%d", i)
				_, t, _, err := q.SubmitAssign(benchParams(), func(*tasks.Task) (string, bool) { return agent, false })
				if err != nil {
					return err
				}
				if t == nil {
					return fmt.Errorf("task %d not assigned", i)
				}
				if _, err := q.Accept(t.ID, agent); err != nil {
					return err
				}
				_, _, err = q.Complete(t.ID, agent, t.Generation, nil, nil)
				return err
			})
		})
	}
}
