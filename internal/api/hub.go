package api

import (
	"crypto/subtle"
	"errors"
	"fmt"
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
	// EvictMailboxes starts the TTL eviction now. It is called in the
	// request, so it should trigger the hub's evictor and return.
	EvictMailboxes func()
	Version        string
}

// Routes returns the hub-core route table.
func (c *Core) Routes() []Route {
	return []Route{
		{Method: "GET", Path: "/health", Access: Public, Handler: c.health},
		{Method: "GET", Path: "/api/agents", Access: Public, Handler: c.listAgents},
		{Method: "POST", Path: "/api/message", Access: Agent, Handler: c.postMessage, Body: protocol.BodyPostMessage},
		{Method: "GET", Path: "/api/config/heartbeat-interval", Access: AnyTokenB, Handler: c.getHeartbeat},
		{Method: "PUT", Path: "/api/config/heartbeat-interval", Access: Admin, Handler: c.putHeartbeat, Body: protocol.BodyPutHeartbeat},
		{Method: "GET", Path: "/api/config/mailbox-retention", Access: AnyTokenB, Handler: c.getRetention},
		{Method: "PUT", Path: "/api/config/mailbox-retention", Access: Admin, Handler: c.putRetention, Body: protocol.BodyPutMailboxTTL},
		{Method: "GET", Path: "/api/config/default-repo", Access: Public, Handler: c.getDefaultRepo},
		{Method: "PUT", Path: "/api/config/default-repo", Access: Admin, Handler: c.putDefaultRepo, Body: protocol.BodyPutDefaultRepo},
		{Method: "POST", Path: "/api/mailbox/evict", Access: Admin, Handler: c.evict, Body: protocol.BodyEmpty},
		{Method: "GET", Path: "/api/mailbox/{agent_id}", Access: OwnAgent, Handler: c.pollMailbox},
		{Method: "POST", Path: "/api/mailbox/{agent_id}/ack", Access: OwnAgent, Handler: c.ackMailbox, Body: protocol.BodyMailboxAck},
		{Method: "GET", Path: "/api/threads/{message_id}", Access: AnyTokenB, Handler: c.thread},
		{Method: "GET", Path: "/api/threads/{message_id}/replies", Access: AnyTokenB, Handler: c.replies},
		{Method: "GET", Path: "/api/threads/{message_id}/root", Access: AnyTokenB, Handler: c.root},
		{Method: "GET", Path: "/api/channels", Access: Public, Handler: c.listChannels},
		{Method: "POST", Path: "/api/channels", Access: Agent, Handler: c.createChannel, Body: protocol.BodyPostChannel},
		{Method: "GET", Path: "/api/channels/{channel}", Access: Public, Handler: c.channelInfo},
		{Method: "POST", Path: "/api/channels/{channel}/subscribe", Access: Agent, Handler: c.subscribe, Body: protocol.BodyEmpty},
		{Method: "POST", Path: "/api/channels/{channel}/unsubscribe", Access: Agent, Handler: c.unsubscribe, Body: protocol.BodyEmpty},
		{Method: "POST", Path: "/api/channels/{channel}/publish", Access: Agent, Handler: c.publish,
			Body: protocol.BodyChannelPublish, Guard: c.channelExists},
		{Method: "GET", Path: "/api/channels/{channel}/history", Access: Public, Handler: c.channelHistory},
		{Method: "GET", Path: "/api/agents/states", Access: AnyToken, Handler: c.agentStates},
		{Method: "GET", Path: "/api/agents/{agent_id}/state", Access: AnyToken, Handler: c.agentState},
		{Method: "GET", Path: "/api/agents/{agent_id}/subscriptions", Access: Public, Handler: c.subscriptions},
		{Method: "GET", Path: "/api/messages", Access: AnyTokenB, Handler: c.messages},
		{Method: "POST", Path: "/admin/tokens", Access: Admin, Handler: c.createToken, Body: protocol.BodyPostToken},
		{Method: "GET", Path: "/admin/tokens", Access: Admin, Handler: c.listTokens},
		{Method: "DELETE", Path: "/admin/tokens/{agent_id}", Access: AnyToken, Handler: c.revokeTokens},
		{Method: "GET", Path: "/api/analytics/summary", Access: Public, Handler: c.analyticsSummary},
		{Method: "GET", Path: "/api/analytics/agents", Access: Public, Handler: c.analyticsAgents},
		{Method: "GET", Path: "/api/analytics/agents/{agent_id}/hourly", Access: Public, Handler: c.analyticsHourly},
		{Method: "POST", Path: "/api/onboard/register", Access: Public, Handler: c.register, Class: ratelimit.ClassRegister,
			Body: protocol.BodyOnboardRegister, Guard: c.registrationOpen},
		{Method: "GET", Path: "/api/schemas", Access: Public, Handler: c.schemas},
		{Method: "GET", Path: "/api/whoami", Access: AnyToken, Handler: c.whoami},
	}
}

func (c *Core) health(*Request) Response {
	return JSON(http.StatusOK, protocol.Health{Status: "ok", Service: "agent_com",
		AgentsConnected: c.Presence.Count(), Version: c.Version})
}

func (c *Core) listAgents(*Request) Response {
	list := c.Presence.List()
	out := make([]protocol.ConnectedAgent, len(list))
	for i, e := range list {
		st := e.State
		if st == "" {
			st = "unknown"
		}
		out[i] = protocol.ConnectedAgent{AgentID: e.AgentID, Name: e.Name, Status: e.Status,
			Capabilities: e.Capabilities, ConnectedAt: e.ConnectedAt, LastSeen: e.LastSeen, FsmState: st}
	}
	return JSON(http.StatusOK, protocol.AgentList[protocol.ConnectedAgent]{Agents: out})
}

func (c *Core) postMessage(r *Request) Response {
	b := BodyOf[protocol.PostMessage](r)
	m := messaging.Message{From: r.ID.AgentID, Type: b.Type, Payload: b.Payload, ReplyTo: messaging.StrPtr(b.ReplyTo)}
	if r.Body.Has("to") {
		// Absent is a broadcast (To nil); present, even empty, names
		// the recipient.
		m.To = b.To
	}
	c.Messaging.Stamp(&m)
	_, err := c.Messaging.Send(m, nil)
	if errors.Is(err, messaging.ErrUnknownRecipient) {
		return Err(http.StatusNotFound, protocol.CodeUnknownRecipient, "to", b.To,
			"detail", "no agent with this id holds a token or is connected")
	}
	if resp, refused := payloadRefusal(err); refused {
		return resp
	}
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.MessageAccepted{Status: "sent", ID: m.ID})
}

func (c *Core) getHeartbeat(*Request) Response {
	return JSON(http.StatusOK, protocol.HeartbeatInterval{HeartbeatIntervalMs: c.Settings.HeartbeatIntervalMs()})
}

func (c *Core) putHeartbeat(r *Request) Response {
	v := BodyOf[protocol.PutHeartbeat](r).HeartbeatIntervalMs
	if err := c.Settings.PutInt(settings.KeyHeartbeatInterval, v); err != nil {
		return settingErr(r, err)
	}
	return JSON(http.StatusOK, protocol.HeartbeatInterval{HeartbeatIntervalMs: v, Status: "updated"})
}

func (c *Core) getRetention(*Request) Response {
	return JSON(http.StatusOK, protocol.MailboxRetention{MailboxTTLMs: c.Settings.MailboxTTL().Milliseconds()})
}

func (c *Core) putRetention(r *Request) Response {
	v := BodyOf[protocol.PutMailboxTTL](r).MailboxTTLMs
	if err := c.Settings.PutInt(settings.KeyMailboxTTL, v); err != nil {
		return settingErr(r, err)
	}
	return JSON(http.StatusOK, protocol.MailboxRetention{MailboxTTLMs: v, Status: "updated"})
}

func (c *Core) getDefaultRepo(*Request) Response {
	if url, ok := c.Settings.DefaultRepo(); ok {
		return JSON(http.StatusOK, protocol.DefaultRepo{DefaultRepo: &url, Configured: true})
	}
	return JSON(http.StatusOK, protocol.DefaultRepo{})
}

func (c *Core) putDefaultRepo(r *Request) Response {
	url := strings.TrimSpace(BodyOf[protocol.PutDefaultRepo](r).URL)
	if url == "" {
		return Err(http.StatusBadRequest, "missing or invalid field: url")
	}
	if err := c.Settings.Put(settings.KeyDefaultRepo, url); err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.DefaultRepoSet{Status: "ok", DefaultRepo: url})
}

func (c *Core) evict(*Request) Response {
	// Called in the request, never on a goroutine of its own: the hub
	// owns every goroutine. EvictMailboxes should only trigger the hub's
	// evictor; a synchronous one makes this reply wait for the eviction.
	c.EvictMailboxes()
	return JSON(http.StatusOK, protocol.StatusReply{Status: "eviction_triggered"})
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
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.Mailbox{AgentID: agent, Messages: msgs, LastSeq: last, Count: len(msgs)})
}

func (c *Core) ackMailbox(r *Request) Response {
	agent, bad := pathAgentID(r)
	if bad != nil {
		return *bad
	}
	seq := BodyOf[protocol.PostMailboxAck](r).Seq
	if seq > 0 {
		if err := c.Messaging.Mailbox.Ack(r.Context(), agent, uint64(seq)); err != nil {
			return storageErr(r, err)
		}
	}
	return JSON(http.StatusOK, protocol.MailboxAcked{Status: "acked", UpTo: seq})
}

func (c *Core) thread(r *Request) Response {
	root, msgs, err := c.Messaging.Threads.Thread(r.Context(), r.PathValue("message_id"))
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.Thread{Root: root, Messages: msgs, Count: len(msgs)})
}

func (c *Core) replies(r *Request) Response {
	id := r.PathValue("message_id")
	msgs, err := c.Messaging.Threads.Replies(r.Context(), id)
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.Replies{Parent: id, Replies: msgs, Count: len(msgs)})
}

func (c *Core) root(r *Request) Response {
	id := r.PathValue("message_id")
	root, err := c.Messaging.Threads.Root(r.Context(), id)
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.ThreadRoot{MessageID: id, Root: root})
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
	body := protocol.ChannelList{Channels: list, Total: total}
	if more {
		body.NextAfter = list[len(list)-1].Name
	}
	return JSON(http.StatusOK, body)
}

func (c *Core) createChannel(r *Request) Response {
	b := BodyOf[protocol.PostChannel](r)
	name := b.Name
	_, err := c.Messaging.Channels.Create(name, b.Description, r.ID.AgentID)
	if errors.Is(err, messaging.ErrChannelExists) {
		return Err(http.StatusConflict, "channel_exists")
	}
	if resp, ok := channelRefusal(err); ok {
		return resp
	}
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusCreated, protocol.ChannelStatus{Status: "created", Channel: name})
}

func (c *Core) channelInfo(r *Request) Response {
	ch, err := c.Messaging.Channels.Get(r.PathValue("channel"))
	if errors.Is(err, messaging.ErrChannelNotFound) {
		return Err(http.StatusNotFound, "channel_not_found")
	}
	return JSON(http.StatusOK, protocol.ChannelInfo{Name: ch.Name, Description: ch.Description, Subscribers: ch.Subscribers,
		SubscriberCount: len(ch.Subscribers), CreatedAt: ch.CreatedAt, CreatedBy: ch.CreatedBy})
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
		return storageErr(r, err)
	}
	if already {
		return JSON(http.StatusOK, protocol.ChannelStatus{Status: "already_subscribed"})
	}
	return JSON(http.StatusOK, protocol.ChannelStatus{Status: "subscribed", Channel: name})
}

func (c *Core) unsubscribe(r *Request) Response {
	name := r.PathValue("channel")
	err := c.Messaging.Channels.Unsubscribe(name, r.ID.AgentID)
	if errors.Is(err, messaging.ErrChannelNotFound) {
		return Err(http.StatusNotFound, "channel_not_found")
	}
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.ChannelStatus{Status: "unsubscribed", Channel: name})
}

// channelExists answers an unknown channel before its publish body is
// validated, as the original did.
func (c *Core) channelExists(r *Request) (Response, bool) {
	if _, err := c.Messaging.Channels.Get(r.PathValue("channel")); errors.Is(err, messaging.ErrChannelNotFound) {
		return Err(http.StatusNotFound, "channel_not_found"), false
	}
	return Response{}, true
}

func (c *Core) publish(r *Request) Response {
	name := r.PathValue("channel")
	b := BodyOf[protocol.PostChannelPublish](r)
	m := messaging.Message{From: r.ID.AgentID, Type: b.Type, Payload: b.Payload, ReplyTo: messaging.StrPtr(b.ReplyTo)}
	n, err := c.Messaging.Publish(name, m)
	if errors.Is(err, messaging.ErrChannelNotFound) {
		return Err(http.StatusNotFound, "channel_not_found")
	}
	if resp, refused := payloadRefusal(err); refused {
		return resp
	}
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.ChannelPublishedReply{Status: "published", Seq: n})
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
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.ChannelHistoryPage{Channel: name, Messages: entries, Count: len(entries)})
}

func (c *Core) subscriptions(r *Request) Response {
	agent := r.PathValue("agent_id")
	return JSON(http.StatusOK, protocol.Subscriptions{AgentID: agent, Channels: c.Messaging.Channels.Subscriptions(agent)})
}

// AgentStateJSON renders an agent's state as /api/agents/states does.
func AgentStateJSON(a agents.Agent, withLastChange bool) protocol.AgentState {
	caps := make([]protocol.NamedCapability, len(a.Capabilities))
	for i, cp := range a.Capabilities {
		caps[i] = protocol.NamedCapability{Name: cp}
	}
	out := protocol.AgentState{AgentID: a.ID, FsmState: string(a.State), CurrentTaskID: nullable(a.CurrentTask), Capabilities: caps,
		Flags: a.Flags, ConnectedAt: a.ConnectedAt, Name: a.Name, LastHeard: a.LastHeard}
	if withLastChange {
		out.LastStateChange = &a.LastStateChange
	}
	return out
}

func (c *Core) agentStates(*Request) Response {
	list := c.Agents.List()
	out := make([]protocol.AgentState, len(list))
	for i, a := range list {
		out[i] = AgentStateJSON(a, true)
	}
	return JSON(http.StatusOK, protocol.AgentList[protocol.AgentState]{Agents: out})
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
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.MessagePage{Messages: msgs, Cursor: next, Count: len(msgs)})
}

func (c *Core) createToken(r *Request) Response {
	b := BodyOf[protocol.PostToken](r)
	role, err := auth.ParseRole(b.Role)
	if err != nil {
		// The detail is built from the caller's own input, not from err.
		return JSON(http.StatusBadRequest, protocol.ErrorReply{Error: "invalid_role",
			Detail: fmt.Sprintf("unknown role %q (want agent, admin or viewer)", b.Role)})
	}
	tok, err := c.Tokens.Create(b.AgentID, role)
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusCreated, protocol.TokenCreated{AgentID: b.AgentID, Token: tok, Role: string(role)})
}

func (c *Core) listTokens(*Request) Response {
	return JSON(http.StatusOK, protocol.TokenList{Tokens: c.Tokens.List()})
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
		return storageErr(r, err)
	}
	if n > 0 && c.Revoked != nil {
		c.Revoked()
	}
	return JSON(http.StatusOK, protocol.TokensRevoked{Status: "revoked", AgentID: agent, Revoked: n})
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
	body := protocol.AnalyticsAgents{Agents: page, Total: len(all)}
	if start+limit < len(all) {
		body.NextAfter = page[len(page)-1].AgentID
	}
	return JSON(http.StatusOK, body)
}

func (c *Core) analyticsHourly(r *Request) Response {
	agent := r.PathValue("agent_id")
	return JSON(http.StatusOK, protocol.AgentHourly{AgentID: agent, Hourly: c.Messaging.Analytics.Hourly(agent)})
}

// registrationOpen refuses a registration unless the operator opened it
// or the caller has the join secret, before the body is validated (as
// the original did). The secret is a body string (in Params) or a header.
func (c *Core) registrationOpen(r *Request) (Response, bool) {
	secret, _ := r.Body["join_secret"].(string)
	if secret == "" {
		secret = r.Header.Get("X-Join-Secret")
	}
	secretOK := c.JoinSecret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(c.JoinSecret)) == 1
	if !c.OpenRegistration && !secretOK {
		detail := "open registration is off; start the hub with --open-registration or send the join secret"
		if secret != "" {
			detail = "wrong join secret"
		}
		return Err(http.StatusForbidden, "registration_closed", "detail", detail), false
	}
	return Response{}, true
}

// register is the open bootstrap route of add-agent.js (registrationOpen
// guards it).
func (c *Core) register(r *Request) Response {
	agent := BodyOf[protocol.PostOnboardRegister](r).AgentID
	if agent == "" {
		return Err(http.StatusBadRequest, "missing or invalid field: agent_id")
	}
	if c.Tokens.HasAgent(agent) {
		return Err(http.StatusConflict, "agent_id already registered")
	}
	tok, err := c.Tokens.Create(agent, auth.RoleAgent)
	if err != nil {
		return storageErr(r, err)
	}
	host := r.Host
	scheme, ws := "http", "ws"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme, ws = "https", "wss"
	}
	var repo *string
	if url, ok := c.Settings.DefaultRepo(); ok {
		repo = &url
	}
	return JSON(http.StatusCreated, protocol.Registered{AgentID: agent, Token: tok,
		HubWSURL: ws + "://" + host + "/ws", HubAPIURL: scheme + "://" + host, DefaultRepo: repo})
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
// reply. Their texts are the messaging rules', built from the name and
// the configured caps (rule errors, see errors.go).
func channelRefusal(err error) (Response, bool) {
	switch {
	case errors.Is(err, messaging.ErrInvalidChannel):
		return fieldErrors(protocol.FieldError{Field: "name", Error: protocol.ErrInvalidValue, Detail: ruleDetail(err)}), true
	case errors.Is(err, messaging.ErrChannelLimit):
		return JSON(http.StatusConflict, protocol.ErrorReply{Error: protocol.CodeChannelLimit, Detail: ruleDetail(err)}), true
	}
	return Response{}, false
}

// pathAgentID returns the {agent_id} path segment once it follows the
// agent-id rule; mailbox keys are formed from it.
func pathAgentID(r *Request) (string, *Response) {
	agent := r.PathValue("agent_id")
	if err := protocol.CheckAgentID(agent); err != nil {
		resp := fieldErrors(protocol.FieldError{Field: "agent_id", Error: protocol.ErrInvalidValue, Detail: ruleDetail(err)})
		return "", &resp
	}
	return agent, nil
}

// settingErr answers a refused setting with the structured validation
// error naming its bounds, and anything else as a storage error.
func settingErr(r *Request, err error) Response {
	var re *settings.RangeError
	if errors.As(err, &re) {
		return JSON(http.StatusBadRequest, protocol.ValidationReply{Error: protocol.CodeValidationFailed, Errors: []protocol.FieldError{{
			Field: re.Key, Error: protocol.ErrOutOfRange, Detail: ruleDetail(re), Value: re.Value}},
			Min: re.Range.Min, Max: re.Range.Max})
	}
	return storageErr(r, err)
}
