package hub_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
)

// Callers of the authorization matrix.
const (
	none     = "none"
	wrong    = "wrong"
	other    = "other-agent" // an agent token of another agent
	agentTok = "agent"       // an agent token of the agent named in the path
	viewer   = "viewer"
	admin    = "admin"
)

var everyone = []string{none, wrong, other, agentTok, viewer, admin}

// allowed lists who may call each route. A route missing here fails the
// test: adding a route means deciding who may call it.
var allowed = map[string][]string{
	"GET /health":                                       everyone,
	"GET /api/agents":                                   everyone,
	"GET /api/channels":                                 everyone,
	"GET /api/channels/{channel}":                       everyone,
	"GET /api/channels/{channel}/history":               everyone,
	"GET /api/agents/{agent_id}/subscriptions":          everyone,
	"GET /api/analytics/summary":                        everyone,
	"GET /api/analytics/agents":                         everyone,
	"GET /api/analytics/agents/{agent_id}/hourly":       everyone,
	"GET /api/config/default-repo":                      everyone,
	"POST /api/onboard/register":                        everyone, // gated by open registration / join secret instead
	"GET /api/schemas":                                  everyone,
	"GET /api/whoami":                                   {other, agentTok, viewer, admin},
	"GET /ws":                                           everyone, // authenticated in-band by identify
	"POST /api/message":                                 {other, agentTok, admin},
	"GET /api/config/heartbeat-interval":                {other, agentTok, viewer, admin},
	"PUT /api/config/heartbeat-interval":                {admin},
	"GET /api/config/mailbox-retention":                 {other, agentTok, viewer, admin},
	"PUT /api/config/mailbox-retention":                 {admin},
	"PUT /api/config/default-repo":                      {admin},
	"GET /api/config/alerts":                            {other, agentTok, viewer, admin},
	"PUT /api/config/alerts":                            {admin},
	"POST /api/mailbox/evict":                           {admin},
	"GET /api/mailbox/{agent_id}":                       {agentTok, admin},
	"POST /api/mailbox/{agent_id}/ack":                  {agentTok, admin},
	"GET /api/threads/{message_id}":                     {other, agentTok, viewer, admin},
	"GET /api/threads/{message_id}/replies":             {other, agentTok, viewer, admin},
	"GET /api/threads/{message_id}/root":                {other, agentTok, viewer, admin},
	"POST /api/channels":                                {other, agentTok, admin},
	"POST /api/channels/{channel}/subscribe":            {other, agentTok, admin},
	"POST /api/channels/{channel}/unsubscribe":          {other, agentTok, admin},
	"POST /api/channels/{channel}/publish":              {other, agentTok, admin},
	"GET /api/agents/states":                            {other, agentTok, viewer, admin},
	"GET /api/agents/{agent_id}/state":                  {other, agentTok, viewer, admin},
	"GET /api/messages":                                 {other, agentTok, viewer, admin},
	"POST /admin/tokens":                                {admin},
	"GET /admin/tokens":                                 {admin},
	"DELETE /admin/tokens/{agent_id}":                   {admin},
	"POST /api/tasks":                                   {other, agentTok, admin},
	"GET /api/tasks":                                    {other, agentTok, viewer, admin},
	"GET /api/tasks/dead-letter":                        {other, agentTok, viewer, admin},
	"GET /api/tasks/stats":                              {other, agentTok, viewer, admin},
	"GET /api/tasks/{task_id}":                          {other, agentTok, viewer, admin},
	"GET /api/tasks/{task_id}/logs":                     {other, agentTok, viewer, admin},
	"POST /api/tasks/{task_id}/retry":                   {agentTok, admin}, // the submitter (agentTok) or an admin
	"POST /api/tasks/{task_id}/cancel":                  {agentTok, admin},
	"POST /api/admin/push-task":                         {admin},
	"POST /api/admin/reset":                             {admin}, // or an agent listed in ADMIN_AGENTS
	"GET /api/alerts":                                   {viewer, admin},
	"GET /metrics":                                      {viewer, admin},
	"GET /api/metrics":                                  {viewer, admin},
	"GET /dashboard":                                    everyone, // the page itself asks for a token
	"GET /dashboard/app.js":                             everyone,
	"GET /dashboard/app.css":                            everyone,
	"GET /sw.js":                                        everyone,
	"GET /favicon.ico":                                  everyone,
	"GET /api/dashboard/vapid-key":                      everyone,
	"GET /api/dashboard/state":                          {viewer, admin},
	"GET /api/dashboard/agents/{agent_id}/timeline":     {viewer, admin},
	"POST /api/dashboard/push-subscribe":                {admin}, // a subscription makes the hub send requests
	"POST /api/admin/backup":                            {admin},
	"GET /api/admin/dets-health":                        {admin},
	"GET /api/admin/storage-health":                     {admin},
	"POST /api/admin/compact":                           {admin},
	"POST /api/admin/compact/{table_name}":              {admin},
	"POST /api/admin/restore/{table_name}":              {admin},
	"GET /api/admin/backups/{table_name}":               {admin},
	"POST /api/admin/drill":                             {admin},
	"POST /api/admin/degraded/{table_name}/acknowledge": {admin},
	"GET /ws/dashboard":                                 {viewer, admin},
	"POST /api/tasks/batch":                             {other, agentTok, admin},
	"GET /api/tasks/paused":                             {other, agentTok, viewer, admin},
	"POST /api/tasks/pause":                             {admin},
	"POST /api/tasks/resume":                            {admin},
	"GET /api/schedules":                                {other, agentTok, viewer, admin},
	"POST /api/schedules":                               {admin},
	"GET /api/schedules/{name}":                         {other, agentTok, viewer, admin},
	"DELETE /api/schedules/{name}":                      {admin},
	"POST /api/schedules/{name}/pause":                  {admin},
	"POST /api/schedules/{name}/resume":                 {admin},
	"POST /api/schedules/{name}/run":                    {admin},
	"POST /api/tasks/bulk":                              {admin},
	"GET /api/dashboard/tasks":                          {viewer, admin},
	"GET /api/dashboard/tasks/{task_id}":                {viewer, admin},
	"GET /api/dashboard/tasks/{task_id}/logs":           {viewer, admin},
	"POST /api/dashboard/tasks/bulk":                    {admin},
	"POST /api/alerts/{rule}/ack":                       {admin},
	"GET /api/dashboard/series":                         {viewer, admin},
	"GET /api/dashboard/messages":                       {viewer, admin},
}

// TestAuthorizationMatrix walks every route with every kind of caller on
// a hub that requires dashboard tokens, and checks who gets through.
func TestAuthorizationMatrix(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.DashboardToken = true; c.OpenRegistration = true })
	tokens := map[string]string{
		none: "", wrong: strings.Repeat("0", 64),
		other:    h.Token("agent-other", auth.RoleAgent),
		agentTok: h.Token("agent-self", auth.RoleAgent),
		viewer:   h.Token("watcher", auth.RoleViewer),
		admin:    h.AdminToken,
	}
	// A task submitted by agent-self, for the submitter-only routes.
	_, body := h.Do("POST", "/api/tasks", tokens[agentTok], map[string]any{"description": "mine", "needed_capabilities": []string{"never"}})
	taskID := body["task_id"].(string)
	h.Do("POST", "/api/channels", h.AdminToken, map[string]any{"name": "general"})
	params := map[string]string{"agent_id": "agent-self", "task_id": taskID, "channel": "general", "message_id": "0123456789abcdef",
		"table_name": "thread_replies", "rule": "no_idle_agent", "name": "nightly"}
	wildcard := regexp.MustCompile(`\{([a-z_]+)\}`)

	for _, rt := range h.API.Routes() {
		key := rt.Method + " " + rt.Path
		who, ok := allowed[key]
		if !ok {
			t.Errorf("route %s has no entry in the authorization matrix", key)
			continue
		}
		if rt.Path == "/ws" {
			continue // covered by TestFrameAuthorization
		}
		path := wildcard.ReplaceAllStringFunc(rt.Path, func(m string) string { return params[m[1:len(m)-1]] })
		if key == "DELETE /admin/tokens/{agent_id}" {
			path = "/admin/tokens/someone-else" // keep agent-self's token for the routes after it
		}
		for _, caller := range everyone {
			if key == "POST /api/tasks/{task_id}/cancel" && caller == admin {
				continue // would end the task the other callers need; admin cancel is tested elsewhere
			}
			var body any
			if rt.Method != "GET" && rt.Method != "DELETE" {
				body = map[string]any{}
			}
			st, resp := h.DoRaw(rt.Method, path, tokens[caller], body)
			denied := st == http.StatusUnauthorized || st == http.StatusForbidden
			mayCall := contains(who, caller)
			if key == "POST /api/onboard/register" {
				denied = false // 400 for the empty body; gating is tested in TestOnboardRegister
			}
			if mayCall == denied {
				t.Errorf("%s as %s: status %d (%s), allowed=%v", key, caller, st, resp, mayCall)
			}
		}
	}
}

// TestFrameAuthorization: before identify only identify and ping pass; a
// token acts only as its own agent; task frames only for the holder.
func TestFrameAuthorization(t *testing.T) {
	h := hubtest.Start(t, "")
	c := hubtest.Dial(t, h.WSURL())
	frames := map[string]string{
		"message":             `{"type":"message","payload":{}}`,
		"status":              `{"type":"status","status":"x"}`,
		"list_agents":         `{"type":"list_agents"}`,
		"channel_subscribe":   `{"type":"channel_subscribe","channel":"c"}`,
		"channel_unsubscribe": `{"type":"channel_unsubscribe","channel":"c"}`,
		"channel_publish":     `{"type":"channel_publish","channel":"c","payload":{}}`,
		"channel_history":     `{"type":"channel_history","channel":"c"}`,
		"list_channels":       `{"type":"list_channels"}`,
		"task_accepted":       `{"type":"task_accepted","task_id":"t"}`,
		"task_progress":       `{"type":"task_progress","task_id":"t"}`,
		"task_complete":       `{"type":"task_complete","task_id":"t","generation":1}`,
		"task_failed":         `{"type":"task_failed","task_id":"t","generation":1}`,
		"task_recovering":     `{"type":"task_recovering","task_id":"t"}`,
		"task_rejected":       `{"type":"task_rejected","task_id":"t","reason":"busy"}`,
	}
	for typ, f := range frames {
		c.Send(f)
		if e := c.Expect("error"); e["error"] != "not_identified" {
			t.Errorf("%s before identify: %v", typ, e)
		}
	}
	// A viewer cannot identify, an agent token only as itself.
	c.Send(map[string]any{"type": "identify", "agent_id": "watcher", "token": h.Token("watcher", auth.RoleViewer)})
	if e := c.Expect("error"); e["error"] != "token_agent_mismatch" {
		t.Fatalf("viewer identify: %v", e)
	}
	c.Send(map[string]any{"type": "identify", "agent_id": "someone-else", "token": h.Token("me", auth.RoleAgent)})
	if e := c.Expect("error"); e["error"] != "token_agent_mismatch" {
		t.Fatalf("foreign identify: %v", e)
	}
	// Task frames for a task another agent holds are refused.
	holder := h.Agent("holder")
	thief := h.Agent("thief")
	h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "x", "target_agent": "holder"})
	as := holder.Expect("task_assign")
	thief.Send(map[string]any{"type": "task_complete", "task_id": as["task_id"], "generation": as["generation"]})
	if e := thief.Expect("error"); e["error"] != "task_complete_failed: stale_generation" {
		t.Fatalf("thief complete: %v", e)
	}
	thief.Send(map[string]any{"type": "task_recovering", "task_id": as["task_id"]})
	thief.Expect("task_reassign")
	holder.Send(map[string]any{"type": "task_complete", "task_id": as["task_id"], "generation": as["generation"]})
	if a := holder.Expect("task_ack"); a["status"] != "complete" {
		t.Fatalf("holder complete: %v", a)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
