// Package protocoltest holds one populated value of every wire type, for
// tests that walk them all: protocol's round trip, and the route and
// frame-table tests of the packages that serve them.
package protocoltest

import (
	"encoding/json"

	"github.com/agentcom/agentcom/internal/protocol"
)

func i64(n int64) *int64 { return &n }

// Numbers decoded from the wire are json.Number: samples use them where a
// field is any, so a round trip compares equal.
func num(s string) json.Number { return json.Number(s) }

var sampleAgent = protocol.AgentInfo{AgentID: "agent-1", Name: "one", Status: "idle", Capabilities: []string{"code"}, ConnectedAt: 1700000000000}

// AgentFrames holds one populated value per agent frame type. Numbers
// in fields of type any are json.Number, as decoding yields them.
func AgentFrames() []protocol.Frame {
	usage := &protocol.Usage{InputTokens: 10, OutputTokens: 20, TotalTokens: 30, CostUSD: 0.25}
	return []protocol.Frame{
		protocol.Identify{Type: protocol.FrameIdentify, AgentID: "agent-1", Token: "tok", Name: "one", Status: "idle",
			Capabilities: []string{"code", "review"}, ClientType: "sidecar", ProtocolVersion: num("1")},
		protocol.Message{Type: protocol.FrameMessage, Payload: map[string]any{"text": "hi", "n": num("2")}, To: "agent-2",
			MessageType: "chat", ReplyTo: "0123456789abcdef", ProtocolVersion: num("1")},
		protocol.Status{Type: protocol.FrameStatus, Status: "busy", ProtocolVersion: num("1")},
		protocol.ListAgents{Type: protocol.FrameListAgents, ProtocolVersion: num("1")},
		protocol.Ping{Type: protocol.FramePing, Timestamp: num("1700000000000"), ProtocolVersion: num("1")},
		protocol.ChannelSubscribe{Type: protocol.FrameChannelSubscribe, Channel: "ops", ProtocolVersion: num("1")},
		protocol.ChannelUnsubscribe{Type: protocol.FrameChannelUnsubscribe, Channel: "ops", ProtocolVersion: num("1")},
		protocol.ChannelPublish{Type: protocol.FrameChannelPublish, Channel: "ops", Payload: map[string]any{"a": []any{num("1"), "b"}},
			MessageType: "note", ReplyTo: "0123456789abcdef", ProtocolVersion: num("1")},
		protocol.ChannelHistory{Type: protocol.FrameChannelHistory, Channel: "ops", Limit: i64(10), Since: i64(3), ProtocolVersion: num("1")},
		protocol.ListChannels{Type: protocol.FrameListChannels, ProtocolVersion: num("1")},
		protocol.TaskAccepted{Type: protocol.FrameTaskAccepted, TaskID: "task-1", ProtocolVersion: num("1")},
		protocol.TaskProgress{Type: protocol.FrameTaskProgress, TaskID: "task-1", Progress: i64(50), Output: "step 1\n",
			Check:           &protocol.VerifyCheck{Attempt: 1, Command: "go test", ExitCode: 1, DurationMs: 20, TimedOut: true, OutputTail: "FAIL"},
			ProtocolVersion: num("1")},
		protocol.TaskComplete{Type: protocol.FrameTaskComplete, TaskID: "task-1", Result: json.RawMessage(`{"output":"done","status":"success"}`),
			Generation: 3, TokensUsed: i64(30), Usage: usage, ProtocolVersion: num("1")},
		protocol.TaskFailed{Type: protocol.FrameTaskFailed, TaskID: "task-1", Error: "boom", Reason: "exit 1", Generation: 3,
			Output: json.RawMessage(`{"tail":"x"}`), Usage: usage, ProtocolVersion: num("1")},
		protocol.TaskRecovering{Type: protocol.FrameTaskRecovering, TaskID: "task-1", Description: json.RawMessage(`"fix it"`),
			Metadata: json.RawMessage(`{"repo":"r"}`), LastStatus: "working", Generation: num("2"), ProtocolVersion: num("1")},
		protocol.TaskRejected{Type: protocol.FrameTaskRejected, TaskID: "task-1", Reason: "busy", Generation: i64(2), ProtocolVersion: num("1")},
	}
}

// HubFrames holds at least one value per hub frame type.
func HubFrames() []protocol.Frame {
	msg := protocol.PushedMessage{Type: protocol.OutMessage, ID: "0123456789abcdef", From: "agent-2", MessageType: "chat",
		Payload: map[string]any{"text": "hi"}, Timestamp: 1700000000000}
	reply := "fedcba9876543210"
	cmsg := msg
	cmsg.Type, cmsg.ReplyTo = protocol.OutChannelMessage, &reply
	return []protocol.Frame{
		protocol.NewIdentified("agent-1", protocol.Version),
		protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeNotIdentified},
		protocol.ValidationFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed, MessageType: "status",
			Errors: []protocol.FieldError{{Field: "status", Error: protocol.ErrRequired, Detail: "field is required"}}},
		protocol.RateLimitedFrame{Type: protocol.OutError, Error: protocol.CodeRateLimited, MessageType: protocol.FrameMessage, RetryAfterMs: 250},
		protocol.NewUnknownRecipientError("ghost"),
		protocol.NewPayloadTooLargeError(65536),
		protocol.NewVersionUnsupportedError(protocol.Version),
		protocol.NewTaskReportError(protocol.CodeTaskCompleteFailed, "stale_generation", "task-1"),
		protocol.NewPong(1700000000000),
		protocol.NewMessageSent("0123456789abcdef"),
		msg,
		protocol.NewStatusUpdated(),
		protocol.NewAgents([]protocol.AgentInfo{sampleAgent}),
		protocol.NewChannelSubscribed("ops", true),
		protocol.NewChannelUnsubscribed("ops"),
		protocol.NewChannelPublished("ops", "0123456789abcdef", 7),
		protocol.NewChannelHistory("ops", []any{map[string]any{"seq": num("1"), "from": "agent-2"}}),
		protocol.NewChannels([]any{map[string]any{"name": "ops", "subscribers": num("2")}}),
		protocol.PushedChannelMessage{PushedMessage: cmsg, Channel: "ops"},
		protocol.NewChannelAgentJoined("ops", "agent-2"),
		protocol.NewAgentJoined(sampleAgent),
		protocol.NewAgentLeft("agent-1"),
		protocol.NewStatusChanged(sampleAgent),
		protocol.NewPresence([]protocol.AgentInfo{sampleAgent}, []string{"agent-2"}, []protocol.AgentInfo{sampleAgent}),
		protocol.NewPresenceResync(),
		protocol.TaskAssign{Type: protocol.OutTaskAssign, TaskID: "task-1", Description: "fix it", Metadata: map[string]any{"repo": "r"},
			Generation: 2, AssignedAt: 1700000000000, CompleteBy: i64(1700000600000),
			Dependencies: []protocol.Dependency{{TaskID: "task-0", Description: "before", Status: "completed", Result: map[string]any{"ok": true}}}},
		protocol.TaskAck{Type: protocol.OutTaskAck, TaskID: "task-1", Status: protocol.AckComplete, Duplicate: true},
		protocol.NewTaskContinue("task-1", 2),
		protocol.NewTaskReassignReply("task-1"),
		protocol.TaskRevoked{Type: protocol.OutTaskReassign, TaskID: "task-1", Generation: i64(3), Reason: "lease_expired"},
		protocol.TaskRevoked{Type: protocol.OutTaskCancelled, TaskID: "task-1"},
	}
}

// Bodies holds one populated value per HTTP body.
func Bodies() []protocol.Body {

	task := protocol.PostTask{Description: "fix it", Priority: "high", Metadata: map[string]any{"repo": "r"}, MaxRetries: i64(2),
		CompleteBy: i64(1700000600000), NeededCapabilities: []string{"code"}, TargetAgent: "agent-1", UniqueKey: "k",
		UniqueFor: "1h", RunAt: num("1700000000000"), RunIn: "5m", DependsOn: []string{"a"}, OnDependencyFailure: "cancel",
		Verify: []string{"go test ./..."}, MaxVerifyAttempts: i64(3)}
	return []protocol.Body{
		protocol.PostMessage{Payload: map[string]any{"text": "hi"}, To: "broadcast", Type: "chat", ReplyTo: "0123456789abcdef"},
		protocol.PutHeartbeat{HeartbeatIntervalMs: 30000},
		protocol.PutMailboxTTL{MailboxTTLMs: 86400000},
		protocol.PostChannel{Name: "ops", Description: "operations"},
		protocol.PostChannelPublish{Payload: map[string]any{"n": num("1")}, Type: "note", ReplyTo: "0123456789abcdef"},
		protocol.PostMailboxAck{Seq: 42, Token: "tok"},
		protocol.PostToken{AgentID: "agent-1", Role: "admin"},
		protocol.PostPushTask{AgentID: "agent-1", Description: "fix it", Metadata: map[string]any{"repo": "r"}},
		task,
		protocol.PostTaskBatch{Tasks: []protocol.BatchTask{{Key: "a", PostTask: task}, {Key: "b", PostTask: protocol.PostTask{Description: "then", DependsOn: []string{"a"}}}}},
		protocol.PostPause{Lane: "high", Capability: "code"},
		protocol.PostSchedule{Name: "nightly", Cron: "0 3 * * *", Timezone: "UTC", Description: "build", Priority: num("5"),
			Metadata: map[string]any{"x": "y"}, MaxRetries: i64(1), NeededCapabilities: []string{"build"}, TargetAgent: "agent-1"},
		protocol.PostOnboardRegister{AgentID: "agent-9", JoinSecret: "s", Capabilities: []string{"code"}},
		protocol.PutDefaultRepo{URL: "https://example.com/r.git"},
		protocol.PostPushSubscribe{Endpoint: "https://push.example.com/x", Keys: map[string]any{"p256dh": "k", "auth": "a"}},
		protocol.PutAlerts{Rules: map[string]any{"queue_depth": map[string]any{"threshold": num("10")}}},
		protocol.PostTaskCancel{Reason: "not needed"},
		protocol.PostTasksBulk{Action: "retry", TaskIDs: []string{"t1", "t2"}, Reason: "flaky"},
		protocol.PostAlertAck{Note: "seen"},
		protocol.Empty{},
	}
}
