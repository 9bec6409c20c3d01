package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// The relay carries the agent sockets a follower terminates to the leader,
// which runs them as if they were its own: the follower forwards what the
// client sends, the leader tells the follower what to write and when to
// close. Frames travel as they came, byte for byte.

// SubjectLeaderIn is where followers send to the leader; only the hub that
// leads subscribes to it.
const SubjectLeaderIn = "agentcom.leader.in"

// SubjectHub is where the leader sends to the follower hubID.
func SubjectHub(hubID string) string { return "agentcom.hub." + hubID }

// RelayKind says what a relay envelope carries.
type RelayKind string

// Follower to leader.
const (
	// RelayOpen asks the leader to take a new socket; it answers
	// RelayAccept or RelayRefuse before the follower upgrades it. It
	// carries only the client's address: the agent socket reads no token
	// or origin from the handshake (identify carries the token, and any
	// origin is accepted, as by the original hub).
	RelayOpen RelayKind = "open"
	// RelayFrame is a frame the client sent.
	RelayFrame RelayKind = "frame"
	// RelayPong is the client's answer to a RelayPing: proof of life.
	RelayPong RelayKind = "pong"
	// RelayClosed says the socket is gone (the client closed it, or the
	// follower did); the leader ends the connection.
	RelayClosed RelayKind = "closed"
	// RelayHeartbeat says the follower is alive; the leader drops the
	// sockets of a follower it has not heard from for a while.
	RelayHeartbeat RelayKind = "hb"
)

// Leader to follower.
const (
	RelayAccept RelayKind = "accept"
	RelayRefuse RelayKind = "refuse"
	// RelayWrite is a frame to write to the client.
	RelayWrite RelayKind = "write"
	// RelayClose closes the socket with Code and Reason once the frames
	// sent before it are written.
	RelayClose RelayKind = "close"
	// RelayPing asks the follower to send the client a WebSocket ping.
	RelayPing RelayKind = "ping"
	// RelayLimit sets the largest frame the client may send from now on.
	RelayLimit RelayKind = "limit"
)

// Bounds on an envelope's header fields; hostile or broken peers are
// refused rather than trusted.
const (
	MaxHubID        = 64
	maxRelayHeader  = 1 << 10
	maxRelayRemote  = 256
	maxRelayInst    = 32
	maxRelayReason  = 123 // a WebSocket close reason's limit
	relayHeaderSize = 4   // the big-endian length of the JSON header
)

// RelayEnvelope is one relay message. Its header is JSON; Data (a frame)
// follows it raw, so a 16 MiB report costs 16 MiB on the bus, not the
// third more that base64 inside JSON would.
type RelayEnvelope struct {
	Kind RelayKind `json:"k"`
	// Hub is the follower the socket is on (both directions).
	Hub string `json:"h"`
	// Inst names the follower's process: a hub restarted under the same
	// id numbers its sockets from 1 again, and the leader drops the
	// sockets of the instance it replaced.
	Inst string `json:"i,omitempty"`
	// Conn numbers the socket among the follower's.
	Conn uint64 `json:"c,omitempty"`
	// Seq numbers one side's envelopes about one socket from 1 (the open,
	// the accept or refusal); the bus delivers at most once, so a gap
	// means a lost frame and the socket is closed for its agent to
	// reconnect rather than run on with a hole.
	Seq uint64 `json:"s,omitempty"`
	// Epoch is the leadership term the follower relays to; a leader
	// ignores envelopes meant for another term.
	Epoch int64 `json:"e,omitempty"`
	// Remote is the client's address as the follower saw it (open).
	Remote string `json:"r,omitempty"`
	// Binary marks a binary frame (the hub refuses those, as locally).
	Binary bool   `json:"b,omitempty"`
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	Limit  int64  `json:"limit,omitempty"`
	Data   []byte `json:"-"`
}

// ErrBadEnvelope is returned for a relay message that does not decode.
var ErrBadEnvelope = errors.New("cluster: bad relay envelope")

// MaxRelayFrame is the largest frame a relay envelope carries.
const MaxRelayFrame = MaxPayload - relayHeaderSize - maxRelayHeader

// Encode renders e for the bus.
func (e RelayEnvelope) Encode() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	if len(e.Data) > MaxRelayFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrPayloadTooLarge, len(e.Data))
	}
	head, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode relay envelope: %w", err)
	}
	if len(head) > maxRelayHeader {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrBadEnvelope, len(head))
	}
	out := make([]byte, relayHeaderSize, relayHeaderSize+len(head)+len(e.Data))
	binary.BigEndian.PutUint32(out, uint32(len(head)))
	out = append(out, head...)
	return append(out, e.Data...), nil
}

// DecodeRelay parses a relay message. Data aliases b.
func DecodeRelay(b []byte) (RelayEnvelope, error) {
	var e RelayEnvelope
	if len(b) < relayHeaderSize {
		return e, fmt.Errorf("%w: %d bytes", ErrBadEnvelope, len(b))
	}
	n := binary.BigEndian.Uint32(b)
	if n > maxRelayHeader || int(n) > len(b)-relayHeaderSize {
		return e, fmt.Errorf("%w: header length %d", ErrBadEnvelope, n)
	}
	if err := json.Unmarshal(b[relayHeaderSize:relayHeaderSize+int(n)], &e); err != nil {
		return e, fmt.Errorf("%w: %v", ErrBadEnvelope, err)
	}
	if rest := b[relayHeaderSize+int(n):]; len(rest) > 0 {
		e.Data = rest
	}
	if err := e.check(); err != nil {
		return e, err
	}
	return e, nil
}

func (e RelayEnvelope) check() error {
	switch e.Kind {
	case RelayOpen, RelayFrame, RelayPong, RelayClosed, RelayHeartbeat,
		RelayAccept, RelayRefuse, RelayWrite, RelayClose, RelayPing, RelayLimit:
	default:
		return fmt.Errorf("%w: kind %q", ErrBadEnvelope, e.Kind)
	}
	if err := CheckHubID(e.Hub); err != nil {
		return fmt.Errorf("%w: %v", ErrBadEnvelope, err)
	}
	if len(e.Remote) > maxRelayRemote || len(e.Reason) > maxRelayReason || len(e.Inst) > maxRelayInst || e.Limit < 0 {
		return fmt.Errorf("%w: field out of bounds", ErrBadEnvelope)
	}
	return nil
}

// CheckHubID accepts 1 to MaxHubID letters, digits, '-' and '_': an id
// that is one element of a bus subject on every transport.
func CheckHubID(id string) error {
	if id == "" || len(id) > MaxHubID {
		return fmt.Errorf("hub id must be 1 to %d characters", MaxHubID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("hub id %q: only letters, digits, '-' and '_' are allowed", id)
		}
	}
	return nil
}
