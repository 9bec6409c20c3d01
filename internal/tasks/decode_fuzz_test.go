package tasks

import (
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
)

// FuzzDecode feeds arbitrary stored bodies to the task decoder: it must
// return an error or a task with an id, never panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"task-0123456789abcdef","description":"d","priority":2,"status":"queued","history":[],"attempts":[]}`))
	f.Add([]byte(`{"id":""}`))
	f.Add([]byte(`{"id":"x","metadata":null,"needed_capabilities":null}`))
	f.Add([]byte{1, 2, 3})
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		task, err := taskOf(storage.TaskRow{ID: "task-x", Version: 7, Body: data})
		if err != nil {
			return
		}
		if task.ID == "" || task.Metadata == nil || task.NeededCapabilities == nil || task.Attempts == nil || task.Version != 7 {
			t.Fatalf("decoded an incomplete task: %+v", task)
		}
		if _, err := rowOf(task); err != nil {
			t.Fatalf("decoded task does not encode: %v", err)
		}
	})
}
