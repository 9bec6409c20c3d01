package agentws

import (
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
	"github.com/agentcom/agentcom/internal/tasks"
)

// handle processes one text frame and reports whether the socket must
// stop reading (it was closed).
func (c *conn) handle(ctx context.Context, data []byte) bool {
	obj, err := protocol.DecodeObject(data)
	if errors.Is(err, protocol.ErrInvalidJSON) {
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeInvalidJSON})
		return false
	}
	typ := ""
	if err == nil {
		typ, err = protocol.ValidateFrame(obj)
	}
	var ve *protocol.ValidationError
	if errors.As(err, &ve) {
		if c.srv.obs != nil {
			c.srv.obs.ValidationFailed(typ)
		}
		if c.violation() {
			return true
		}
		c.reply(protocol.ValidationFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed,
			MessageType: ve.MessageType, Errors: ve.Errors})
		return false
	}
	if int64(len(data)) > c.srv.cfg.ReadLimit && typ != protocol.FrameTaskComplete && typ != protocol.FrameTaskFailed {
		// Only reports may carry a whole result; every other frame stays small.
		if c.violation() {
			return true
		}
		c.reply(protocol.ValidationFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed,
			MessageType: typ, Errors: []protocol.FieldError{{Field: "message", Error: protocol.ErrTooLong,
				Detail: fmt.Sprintf("frame of %d bytes; the limit is %d bytes (%d for task_complete and task_failed)",
					len(data), c.srv.cfg.ReadLimit, c.srv.cfg.ReportLimit)}}})
		return false
	}
	if typ == protocol.FrameIdentify {
		return c.identify(obj)
	}
	agent := c.agentID()
	if agent == "" && typ == protocol.FramePing {
		// Allowed before identify, so a client can check the link first.
		c.reply(map[string]any{"type": protocol.OutPong, "timestamp": c.srv.now().UnixMilli()})
		return false
	}
	if agent == "" {
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeNotIdentified})
		return false
	}
	if c.srv.limiter != nil {
		if ok, wait := c.srv.limiter.Allow(agent, typ); !ok {
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
	c.dispatch(agent, typ, obj)
	return false
}

func (c *conn) dispatch(agent, typ string, obj protocol.Object) {
	s := c.srv
	switch typ {
	case protocol.FramePing:
		now := s.now().UnixMilli()
		c.lastPingT.Store(now)
		s.presence.Touch(agent)
		s.sched.Heard(agent)
		c.reply(map[string]any{"type": protocol.OutPong, "timestamp": now})
	case protocol.FrameStatus:
		c.reply(map[string]any{"type": protocol.OutStatusUpdated})
		if e, ok := s.presence.SetStatus(agent, obj.String("status")); ok {
			s.broadcastAll(map[string]any{"type": protocol.OutStatusChanged, "agent": agentInfo(e)})
		}
	case protocol.FrameListAgents:
		list := s.presence.List()
		infos := make([]protocol.AgentInfo, len(list))
		for i, e := range list {
			infos[i] = agentInfo(e)
		}
		c.reply(map[string]any{"type": protocol.OutAgents, "agents": infos})
	case protocol.FrameMessage:
		c.message(agent, obj)
	case protocol.FrameChannelSubscribe, protocol.FrameChannelUnsubscribe, protocol.FrameChannelPublish,
		protocol.FrameChannelHistory, protocol.FrameListChannels:
		c.channel(agent, typ, obj)
	default:
		c.task(agent, typ, obj)
	}
}

// identify authenticates the socket. It reports whether the socket closed.
func (c *conn) identify(obj protocol.Object) bool {
	s := c.srv
	agent := obj.String("agent_id")
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
	id, err := s.tokens.Verify(obj.String("token"))
	if err != nil {
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeInvalidToken})
		return false
	}
	if id.Role == auth.RoleViewer || !id.CanActAs(agent) {
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeTokenAgentMismatch})
		return false
	}
	caps := obj.Strings("capabilities")
	entry := s.takeOver(c, agent, id, presence.Entry{AgentID: agent, Name: obj.String("name"),
		Status: obj.String("status"), Capabilities: caps})
	if !s.tokens.Live(id) {
		// Revoked while identifying, before CloseRevoked could see the
		// socket's identity.
		c.close(protocol.CloseRevoked, "token revoked")
		return true
	}
	s.log.Info("agent identified", "event", "agent_identified", "agent_id", entry.AgentID, "remote", c.remote)
	return false
}

// takeOver makes c the socket of agent. Concurrent identifies of one agent
// (and the releases of the sockets they replace) run one at a time, so the
// socket left in byAgent is always the one the scheduler and presence know:
// no agent is left connected in the scheduler, holding a task, without a
// socket.
func (s *Server) takeOver(c *conn, agent string, id auth.Identity, e presence.Entry) presence.Entry {
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
	c.reply(map[string]any{"type": protocol.OutIdentified, "agent_id": agent})
	s.broadcastExcept(agent, map[string]any{"type": protocol.OutAgentJoined, "agent": agentInfo(entry)})
	// After identified is queued: any task_assign the scheduler pushes now
	// reaches the client after it.
	s.sched.Connect(agent, entry.Name, e.Capabilities, c.id)
	return entry
}

func (c *conn) message(agent string, obj protocol.Object) {
	m := messaging.Message{From: agent, Type: obj.String("message_type"), Payload: obj.Map("payload"),
		ReplyTo: messaging.StrPtr(obj.String("reply_to"))}
	if obj.Has("to") {
		m.To = obj.String("to")
	}
	c.srv.messaging.Stamp(&m)
	// message_sent goes out once the message is stored, before the
	// sender's own broadcast echo.
	sent := func() { c.reply(map[string]any{"type": protocol.OutMessageSent, "id": m.ID}) }
	_, err := c.srv.messaging.Send(m, sent)
	if errors.Is(err, messaging.ErrUnknownRecipient) {
		c.reply(map[string]any{"type": protocol.OutError, "error": protocol.CodeUnknownRecipient, "to": obj.String("to")})
		return
	}
	if errors.Is(err, messaging.ErrPayloadTooLarge) {
		c.reply(map[string]any{"type": protocol.OutError, "error": protocol.CodePayloadTooLarge, "limit_bytes": messaging.MaxPayloadBytes})
		return
	}
	if err != nil {
		c.srv.log.Error("message routing failed", "event", "message_failed", "agent_id", agent, "err", err)
		c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeInternal})
	}
}

func (c *conn) channel(agent, typ string, obj protocol.Object) {
	s := c.srv
	name := obj.String("channel")
	notFound := func(err error) bool {
		if errors.Is(err, messaging.ErrChannelNotFound) {
			c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeChannelNotFound})
			return true
		}
		if errors.Is(err, messaging.ErrChannelLimit) {
			c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeChannelLimit})
			return true
		}
		if errors.Is(err, messaging.ErrPayloadTooLarge) {
			c.reply(map[string]any{"type": protocol.OutError, "error": protocol.CodePayloadTooLarge, "limit_bytes": messaging.MaxPayloadBytes})
			return true
		}
		if err != nil {
			s.log.Error("channel operation failed", "event", "channel_failed", "agent_id", agent, "channel", name, "err", err)
			c.reply(protocol.ErrorFrame{Type: protocol.OutError, Error: protocol.CodeInternal})
			return true
		}
		return false
	}
	switch typ {
	case protocol.FrameChannelSubscribe:
		already, err := s.messaging.Subscribe(name, agent)
		if notFound(err) {
			return
		}
		f := map[string]any{"type": protocol.OutChannelSubscribed, "channel": name}
		if already {
			f["note"] = "already_subscribed"
		}
		c.reply(f)
	case protocol.FrameChannelUnsubscribe:
		if notFound(s.messaging.Channels.Unsubscribe(name, agent)) {
			return
		}
		c.reply(map[string]any{"type": protocol.OutChannelUnsubscribed, "channel": name})
	case protocol.FrameChannelPublish:
		m := messaging.Message{From: agent, Type: obj.String("message_type"), Payload: obj.Map("payload"),
			ReplyTo: messaging.StrPtr(obj.String("reply_to"))}
		s.messaging.Stamp(&m)
		n, err := s.messaging.Publish(name, m)
		if notFound(err) {
			return
		}
		c.reply(map[string]any{"type": protocol.OutChannelPublished, "channel": name, "seq": n, "id": m.ID})
	case protocol.FrameChannelHistory:
		limit := int64(messaging.ChannelHistoryDefaultLimit)
		if obj.Has("limit") {
			limit = obj.Int("limit")
		}
		since := max(obj.Int("since"), 0)
		entries, err := s.messaging.Channels.History(name, int(limit), uint64(since))
		if notFound(err) {
			return
		}
		c.reply(map[string]any{"type": protocol.OutChannelHistory, "channel": name, "messages": entries})
	case protocol.FrameListChannels:
		list, _, _ := s.messaging.Channels.List("", messaging.ChannelsMaxLimit)
		c.reply(map[string]any{"type": protocol.OutChannels, "channels": list})
	}
}

func (c *conn) task(agent, typ string, obj protocol.Object) {
	s := c.srv
	id := obj.String("task_id")
	ack := func(status string, dup bool) {
		c.reply(protocol.TaskAck{Type: protocol.OutTaskAck, TaskID: id, Status: status, Duplicate: dup})
	}
	fail := func(prefix string, err error) {
		if !errors.Is(err, tasks.ErrNotFound) && !errors.Is(err, tasks.ErrInvalidState) &&
			!errors.Is(err, tasks.ErrStaleGeneration) && !errors.Is(err, tasks.ErrNotHolder) {
			s.log.Error("task report failed", "event", "task_report_failed", "agent_id", agent, "task_id", id, "err", err)
		}
		// The original's error shape, plus the task id: a sidecar that
		// keeps unacknowledged reports can tell which one was refused, so
		// every terminal report gets an answer naming its task.
		c.reply(map[string]any{"type": protocol.OutError, "error": prefix + ": " + tasks.WireReason(err), "task_id": id})
	}
	switch typ {
	case protocol.FrameTaskAccepted:
		// Acknowledged whatever happened, as the original did.
		if err := s.sched.Accepted(agent, id); err != nil {
			s.log.Debug("accept ignored", "event", "task_accept_ignored", "agent_id", agent, "task_id", id, "reason", err.Error())
		}
		ack(protocol.AckAccepted, false)
	case protocol.FrameTaskProgress:
		if err := s.sched.Progress(agent, id); err != nil {
			s.log.Debug("progress ignored", "event", "task_progress_ignored", "agent_id", agent, "task_id", id, "reason", err.Error())
			return // output and checks count only from the task's holder
		}
		if out := obj.String("output"); out != "" && s.logs != nil {
			s.logs.Append(id, out)
		}
		if obj.Has("check") {
			var ck protocol.VerifyCheck
			if err := obj.Into("check", &ck); err != nil {
				c.reply(protocol.ValidationFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed, MessageType: typ,
					Errors: []protocol.FieldError{{Field: "check", Error: protocol.ErrWrongType, Detail: "expected a verification check object"}}})
				return
			}
			if err := s.sched.RecordCheck(agent, id, ck.Bounded()); err != nil {
				s.log.Debug("check ignored", "event", "task_check_ignored", "agent_id", agent, "task_id", id, "reason", err.Error())
			}
		}
	case protocol.FrameTaskComplete:
		result := any(obj.Map("result"))
		if !obj.Has("result") {
			result = map[string]any{}
		}
		var tokens *int64
		if obj.Has("tokens_used") {
			n := obj.Int("tokens_used")
			tokens = &n
		} else if r := obj.Map("result"); r != nil {
			if n, ok := r["tokens_used"].(json.Number); ok {
				if v, err := n.Int64(); err == nil {
					tokens = &v
				}
			}
		}
		usage, ok := c.usage(typ, obj)
		if !ok {
			return
		}
		dup, err := s.sched.Complete(agent, id, obj.Int("generation"), result, tokens, usage)
		if err != nil {
			fail(protocol.CodeTaskCompleteFailed, err)
			return
		}
		ack(protocol.AckComplete, dup)
	case protocol.FrameTaskFailed:
		reason := obj.String("error")
		if reason == "" {
			reason = obj.String("reason")
		}
		if reason == "" {
			reason = "unknown"
		}
		usage, ok := c.usage(typ, obj)
		if !ok {
			return
		}
		outcome, dup, err := s.sched.Fail(agent, id, obj.Int("generation"), reason, obj.Raw("output"), usage)
		if err != nil {
			fail(protocol.CodeTaskFailFailed, err)
			return
		}
		status := protocol.AckRetried
		if outcome == tasks.OutcomeDeadLetter {
			status = protocol.AckDeadLetter
		}
		ack(status, dup)
	case protocol.FrameTaskRejected:
		reason := obj.String("reason")
		if reason == "" {
			reason = "unspecified"
		}
		gen := int64(-1) // the original sidecar does not say which generation
		if obj.Has("generation") {
			gen = obj.Int("generation")
		}
		if err := s.sched.Reject(agent, id, gen, reason); err != nil {
			fail(protocol.CodeTaskRejectFailed, err)
			return
		}
		ack(protocol.AckRejected, false)
	case protocol.FrameTaskRecovering:
		if gen, ok := s.sched.Recover(agent, id); ok {
			c.reply(map[string]any{"type": protocol.OutTaskContinue, "task_id": id, "generation": gen})
		} else {
			c.reply(map[string]any{"type": protocol.OutTaskReassign, "task_id": id})
		}
	}
}

// usage reads the optional "usage" object of a task report; a malformed
// one is refused (false) with a validation error.
func (c *conn) usage(typ string, obj protocol.Object) (*protocol.Usage, bool) {
	if !obj.Has("usage") {
		return nil, true
	}
	var u protocol.Usage
	if err := obj.Into("usage", &u); err != nil {
		c.reply(protocol.ValidationFrame{Type: protocol.OutError, Error: protocol.CodeValidationFailed, MessageType: typ,
			Errors: []protocol.FieldError{{Field: "usage", Error: protocol.ErrWrongType,
				Detail: "expected {input_tokens, output_tokens, total_tokens: integers, cost_usd: number}"}}})
		return nil, false
	}
	u = u.Normalize()
	return &u, true
}

// broadcastAll sends a frame to every identified socket.
func (s *Server) broadcastAll(frame any) { s.broadcastExcept("", frame) }

func marshal(frame any) ([]byte, error) { return json.Marshal(frame) }

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
