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

// The hub's broadcast frame, as agentws encodes it from the load tool's
// broadcastFrame, is read by payloadStamp without a full decode, and
// messageStamp agrees with decodeFrame on it.
func TestPayloadStampReadsHubFrame(t *testing.T) {
	hub := hubBroadcast(t)
	s, from, ok := payloadStamp(hub)
	if !ok || s != (stamp{T0: 1234567890123, N: 42}) || string(from) != "bcast-sender-0000" {
		t.Fatalf("payloadStamp(%s) = %+v, %q, %v", hub, s, from, ok)
	}
	full, err := decodeFrame(hub)
	if err != nil || full.Payload != s || full.From != string(from) {
		t.Fatalf("decodeFrame = %+v, %v", full, err)
	}
}

// Frames not in the hub's exact shape are not read by payloadStamp;
// messageStamp decodes them in full instead.
func TestPayloadStampFallsBack(t *testing.T) {
	const head = `{"type":"message","id":"m1","from":"a","message_type":"chat",`
	const tail = `,"reply_to":null,"timestamp":7}`
	if s, _, ok := payloadStamp([]byte(head + `"payload":{"bench_n":1,"bench_t0":5}` + tail)); !ok || s != (stamp{T0: 5, N: 1}) {
		t.Fatalf("the hub's shape not read: %+v, %v", s, ok)
	}
	for _, in := range []string{
		head + `"payload":{"bench_t0":5,"bench_n":1}` + tail,       // other key order
		head + `"payload":{"bench_n":1,"bench_t0":5,"x":1}` + tail, // more keys
		head + `"payload":{"bench_n":1.5,"bench_t0":5}` + tail,     // not an integer
		head + `"payload":{"bench_n":01,"bench_t0":5}` + tail,      // not JSON
		head + `"payload":{"bench_n":-1,"bench_t0":5}` + tail,      // negative
		head + `"payload":{"bench_n":1,"bench_t0":1234567890123456789}` + tail,
		head + `"payload":{"bench_n":1,"bench_t0":5}` + `,"reply_to":null,"timestamp":7,"from":"b"}`,
		head + `"payload":{"bench_n":1,"bench_t0":5}` + tail + ` `,
		`{"type":"message","id":"m1","from":"a\"b","message_type":"chat","payload":{"bench_n":1,"bench_t0":5}` + tail,
		`{"type":"message","from":"a","payload":{"bench_n":1,"bench_t0":5}}`,
	} {
		if s, from, ok := payloadStamp([]byte(in)); ok {
			t.Errorf("payloadStamp(%s) = %+v, %q: read a frame not in the hub's shape", in, s, from)
		}
	}
	s, from, err := messageStamp([]byte(head + `"payload":{"bench_t0":5,"bench_n":1}` + tail))
	if err != nil || s != (stamp{T0: 5, N: 1}) || string(from) != "a" {
		t.Errorf("messageStamp = %+v, %q, %v", s, from, err)
	}
}

// FuzzPayloadStamp: whatever payloadStamp reads from a frame is what a
// full decode of it reads.
func FuzzPayloadStamp(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","id":"m1","from":"s","message_type":"chat","payload":{"bench_n":3,"bench_t0":12},"reply_to":null,"timestamp":1}`,
		`{"type":"message","id":"m1","from":"s","message_type":"chat","payload":{"bench_n":3,"bench_t0":12},"reply_to":"m0","timestamp":1}`,
		`{"type":"message","id":"m1","from":"s\"x","message_type":"chat","payload":{"bench_n":3,"bench_t0":12},"reply_to":null,"timestamp":1}`,
		`{"payload":{"bench_n":3,"bench_t0":12},"from":"a","from":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, from, ok := payloadStamp(data)
		if !ok {
			return
		}
		full, err := decodeFrame(data)
		if err != nil || !json.Valid(data) || full.Type != protocol.OutMessage || full.Payload != s || full.From != string(from) {
			t.Fatalf("payloadStamp(%s) = %+v, %q; decode = %+v, %v", data, s, from, full, err)
		}
	})
}

// BenchmarkReceiveBroadcast is what one receiver of the broadcast scenario
// does with each frame besides reading it: find the type, then the stamp
// and the sender ("scan": payloadStamp; "decode": the full decode it
// replaced, and the fallback).
func BenchmarkReceiveBroadcast(b *testing.B) {
	hub := hubBroadcast(b)
	for _, tc := range []struct {
		name string
		read func([]byte) (stamp, []byte, error)
	}{
		{"scan", messageStamp},
		{"decode", func(data []byte) (stamp, []byte, error) {
			f, err := decodeFrame(data)
			return f.Payload, []byte(f.From), err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if frameType(hub) != protocol.OutMessage {
					b.Fatal("type")
				}
				if s, _, err := tc.read(hub); err != nil || s.N != 42 {
					b.Fatal(s, err)
				}
			}
		})
	}
}

// hubBroadcast is the frame the hub pushes for the load tool's broadcast
// (stamp 1234567890123, 42; sender bcast-sender-0000), encoded as agentws
// encodes it from the frame the tool sends.
func hubBroadcast(tb testing.TB) []byte {
	tb.Helper()
	_, f, err := protocol.DecodeFrame(broadcastFrame(1234567890123, 42))
	if err != nil {
		tb.Fatal(err)
	}
	m := f.(protocol.Message)
	hub, err := json.Marshal(protocol.PushedMessage{Type: protocol.OutMessage, ID: "0123456789abcdef", From: "bcast-sender-0000",
		MessageType: m.MessageType, Payload: m.Payload, Timestamp: 1739350000000})
	if err != nil {
		tb.Fatal(err)
	}
	return hub
}
