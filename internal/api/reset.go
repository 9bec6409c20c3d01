package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
)

// Reset serves POST /api/admin/reset: the original's "restart every
// service but the listener". Here it closes every agent socket (agents
// reconnect and identify again; their tasks return to the queue) and
// rebuilds all in-memory state from the tables.
type Reset struct {
	// AdminAgents may reset without an admin token: the original's
	// ADMIN_AGENTS list, kept for existing deployments.
	AdminAgents []string
	// Delay before the reset runs, so the reply gets out first.
	Delay time.Duration
	// Do performs the reset.
	Do func()
}

// Routes returns the reset route.
func (rs *Reset) Routes() []Route {
	return []Route{{Method: "POST", Path: "/api/admin/reset", Access: AnyToken, Handler: rs.reset, Body: protocol.BodyEmpty}}
}

func (rs *Reset) reset(r *Request) Response {
	if !r.ID.IsAdmin() && !slices.Contains(rs.AdminAgents, r.ID.AgentID) {
		return JSON(http.StatusForbidden, protocol.ResetRefused{Error: "admin_only", Message: "Only admin agents can reset the hub"})
	}
	time.AfterFunc(rs.Delay, rs.Do)
	return JSON(http.StatusOK, protocol.ResetScheduled{Status: "reset_scheduled", TriggeredBy: r.ID.AgentID})
}
