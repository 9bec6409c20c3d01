package bench

import (
	"fmt"

	"github.com/agentcom/agentcom/internal/protocol"
)

// The load tool writes its frames with Appendf rather than encoding
// protocol structs: at thousands of frames a second the encoder's cost
// would show in the figures it measures. The type names come from the
// protocol constants (concatenated at compile time), and frames_test.go
// decodes every frame here through protocol.DecodeFrame, so they cannot
// drift from what the hub accepts.

// pv is the protocol_version field every frame carries, as the sidecar's.
const pv = `"protocol_version":` + "1"

// pingFrame is the sidecar's heartbeat.
const pingFrame = `{"type":"` + protocol.FramePing + `",` + pv + `}`

// identifyFrame authenticates agent id, as the sidecar does, but asking
// for this hub's protocol version: a fleet of its own clients gets
// presence changes batched (protocol.VersionPresence).
func identifyFrame(id, token string) []byte {
	return fmt.Appendf(nil, `{"type":"`+protocol.FrameIdentify+`","agent_id":%s,"token":%s,"name":%s,"status":"idle",`+
		`"capabilities":[],"client_type":"sidecar","protocol_version":%d}`, quote(id), quote(token), quote(id), protocol.Version)
}

// broadcastFrame is broadcast number n, sent at t0 (µs since the run began).
func broadcastFrame(t0 int64, n int) []byte {
	return fmt.Appendf(nil, `{"type":"`+protocol.FrameMessage+`","message_type":"chat","payload":{"bench_t0":%d,"bench_n":%d},`+pv+`}`, t0, n)
}

// directFrame is direct message number n to agent to, sent at t0.
func directFrame(to string, t0 int64, n int) []byte {
	return fmt.Appendf(nil, `{"type":"`+protocol.FrameMessage+`","to":%s,"message_type":"chat","payload":{"bench_t0":%d,"bench_n":%d},`+pv+`}`,
		quote(to), t0, n)
}

// acceptedFrame accepts task id.
func acceptedFrame(id string) []byte {
	return fmt.Appendf(nil, `{"type":"`+protocol.FrameTaskAccepted+`","task_id":%s,`+pv+`}`, quote(id))
}

// completeFrame reports task id done at generation gen.
func completeFrame(id string, gen int64) []byte {
	return fmt.Appendf(nil, `{"type":"`+protocol.FrameTaskComplete+`","task_id":%s,"generation":%d,`+
		`"result":{"status":"success","output":"bench"},`+pv+`}`, quote(id), gen)
}
