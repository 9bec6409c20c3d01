package api

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/ratelimit"
	"github.com/agentcom/agentcom/internal/settings"
)

// Core holds what the hub-core routes call.
type Core struct {
	Server    *Server
	Tokens    *auth.Tokens
	Presence  *presence.Directory
	Agents    *agents.Registry
	Messaging *messaging.Service
	Settings  *settings.Store
	// Revoked closes every socket opened with a token that was revoked.
	Revoked func()
	// OpenRegistration lets anyone register an agent; otherwise the
	// request must carry JoinSecret (when set).
	OpenRegistration bool
	JoinSecret       string
	// EvictMailboxes runs the TTL eviction now.
	EvictMailboxes func()
	Version        string
}

// Routes returns the hub-core route table.
func (c *Core) Routes() []Route {
	return []Route{
		{Method: "GET", Path: "/health", Access: Public, Handler: c.health},
		{Method: "GET", Path: "/api/agents", Access: Public, Handler: c.listAgents},
		{Method: "POST", Path: "/api/message", Access: Agent, Handler: c.postMessage},
		{Method: "GET", Path: "/api/config/heartbeat-interval", Access: AnyTokenB, Handler: c.getHeartbeat},
		{Method: "PUT", Path: "/api/config/heartbeat-interval", Access: Admin, Handler: c.putHeartbeat},
		{Method: "GET", Path: "/api/config/mailbox-retention", Access: AnyTokenB, Handler: c.getRetention},
		{Method: "PUT", Path: "/api/config/mailbox-retention", Access: Admin, Handler: c.putRetention},
		{Method: "GET", Path: "/api/config/default-repo", Access: Public, Handler: c.getDefaultRepo},
		{Method: "PUT", Path: "/api/config/default-repo", Access: Admin, Handler: c.putDefaultRepo},
		{Method: "POST", Path: "/api/mailbox/evict", Access: Admin, Handler: c.evict},
		{Method: "GET", Path: "/api/mailbox/{agent_id}", Access: OwnAgent, Handler: c.pollMailbox},
		{Method: "POST", Path: "/api/mailbox/{agent_id}/ack", Access: OwnAgent, Handler: c.ackMailbox},
		{Method: "GET", Path: "/api/threads/{message_id}", Access: AnyTokenB, Handler: c.thread},
		{Method: "GET", Path: "/api/threads/{message_id}/replies", Access: AnyTokenB, Handler: c.replies},
		{Method: "GET", Path: "/api/threads/{message_id}/root", Access: AnyTokenB, Handler: c.root},
		{Method: "GET", Path: "/api/channels", Access: Public, Handler: c.listChannels},
		{Method: "POST", Path: "/api/channels", Access: Agent, Handler: c.createChannel},
		{Method: "GET", Path: "/api/channels/{channel}", Access: Public, Handler: c.channelInfo},
		{Method: "POST", Path: "/api/channels/{channel}/subscribe", Access: Agent, Handler: c.subscribe},
		{Method: "POST", Path: "/api/channels/{channel}/unsubscribe", Access: Agent, Handler: c.unsubscribe},
		{Method: "POST", Path: "/api/channels/{channel}/publish", Access: Agent, Handler: c.publish},
		{Method: "GET", Path: "/api/channels/{channel}/history", Access: Public, Handler: c.channelHistory},
		{Method: "GET", Path: "/api/agents/states", Access: AnyToken, Handler: c.agentStates},
		{Method: "GET", Path: "/api/agents/{agent_id}/state", Access: AnyToken, Handler: c.agentState},
		{Method: "GET", Path: "/api/agents/{agent_id}/subscriptions", Access: Public, Handler: c.subscriptions},
		{Method: "GET", Path: "/api/messages", Access: AnyTokenB, Handler: c.messages},
		{Method: "POST", Path: "/admin/tokens", Access: Admin, Handler: c.createToken},
		{Method: "GET", Path: "/admin/tokens", Access: Admin, Handler: c.listTokens},
		{Method: "DELETE", Path: "/admin/tokens/{agent_id}", Access: AnyToken, Handler: c.revokeTokens},
		{Method: "GET", Path: "/api/analytics/summary", Access: Public, Handler: c.analyticsSummary},
		{Method: "GET", Path: "/api/analytics/agents", Access: Public, Handler: c.analyticsAgents},
		{Method: "GET", Path: "/api/analytics/agents/{agent_id}/hourly", Access: Public, Handler: c.analyticsHourly},
		{Method: "POST", Path: "/api/onboard/register", Access: Public, Handler: c.register, Class: ratelimit.ClassRegister},
		{Method: "GET", Path: "/api/schemas", Access: Public, Handler: c.schemas},
		{Method: "GET", Path: "/api/whoami", Access: AnyToken, Handler: c.whoami},
	}
}

func (c *Core) health(*Request) Response {
	return JSON(http.StatusOK, map[string]any{"status": "ok", "service": "agent_com",
		"agents_connected": c.Presence.Count(), "version": c.Version})
}

func (c *Core) listAgents(*Request) Response {
	list := c.Presence.List()
	out := make([]map[string]any, len(list))
	for i, e := range list {
		st := e.State
		if st == "" {
			st = "unknown"
		}
		out[i] = map[string]any{"agent_id": e.AgentID, "name": e.Name, "status": e.Status,
			"capabilities": e.Capabilities, "connected_at": e.ConnectedAt, "last_seen": e.LastSeen, "fsm_state": st}
	}
	return JSON(http.StatusOK, map[string]any{"agents": out})
}

func (c *Core) postMessage(r *Request) Response {
	if resp, ok := c.Server.Validate(r, protocol.BodyPostMessage); !ok {
		return resp
	}
	m := messaging.Message{From: r.ID.AgentID, Type: r.Body.String("type"), Payload: r.Body.Map("payload"),
		ReplyTo: messaging.StrPtr(r.Body.String("reply_to"))}
	if r.Body.Has("to") {
		m.To = r.Body.String("to")
	}
	c.Messaging.Stamp(&m)
	_, err := c.Messaging.Send(m, nil)
	if errors.Is(err, messaging.ErrUnknownRecipient) {
		return Err(http.StatusNotFound, protocol.CodeUnknownRecipient, "to", r.Body.String("to"),
			"detail", "no agent with this id holds a token or is connected")
	}
	if resp, refused := payloadRefusal(err); refused {
		return resp
	}
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"status": "sent", "id": m.ID})
}

func (c *Core) getHeartbeat(*Request) Response {
	return JSON(http.StatusOK, map[string]any{"heartbeat_interval_ms": c.Settings.HeartbeatIntervalMs()})
}

func (c *Core) putHeartbeat(r *Request) Response {
	if resp, ok := c.Server.Validate(r, protocol.BodyPutHeartbeat); !ok {
		return resp
	}
	v := r.Body.Int(settings.KeyHeartbeatInterval)
	if err := c.Settings.PutInt(settings.KeyHeartbeatInterval, v); err != nil {
		return settingErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"heartbeat_interval_ms": v, "status": "updated"})
}

func (c *Core) getRetention(*Request) Response {
	return JSON(http.StatusOK, map[string]any{"mailbox_ttl_ms": c.Settings.MailboxTTL().Milliseconds()})
}

func (c *Core) putRetention(r *Request) Response {
	if resp, ok := c.Server.Validate(r, protocol.BodyPutMailboxTTL); !ok {
		return resp
	}
	v := r.Body.Int(settings.KeyMailboxTTL)
	if err := c.Settings.PutInt(settings.KeyMailboxTTL, v); err != nil {
		return settingErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"mailbox_ttl_ms": v, "status": "updated"})
}

func (c *Core) getDefaultRepo(*Request) Response {
	if url, ok := c.Settings.DefaultRepo(); ok {
		return JSON(http.StatusOK, map[string]any{"default_repo": url, "configured": true})
	}
	return JSON(http.StatusOK, map[string]any{"default_repo": nil, "configured": false})
}

func (c *Core) putDefaultRepo(r *Request) Response {
	if resp, ok := c.Server.Validate(r, protocol.BodyPutDefaultRepo); !ok {
		return resp
	}
	url := strings.TrimSpace(r.Body.String("url"))
	if url == "" {
		return Err(http.StatusBadRequest, "missing or invalid field: url")
	}
	if err := c.Settings.Put(settings.KeyDefaultRepo, url); err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"status": "ok", "default_repo": url})
}

func (c *Core) evict(*Request) Response {
	go c.EvictMailboxes()
	return JSON(http.StatusOK, map[string]any{"status": "eviction_triggered"})
}

func (c *Core) pollMailbox(r *Request) Response {
	since, bad := QueryInt(r, "since", 0)
	if bad != nil {
		return *bad
	}
	agent, bad := pathAgentID(r)
	if bad != nil {
		return *bad
	}
	limit, bad := QueryLimit(r, messaging.MailboxCap, messaging.MailboxCap)
	if bad != nil {
		return *bad
	}
	msgs, last, err := c.Messaging.Mailbox.Poll(r.Context(), agent, uint64(max(since, 0)), limit)
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"agent_id": agent, "messages": msgs, "last_seq": last, "count": len(msgs)})
}

func (c *Core) ackMailbox(r *Request) Response {
	if resp, ok := c.Server.Validate(r, protocol.BodyMailboxAck); !ok {
		return resp
	}
	agent, bad := pathAgentID(r)
	if bad != nil {
		return *bad
	}
	seq := r.Body.Int("seq")
	if seq > 0 {
		if err := c.Messaging.Mailbox.Ack(r.Context(), agent, uint64(seq)); err != nil {
			return storageErr(err)
		}
	}
	return JSON(http.StatusOK, map[string]any{"status": "acked", "up_to": seq})
}

func (c *Core) thread(r *Request) Response {
	root, msgs, err := c.Messaging.Threads.Thread(r.Context(), r.PathValue("message_id"))
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"root": root, "messages": msgs, "count": len(msgs)})
}

func (c *Core) replies(r *Request) Response {
	id := r.PathValue("message_id")
	msgs, err := c.Messaging.Threads.Replies(r.Context(), id)
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"parent": id, "replies": msgs, "count": len(msgs)})
}

func (c *Core) root(r *Request) Response {
	id := r.PathValue("message_id")
	root, err := c.Messaging.Threads.Root(r.Context(), id)
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"message_id": id, "root": root})
}

// listChannels pages the channels by name: ?after=NAME&limit=N (default
// and maximum messaging.ChannelsMaxLimit). "next_after" names where the
// next page starts, when there is one.
func (c *Core) listChannels(r *Request) Response {
	limit, bad := QueryLimit(r, messaging.ChannelsDefaultLimit, messaging.ChannelsMaxLimit)
	if bad != nil {
		return *bad
	}
	list, total, more := c.Messaging.Channels.List(r.URL.Query().Get("after"), limit)
	body := map[string]any{"channels": list, "total": total}
	if more {
		body["next_after"] = list[len(list)-1].Name
	}
	return JSON(http.StatusOK, body)
}

func (c *Core) createChannel(r *Request) Response {
	if resp, ok := c.Server.Validate(r, protocol.BodyPostChannel); !ok {
		return resp
	}
	name := r.Body.String("name")
	_, err := c.Messaging.Channels.Create(name, r.Body.String("description"), r.ID.AgentID)
	if errors.Is(err, messaging.ErrChannelExists) {
		return Err(http.StatusConflict, "channel_exists")
	}
	if resp, ok := channelRefusal(err); ok {
		return resp
	}
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusCreated, map[string]any{"status": "created", "channel": name})
}

func (c *Core) channelInfo(r *Request) Response {
	ch, err := c.Messaging.Channels.Get(r.PathValue("channel"))
	if errors.Is(err, messaging.ErrChannelNotFound) {
		return Err(http.StatusNotFound, "channel_not_found")
	}
	return JSON(http.StatusOK, map[string]any{"name": ch.Name, "description": ch.Description, "subscribers": ch.Subscribers,
		"subscriber_count": len(ch.Subscribers), "created_at": ch.CreatedAt, "created_by": ch.CreatedBy})
}

func (c *Core) subscribe(r *Request) Response {
	name := r.PathValue("channel")
	already, err := c.Messaging.Subscribe(name, r.ID.AgentID)
	if errors.Is(err, messaging.ErrChannelNotFound) {
		return Err(http.StatusNotFound, "channel_not_found")
	}
	if resp, ok := channelRefusal(err); ok {
		return resp
	}
	if err != nil {
		return storageErr(err)
	}
	if already {
		return JSON(http.StatusOK, map[string]any{"status": "already_subscribed"})
	}
	return JSON(http.StatusOK, map[string]any{"status": "subscribed", "channel": name})
}

func (c *Core) unsubscribe(r *Request) Response {
	name := r.PathValue("channel")
	err := c.Messaging.Channels.Unsubscribe(name, r.ID.AgentID)
	if errors.Is(err, messaging.ErrChannelNotFound) {
		return Err(http.StatusNotFound, "channel_not_found")
	}
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"status": "unsubscribed", "channel": name})
}

func (c *Core) publish(r *Request) Response {
	name := r.PathValue("channel")
	if _, err := c.Messaging.Channels.Get(name); errors.Is(err, messaging.ErrChannelNotFound) {
		return Err(http.StatusNotFound, "channel_not_found")
	}
	if resp, ok := c.Server.Validate(r, protocol.BodyChannelPublish); !ok {
		return resp
	}
	m := messaging.Message{From: r.ID.AgentID, Type: r.Body.String("type"), Payload: r.Body.Map("payload"),
		ReplyTo: messaging.StrPtr(r.Body.String("reply_to"))}
	n, err := c.Messaging.Publish(name, m)
	if errors.Is(err, messaging.ErrChannelNotFound) {
		return Err(http.StatusNotFound, "channel_not_found")
	}
	if resp, refused := payloadRefusal(err); refused {
		return resp
	}
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"status": "published", "seq": n})
}

func (c *Core) channelHistory(r *Request) Response {
	limit, bad := QueryInt(r, "limit", messaging.ChannelHistoryDefaultLimit)
	if bad != nil {
		return *bad
	}
	since, bad := QueryInt(r, "since", 0)
	if bad != nil {
		return *bad
	}
	name := r.PathValue("channel")
	entries, err := c.Messaging.Channels.History(name, int(min(limit, messaging.ChannelHistoryCap)), uint64(max(since, 0)))
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"channel": name, "messages": entries, "count": len(entries)})
}

func (c *Core) subscriptions(r *Request) Response {
	agent := r.PathValue("agent_id")
	return JSON(http.StatusOK, map[string]any{"agent_id": agent, "channels": c.Messaging.Channels.Subscriptions(agent)})
}

// AgentStateJSON renders an agent's state as /api/agents/states does.
func AgentStateJSON(a agents.Agent, withLastChange bool) map[string]any {
	caps := make([]map[string]string, len(a.Capabilities))
	for i, cp := range a.Capabilities {
		caps[i] = map[string]string{"name": cp}
	}
	var cur any
	if a.CurrentTask != "" {
		cur = a.CurrentTask
	}
	m := map[string]any{"agent_id": a.ID, "fsm_state": a.State, "current_task_id": cur, "capabilities": caps,
		"flags": a.Flags, "connected_at": a.ConnectedAt, "name": a.Name, "last_heard": a.LastHeard}
	if withLastChange {
		m["last_state_change"] = a.LastStateChange
	}
	return m
}

func (c *Core) agentStates(*Request) Response {
	list := c.Agents.List()
	out := make([]map[string]any, len(list))
	for i, a := range list {
		out[i] = AgentStateJSON(a, true)
	}
	return JSON(http.StatusOK, map[string]any{"agents": out})
}

func (c *Core) agentState(r *Request) Response {
	a, ok := c.Agents.Get(r.PathValue("agent_id"))
	if !ok {
		return Err(http.StatusNotFound, "agent_not_found")
	}
	return JSON(http.StatusOK, AgentStateJSON(a, true))
}

func (c *Core) messages(r *Request) Response {
	q := messaging.Query{From: r.URL.Query().Get("from"), To: r.URL.Query().Get("to"), Channel: r.URL.Query().Get("channel")}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"start_time", &q.StartTime}, {"end_time", &q.EndTime}} {
		v, bad := QueryInt(r, p.name, 0)
		if bad != nil {
			return *bad
		}
		*p.dst = v
	}
	cursor, bad := QueryInt(r, "cursor", 0)
	if bad != nil {
		return *bad
	}
	limit, bad := QueryInt(r, "limit", messaging.HistoryDefaultLimit)
	if bad != nil {
		return *bad
	}
	q.Cursor = uint64(max(cursor, 0))
	q.Limit = int(limit)
	if limit <= 0 {
		q.Limit = -1
	}
	msgs, next, err := c.Messaging.History.Find(r.Context(), q)
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"messages": msgs, "cursor": next, "count": len(msgs)})
}

func (c *Core) createToken(r *Request) Response {
	if resp, ok := c.Server.Validate(r, protocol.BodyPostToken); !ok {
		return resp
	}
	role, err := auth.ParseRole(r.Body.String("role"))
	if err != nil {
		return Err(http.StatusBadRequest, "invalid_role", "detail", err.Error())
	}
	agent := r.Body.String("agent_id")
	tok, err := c.Tokens.Create(agent, role)
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusCreated, map[string]any{"agent_id": agent, "token": tok, "role": role})
}

func (c *Core) listTokens(*Request) Response {
	return JSON(http.StatusOK, map[string]any{"tokens": c.Tokens.List()})
}

// revokeTokens revokes every token of an agent: an admin's call, or an
// agent giving up its own (remove-agent.js revokes with the agent's token).
func (c *Core) revokeTokens(r *Request) Response {
	agent := r.PathValue("agent_id")
	if !r.ID.IsAdmin() && r.ID.AgentID != agent {
		return Err(http.StatusForbidden, "forbidden", "detail", "this route needs an admin token, or the token of the agent revoked")
	}
	n, err := c.Tokens.Revoke(agent)
	if err != nil {
		return storageErr(err)
	}
	if n > 0 && c.Revoked != nil {
		c.Revoked()
	}
	return JSON(http.StatusOK, map[string]any{"status": "revoked", "agent_id": agent, "revoked": n})
}

func (c *Core) analyticsSummary(*Request) Response {
	return JSON(http.StatusOK, c.Messaging.Analytics.Summary())
}

// analyticsAgents pages the figures by agent id: ?after=ID&limit=N
// (default and maximum messaging.AnalyticsMaxLimit).
func (c *Core) analyticsAgents(r *Request) Response {
	limit, bad := QueryLimit(r, messaging.AnalyticsDefaultLimit, messaging.AnalyticsMaxLimit)
	if bad != nil {
		return *bad
	}
	all := c.Messaging.Analytics.Agents()
	after := r.URL.Query().Get("after")
	start := sort.Search(len(all), func(i int) bool { return all[i].AgentID > after })
	page := all[start:min(len(all), start+limit)]
	body := map[string]any{"agents": page, "total": len(all)}
	if start+limit < len(all) {
		body["next_after"] = page[len(page)-1].AgentID
	}
	return JSON(http.StatusOK, body)
}

func (c *Core) analyticsHourly(r *Request) Response {
	agent := r.PathValue("agent_id")
	return JSON(http.StatusOK, map[string]any{"agent_id": agent, "hourly": c.Messaging.Analytics.Hourly(agent)})
}

// register is the open bootstrap route of add-agent.js. It is closed
// unless the operator opened it or the caller has the join secret.
func (c *Core) register(r *Request) Response {
	secret := r.Body.String("join_secret")
	if secret == "" {
		secret = r.Header.Get("X-Join-Secret")
	}
	secretOK := c.JoinSecret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(c.JoinSecret)) == 1
	if !c.OpenRegistration && !secretOK {
		detail := "open registration is off; start the hub with --open-registration or send the join secret"
		if secret != "" {
			detail = "wrong join secret"
		}
		return Err(http.StatusForbidden, "registration_closed", "detail", detail)
	}
	if resp, ok := c.Server.Validate(r, protocol.BodyOnboardRegister); !ok {
		return resp
	}
	agent := r.Body.String("agent_id")
	if agent == "" {
		return Err(http.StatusBadRequest, "missing or invalid field: agent_id")
	}
	if c.Tokens.HasAgent(agent) {
		return Err(http.StatusConflict, "agent_id already registered")
	}
	tok, err := c.Tokens.Create(agent, auth.RoleAgent)
	if err != nil {
		return storageErr(err)
	}
	host := r.Host
	scheme, ws := "http", "ws"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme, ws = "https", "wss"
	}
	var repo any
	if url, ok := c.Settings.DefaultRepo(); ok {
		repo = url
	}
	return JSON(http.StatusCreated, map[string]any{"agent_id": agent, "token": tok,
		"hub_ws_url": ws + "://" + host + "/ws", "hub_api_url": scheme + "://" + host, "default_repo": repo})
}

func (c *Core) schemas(*Request) Response { return JSON(http.StatusOK, protocol.Discovery()) }

// whoami names the agent and role of the request's token, so a client
// holding only a token can default to acting as its agent.
func (c *Core) whoami(r *Request) Response {
	return JSON(http.StatusOK, protocol.WhoAmI{AgentID: r.ID.AgentID, Role: string(r.ID.Role)})
}

// payloadRefusal answers a message whose payload is over
// messaging.MaxPayloadBytes.
func payloadRefusal(err error) (Response, bool) {
	if errors.Is(err, messaging.ErrPayloadTooLarge) {
		return Err(http.StatusRequestEntityTooLarge, protocol.CodePayloadTooLarge, "limit_bytes", messaging.MaxPayloadBytes), true
	}
	return Response{}, false
}

// channelRefusal maps a refused channel name or a channel cap onto its
// reply.
func channelRefusal(err error) (Response, bool) {
	switch {
	case errors.Is(err, messaging.ErrInvalidChannel):
		return JSON(http.StatusBadRequest, map[string]any{"error": protocol.CodeValidationFailed, "errors": []protocol.FieldError{{
			Field: "name", Error: protocol.ErrInvalidValue, Detail: err.Error()}}}), true
	case errors.Is(err, messaging.ErrChannelLimit):
		return Err(http.StatusConflict, protocol.CodeChannelLimit, "detail", err.Error()), true
	}
	return Response{}, false
}

// pathAgentID returns the {agent_id} path segment once it follows the
// agent-id rule; mailbox keys are formed from it.
func pathAgentID(r *Request) (string, *Response) {
	agent := r.PathValue("agent_id")
	if err := protocol.CheckAgentID(agent); err != nil {
		resp := JSON(http.StatusBadRequest, map[string]any{"error": protocol.CodeValidationFailed, "errors": []protocol.FieldError{{
			Field: "agent_id", Error: protocol.ErrInvalidValue, Detail: err.Error()}}})
		return "", &resp
	}
	return agent, nil
}

// settingErr answers a refused setting with the structured validation
// error naming its bounds, and anything else as a storage error.
func settingErr(err error) Response {
	var re *settings.RangeError
	if errors.As(err, &re) {
		return JSON(http.StatusBadRequest, map[string]any{"error": protocol.CodeValidationFailed, "errors": []protocol.FieldError{{
			Field: re.Key, Error: protocol.ErrOutOfRange, Detail: re.Error(), Value: re.Value}},
			"min": re.Range.Min, "max": re.Range.Max})
	}
	return storageErr(err)
}

func storageErr(err error) Response {
	return Err(http.StatusInternalServerError, "storage_error", "detail", err.Error())
}
