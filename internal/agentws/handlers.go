package agentws

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/ratelimit"
	"github.com/agentcom/agentcom/internal/tasks"
	"github.com/agentcom/agentcom/internal/wsconn"
)

// handle processes one text frame and reports whether the socket must
// stop reading (it was closed).
func (c *conn) handle(ctx context.Context, data []byte) bool {
	typ, f, err := protocol.DecodeFrame(data)
	if errors.Is(err, protocol.ErrInvalidJSON) {
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeInvalidJSON})
		return false
	}
	var ve *protocol.ValidationError
	if errors.As(err, &ve) {
		c.observeInvalid(typ)
		return c.refuse(ve.MessageType, ve.Errors)
	}
	var bad *protocol.MalformedError
	if err != nil && !errors.As(err, &bad) {
		// DecodeFrame returns no other error; were it to, the frame is
		// refused rather than half-read.
		c.srv.log.Error("frame decode failed", "event", "frame_decode_failed", "agent_id", c.agentID(), "err", err)
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeInternal})
		return false
	}
	if int64(len(data)) > c.srv.cfg.ReadLimit && typ != protocol.FrameTaskComplete && typ != protocol.FrameTaskFailed {
		// Only reports may carry a whole result; every other frame stays small.
		return c.refuse(typ, []protocol.FieldError{{Field: "message", Error: protocol.ErrTooLong,
			Detail: fmt.Sprintf("frame of %d bytes; the limit is %d bytes (%d for task_complete and task_failed)",
				len(data), c.srv.cfg.ReadLimit, c.srv.cfg.ReportLimit)}})
	}
	r, ok := c.srv.routes[typ]
	if !ok {
		// A type the schema knows but the table does not (TestEveryFrameHasRoute
		// keeps this from shipping): answered as any unknown type.
		c.observeInvalid(typ)
		return c.refuse(typ, []protocol.FieldError{{Field: "type", Error: protocol.ErrUnknownMessageType,
			Detail: fmt.Sprintf("unknown message type '%s'", typ), KnownTypes: protocol.KnownFrameTypes()}})
	}
	agent := c.agentID()
	if agent == "" && !r.open {
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeNotIdentified})
		return false
	}
	if agent != "" && r.class != ratelimit.ClassNone && c.srv.limiter != nil {
		if ok, wait := c.srv.limiter.AllowClass(r.class, agent); !ok {
			if c.srv.obs != nil {
				c.srv.obs.RateLimited(typ)
			}
			if c.violation() {
				return true
			}
			c.reply(protocol.RateLimitedFrame{Type: protocol.OutError, Error: protocol.CodeRateLimited,
				MessageType: typ, RetryAfterMs: max(wait.Milliseconds(), 1)})
			return false
		}
	}
	return r.handle(c, ctx, agent, f, bad)
}

// refuse answers a frame that failed validation, counting the violation;
// it reports whether the socket closed for too many.
func (c *conn) refuse(messageType any, errs []protocol.FieldError) bool {
	if c.violation() {
		return true
	}
	c.reply(protocol.ValidationFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed,
		MessageType: messageType, Errors: errs})
	return false
}

func (c *conn) observeInvalid(typ string) {
	if c.srv.obs != nil {
		c.srv.obs.ValidationFailed(typ)
	}
}

func (c *conn) ping(_ context.Context, r req[protocol.Ping]) bool {
	s := c.srv
	now := s.now().UnixMilli()
	if r.agent != "" {
		c.lastPingT.Store(now)
		s.presence.Touch(r.agent)
		s.sched.Heard(r.agent)
	}
	c.reply(protocol.NewPong(now))
	return false
}

func (c *conn) status(_ context.Context, r req[protocol.Status]) bool {
	s := c.srv
	c.reply(protocol.NewStatusUpdated())
	if e, ok := s.presence.SetStatus(r.agent, r.frame.Status); ok {
		s.announce(presence.ChangeStatus, agentInfo(e))
	}
	return false
}

func (c *conn) listAgents(_ context.Context, _ req[protocol.ListAgents]) bool {
	list := c.srv.presence.List()
	infos := make([]protocol.AgentInfo, len(list))
	for i, e := range list {
		infos[i] = agentInfo(e)
	}
	c.reply(protocol.NewAgents(infos))
	return false
}

// identify authenticates the socket. It reports whether the socket closed.
func (c *conn) identify(_ context.Context, r req[protocol.Identify]) bool {
	s := c.srv
	f := r.frame
	agent := f.AgentID
	if agent == "" {
		// An admin token may act as any agent, but not as nobody: an empty
		// id would be an agent no one can address or remove.
		if c.violation() {
			return true
		}
		c.reply(protocol.ValidationFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed,
			MessageType: protocol.FrameIdentify, Errors: []protocol.FieldError{{Field: "agent_id",
				Error: protocol.ErrInvalidValue, Detail: "must not be empty", Value: ""}}})
		return false
	}
	if wait := s.cooldown.remaining(agent, s.now()); wait > 0 {
		secs := (wait.Milliseconds() + 999) / 1000 // rounded up: 30 s left says 30
		c.close(protocol.ClosePolicy, fmt.Sprintf("cooldown active: retry in %ds", secs))
		return true
	}
	id, err := s.tokens.Verify(f.Token)
	if err != nil {
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeInvalidToken})
		return false
	}
	if id.Role == auth.RoleViewer || !id.CanActAs(agent) {
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeTokenAgentMismatch})
		return false
	}
	caps := f.Capabilities
	if caps == nil {
		caps = []string{} // presence frames show [] for an agent that sent none
	}
	entry := s.takeOver(c, agent, id, presence.Entry{AgentID: agent, Name: f.Name, Status: f.Status, Capabilities: caps},
		negotiate(f.ProtocolVersion))
	if !s.tokens.Live(id) {
		// Revoked while identifying, before CloseRevoked could see the
		// socket's identity.
		c.close(protocol.CloseRevoked, "token revoked")
		return true
	}
	s.log.Info("agent identified", "event", "agent_identified", "agent_id", entry.AgentID, "remote", c.remote)
	return false
}

// version is what identify settled on with the client.
type version struct {
	v int
	// shown: identified states v. Clients that asked for version 1 (or
	// nothing) get the original frame byte for byte; one that asked for
	// more is told which version it got.
	shown bool
	// tooNew: the client asked for a version newer than the hub's; it is
	// also sent protocol_version_unsupported.
	tooNew bool
}

// negotiate reads identify's protocol_version (any JSON value: absent,
// malformed or old values are tolerated as version 1, as the original hub
// never read the field).
func negotiate(asked any) version {
	v, tooNew := protocol.Negotiate(asked)
	return version{v: v, shown: tooNew || v > protocol.MinVersion, tooNew: tooNew}
}

// identifiedFrames are identify's answer: identified, plus the version
// refusal for a client newer than the hub.
func (v version) identifiedFrames(agent string) []protocol.Frame {
	shown := 0
	if v.shown {
		shown = v.v
	}
	out := []protocol.Frame{protocol.NewIdentified(agent, shown)}
	if v.tooNew {
		out = append(out, protocol.NewVersionUnsupportedError(v.v))
	}
	return out
}

// takeOver makes c the socket of agent. Concurrent identifies of one agent
// (and the releases of the sockets they replace) run one at a time, so the
// socket left in byAgent is always the one the scheduler and presence know:
// no agent is left connected in the scheduler, holding a task, without a
// socket.
func (s *Server) takeOver(c *conn, agent string, id auth.Identity, e presence.Entry, v version) presence.Entry {
	s.identifyMu.Lock()
	defer s.identifyMu.Unlock()
	if prev := c.agentID(); prev != "" && prev != agent {
		// Re-identifying as another agent: the old identity goes away
		// first, so one socket never holds two agents.
		s.releaseLocked(c)
	}
	c.identity.Store(&id)
	c.agent.Store(&agent)
	s.identified(c)
	// An identified agent may send its results; before identify every
	// frame stays under ReadLimit.
	c.ws.SetReadLimit(s.cfg.ReportLimit)
	c.lastPingT.Store(s.now().UnixMilli())
	s.bind(agent, c)
	entry := s.presence.Register(e)
	s.messaging.Analytics.RecordConnect(agent)
	for _, f := range v.identifiedFrames(agent) {
		c.reply(f)
	}
	// The socket reads presence from just after its own join, and only
	// after identified is queued: no presence frame goes before it.
	own := s.announce(presence.ChangeJoined, agentInfo(entry))
	c.followPresence(own+1, agent, v.v)
	// After identified is queued: any task_assign the scheduler pushes now
	// reaches the client after it.
	s.sched.Connect(agent, entry.Name, e.Capabilities, c.id)
	return entry
}

func (c *conn) message(_ context.Context, r req[protocol.Message]) bool {
	f := r.frame
	m := messaging.Message{From: r.agent, Type: f.MessageType, Payload: f.Payload, ReplyTo: messaging.StrPtr(f.ReplyTo)}
	if f.To != "" {
		// Absent is a broadcast (nil); validation refuses an empty "to".
		m.To = f.To
	}
	c.srv.messaging.Stamp(&m)
	// message_sent goes out once the message is stored, before the
	// sender's own broadcast echo.
	sent := func() { c.reply(protocol.NewMessageSent(m.ID)) }
	_, err := c.srv.messaging.Send(m, sent)
	if errors.Is(err, messaging.ErrUnknownRecipient) {
		c.reply(protocol.NewUnknownRecipientError(f.To))
		return false
	}
	if errors.Is(err, messaging.ErrPayloadTooLarge) {
		c.reply(protocol.NewPayloadTooLargeError(messaging.MaxPayloadBytes))
		return false
	}
	if err != nil {
		c.srv.log.Error("message routing failed", "event", "message_failed", "agent_id", r.agent, "err", err)
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeInternal})
	}
	return false
}

// channelFailed answers a failed channel operation and reports whether
// there was one.
func (c *conn) channelFailed(agent, name string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, messaging.ErrChannelNotFound):
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeChannelNotFound})
	case errors.Is(err, messaging.ErrChannelLimit):
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeChannelLimit})
	case errors.Is(err, messaging.ErrPayloadTooLarge):
		c.reply(protocol.NewPayloadTooLargeError(messaging.MaxPayloadBytes))
	default:
		c.srv.log.Error("channel operation failed", "event", "channel_failed", "agent_id", agent, "channel", name, "err", err)
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeInternal})
	}
	return true
}

func (c *conn) channelSubscribe(_ context.Context, r req[protocol.ChannelSubscribe]) bool {
	name := r.frame.Channel
	already, err := c.srv.messaging.Subscribe(name, r.agent)
	if !c.channelFailed(r.agent, name, err) {
		c.reply(protocol.NewChannelSubscribed(name, already))
	}
	return false
}

func (c *conn) channelUnsubscribe(_ context.Context, r req[protocol.ChannelUnsubscribe]) bool {
	name := r.frame.Channel
	if !c.channelFailed(r.agent, name, c.srv.messaging.Channels.Unsubscribe(name, r.agent)) {
		c.reply(protocol.NewChannelUnsubscribed(name))
	}
	return false
}

func (c *conn) channelPublish(_ context.Context, r req[protocol.ChannelPublish]) bool {
	s, f := c.srv, r.frame
	m := messaging.Message{From: r.agent, Type: f.MessageType, Payload: f.Payload, ReplyTo: messaging.StrPtr(f.ReplyTo)}
	s.messaging.Stamp(&m)
	n, err := s.messaging.Publish(f.Channel, m)
	if !c.channelFailed(r.agent, f.Channel, err) {
		c.reply(protocol.NewChannelPublished(f.Channel, m.ID, n))
	}
	return false
}

func (c *conn) channelHistory(_ context.Context, r req[protocol.ChannelHistory]) bool {
	f := r.frame
	limit := int64(messaging.ChannelHistoryDefaultLimit)
	if f.Limit != nil {
		limit = *f.Limit
	}
	var since int64
	if f.Since != nil {
		since = max(*f.Since, 0)
	}
	entries, err := c.srv.messaging.Channels.History(f.Channel, int(limit), uint64(since))
	if !c.channelFailed(r.agent, f.Channel, err) {
		c.reply(protocol.NewChannelHistory(f.Channel, entries))
	}
	return false
}

func (c *conn) listChannels(_ context.Context, _ req[protocol.ListChannels]) bool {
	list, _, _ := c.srv.messaging.Channels.List("", messaging.ChannelsMaxLimit)
	c.reply(protocol.NewChannels(list))
	return false
}

// ack acknowledges a task report.
func (c *conn) ack(id, status string, dup bool) {
	c.reply(protocol.TaskAck{Type: protocol.OutTaskAck, TaskID: id, Status: status, Duplicate: dup})
}

// reportFailed answers a refused task report. The original's error shape,
// plus the task id: a sidecar that keeps unacknowledged reports can tell
// which one was refused, so every terminal report gets an answer naming
// its task.
func (c *conn) reportFailed(agent, id, code string, err error) {
	if !errors.Is(err, tasks.ErrNotFound) && !errors.Is(err, tasks.ErrInvalidState) &&
		!errors.Is(err, tasks.ErrStaleGeneration) && !errors.Is(err, tasks.ErrNotHolder) {
		c.srv.log.Error("task report failed", "event", "task_report_failed", "agent_id", agent, "task_id", id, "err", err)
	}
	c.reply(protocol.NewTaskReportError(code, tasks.WireReason(err), id))
}

func (c *conn) taskAccepted(_ context.Context, r req[protocol.TaskAccepted]) bool {
	id := r.frame.TaskID
	// Acknowledged whatever happened, as the original did.
	if err := c.srv.sched.Accepted(r.agent, id); err != nil {
		c.srv.log.Debug("accept ignored", "event", "task_accept_ignored", "agent_id", r.agent, "task_id", id, "reason", err.Error())
	}
	c.ack(id, protocol.AckAccepted, false)
	return false
}

func (c *conn) taskProgress(_ context.Context, r req[protocol.TaskProgress]) bool {
	s, f := c.srv, r.frame
	if err := s.sched.Progress(r.agent, f.TaskID); err != nil {
		s.log.Debug("progress ignored", "event", "task_progress_ignored", "agent_id", r.agent, "task_id", f.TaskID, "reason", err.Error())
		return false // output and checks count only from the task's holder
	}
	if f.Output != "" && s.logs != nil {
		s.logs.Append(f.TaskID, f.Output)
	}
	if r.malformed("check") {
		c.reply(protocol.ValidationFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed, MessageType: f.Type,
			Errors: []protocol.FieldError{{Field: "check", Error: protocol.ErrWrongType, Detail: "expected a verification check object"}}})
		return false
	}
	if f.Check != nil {
		if err := s.sched.RecordCheck(r.agent, f.TaskID, f.Check.Bounded()); err != nil {
			s.log.Debug("check ignored", "event", "task_check_ignored", "agent_id", r.agent, "task_id", f.TaskID, "reason", err.Error())
		}
	}
	return false
}

func (c *conn) taskComplete(_ context.Context, r req[protocol.TaskComplete]) bool {
	f := r.frame
	result := map[string]any{}
	if len(f.Result) > 0 {
		// Validation let only an object through; the domain keeps it as
		// decoded JSON with exact numbers, as it always did.
		if err := decodeJSON(f.Result, &result); err != nil {
			c.reportFailed(r.agent, f.TaskID, protocol.CodeTaskCompleteFailed, err)
			return false
		}
	}
	tokens := f.TokensUsed
	if tokens == nil {
		if n, ok := result["tokens_used"].(json.Number); ok {
			if v, err := n.Int64(); err == nil {
				tokens = &v
			}
		}
	}
	usage, ok := c.usage(r.malformed("usage"), f.Type, f.Usage)
	if !ok {
		return false
	}
	// Acknowledged before the agent's next task (handed over in the
	// completion's write) is pushed.
	err := c.srv.sched.CompleteAcked(r.agent, f.TaskID, f.Generation, result, tokens, usage, func(dup bool) {
		c.ack(f.TaskID, protocol.AckComplete, dup)
	})
	if err != nil {
		c.reportFailed(r.agent, f.TaskID, protocol.CodeTaskCompleteFailed, err)
	}
	return false
}

func (c *conn) taskFailed(_ context.Context, r req[protocol.TaskFailed]) bool {
	f := r.frame
	reason := cmp.Or(f.Error, f.Reason, "unknown")
	usage, ok := c.usage(r.malformed("usage"), f.Type, f.Usage)
	if !ok {
		return false
	}
	var output any
	if len(f.Output) > 0 {
		if err := decodeJSON(f.Output, &output); err != nil {
			c.reportFailed(r.agent, f.TaskID, protocol.CodeTaskFailFailed, err)
			return false
		}
	}
	outcome, dup, err := c.srv.sched.Fail(r.agent, f.TaskID, f.Generation, reason, output, usage)
	if err != nil {
		c.reportFailed(r.agent, f.TaskID, protocol.CodeTaskFailFailed, err)
		return false
	}
	status := protocol.AckRetried
	if outcome == tasks.OutcomeDeadLetter {
		status = protocol.AckDeadLetter
	}
	c.ack(f.TaskID, status, dup)
	return false
}

func (c *conn) taskRejected(_ context.Context, r req[protocol.TaskRejected]) bool {
	f := r.frame
	reason := cmp.Or(f.Reason, "unspecified")
	gen := int64(-1) // the original sidecar does not say which generation
	if f.Generation != nil {
		gen = *f.Generation
	}
	if err := c.srv.sched.Reject(r.agent, f.TaskID, gen, reason); err != nil {
		c.reportFailed(r.agent, f.TaskID, protocol.CodeTaskRejectFailed, err)
		return false
	}
	c.ack(f.TaskID, protocol.AckRejected, false)
	return false
}

func (c *conn) taskRecovering(_ context.Context, r req[protocol.TaskRecovering]) bool {
	id := r.frame.TaskID
	if gen, ok := c.srv.sched.Recover(r.agent, id); ok {
		c.reply(protocol.NewTaskContinue(id, gen))
	} else {
		c.reply(protocol.NewTaskReassignReply(id))
	}
	return false
}

// usage checks the optional usage object of a task report: a malformed
// one is refused (false) with a validation error.
func (c *conn) usage(malformed bool, typ string, u *protocol.Usage) (*protocol.Usage, bool) {
	if malformed {
		c.reply(protocol.ValidationFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed, MessageType: typ,
			Errors: []protocol.FieldError{{Field: "usage", Error: protocol.ErrWrongType,
				Detail: "expected {input_tokens, output_tokens, total_tokens: integers, cost_usd: number}"}}})
		return nil, false
	}
	if u == nil {
		return nil, true
	}
	n := u.Normalize()
	return &n, true
}

// decodeJSON decodes a raw field with exact numbers (json.Number), as
// protocol.DecodeObject does.
func decodeJSON(raw json.RawMessage, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("decode report field: %w", err)
	}
	return nil
}

// deliverWait bounds how long a direct message's push waits for its
// frame to reach a local socket before it counts as not delivered (its
// pending mailbox copy then stays: see sendOut).
const deliverWait = 250 * time.Millisecond

// PushMessages delivers a broadcast to agents (messaging.Pusher): one
// encoding for all of them.
func (s *Server) PushMessages(agents []string, m messaging.Message) int {
	return s.fanOut(agents, pushed(protocol.OutMessage, m))
}

// PushChannelMessages delivers a channel message to subscribers.
func (s *Server) PushChannelMessages(agents []string, channel string, m messaging.Message) int {
	return s.fanOut(agents, protocol.PushedChannelMessage{PushedMessage: pushed(protocol.OutChannelMessage, m), Channel: channel})
}

// fanOut sends one frame to the sockets of agents and returns how many
// took it. The frame is encoded once and every queue gets the same bytes
// (a queue never changes a frame). The sockets are looked up under one
// read lock, and the send queues are filled before any wait: a relayed
// socket reports delivered only once its frame left this hub (see
// sendOut), and waiting for each in turn would cost a bus round trip per
// recipient; filled first, their writers publish at once and the waits
// overlap. The local sockets' writers are started together
// (wsconn.KickAll: a few goroutines write for all of them).
func (s *Server) fanOut(agents []string, frame protocol.Frame) int {
	if len(agents) == 0 {
		return 0
	}
	b, err := json.Marshal(frame)
	if err != nil {
		s.log.Error("encode frame", "event", "encode_failed", "err", err)
		return 0
	}
	conns := make([]*conn, 0, len(agents))
	s.mu.RLock()
	for _, a := range agents {
		if c := s.byAgent[a]; c != nil {
			conns = append(conns, c)
		}
	}
	s.mu.RUnlock()
	type relayed struct {
		c *conn
		n uint64
	}
	var wait []relayed
	local := make([]*wsconn.Conn, 0, len(conns))
	for _, c := range conns {
		if _, r := c.ws.(*remote); r {
			if n, ok := c.enqueueN(b); ok {
				wait = append(wait, relayed{c, n})
			}
			continue
		}
		if _, ok := c.out.Enqueue(b); ok {
			local = append(local, c.out)
		}
	}
	wsconn.KickAll(local)
	took := len(local)
	deadline := time.Now().Add(publishTimeout)
	for _, w := range wait {
		if w.c.waitWritten(w.n, max(time.Until(deadline), 0)) {
			took++
		}
	}
	return took
}

// cooldowns remembers agents disconnected for validation floods. Counts
// decay: a disconnect older than the longest cooldown times four is
// forgotten, so an agent that behaved for a while starts over.
type cooldowns struct {
	steps []time.Duration
	mu    sync.Mutex
	m     map[string]*cooldown
}

type cooldown struct {
	count int
	last  time.Time
}

func newCooldowns(steps []time.Duration) *cooldowns {
	return &cooldowns{steps: steps, m: map[string]*cooldown{}}
}

func (c *cooldowns) record(agent string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cd := c.m[agent]
	if cd == nil || now.Sub(cd.last) > c.forget() {
		cd = &cooldown{}
		c.m[agent] = cd
	}
	cd.count++
	cd.last = now
}

func (c *cooldowns) remaining(agent string, now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	cd := c.m[agent]
	if cd == nil || len(c.steps) == 0 {
		return 0
	}
	if now.Sub(cd.last) > c.forget() {
		delete(c.m, agent)
		return 0
	}
	step := c.steps[min(cd.count, len(c.steps))-1]
	return step - now.Sub(cd.last)
}

func (c *cooldowns) forget() time.Duration {
	if len(c.steps) == 0 {
		return 0
	}
	return 4 * c.steps[len(c.steps)-1]
}
