package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"testing"
)

func i64(n int64) *int64 { return &n }

// Numbers decoded from the wire are json.Number: samples use them where a
// field is any, so a round trip compares equal.
func num(s string) json.Number { return json.Number(s) }

var sampleAgent = AgentInfo{AgentID: "agent-1", Name: "one", Status: "idle", Capabilities: []string{"code"}, ConnectedAt: 1700000000000}

// agentSamples holds one populated value per agent frame type.
func agentSamples() []Frame {
	usage := &Usage{InputTokens: 10, OutputTokens: 20, TotalTokens: 30, CostUSD: 0.25}
	return []Frame{
		Identify{Type: FrameIdentify, AgentID: "agent-1", Token: "tok", Name: "one", Status: "idle",
			Capabilities: []string{"code", "review"}, ClientType: "sidecar", ProtocolVersion: num("1")},
		Message{Type: FrameMessage, Payload: map[string]any{"text": "hi", "n": num("2")}, To: "agent-2",
			MessageType: "chat", ReplyTo: "0123456789abcdef", ProtocolVersion: num("1")},
		Status{Type: FrameStatus, Status: "busy", ProtocolVersion: num("1")},
		ListAgents{Type: FrameListAgents, ProtocolVersion: num("1")},
		Ping{Type: FramePing, Timestamp: num("1700000000000"), ProtocolVersion: num("1")},
		ChannelSubscribe{Type: FrameChannelSubscribe, Channel: "ops", ProtocolVersion: num("1")},
		ChannelUnsubscribe{Type: FrameChannelUnsubscribe, Channel: "ops", ProtocolVersion: num("1")},
		ChannelPublish{Type: FrameChannelPublish, Channel: "ops", Payload: map[string]any{"a": []any{num("1"), "b"}},
			MessageType: "note", ReplyTo: "0123456789abcdef", ProtocolVersion: num("1")},
		ChannelHistory{Type: FrameChannelHistory, Channel: "ops", Limit: i64(10), Since: i64(3), ProtocolVersion: num("1")},
		ListChannels{Type: FrameListChannels, ProtocolVersion: num("1")},
		TaskAccepted{Type: FrameTaskAccepted, TaskID: "task-1", ProtocolVersion: num("1")},
		TaskProgress{Type: FrameTaskProgress, TaskID: "task-1", Progress: i64(50), Output: "step 1\n",
			Check:           &VerifyCheck{Attempt: 1, Command: "go test", ExitCode: 1, DurationMs: 20, TimedOut: true, OutputTail: "FAIL"},
			ProtocolVersion: num("1")},
		TaskComplete{Type: FrameTaskComplete, TaskID: "task-1", Result: json.RawMessage(`{"output":"done","status":"success"}`),
			Generation: 3, TokensUsed: i64(30), Usage: usage, ProtocolVersion: num("1")},
		TaskFailed{Type: FrameTaskFailed, TaskID: "task-1", Error: "boom", Reason: "exit 1", Generation: 3,
			Output: json.RawMessage(`{"tail":"x"}`), Usage: usage, ProtocolVersion: num("1")},
		TaskRecovering{Type: FrameTaskRecovering, TaskID: "task-1", Description: json.RawMessage(`"fix it"`),
			Metadata: json.RawMessage(`{"repo":"r"}`), LastStatus: "working", Generation: num("2"), ProtocolVersion: num("1")},
		TaskRejected{Type: FrameTaskRejected, TaskID: "task-1", Reason: "busy", Generation: i64(2), ProtocolVersion: num("1")},
	}
}

// outSamples holds at least one value per hub frame type.
func outSamples() []Frame {
	msg := PushedMessage{Type: OutMessage, ID: "0123456789abcdef", From: "agent-2", MessageType: "chat",
		Payload: map[string]any{"text": "hi"}, Timestamp: 1700000000000}
	reply := "fedcba9876543210"
	cmsg := msg
	cmsg.Type, cmsg.ReplyTo = OutChannelMessage, &reply
	return []Frame{
		NewIdentified("agent-1", Version),
		ErrorFrame{Type: OutError, Error: CodeNotIdentified},
		ValidationFrame{Type: OutError, Error: CodeValidationFailed, MessageType: "status",
			Errors: []FieldError{{Field: "status", Error: ErrRequired, Detail: "field is required"}}},
		RateLimitedFrame{Type: OutError, Error: CodeRateLimited, MessageType: FrameMessage, RetryAfterMs: 250},
		NewUnknownRecipientError("ghost"),
		NewPayloadTooLargeError(65536),
		NewTaskReportError(CodeTaskCompleteFailed, "stale_generation", "task-1"),
		NewPong(1700000000000),
		NewMessageSent("0123456789abcdef"),
		msg,
		NewStatusUpdated(),
		NewAgents([]AgentInfo{sampleAgent}),
		NewChannelSubscribed("ops", true),
		NewChannelUnsubscribed("ops"),
		NewChannelPublished("ops", "0123456789abcdef", 7),
		NewChannelHistory("ops", []any{map[string]any{"seq": num("1"), "from": "agent-2"}}),
		NewChannels([]any{map[string]any{"name": "ops", "subscribers": num("2")}}),
		PushedChannelMessage{PushedMessage: cmsg, Channel: "ops"},
		NewChannelAgentJoined("ops", "agent-2"),
		NewAgentJoined(sampleAgent),
		NewAgentLeft("agent-1"),
		NewStatusChanged(sampleAgent),
		TaskAssign{Type: OutTaskAssign, TaskID: "task-1", Description: "fix it", Metadata: map[string]any{"repo": "r"},
			Generation: 2, AssignedAt: 1700000000000, CompleteBy: i64(1700000600000),
			Dependencies: []Dependency{{TaskID: "task-0", Description: "before", Status: "completed", Result: map[string]any{"ok": true}}}},
		TaskAck{Type: OutTaskAck, TaskID: "task-1", Status: AckComplete, Duplicate: true},
		NewTaskContinue("task-1", 2),
		NewTaskReassignReply("task-1"),
		TaskRevoked{Type: OutTaskReassign, TaskID: "task-1", Generation: i64(3), Reason: "lease_expired"},
		TaskRevoked{Type: OutTaskCancelled, TaskID: "task-1"},
	}
}

type bodyCase struct {
	v      Body
	decode func(Object) (any, error)
}

func body[T Body](v T) bodyCase {
	return bodyCase{v, func(o Object) (any, error) { return DecodeBody[T](o) }}
}

// bodySamples holds one populated value per HTTP body.
func bodySamples() []bodyCase {
	task := PostTask{Description: "fix it", Priority: "high", Metadata: map[string]any{"repo": "r"}, MaxRetries: i64(2),
		CompleteBy: i64(1700000600000), NeededCapabilities: []string{"code"}, TargetAgent: "agent-1", UniqueKey: "k",
		UniqueFor: "1h", RunAt: num("1700000000000"), RunIn: "5m", DependsOn: []string{"a"}, OnDependencyFailure: "cancel",
		Verify: []string{"go test ./..."}, MaxVerifyAttempts: i64(3)}
	return []bodyCase{
		body(PostMessage{Payload: map[string]any{"text": "hi"}, To: "broadcast", Type: "chat", ReplyTo: "0123456789abcdef"}),
		body(PutHeartbeat{HeartbeatIntervalMs: 30000}),
		body(PutMailboxTTL{MailboxTTLMs: 86400000}),
		body(PostChannel{Name: "ops", Description: "operations"}),
		body(PostChannelPublish{Payload: map[string]any{"n": num("1")}, Type: "note", ReplyTo: "0123456789abcdef"}),
		body(PostMailboxAck{Seq: 42, Token: "tok"}),
		body(PostToken{AgentID: "agent-1", Role: "admin"}),
		body(PostPushTask{AgentID: "agent-1", Description: "fix it", Metadata: map[string]any{"repo": "r"}}),
		body(task),
		body(PostTaskBatch{Tasks: []BatchTask{{Key: "a", PostTask: task}, {Key: "b", PostTask: PostTask{Description: "then", DependsOn: []string{"a"}}}}}),
		body(PostPause{Lane: "high", Capability: "code"}),
		body(PostSchedule{Name: "nightly", Cron: "0 3 * * *", Timezone: "UTC", Description: "build", Priority: num("5"),
			Metadata: map[string]any{"x": "y"}, MaxRetries: i64(1), NeededCapabilities: []string{"build"}, TargetAgent: "agent-1"}),
		body(PostOnboardRegister{AgentID: "agent-9", JoinSecret: "s", Capabilities: []string{"code"}}),
		body(PutDefaultRepo{URL: "https://example.com/r.git"}),
		body(PostPushSubscribe{Endpoint: "https://push.example.com/x", Keys: map[string]any{"p256dh": "k", "auth": "a"}}),
		body(PutAlerts{Rules: map[string]any{"queue_depth": map[string]any{"threshold": num("10")}}}),
		body(PostTaskCancel{Reason: "not needed"}),
		body(PostTasksBulk{Action: "retry", TaskIDs: []string{"t1", "t2"}, Reason: "flaky"}),
		body(PostAlertAck{Note: "seen"}),
		body(Empty{}),
	}
}

// TestEveryFrameRoundTrips walks every frame type and body through
// encode, validate and decode; it fails when a type has no sample, so a
// new frame or body cannot skip it.
func TestEveryFrameRoundTrips(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range agentSamples() {
		data, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := DecodeObject(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if typ, err := ValidateFrame(obj); err != nil || typ != f.FrameType() {
			t.Errorf("%s: validate: %q, %v", data, typ, err)
			continue
		}
		typ, got, err := DecodeFrame(data)
		if err != nil || typ != f.FrameType() {
			t.Errorf("%s: decode: %q, %v", data, typ, err)
			continue
		}
		if !reflect.DeepEqual(got, f) {
			t.Errorf("%s round trip:\n got %#v\nwant %#v", f.FrameType(), got, f)
		}
		seen[f.FrameType()] = true
	}
	if missing := missingFrom(AgentFrameTypes(), seen); len(missing) > 0 {
		t.Errorf("agent frames without a sample: %v", missing)
	}

	seen = map[string]bool{}
	for _, f := range outSamples() {
		data, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		var head struct{ Type string }
		if err := json.Unmarshal(data, &head); err != nil || head.Type != f.FrameType() {
			t.Errorf("%s: type %q, FrameType %q", data, head.Type, f.FrameType())
		}
		if !slices.Contains(OutFrameTypes(), f.FrameType()) {
			t.Errorf("%s: %q is not an Out* type", data, f.FrameType())
		}
		p := reflect.New(reflect.TypeOf(f))
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(p.Interface()); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if got := p.Elem().Interface(); !reflect.DeepEqual(got, f) {
			t.Errorf("%s round trip:\n got %#v\nwant %#v", f.FrameType(), got, f)
		}
		seen[f.FrameType()] = true
	}
	if missing := missingFrom(OutFrameTypes(), seen); len(missing) > 0 {
		t.Errorf("hub frames without a sample: %v", missing)
	}

	seen = map[string]bool{}
	for _, c := range bodySamples() {
		name := c.v.BodyName()
		data, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := DecodeObject(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if err := ValidateBody(name, obj); err != nil {
			t.Errorf("%s %s: validate: %v", name, data, err)
			continue
		}
		got, err := c.decode(obj)
		if err != nil {
			t.Errorf("%s %s: decode: %v", name, data, err)
			continue
		}
		if !reflect.DeepEqual(got, any(c.v)) {
			t.Errorf("%s round trip:\n got %#v\nwant %#v", name, got, c.v)
		}
		seen[name] = true
	}
	if missing := missingFrom(BodyNames(), seen); len(missing) > 0 {
		t.Errorf("bodies without a sample: %v", missing)
	}
}

func missingFrom(all []string, seen map[string]bool) []string {
	var out []string
	for _, n := range all {
		if !seen[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Only the schema's exact field names are decoded: encoding/json's
// case-insensitive matching would let "AGENT_ID", which validation never
// looked at, replace the validated agent_id.
func TestDecodeFrameReadsExactNamesOnly(t *testing.T) {
	_, f, err := DecodeFrame([]byte(`{"type":"identify","agent_id":"good","token":"t","AGENT_ID":"bad id!","Token":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if id := f.(Identify); id.AgentID != "good" || id.Token != "t" {
		t.Fatalf("got %+v", id)
	}
}

// A nested object of the wrong shape passes validation ("an object") and
// comes back as a MalformedError with the rest of the frame, so the
// handler answers it where it always did.
func TestDecodeFrameMalformedNested(t *testing.T) {
	_, f, err := DecodeFrame([]byte(`{"type":"task_complete","task_id":"t1","generation":2,"usage":{"input_tokens":"many"}}`))
	var me *MalformedError
	if !errors.As(err, &me) || !me.Has("usage") || me.Has("task_id") {
		t.Fatalf("err = %v", err)
	}
	if c := f.(TaskComplete); c.TaskID != "t1" || c.Generation != 2 || c.Usage != nil {
		t.Fatalf("frame = %+v", c)
	}
	// Validation errors come first and unchanged, with no frame.
	typ, f, err := DecodeFrame([]byte(`{"type":"task_complete","generation":1.5}`))
	var ve *ValidationError
	if !errors.As(err, &ve) || typ != FrameTaskComplete || f != nil || len(ve.Errors) != 2 {
		t.Fatalf("typ %q frame %v err %v", typ, f, err)
	}
	if _, _, err := DecodeFrame([]byte(`{`)); !errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeBodyValidatesFirst(t *testing.T) {
	obj, _ := DecodeObject([]byte(`{"priority":"high"}`))
	_, err := DecodeBody[PostTask](obj)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Legacy != "missing required field: description" {
		t.Fatalf("err = %v", err)
	}
}

// Tags cannot name constants; this holds them to each other.
func TestTagLimitsMatchConstants(t *testing.T) {
	for _, f := range agentFrames[FrameTaskProgress].Fields {
		if f.Name == "output" && f.MaxLen != MaxProgressOutput {
			t.Fatalf("task_progress output max %d, MaxProgressOutput %d", f.MaxLen, MaxProgressOutput)
		}
	}
}
