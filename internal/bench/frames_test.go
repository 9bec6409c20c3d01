package bench

import (
	"encoding/json"
	"testing"

	"github.com/agentcom/agentcom/internal/protocol"
)

// Every frame the load tool writes by hand is one the hub accepts, of the
// type it claims, with the fields the scenarios rely on.
func TestFramesDecodeAsProtocol(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		want protocol.Frame
	}{
		{[]byte(pingFrame), protocol.Ping{Type: protocol.FramePing, ProtocolVersion: json.Number("1")}},
		{identifyFrame("agent-0001", `tok"en`), protocol.Identify{Type: protocol.FrameIdentify, AgentID: "agent-0001", Token: `tok"en`,
			Name: "agent-0001", Status: "idle", Capabilities: []string{}, ClientType: "sidecar", ProtocolVersion: json.Number("2")}},
		{broadcastFrame(12, 3), protocol.Message{Type: protocol.FrameMessage, MessageType: "chat",
			Payload: map[string]any{"bench_t0": json.Number("12"), "bench_n": json.Number("3")}, ProtocolVersion: json.Number("1")}},
		{directFrame("agent-0002", 12, 3), protocol.Message{Type: protocol.FrameMessage, To: "agent-0002", MessageType: "chat",
			Payload: map[string]any{"bench_t0": json.Number("12"), "bench_n": json.Number("3")}, ProtocolVersion: json.Number("1")}},
		{acceptedFrame("task-1"), protocol.TaskAccepted{Type: protocol.FrameTaskAccepted, TaskID: "task-1", ProtocolVersion: json.Number("1")}},
		{completeFrame("task-1", 7), protocol.TaskComplete{Type: protocol.FrameTaskComplete, TaskID: "task-1", Generation: 7,
			Result: json.RawMessage(`{"output":"bench","status":"success"}`), ProtocolVersion: json.Number("1")}},
	} {
		typ, f, err := protocol.DecodeFrame(tc.data)
		if err != nil {
			t.Errorf("%s: %v", tc.data, err)
			continue
		}
		if typ != tc.want.FrameType() {
			t.Errorf("%s: type %q", tc.data, typ)
		}
		got, _ := json.Marshal(f)
		want, _ := json.Marshal(tc.want)
		if string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.data, got, want)
		}
	}
}
