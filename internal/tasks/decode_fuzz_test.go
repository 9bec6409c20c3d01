package tasks

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/agentcom/agentcom/internal/protocol"

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

// FuzzSummarize checks the start-up summary against the full decoder:
// whenever summarize answers, the decoder accepts the body and agrees on
// every summary field.
func FuzzSummarize(f *testing.F) {
	until := int64(1_750_000_000_000)
	addTaskSeeds(f, []*Task{
		{ID: "task-1", Status: StatusCompleted, Priority: 3, CreatedAt: 17, Metadata: map[string]any{"a": []any{"}", "\"]"}},
			Result: map[string]any{"x": "y\\\"z"}, History: []Event{{Event: "created", Details: map[string]any{"status": "queued"}}}},
		{ID: "task-2", Status: StatusCancelled, UniqueKey: "k\u00e9\"y", UniqueUntil: until, DependsOn: []string{"a", "b\\c"}},
		{ID: "task-3", Status: StatusQueued, Priority: -1},
	})
	f.Add([]byte(`{"id":"x","Status":"completed","status":"queued"}`))
	f.Add([]byte(`{"id":"x","priority":2.5}`))
	f.Add([]byte(` { "id" : "x" , "status" : null , "depends_on" : null } `))
	f.Add([]byte(`{"id":"x","metadata":{"a":[1,{"b":"]"}]}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"x","usage":{"total_tokens":5},"USAGE":null}`))
	f.Add([]byte(`{"id":"x","usage":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, ok := summarize(data, false)
		if s2, ok2 := summarize(data, true); ok2 && (!ok || !reflect.DeepEqual(s, s2)) {
			t.Fatalf("summary stopping at active tasks %+v, full %+v (%v)", s2, s, ok)
		}
		if !ok {
			return
		}
		full, err := decode(data)
		if err != nil {
			// The summary skips values it does not need without
			// validating every byte of them; it must still have read
			// the fields it returns correctly, which only a decodable
			// body can show.
			return
		}
		got := summary{ID: full.ID, Status: full.Status, Priority: full.Priority, CreatedAt: full.CreatedAt,
			UpdatedAt: full.UpdatedAt, UniqueKey: full.UniqueKey, UniqueUntil: full.UniqueUntil, DependsOn: full.DependsOn}
		if s.ID != got.ID || s.Status != got.Status || s.Priority != got.Priority || s.CreatedAt != got.CreatedAt ||
			s.UpdatedAt != got.UpdatedAt ||
			s.UniqueKey != got.UniqueKey || s.UniqueUntil != got.UniqueUntil || !slices.Equal(s.DependsOn, got.DependsOn) ||
			s.HasUsage != (full.Usage != nil) {
			t.Fatalf("summary %+v, decoder %+v", s, got)
		}
	})
}

// FuzzDecodeRecord checks the fast record decoder against encoding/json:
// whenever it answers, encoding/json accepts the body and decodes the
// same record.
func FuzzDecodeRecord(f *testing.F) {
	agent, at := "agent-1", int64(1_750_000_000_000)
	addTaskSeeds(f, []*Task{
		{ID: "task-1", Status: StatusCompleted, Priority: 3, CreatedAt: 17, Metadata: map[string]any{"a": []any{"}", "\"]", 1.5, true, nil, map[string]any{}}},
			Result: map[string]any{"x": "y\\\"z"}, History: []Event{{Event: "created", Details: map[string]any{"status": "queued"}}},
			AssignedTo: &agent, AssignedAt: &at, Attempts: []Attempt{{Generation: 1, AgentID: agent, AssignedAt: at, Outcome: "ok"}},
			Usage: &protocol.Usage{TotalTokens: 5, CostUSD: 0.25}},
		{ID: "task-2", Status: StatusCancelled, UniqueKey: "k\u00e9\"y", UniqueUntil: at, DependsOn: []string{"a", "b\\c"}, NeededCapabilities: []string{}},
		{ID: "task-3", Status: StatusQueued, Priority: -1, Metadata: map[string]any{}, History: []Event{}, Attempts: []Attempt{}},
	})
	f.Add([]byte(`{"id":"x","Status":"completed","status":"queued"}`))
	f.Add([]byte(`{"id":"x","priority":2.5}`))
	f.Add([]byte(`{"id":"x","priority":01}`))
	f.Add([]byte(`{"id":"x","metadata":{"a":1},"metadata":{"b":2}}`))
	f.Add([]byte(`{"id":"x","metadata":{"a":1e400}}`))
	f.Add([]byte(`{"id":"x","history":[null,{"event":"e"}]}`))
	f.Add([]byte(` { "id" : "x" , "status" : null , "depends_on" : null } `))
	f.Add([]byte(`{"id":"x"} x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeRecord(data)
		if !ok {
			return
		}
		var slow record
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast decoder accepted a body encoding/json refuses (%v)", err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast decoder %+v, encoding/json %+v", fast, slow)
		}
	})
}

// addTaskSeeds adds the stored bodies of ts to f's corpus.
func addTaskSeeds(f *testing.F, ts []*Task) {
	for _, t := range ts {
		r, err := rowOf(t)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.Body)
	}
}
