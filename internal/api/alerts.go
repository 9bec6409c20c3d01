package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

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
		{Method: "PUT", Path: "/api/config/alerts", Access: Admin, Handler: a.putConfig, Body: protocol.BodyPutAlerts},
		{Method: "POST", Path: "/api/alerts/{rule}/ack", Access: DashboardAdmin, Handler: a.ack, Body: protocol.BodyAlertAck},
	}
}

func (a *Alerts) list(*Request) Response {
	return JSON(http.StatusOK, protocol.AlertList{Active: a.Manager.Active(), History: a.Manager.History()})
}

// ack acknowledges an active alert: 200 with the alert, 404
// alert_not_active when the rule has none.
func (a *Alerts) ack(r *Request) Response {
	rule := r.PathValue("rule")
	if len(rule) > 64 {
		return Err(http.StatusNotFound, "alert_not_active")
	}
	al, err := a.Manager.Acknowledge(rule, r.ID.AgentID, BodyOf[protocol.PostAlertAck](r).Note)
	if errors.Is(err, alerts.ErrNotActive) {
		return Err(http.StatusNotFound, "alert_not_active", "rule", rule)
	}
	if err != nil {
		return Internal(r, "internal_error", err)
	}
	return JSON(http.StatusOK, al)
}

func (a *Alerts) getConfig(*Request) Response { return JSON(http.StatusOK, a.Manager.Config()) }

func (a *Alerts) putConfig(r *Request) Response {
	// Re-decode strictly into the typed config: unknown fields are errors
	// here, since a misspelled threshold would silently do nothing.
	raw, _ := json.Marshal(r.Body)
	var c alerts.Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return JSON(http.StatusBadRequest, protocol.ErrorReply{Error: codeInvalidAlerts, Detail: configDetail(err)})
	}
	// Validate as SetConfig will (rules given replace the defaults; the
	// cooldown counts only with rules or when positive), so a refusal
	// here is the operator's and a failure after it is the hub's.
	check := c
	if !(c.CooldownSeconds > 0 || c.Rules != nil) {
		check.CooldownSeconds = 0
	}
	if err := check.Validate(); err != nil {
		return JSON(http.StatusBadRequest, protocol.ErrorReply{Error: codeInvalidAlerts, Detail: ruleText(err)})
	}
	saved, err := a.Manager.SetConfig(c)
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, saved)
}

// codeInvalidAlerts is the original's error string for a bad alert
// configuration.
const codeInvalidAlerts = "invalid alert configuration"

// configDetail names what the strict decoder refused, in the operator's
// terms (a misspelled field, a value of the wrong type), without the
// decoder's own text.
func configDetail(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("%s: expected %s, got %s", te.Field, te.Type, te.Value)
	case errors.As(err, &se):
		return "malformed JSON"
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	return "does not fit the alert configuration"
}

// ruleText is alerts.Config.Validate's refusal: a sentence written for
// the operator from the rule names and bounds (no storage is involved
// before SetConfig).
func ruleText(err error) string {
	return fmt.Sprint(err)
}
