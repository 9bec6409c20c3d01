package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/agentcom/agentcom/internal/alerts"
	"github.com/agentcom/agentcom/internal/protocol"
)

// Alerts holds what the alert routes call.
type Alerts struct {
	Server  *Server
	Manager *alerts.Manager
}

// Routes returns the alert route table.
func (a *Alerts) Routes() []Route {
	return []Route{
		{Method: "GET", Path: "/api/alerts", Access: Dashboard, Handler: a.list},
		{Method: "GET", Path: "/api/config/alerts", Access: AnyTokenB, Handler: a.getConfig},
		{Method: "PUT", Path: "/api/config/alerts", Access: Admin, Handler: a.putConfig},
		{Method: "POST", Path: "/api/alerts/{rule}/ack", Access: DashboardAdmin, Handler: a.ack},
	}
}

func (a *Alerts) list(*Request) Response {
	return JSON(http.StatusOK, map[string]any{"active": a.Manager.Active(), "history": a.Manager.History()})
}

// ack acknowledges an active alert: 200 with the alert, 404
// alert_not_active when the rule has none.
func (a *Alerts) ack(r *Request) Response {
	if resp, ok := a.Server.Validate(r, protocol.BodyAlertAck); !ok {
		return resp
	}
	rule := r.PathValue("rule")
	if len(rule) > 64 {
		return Err(http.StatusNotFound, "alert_not_active")
	}
	al, err := a.Manager.Acknowledge(rule, r.ID.AgentID, r.Body.String("note"))
	if errors.Is(err, alerts.ErrNotActive) {
		return Err(http.StatusNotFound, "alert_not_active", "rule", rule)
	}
	if err != nil {
		return Err(http.StatusInternalServerError, "internal_error")
	}
	return JSON(http.StatusOK, al)
}

func (a *Alerts) getConfig(*Request) Response { return JSON(http.StatusOK, a.Manager.Config()) }

func (a *Alerts) putConfig(r *Request) Response {
	if resp, ok := a.Server.Validate(r, protocol.BodyPutAlerts); !ok {
		return resp
	}
	// Re-decode strictly into the typed config: unknown fields are errors
	// here, since a misspelled threshold would silently do nothing.
	raw, _ := json.Marshal(r.Body)
	var c alerts.Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Err(http.StatusBadRequest, "invalid alert configuration", "detail", err.Error())
	}
	saved, err := a.Manager.SetConfig(c)
	if err != nil {
		return Err(http.StatusBadRequest, "invalid alert configuration", "detail", err.Error())
	}
	return JSON(http.StatusOK, saved)
}
