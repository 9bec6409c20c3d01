package agentws

import (
	"context"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/ratelimit"
)

// The frame table: every frame type an agent may send, its handler and its
// rate-limit class. A frame type added to the protocol without a line here
// fails TestEveryFrameHasRoute; at run time it would be answered
// unknown_message_type, never dropped in silence.

// route is how one frame type is served.
type route struct {
	typ string
	// class is the rate-limit bucket the frame draws from; "" is not
	// limited (identify, which only authenticates).
	class string
	// open frames are served before identify (identify itself, and ping
	// so a client can check the link first).
	open bool
	// accepts reports whether f is the wire type the handler takes.
	accepts func(f protocol.Frame) bool
	handle  func(c *conn, ctx context.Context, agent string, f protocol.Frame, bad *protocol.MalformedError) (stop bool)
}

// req is one decoded frame as its handler gets it.
type req[F protocol.Frame] struct {
	agent string // "" before identify
	frame F
	// bad lists fields that passed validation but do not fit their Go
	// type (a malformed usage or check object); the handler refuses them
	// where it always did.
	bad *protocol.MalformedError
}

// malformed reports whether field was refused by decoding.
func (r req[F]) malformed(field string) bool { return r.bad != nil && r.bad.Has(field) }

// on makes the route of frame type F: the table key is F's own
// FrameType, so a handler cannot be filed under another type.
func on[F protocol.Frame](class string, h func(c *conn, ctx context.Context, r req[F]) (stop bool)) route {
	var zero F
	return route{typ: zero.FrameType(), class: class,
		accepts: func(f protocol.Frame) bool { _, ok := f.(F); return ok },
		handle: func(c *conn, ctx context.Context, agent string, f protocol.Frame, bad *protocol.MalformedError) bool {
			return h(c, ctx, req[F]{agent: agent, frame: f.(F), bad: bad})
		}}
}

// opened marks a route served before identify.
func (r route) opened() route { r.open = true; return r }

// frameRoutes is the frame table, by frame type.
func frameRoutes() map[string]route {
	list := []route{
		on(ratelimit.ClassNone, (*conn).identify).opened(),
		on(ratelimit.ClassOther, (*conn).ping).opened(),
		on(ratelimit.ClassOther, (*conn).status),
		on(ratelimit.ClassOther, (*conn).listAgents),
		on(ratelimit.ClassMessages, (*conn).message),
		on(ratelimit.ClassChannels, (*conn).channelSubscribe),
		on(ratelimit.ClassChannels, (*conn).channelUnsubscribe),
		on(ratelimit.ClassMessages, (*conn).channelPublish),
		on(ratelimit.ClassChannels, (*conn).channelHistory),
		on(ratelimit.ClassChannels, (*conn).listChannels),
		on(ratelimit.ClassOther, (*conn).taskAccepted),
		on(ratelimit.ClassOther, (*conn).taskProgress),
		on(ratelimit.ClassOther, (*conn).taskComplete),
		on(ratelimit.ClassOther, (*conn).taskFailed),
		on(ratelimit.ClassOther, (*conn).taskRejected),
		on(ratelimit.ClassOther, (*conn).taskRecovering),
	}
	m := make(map[string]route, len(list))
	for _, r := range list {
		if _, dup := m[r.typ]; dup {
			panic("agentws: two routes for frame type " + r.typ)
		}
		m[r.typ] = r
	}
	return m
}
