package agentws_test

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/protocol"
)

// Inbound frames as the Node sidecar sends them.
var inbound = map[string][]byte{
	"identify": []byte(`{"type":"identify","agent_id":"agent-0001","token":"` +
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" +
		`","name":"agent-0001","status":"idle","capabilities":["code","review"],"client_type":"sidecar","protocol_version":1}`),
	"ping":          []byte(`{"type":"ping","protocol_version":1}`),
	"message":       []byte(`{"type":"message","to":"agent-0002","message_type":"chat","payload":{"text":"hello there, can you review PR 42?","pr":42},"protocol_version":1}`),
	"task_accepted": []byte(`{"type":"task_accepted","task_id":"task-0123456789abcdef","protocol_version":1}`),
	"task_complete": []byte(`{"type":"task_complete","task_id":"task-0123456789abcdef","generation":3,` +
		`"result":{"status":"success","output":"opened https://github.com/o/r/pull/42","tokens_used":1234},"tokens_used":1234,"protocol_version":1}`),
}

// BenchmarkDecodeFrame is the hub's inbound path per frame before
// dispatch: JSON decode with exact number typing, schema validation, then
// the frame's wire type.
func BenchmarkDecodeFrame(b *testing.B) {
	for _, name := range []string{"ping", "identify", "message", "task_accepted", "task_complete"} {
		data := inbound[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := protocol.DecodeFrame(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeFrame is the hub's outbound encoding per frame, with the
// same Go values the socket layer marshals.
func BenchmarkEncodeFrame(b *testing.B) {
	replyTo := "0123456789abcdef"
	at := int64(1739350000000)
	frames := []struct {
		name  string
		frame protocol.Frame
	}{
		{"pong", protocol.NewPong(at)},
		{"task_ack", protocol.TaskAck{Type: protocol.OutTaskAck, TaskID: "task-0123456789abcdef", Status: protocol.AckComplete}},
		{"task_assign", protocol.TaskAssign{Type: protocol.OutTaskAssign, TaskID: "task-0123456789abcdef",
			Description: "Fix the flaky test in internal/store and open a PR", Metadata: map[string]any{"repo": "o/r", "branch": "main"},
			Generation: 1, AssignedAt: at}},
		{"message", protocol.PushedMessage{Type: protocol.OutMessage, ID: "0123456789abcdef", From: "agent-0001",
			MessageType: "chat", Payload: map[string]any{"text": "hello there, can you review PR 42?", "pr": 42},
			ReplyTo: &replyTo, Timestamp: at}},
		{"agent_joined", protocol.NewAgentJoined(protocol.AgentInfo{AgentID: "agent-0001",
			Name: "agent-0001", Status: "idle", Capabilities: []string{"code", "review"}, ConnectedAt: at})},
	}
	for _, f := range frames {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(f.frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSocketRoundTrip is one frame to the hub and its reply back over
// a real loopback WebSocket (rate limits off): the per-frame cost of the
// whole socket path, decode, validation, dispatch and encode included.
func BenchmarkSocketRoundTrip(b *testing.B) {
	cfg := hub.DefaultConfig()
	cfg.Addr, cfg.DataDir, cfg.RateLimits = "127.0.0.1:0", b.TempDir(), nil
	h, err := hub.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Serve(ln); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	tok, err := h.Tokens.Create("bench-agent", auth.RoleAgent)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws://"+h.Addr()+"/ws", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.CloseNow()
	call := func(frame []byte, want string) {
		if err := ws.Write(ctx, websocket.MessageText, frame); err != nil {
			b.Fatal(err)
		}
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var f struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(data, &f); err != nil {
				b.Fatal(err)
			}
			if f.Type == want {
				return
			}
			if f.Type == "error" {
				b.Fatalf("hub answered %s", data)
			}
		}
	}
	call([]byte(`{"type":"identify","agent_id":"bench-agent","token":"`+tok+`","protocol_version":1}`), "identified")
	for _, c := range []struct{ name, frame, reply string }{
		{"ping", `{"type":"ping","protocol_version":1}`, "pong"},
		{"task_accepted", `{"type":"task_accepted","task_id":"task-0123456789abcdef","protocol_version":1}`, "task_ack"},
		{"list_agents", `{"type":"list_agents","protocol_version":1}`, "agents"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				call([]byte(c.frame), c.reply)
			}
		})
	}
	ws.Close(websocket.StatusNormalClosure, "")
}
