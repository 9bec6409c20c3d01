package tasks

import "github.com/agentcom/agentcom/internal/storage"

// RowOf is rowOf for the external tests, which write stored tasks
// directly.
func RowOf(t *Task) (storage.TaskRow, error) { return rowOf(t) }
