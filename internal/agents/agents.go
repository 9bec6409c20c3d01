// Package agents keeps the scheduling state of every connected agent: a
// small state machine per agent (idle, assigned, working, blocked,
// offline), the task it holds, its flags and the acceptance timer.
//
// The registry is in memory. A connection creates an agent; its end
// removes it. Callers (the scheduler) decide what a transition means for
// tasks; this package only guards the legal moves and fires timers.
package agents

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
)

// State of an agent.
type State string

// States.
const (
	Idle     State = "idle"
	Assigned State = "assigned"
	Working  State = "working"
	Blocked  State = "blocked"
	Offline  State = "offline"
)

// Flags.
const (
	// FlagUnresponsive: the agent let an acceptance timer run out. Cleared
	// by reconnecting.
	FlagUnresponsive = "unresponsive"
	// FlagBusy: the agent declined a task (busy with work the hub does not
	// know about, or unable to take it); it is not offered tasks until the
	// busy hold ends or it reconnects.
	FlagBusy = "busy"
)

// EventStateChanged is published on bus.TopicAgents for every transition.
const EventStateChanged = "agent_state_changed"

// StateChange is the payload of EventStateChanged.
type StateChange struct {
	AgentID string   `json:"agent_id"`
	From    State    `json:"from"`
	To      State    `json:"to"`
	TaskID  string   `json:"task_id,omitempty"`
	Flags   []string `json:"flags"`
}

// Topic is bus.TopicAgents.
func (StateChange) Topic() string { return bus.TopicAgents }

// EventType is EventStateChanged.
func (StateChange) EventType() string { return EventStateChanged }

// Agent is a snapshot of one agent's state.
type Agent struct {
	ID              string   `json:"agent_id"`
	Name            string   `json:"name"`
	State           State    `json:"fsm_state"`
	CurrentTask     string   `json:"current_task_id"`
	Capabilities    []string `json:"-"`
	Flags           []string `json:"flags"`
	ConnectedAt     int64    `json:"connected_at"`
	LastStateChange int64    `json:"last_state_change"`
	LastHeard       int64    `json:"last_heard"`
	// Conn identifies the connection that owns this agent record.
	Conn uint64 `json:"-"`
}

// Config tunes the registry.
type Config struct {
	// AcceptTimeout is how long an agent has to accept an assigned task.
	AcceptTimeout time.Duration
	// BusyHold is how long an agent that declined a task is left out of
	// scheduling. Zero: not at all.
	BusyHold time.Duration
	// OnAcceptTimeout is called (outside any lock) when an agent did not
	// accept taskID in time.
	OnAcceptTimeout func(agentID, taskID string)
	// OnBusyOver is called when a busy hold ends and the agent is idle again.
	OnBusyOver func(agentID string)
	// OnState mirrors every state into the presence directory.
	OnState func(agentID string, s State)
	// Now stamps when agents were heard from (nil: time.Now); the hub
	// passes the scheduler's lease clock so leases are measured on one
	// clock.
	Now func() time.Time
}

// Registry holds the connected agents.
type Registry struct {
	cfg Config
	bus *bus.Bus
	now func() time.Time

	mu     sync.Mutex
	agents map[string]*agent
	idle   idleSet // the agents whose state is Idle, in order
}

type agent struct {
	Agent
	conn  uint64 // connection that owns this agent
	timer *time.Timer
	idle  *idleRef // its place in the idle set while idle
}

// New returns an empty registry.
func New(b *bus.Bus, cfg Config) *Registry {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Registry{cfg: cfg, bus: b, now: now, agents: make(map[string]*agent), idle: newIdleSet()}
}

// Connect creates the agent for a new connection, replacing any earlier
// one. An agent that still holds task (after a reconnect or a hub restart)
// starts assigned with a fresh acceptance timer; task_accepted or
// task_continue stops it. A second identify on the same connection only
// updates the name and capabilities: the agent's task, state and timer
// stay as they are.
func (r *Registry) Connect(id, name string, caps []string, conn uint64, task string) Agent {
	now := r.now().UnixMilli()
	r.mu.Lock()
	if old, ok := r.agents[id]; ok && old.conn == conn {
		old.Name, old.Capabilities, old.LastHeard = name, slices.Clone(caps), now
		if old.idle != nil {
			r.idle.add(old) // file it under its new capabilities
		}
		snap := old.snapshot()
		r.mu.Unlock()
		return snap
	}
	if old, ok := r.agents[id]; ok {
		if old.timer != nil {
			old.timer.Stop()
		}
		r.idle.remove(old)
	}
	a := &agent{conn: conn, Agent: Agent{ID: id, Name: name, State: Idle, Capabilities: slices.Clone(caps),
		Flags: []string{}, ConnectedAt: now, LastStateChange: now, LastHeard: now}}
	r.agents[id] = a
	r.idle.add(a)
	var ch *StateChange
	if task != "" {
		ch = r.moveLocked(a, Assigned, task)
		r.startTimerLocked(a, task)
	}
	snap := a.snapshot()
	r.mu.Unlock()
	r.publish(ch)
	r.mirror(id, snap.State)
	return snap
}

// Disconnect removes the agent if conn still owns it (a replaced
// connection's late close must not remove its successor). It returns the
// task the agent was holding in the state machine.
func (r *Registry) Disconnect(id string, conn uint64) (task string, removed bool) {
	r.mu.Lock()
	a, ok := r.agents[id]
	if !ok || a.conn != conn {
		r.mu.Unlock()
		return "", false
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	task = a.CurrentTask
	ch := r.moveLocked(a, Offline, "")
	delete(r.agents, id)
	r.mu.Unlock()
	r.publish(ch)
	return task, true
}

// Reserve moves an idle agent to assigned for taskID and starts its
// acceptance timer. It fails when the agent is gone or not idle, which is
// how the scheduler never hands one agent two tasks.
func (r *Registry) Reserve(id, taskID string) bool {
	r.mu.Lock()
	a, ok := r.agents[id]
	if !ok || a.State != Idle {
		r.mu.Unlock()
		return false
	}
	ch := r.moveLocked(a, Assigned, taskID)
	r.startTimerLocked(a, taskID)
	r.mu.Unlock()
	r.publish(ch)
	return true
}

// Accepted moves an assigned agent to working when taskID is its task.
func (r *Registry) Accepted(id, taskID string) bool {
	return r.transition(id, func(a *agent) (State, string, bool) {
		if a.State != Assigned || a.CurrentTask != taskID {
			return "", "", false
		}
		return Working, taskID, true
	})
}

// Continue resumes a task after task_recovering: the timer stops and the
// agent is working on taskID.
func (r *Registry) Continue(id, taskID string) bool {
	return r.transition(id, func(a *agent) (State, string, bool) {
		switch {
		case a.State == Assigned && a.CurrentTask == taskID, a.State == Idle, a.State == Working && a.CurrentTask == taskID:
			return Working, taskID, true
		}
		return "", "", false
	})
}

// Release returns the agent to idle when it held taskID (the task ended,
// was reclaimed, or was declined), optionally adding a flag.
func (r *Registry) Release(id, taskID, flag string) bool {
	return r.transition(id, func(a *agent) (State, string, bool) {
		if a.CurrentTask != taskID && !(a.State == Blocked && taskID == "") {
			return "", "", false
		}
		if flag != "" && !slices.Contains(a.Flags, flag) {
			a.Flags = append(a.Flags, flag)
		}
		return Idle, "", true
	})
}

// Busy takes the agent out of scheduling for the busy hold. With no hold
// configured it changes nothing: an agent is never left out for good.
func (r *Registry) Busy(id string) bool {
	r.mu.Lock()
	a, ok := r.agents[id]
	if !ok || r.cfg.BusyHold <= 0 {
		r.mu.Unlock()
		return ok
	}
	if !slices.Contains(a.Flags, FlagBusy) {
		a.Flags = append(a.Flags, FlagBusy)
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	conn := a.conn
	a.timer = time.AfterFunc(r.cfg.BusyHold, func() { r.busyOver(id, conn) })
	ch := r.moveLocked(a, Blocked, "")
	r.mu.Unlock()
	r.publish(ch)
	r.mirror(id, Blocked)
	return true
}

func (r *Registry) busyOver(id string, conn uint64) {
	ok := r.transition(id, func(a *agent) (State, string, bool) {
		if a.conn != conn || a.State != Blocked {
			return "", "", false
		}
		a.Flags = slices.DeleteFunc(a.Flags, func(f string) bool { return f == FlagBusy })
		return Idle, "", true
	})
	if ok && r.cfg.OnBusyOver != nil {
		r.cfg.OnBusyOver(id)
	}
}

// Heard records traffic from the agent (pings, progress): its lease on
// the task it holds is extended.
func (r *Registry) Heard(id string) {
	now := r.now().UnixMilli()
	r.mu.Lock()
	if a, ok := r.agents[id]; ok {
		a.LastHeard = now
	}
	r.mu.Unlock()
}

// Get returns one agent.
func (r *Registry) Get(id string) (Agent, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.agents[id]
	if !ok {
		return Agent{}, false
	}
	return a.snapshot(), true
}

// List returns every agent sorted by id.
func (r *Registry) List() []Agent {
	r.mu.Lock()
	out := make([]Agent, 0, len(r.agents))
	for _, a := range r.agents {
		out = append(out, a.snapshot())
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Idle returns the idle agents, longest idle first (in the order they
// became idle), so work spreads evenly.
func (r *Registry) Idle() []Agent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Agent, 0, r.idle.all.Len())
	for e := r.idle.all.Front(); e != nil; e = e.Next() {
		out = append(out, e.Value.(*agent).snapshot())
	}
	return out
}

// Counts returns the number of agents per state.
func (r *Registry) Counts() map[State]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[State]int{Idle: 0, Assigned: 0, Working: 0, Blocked: 0}
	for _, a := range r.agents {
		out[a.State]++
	}
	return out
}

// Stop cancels every timer (at shutdown).
func (r *Registry) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.agents {
		if a.timer != nil {
			a.timer.Stop()
		}
	}
}

// transition applies decide under the lock; decide returns the new state
// and task, or false to leave the agent alone.
func (r *Registry) transition(id string, decide func(*agent) (State, string, bool)) bool {
	r.mu.Lock()
	a, ok := r.agents[id]
	if !ok {
		r.mu.Unlock()
		return false
	}
	to, task, ok := decide(a)
	if !ok {
		r.mu.Unlock()
		return false
	}
	if a.timer != nil && to != Assigned {
		a.timer.Stop()
		a.timer = nil
	}
	ch := r.moveLocked(a, to, task)
	st := a.State
	r.mu.Unlock()
	r.publish(ch)
	r.mirror(id, st)
	return true
}

func (r *Registry) moveLocked(a *agent, to State, task string) *StateChange {
	from := a.State
	a.State, a.CurrentTask = to, task
	a.LastStateChange = r.now().UnixMilli()
	if to == Idle {
		r.idle.add(a) // at the back, also when it was idle already
	} else if from == Idle {
		r.idle.remove(a)
	}
	return &StateChange{AgentID: a.ID, From: from, To: to, TaskID: task, Flags: slices.Clone(a.Flags)}
}

func (r *Registry) startTimerLocked(a *agent, task string) {
	if a.timer != nil {
		a.timer.Stop()
	}
	if r.cfg.AcceptTimeout <= 0 {
		return
	}
	id, conn := a.ID, a.conn
	a.timer = time.AfterFunc(r.cfg.AcceptTimeout, func() {
		r.mu.Lock()
		cur, ok := r.agents[id]
		fire := ok && cur.conn == conn && cur.State == Assigned && cur.CurrentTask == task
		r.mu.Unlock()
		if fire && r.cfg.OnAcceptTimeout != nil {
			r.cfg.OnAcceptTimeout(id, task)
		}
	})
}

func (r *Registry) publish(ch *StateChange) {
	if ch == nil || r.bus == nil {
		return
	}
	bus.Publish(r.bus, *ch)
}

func (r *Registry) mirror(id string, s State) {
	if r.cfg.OnState != nil {
		r.cfg.OnState(id, s)
	}
}

func (a *agent) snapshot() Agent {
	cp := a.Agent
	cp.Conn = a.conn
	cp.Capabilities = slices.Clone(a.Capabilities)
	cp.Flags = slices.Clone(a.Flags)
	return cp
}
