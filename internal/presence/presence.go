// Package presence is the directory of connected agents: who is here,
// what they can do, what they say they are doing, and when they were last
// heard from. It lives in memory; a restart starts it empty.
package presence

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
)

// Event types published on bus.TopicAgents.
const (
	EventJoined        = "agent_joined"
	EventLeft          = "agent_left"
	EventStatusChanged = "status_changed"
)

// Entry is one connected agent.
type Entry struct {
	AgentID      string   `json:"agent_id"`
	Name         string   `json:"name"`
	Status       string   `json:"status"`
	Capabilities []string `json:"capabilities"`
	ConnectedAt  int64    `json:"connected_at"`
	LastSeen     int64    `json:"last_seen"`
	// State is the agent's scheduling state (idle, assigned, working...),
	// kept here so directory listings show it without asking elsewhere.
	State string `json:"fsm_state"`
}

// Joined is published when an agent registers (EventJoined).
type Joined struct{ Entry }

// StatusChanged is published when an agent changes its free-text status
// (EventStatusChanged); Entry is the agent after the change.
type StatusChanged struct{ Entry }

// Left is published when an agent is removed (EventLeft).
type Left struct {
	AgentID string `json:"agent_id"`
}

// Topic is bus.TopicAgents.
func (Joined) Topic() string { return bus.TopicAgents }

// EventType is EventJoined.
func (Joined) EventType() string { return EventJoined }

// Topic is bus.TopicAgents.
func (StatusChanged) Topic() string { return bus.TopicAgents }

// EventType is EventStatusChanged.
func (StatusChanged) EventType() string { return EventStatusChanged }

// Topic is bus.TopicAgents.
func (Left) Topic() string { return bus.TopicAgents }

// EventType is EventLeft.
func (Left) EventType() string { return EventLeft }

// Directory holds the connected agents.
type Directory struct {
	bus *bus.Bus
	now func() time.Time

	mu      sync.RWMutex
	entries map[string]*Entry
}

// New returns an empty directory publishing on b.
func New(b *bus.Bus) *Directory {
	return &Directory{bus: b, now: time.Now, entries: make(map[string]*Entry)}
}

// Register adds or replaces an agent's entry and announces it.
func (d *Directory) Register(e Entry) Entry {
	now := d.now().UnixMilli()
	e.ConnectedAt, e.LastSeen = now, now
	if e.Name == "" {
		e.Name = e.AgentID
	}
	if e.Status == "" {
		e.Status = "connected"
	}
	if e.Capabilities == nil {
		e.Capabilities = []string{}
	}
	d.mu.Lock()
	if old, ok := d.entries[e.AgentID]; ok && e.State == "" {
		e.State = old.State
	}
	cp := e
	d.entries[e.AgentID] = &cp
	d.mu.Unlock()
	bus.PublishAt(d.bus, now, Joined{e})
	return e
}

// Unregister removes an agent and announces it; it reports whether the
// agent was present.
func (d *Directory) Unregister(agentID string) bool {
	d.mu.Lock()
	_, ok := d.entries[agentID]
	delete(d.entries, agentID)
	d.mu.Unlock()
	if ok {
		bus.Publish(d.bus, Left{AgentID: agentID})
	}
	return ok
}

// SetStatus changes an agent's free-text status and announces it.
func (d *Directory) SetStatus(agentID, status string) (Entry, bool) {
	d.mu.Lock()
	e, ok := d.entries[agentID]
	if ok {
		e.Status = status
	}
	var cp Entry
	if ok {
		cp = *e
	}
	d.mu.Unlock()
	if ok {
		bus.Publish(d.bus, StatusChanged{cp})
	}
	return cp, ok
}

// SetState records an agent's scheduling state.
func (d *Directory) SetState(agentID, state string) {
	d.mu.Lock()
	if e, ok := d.entries[agentID]; ok {
		e.State = state
	}
	d.mu.Unlock()
}

// Touch records that the agent was heard from now.
func (d *Directory) Touch(agentID string) {
	now := d.now().UnixMilli()
	d.mu.Lock()
	if e, ok := d.entries[agentID]; ok {
		e.LastSeen = now
	}
	d.mu.Unlock()
}

// Get returns one entry.
func (d *Directory) Get(agentID string) (Entry, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.entries[agentID]
	if !ok {
		return Entry{}, false
	}
	return clone(e), true
}

// List returns every entry, sorted by agent id.
func (d *Directory) List() []Entry {
	d.mu.RLock()
	out := make([]Entry, 0, len(d.entries))
	for _, e := range d.entries {
		out = append(out, clone(e))
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].AgentID < out[j].AgentID })
	return out
}

// Count is the number of connected agents.
func (d *Directory) Count() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.entries)
}

// Stale returns the agents not heard from since before cutoff.
func (d *Directory) Stale(cutoff time.Time) []string {
	c := cutoff.UnixMilli()
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []string
	for id, e := range d.entries {
		if e.LastSeen < c {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func clone(e *Entry) Entry {
	cp := *e
	cp.Capabilities = slices.Clone(e.Capabilities)
	return cp
}
