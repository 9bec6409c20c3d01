package tasks

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/agentcom/agentcom/internal/protocol"
)

// populatedTask sets every field of Task, so the byte comparisons below
// cover each one; TestPopulatedTaskIsFull keeps it that way.
func populatedTask() *Task {
	agent, target := "agent-a", "agent-b"
	at, by, tokens := int64(1700000000100), int64(1700000900000), int64(1234)
	return &Task{
		ID:                  "task-0123456789abcdef",
		Description:         "summarise <the> \"report\" & more",
		Metadata:            map[string]any{"k": "v", "n": 1.5, "nested": map[string]any{"x": []any{true, nil}}},
		Priority:            PriorityHigh,
		Status:              StatusAssigned,
		AssignedTo:          &agent,
		AssignedAt:          &at,
		Generation:          7,
		RetryCount:          2,
		DisconnectReclaims:  1,
		MaxRetries:          5,
		NeededCapabilities:  []string{"go", "sql"},
		LastError:           map[string]any{"code": "boom"},
		CompleteBy:          &by,
		Result:              []any{"r", 2.0},
		TokensUsed:          &tokens,
		SubmittedBy:         "submitter",
		CreatedAt:           1700000000000,
		UpdatedAt:           1700000000200,
		History:             []Event{{Event: "assigned", Timestamp: 1700000000100, Details: map[string]any{"agent_id": agent}}, {Event: "created", Timestamp: 1700000000000, Details: nil}},
		TargetAgent:         &target,
		NotBefore:           1700000000300,
		LastOutput:          "partial output",
		Attempts:            []Attempt{{Generation: 6, AgentID: "agent-c", AssignedAt: 1, AcceptedAt: 2, EndedAt: 3, Outcome: "failed", Reason: "exit 1"}, {Generation: 7, AgentID: agent, AssignedAt: 4}},
		RejectedBy:          []string{"agent-d"},
		CancelledBy:         "operator",
		Usage:               &protocol.Usage{InputTokens: 10, OutputTokens: 20, TotalTokens: 30, CostUSD: 0.25},
		UniqueKey:           "uniq",
		UniqueUntil:         1700000009999,
		RunAt:               1700000000050,
		DependsOn:           []string{"task-aaaaaaaaaaaaaaaa"},
		OnDependencyFailure: "run",
		Schedule:            "nightly",
		ScheduleTick:        1700000000000,
		Upstream:            []Upstream{{TaskID: "task-aaaaaaaaaaaaaaaa", Description: "dep", Status: StatusCompleted, Result: "ok"}},
		Paused:              true,
		Archived:            true,
		Version:             9,
	}
}

// emptySlicesTask has empty, not nil, slices and maps: JSON tells them
// apart ([] and {} against null).
func emptySlicesTask() *Task {
	return &Task{ID: "task-2", Metadata: map[string]any{}, NeededCapabilities: []string{},
		History: []Event{}, Attempts: []Attempt{}, RejectedBy: []string{}, DependsOn: []string{}, Usage: &protocol.Usage{}}
}

// TestPopulatedTaskIsFull: a field added to Task must be set in
// populatedTask, or the byte comparisons would not cover it.
func TestPopulatedTaskIsFull(t *testing.T) {
	v := reflect.ValueOf(populatedTask()).Elem()
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("populatedTask leaves %s unset", v.Type().Field(i).Name)
		}
	}
}

// TestWireJSONUnchanged: the wire type's JSON is byte for byte the JSON
// the API served when it encoded Task itself, for a populated task and
// near-empty ones (nil versus empty slices included).
func TestWireJSONUnchanged(t *testing.T) {
	cases := map[string]*Task{
		"populated":    populatedTask(),
		"zero":         {},
		"minimal":      {ID: "task-1", Status: StatusQueued, Priority: PriorityNormal, MaxRetries: DefaultMaxRetries},
		"empty slices": emptySlicesTask(),
	}
	sameJSONAsTask(t, cases, func(task *Task) ([]byte, error) { return json.Marshal(task.Wire()) })
}

// sameJSONAsTask fails for each case whose encoding by enc differs from
// encoding the Task itself (the format before the separate types).
func sameJSONAsTask(t *testing.T, cases map[string]*Task, enc func(*Task) ([]byte, error)) {
	t.Helper()
	for name, task := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(task)
			if err != nil {
				t.Fatal(err)
			}
			got, err := enc(task)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("JSON differs from Task's\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// TestTaskFieldsDecided: every Task field is either shown by the API
// (same name in protocol.Task, converted in Wire) or listed as internal.
// A new field fails here until someone decides which.
func TestTaskFieldsDecided(t *testing.T) {
	checkFieldsDecided(t, reflect.TypeFor[protocol.Task](), map[string]bool{
		"Upstream": true, // sent with an assignment frame, never in the task body
		"Version":  true, // orders disk writes
	})
}

// checkFieldsDecided fails for each Task field that is neither in other
// (with the same JSON tag) nor in left, and for each field of other that
// Task lacks.
func checkFieldsDecided(t *testing.T, other reflect.Type, left map[string]bool) {
	t.Helper()
	dom := reflect.TypeFor[Task]()
	for i := range dom.NumField() {
		f := dom.Field(i)
		of, in := other.FieldByName(f.Name)
		switch {
		case left[f.Name] && in:
			t.Errorf("Task.%s is listed as left out but %s has it", f.Name, other)
		case left[f.Name]:
		case !in:
			t.Errorf("Task.%s is neither in %s nor listed as left out: decide", f.Name, other)
		case of.Tag.Get("json") != f.Tag.Get("json"):
			t.Errorf("Task.%s json tag %q, %s has %q", f.Name, f.Tag.Get("json"), other, of.Tag.Get("json"))
		}
	}
	for i := range other.NumField() {
		if _, ok := dom.FieldByName(other.Field(i).Name); !ok {
			t.Errorf("%s.%s has no Task field", other, other.Field(i).Name)
		}
	}
}
