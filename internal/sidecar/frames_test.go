package sidecar

import (
	"encoding/json"
	"testing"

	"github.com/agentcom/agentcom/internal/protocol"
)

// The hub's frame types, encoded as the hub encodes them, decode into
// what the sidecar acts on.
func TestDecodeFrameReadsHubTypes(t *testing.T) {
	gen := int64(4)
	due := int64(1700000600000)
	for _, tc := range []struct {
		name string
		in   any
		want inFrame
	}{
		{"identified", protocol.NewIdentified("a1", clientVersion),
			inFrame{Type: protocol.OutIdentified, AgentID: "a1", Generation: -1}},
		{"assign", protocol.TaskAssign{Type: protocol.OutTaskAssign, TaskID: "task-1", Description: "fix it",
			Metadata: map[string]any{"repo": "r"}, Generation: 3, AssignedAt: 1700000000000, CompleteBy: &due,
			Dependencies: []protocol.Dependency{{TaskID: "task-0", Description: "before", Status: "completed"}}},
			inFrame{Type: protocol.OutTaskAssign, TaskID: "task-1", Description: "fix it", Metadata: json.RawMessage(`{"repo":"r"}`),
				Generation: 3, AssignedAt: 1700000000000, CompleteBy: due,
				Dependencies: json.RawMessage(`[{"task_id":"task-0","description":"before","status":"completed"}]`)}},
		{"ack", protocol.TaskAck{Type: protocol.OutTaskAck, TaskID: "task-1", Status: protocol.AckDeadLetter, Duplicate: true},
			inFrame{Type: protocol.OutTaskAck, TaskID: "task-1", Status: protocol.AckDeadLetter, Generation: -1}},
		{"continue", protocol.NewTaskContinue("task-1", 5),
			inFrame{Type: protocol.OutTaskContinue, TaskID: "task-1", Generation: 5}},
		{"reassign reply", protocol.NewTaskReassignReply("task-1"),
			inFrame{Type: protocol.OutTaskReassign, TaskID: "task-1", Generation: -1}},
		{"reassign", protocol.TaskRevoked{Type: protocol.OutTaskReassign, TaskID: "task-1", Generation: &gen, Reason: "lease_expired"},
			inFrame{Type: protocol.OutTaskReassign, TaskID: "task-1", Generation: 4}},
		{"cancelled", protocol.TaskRevoked{Type: protocol.OutTaskCancelled, TaskID: "task-1"},
			inFrame{Type: protocol.OutTaskCancelled, TaskID: "task-1", Generation: -1}},
		{"error", protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeInvalidToken},
			inFrame{Type: protocol.OutError, Error: protocol.CodeInvalidToken, Generation: -1}},
		{"report error", protocol.NewTaskReportError(protocol.CodeTaskFailFailed, protocol.CodeInternal, "task-1"),
			inFrame{Type: protocol.OutError, Error: "task_fail_failed: internal_error", TaskID: "task-1", Generation: -1}},
		{"validation", protocol.ValidationFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed, MessageType: "ping"},
			inFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed, Generation: -1}},
	} {
		data, err := json.Marshal(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeFrame(data)
		if err != nil {
			t.Errorf("%s: %s: %v", tc.name, data, err)
			continue
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(tc.want)
		if string(g) != string(w) {
			t.Errorf("%s: %s\n got %s\nwant %s", tc.name, data, g, w)
		}
	}
}

// The frames the sidecar sends keep the bytes of the sidecar's former
// local types (the original's field order), and each is a valid agent
// frame for the hub.
func TestSentFramesKeepTheirBytes(t *testing.T) {
	usage := &protocol.Usage{InputTokens: 10, OutputTokens: 20, TotalTokens: 30}
	for _, tc := range []struct {
		f    any
		want string
	}{
		{protocol.Identify{Type: protocol.FrameIdentify, AgentID: "a1", Token: "t", Name: "a1", Status: "idle",
			Capabilities: []string{"code"}, ClientType: "sidecar", ProtocolVersion: clientVersion},
			`{"type":"identify","agent_id":"a1","token":"t","name":"a1","status":"idle","capabilities":["code"],"client_type":"sidecar","protocol_version":2}`},
		{recoveringFrame(&Task{TaskID: "task-1", Description: "fix", Metadata: json.RawMessage(`{"k":1}`), Status: StatusWorking, Generation: 2}),
			`{"type":"task_recovering","task_id":"task-1","description":"fix","metadata":{"k":1},"last_status":"working","generation":2,"protocol_version":2}`},
		{recoveringFrame(&Task{TaskID: "task-1"}),
			`{"type":"task_recovering","task_id":"task-1","description":"","metadata":null,"last_status":"","generation":0,"protocol_version":2}`},
		{reportFrame(Report{Type: reportComplete, TaskID: "task-1", Generation: 2, Result: json.RawMessage(`{"ok":true}`), Usage: usage}),
			`{"type":"task_complete","task_id":"task-1","result":{"ok":true},"generation":2,"tokens_used":30,"usage":{"input_tokens":10,"output_tokens":20,"total_tokens":30},"protocol_version":2}`},
		{reportFrame(Report{Type: reportFailed, TaskID: "task-1", Generation: 2, Reason: "boom", Output: json.RawMessage(`{"x":1}`)}),
			`{"type":"task_failed","task_id":"task-1","reason":"boom","generation":2,"output":{"x":1},"protocol_version":2}`},
		{protocol.TaskAccepted{Type: protocol.FrameTaskAccepted, TaskID: "task-1", ProtocolVersion: clientVersion},
			`{"type":"task_accepted","task_id":"task-1","protocol_version":2}`},
		{protocol.TaskRejected{Type: protocol.FrameTaskRejected, TaskID: "task-1", Reason: "busy", Generation: genPtr(3), ProtocolVersion: clientVersion},
			`{"type":"task_rejected","task_id":"task-1","reason":"busy","generation":3,"protocol_version":2}`},
		{protocol.TaskRejected{Type: protocol.FrameTaskRejected, TaskID: "task-1", Reason: "busy", Generation: genPtr(-1), ProtocolVersion: clientVersion},
			`{"type":"task_rejected","task_id":"task-1","reason":"busy","protocol_version":2}`},
		{protocol.TaskProgress{Type: protocol.FrameTaskProgress, TaskID: "task-1", ProtocolVersion: clientVersion},
			`{"type":"task_progress","task_id":"task-1","protocol_version":2}`},
		{protocol.Ping{Type: protocol.FramePing, ProtocolVersion: clientVersion}, `{"type":"ping","protocol_version":2}`},
	} {
		data, err := json.Marshal(tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != tc.want {
			t.Errorf("\n got %s\nwant %s", data, tc.want)
		}
		if _, _, err := protocol.DecodeFrame(data); err != nil {
			t.Errorf("%s: the hub would refuse it: %v", data, err)
		}
	}
	// The answer to a hub ping is typed pong, which no hub reads.
	data, _ := json.Marshal(protocol.Ping{Type: protocol.OutPong, Timestamp: int64(5), ProtocolVersion: clientVersion})
	if string(data) != `{"type":"pong","timestamp":5,"protocol_version":2}` {
		t.Errorf("pong: %s", data)
	}
}
