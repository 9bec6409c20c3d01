package tasks

import (
	"encoding/binary"
	"testing"
)

// FuzzDecode feeds arbitrary stored records to the task decoder: it must
// return an error or a task with an id, never panic.
func FuzzDecode(f *testing.F) {
	rec := func(js string) []byte { return append(binary.BigEndian.AppendUint64(nil, 7), js...) }
	f.Add(rec(`{"id":"task-0123456789abcdef","description":"d","priority":2,"status":"queued","history":[],"attempts":[]}`))
	f.Add(rec(`{"id":""}`))
	f.Add(rec(`{"id":"x","metadata":null,"needed_capabilities":null}`))
	f.Add([]byte{1, 2, 3})
	f.Add(rec(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		task, err := Decode(data)
		if err != nil {
			return
		}
		if task.ID == "" || task.Metadata == nil || task.NeededCapabilities == nil || task.Attempts == nil {
			t.Fatalf("decoded an incomplete task: %+v", task)
		}
		if _, err := encode(task); err != nil {
			t.Fatalf("decoded task does not encode: %v", err)
		}
	})
}
