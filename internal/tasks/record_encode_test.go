package tasks

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/timeid"
)

// referenceBody is the stored body as encoding/json writes it: the
// format appendRecord must reproduce byte for byte.
func referenceBody(t *Task) ([]byte, error) { return json.Marshal(recordOf(t)) }

// checkEncodeEqual fails when appendRecord and encoding/json disagree on
// task's body, or on whether it can be encoded at all.
func checkEncodeEqual(t *testing.T, task *Task) {
	t.Helper()
	want, wantErr := referenceBody(task)
	got, gotErr := encodeRecord(task)
	if (wantErr != nil) != (gotErr != nil) {
		t.Fatalf("encoding/json error %v, appendRecord error %v", wantErr, gotErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendRecord wrote\n%s\nencoding/json\n%s", got, want)
	}
}

type detailStruct struct {
	A string `json:"a"`
	B int    `json:"b,omitempty"`
}

func TestAppendRecordMatchesJSON(t *testing.T) {
	agent, at, tok := "agent-<1>&\u2028", int64(1_750_000_000_000), int64(-42)
	odd := "q\"\\/\b\f\n\r\t\x00\x1f\x7f<>&\u2028\u2029é\xff\xc3 ok 🙂"
	cases := map[string]*Task{
		"zero":  {},
		"empty": {ID: "task-1", Metadata: map[string]any{}, NeededCapabilities: []string{}, History: []Event{}, Attempts: []Attempt{}},
		"every field": {
			ID: "task-" + odd, Description: odd, Priority: -3, Status: StatusCompleted,
			Metadata: map[string]any{"z": 1.0, "a": []any{"}", "\"]", 1.5, true, false, nil, map[string]any{}, []any{}},
				odd: map[string]any{"n": 1e21, "m": 1e-7, "k": math.Copysign(0, -1), "j": 123456789.125, "i": 1e20, "h": 0.000001, "g": 5e-324}},
			AssignedTo: &agent, AssignedAt: &at, Generation: 7, RetryCount: 2, DisconnectReclaims: 1, MaxRetries: 5,
			NeededCapabilities: []string{"go", odd}, LastError: "boom <x>", CompleteBy: &at,
			Result:     json.RawMessage(` {"x" : "<y>" , "z":[1, 2]} `),
			TokensUsed: &tok, SubmittedBy: odd, CreatedAt: 1, UpdatedAt: at,
			History: []Event{
				{Event: "submitted", Timestamp: at, Details: "submitted"},
				{Event: "assigned", Timestamp: at, Details: map[string]any{"agent_id": agent, "generation": int64(7)}},
				{Event: "completed", Timestamp: at, Details: map[string]any{"tokens_used": (*int64)(nil)}},
				{Event: "completed", Timestamp: at, Details: map[string]any{"tokens_used": &tok, "n": 3}},
				{Event: "check", Timestamp: at, Details: detailStruct{A: odd}},
				{Event: "strings", Details: []string{"a", odd}},
				{Event: "nil strings", Details: []string(nil)},
				{Event: "nil list", Details: []any(nil)},
				{Event: "nil map", Details: map[string]any(nil)},
			},
			TargetAgent: &agent, NotBefore: -1, LastOutput: map[string]any{"out": odd},
			Attempts: []Attempt{
				{Generation: 1, AgentID: agent, AssignedAt: at},
				{Generation: 2, AgentID: odd, AssignedAt: at, AcceptedAt: at + 1, EndedAt: at + 2, Outcome: "failed", Reason: odd},
			},
			RejectedBy: []string{"x"}, CancelledBy: odd, Usage: &protocol.Usage{TotalTokens: 5, CostUSD: 0.25},
			UniqueKey: odd, UniqueUntil: at, RunAt: at, DependsOn: []string{"a", "b\\c"}, OnDependencyFailure: "run",
			Schedule: "*/5 * * * *", ScheduleTick: at,
		},
		"numbers": {ID: "x", Result: map[string]any{"a": json.Number("12"), "b": json.Number("-0.5e+07"), "c": json.Number("0"),
			"d": json.Number("1E9"), "e": json.Number(""), "f": []any{json.Number("3.25"), json.Number("-0")}}},
		"bad number":   {ID: "x", Result: json.Number("01")},
		"bad exponent": {ID: "x", Result: json.Number("1e")},
		"nan":          {ID: "x", Result: math.NaN()},
		"inf meta":     {ID: "x", Metadata: map[string]any{"x": math.Inf(-1)}},
		"bad json":     {ID: "x", Result: json.RawMessage(`{`)},
		"channel":      {ID: "x", LastError: make(chan int)},
	}
	deep := map[string]any{}
	cur := deep
	for range 3 * maxAppendDepth {
		next := map[string]any{}
		cur["d"] = []any{next}
		cur = next
	}
	cases["deep"] = &Task{ID: "x", Metadata: deep}
	for name, task := range cases {
		t.Run(name, func(t *testing.T) { checkEncodeEqual(t, task) })
	}
}

// TestAppendRecordCycle: a value that contains itself is an error, as
// with encoding/json, not a stack overflow.
func TestAppendRecordCycle(t *testing.T) {
	m := map[string]any{}
	m["self"] = m
	if _, err := encodeRecord(&Task{ID: "x", Metadata: m}); err == nil {
		t.Fatal("a metadata map containing itself encoded")
	}
}

// FuzzAppendRecord holds appendRecord equal to encoding/json on tasks
// decoded from arbitrary bodies (so any JSON value in metadata, result,
// details and output) and on arbitrary strings and numbers.
func FuzzAppendRecord(f *testing.F) {
	addTaskSeeds(f, []*Task{
		{ID: "task-1", Status: StatusCompleted, Priority: 3, CreatedAt: 17, Metadata: map[string]any{"a": []any{"}", "\"]", 1.5, true, nil, map[string]any{}}},
			Result: map[string]any{"x": "y\\\"z"}, History: []Event{{Event: "created", Details: map[string]any{"status": "queued"}}},
			Attempts: []Attempt{{Generation: 1, AgentID: "a", AssignedAt: 5, Outcome: "ok"}}, Usage: &protocol.Usage{TotalTokens: 5}},
	})
	f.Add([]byte(`{"id":"x","metadata":{"a":1e400}}`))
	f.Add([]byte(`{"id":"<\u2028>","metadata":{"b":0.0000001,"a":[1e21,-0,12.5]},"last_output":"\ud800"}`))
	f.Add([]byte("{\"id\":\"x\\u0000\xff\",\"result\":{\"\xc3\":true}}"))
	for _, n := range []string{"0", "-1.5e-7", "12E+3", "01", "1.", "-", "1e", ".5", "1e+", "+1"} {
		f.Add([]byte(n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		task, err := decode(data)
		if err == nil {
			checkEncodeEqual(t, task)
		}
		// The same bytes as strings and numbers of a built task.
		s := string(data)
		var n int64
		var fl float64
		if len(data) >= 8 {
			for _, c := range data[:8] {
				n = n<<8 | int64(c)
			}
			fl = math.Float64frombits(uint64(n))
		}
		checkEncodeEqual(t, &Task{ID: s, Description: s, Metadata: map[string]any{s: fl, "n": n}, Priority: int(n),
			AssignedTo: &s, AssignedAt: &n, NeededCapabilities: []string{s}, LastError: s, Result: []any{fl, s},
			History: []Event{{Event: s, Timestamp: n, Details: map[string]any{s: &n}}}, LastOutput: fl,
			Attempts: []Attempt{{Generation: n, AgentID: s, AcceptedAt: n, Reason: s}}, RejectedBy: []string{s},
			CancelledBy: s, UniqueKey: s, UniqueUntil: n, DependsOn: []string{s, s}, ScheduleTick: n})
		// The string as a json.Number (agents' results are decoded with
		// UseNumber): written as is when valid, refused alike when not.
		checkEncodeEqual(t, &Task{ID: "x", Result: map[string]any{"n": json.Number(s)}})
		checkEncodeEqual(t, &Task{ID: "x", LastError: json.Number(s)})
	})
}

func BenchmarkEncodeRecord(b *testing.B) {
	agent, at, tok := "agent-12", int64(1_750_000_000_000), int64(42)
	task := &Task{ID: newID(new(timeid.Gen), 1_780_000_000_000), Description: "bench task 12345", Metadata: map[string]any{"bench_t0": 123456.0, "bench_n": 0.0},
		Priority: 2, Status: StatusCompleted, AssignedTo: &agent, AssignedAt: &at, Generation: 1, MaxRetries: 3,
		NeededCapabilities: []string{}, Result: map[string]any{"status": "success", "output": "bench"}, TokensUsed: &tok,
		SubmittedBy: "admin", CreatedAt: at, UpdatedAt: at,
		History: []Event{{Event: "queued", Timestamp: at, Details: "submitted"},
			{Event: "assigned", Timestamp: at, Details: map[string]any{"agent_id": agent, "generation": int64(1)}},
			{Event: "completed", Timestamp: at, Details: map[string]any{"tokens_used": &tok}}},
		Attempts: []Attempt{{Generation: 1, AgentID: agent, AssignedAt: at, AcceptedAt: at, EndedAt: at, Outcome: "completed"}}}
	b.Run("appendRecord", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeRecord(task); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := referenceBody(task); err != nil {
				b.Fatal(err)
			}
		}
	})
}
