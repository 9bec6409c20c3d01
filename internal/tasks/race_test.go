package tasks_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/tasks"
)

// TestConcurrentDeadLetterRetry: an operator double-clicking "retry" (or
// the dashboard and the API at once) requeues the task once.
func TestConcurrentDeadLetterRetry(t *testing.T) {
	e := newEnv(t, noBackoff())
	for round := range 20 {
		task := e.submit(tasks.SubmitParams{MaxRetries: intp(1)})
		a := e.assignID(task.ID, "a")
		if _, _, _, err := e.Q.Fail(task.ID, "a", a.Generation, "x", nil); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.Q.RetryDeadLetter(task.ID)
				var se *tasks.StateError
				if err != nil && (!errors.As(err, &se) || se.Status != tasks.StatusQueued) {
					t.Errorf("retry: %v", err)
				}
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("round %d: %d retries succeeded", round, ok)
		}
		s := e.Q.Stats()
		if s.DeadLetter != 0 || s.ByStatus["queued"] != 1 || s.QueuedIndexSize != 1 {
			t.Fatalf("round %d: stats %+v", round, s)
		}
		if got := e.get(task.ID); got.Generation != a.Generation+1 {
			t.Fatalf("round %d: generation %d, want %d", round, got.Generation, a.Generation+1)
		}
		// Take it out of the way for the next round.
		b := e.assignID(task.ID, "b")
		if _, _, err := e.Q.Complete(task.ID, "b", b.Generation, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
}
