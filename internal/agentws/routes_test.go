package agentws

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/protocol/protocoltest"
	"github.com/agentcom/agentcom/internal/ratelimit"
)

// Every frame type the protocol lets an agent send has a route whose
// handler takes that frame's wire type, and the table has no route for a
// type the protocol does not know.
func TestEveryFrameHasRoute(t *testing.T) {
	routes := frameRoutes()
	for _, typ := range protocol.AgentFrameTypes() {
		if _, ok := routes[typ]; !ok {
			t.Errorf("frame type %q has no route", typ)
		}
	}
	for typ := range routes {
		if !slices.Contains(protocol.AgentFrameTypes(), typ) {
			t.Errorf("route for %q, a type the protocol does not know", typ)
		}
	}
	samples := protocoltest.AgentFrames()
	if len(samples) != len(protocol.AgentFrameTypes()) {
		t.Fatalf("%d samples for %d frame types", len(samples), len(protocol.AgentFrameTypes()))
	}
	for _, f := range samples {
		r, ok := routes[f.FrameType()]
		if !ok {
			continue // reported above
		}
		if !r.accepts(f) {
			t.Errorf("route %q does not take %T", r.typ, f)
		}
		// What the wire decodes to is what the handler takes.
		b := mustJSON(t, f)
		typ, decoded, err := protocol.DecodeFrame(b)
		if err != nil || typ != r.typ || !r.accepts(decoded) {
			t.Errorf("%s: decoded %q %T, %v", b, typ, decoded, err)
		}
	}
}

// The rate-limit class of every frame type, as the limits are documented:
// messages and channel publishes share one bucket, channel reads another,
// everything else a third; identify is never limited.
func TestRouteClasses(t *testing.T) {
	want := map[string]string{
		protocol.FrameIdentify:           ratelimit.ClassNone,
		protocol.FramePing:               ratelimit.ClassOther,
		protocol.FrameStatus:             ratelimit.ClassOther,
		protocol.FrameListAgents:         ratelimit.ClassOther,
		protocol.FrameMessage:            ratelimit.ClassMessages,
		protocol.FrameChannelPublish:     ratelimit.ClassMessages,
		protocol.FrameChannelSubscribe:   ratelimit.ClassChannels,
		protocol.FrameChannelUnsubscribe: ratelimit.ClassChannels,
		protocol.FrameChannelHistory:     ratelimit.ClassChannels,
		protocol.FrameListChannels:       ratelimit.ClassChannels,
		protocol.FrameTaskAccepted:       ratelimit.ClassOther,
		protocol.FrameTaskProgress:       ratelimit.ClassOther,
		protocol.FrameTaskComplete:       ratelimit.ClassOther,
		protocol.FrameTaskFailed:         ratelimit.ClassOther,
		protocol.FrameTaskRejected:       ratelimit.ClassOther,
		protocol.FrameTaskRecovering:     ratelimit.ClassOther,
	}
	routes := frameRoutes()
	if len(want) != len(routes) {
		t.Fatalf("%d classes pinned for %d routes", len(want), len(routes))
	}
	limits := ratelimit.DefaultLimits()
	for typ, class := range want {
		r := routes[typ]
		if r.class != class {
			t.Errorf("%s: class %q, want %q", typ, r.class, class)
		}
		if _, known := limits[r.class]; r.class != ratelimit.ClassNone && !known {
			t.Errorf("%s: class %q has no default limit", typ, r.class)
		}
		// Only identify and ping may come before identify.
		if r.open != (typ == protocol.FrameIdentify || typ == protocol.FramePing) {
			t.Errorf("%s: open before identify = %v", typ, r.open)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
