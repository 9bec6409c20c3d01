package protocol

import (
	"encoding/json"
	"math"
)

// Protocol versions of the agent socket. Every frame may carry
// "protocol_version"; the hub reads it at identify only.
const (
	// Version is the version this hub speaks.
	Version = 2
	// MinVersion is the oldest version it still serves: the original's
	// clients, which send 1.
	MinVersion = 1
	// VersionPresence is the first version whose clients get presence
	// changes batched in presence frames; older ones get agent_joined,
	// agent_left and status_changed, one frame per change.
	VersionPresence = 2
)

// CodeVersionUnsupported is the error frame the hub adds to identified
// when the client asked for a newer version than it speaks.
const CodeVersionUnsupported = "protocol_version_unsupported"

// VersionUnsupportedError tells a client that asked for a newer protocol
// version what the hub supports ([MinVersion, Version]) and the version
// it uses with the client. Clients that do not know the code ignore it.
type VersionUnsupportedError struct {
	Type      string `json:"type"`
	Error     string `json:"error"`
	Supported [2]int `json:"supported"`
	Using     int    `json:"using"`
}

// FrameType is OutError.
func (VersionUnsupportedError) FrameType() string { return OutError }

// NewVersionUnsupportedError is the frame for a client told to use v.
func NewVersionUnsupportedError(v int) VersionUnsupportedError {
	return VersionUnsupportedError{Type: OutError, Error: CodeVersionUnsupported, Supported: [2]int{MinVersion, Version}, Using: v}
}

// Negotiate picks the version to speak with a client that sent v as its
// protocol_version (any JSON value, as decoded). An absent, malformed or
// too old value is tolerated as version 1, as the original hub, which
// never read the field, did; a newer one gets Version and tooNew, so the
// client can be told.
func Negotiate(v any) (version int, tooNew bool) {
	var n int64
	switch x := v.(type) {
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			// 1.0, 2e3 or beyond int64: not an integer version.
			return MinVersion, false
		}
		n = i
	case int:
		n = int64(x)
	case int64:
		n = x
	case float64:
		if x != math.Trunc(x) || x > math.MaxInt32 || x < math.MinInt32 {
			return MinVersion, false
		}
		n = int64(x)
	default:
		return MinVersion, false
	}
	switch {
	case n > Version:
		return Version, true
	case n < MinVersion:
		return MinVersion, false
	}
	return int(n), false
}
