package messaging

import (
	"sort"
	"sync"
	"time"
)

// Analytics counts traffic per agent in UTC hour buckets over the last 24
// hours. It lives in memory and starts empty at every restart.
//
// It is bounded: at most MaxTrackedAgents agents (a new one beyond that
// replaces the offline agent idle the longest, or is not tracked when all
// are connected), and each agent keeps only the buckets of the last 24
// hours, pruned when that agent is touched, so recording a message costs
// the same however many agents there are.
type Analytics struct {
	now func() time.Time
	max int

	mu     sync.Mutex
	agents map[string]*agentStats
}

const (
	hourMs        = int64(time.Hour / time.Millisecond)
	activeWindow  = 5 * time.Minute
	bucketsPerDay = 24
	// MaxTrackedAgents bounds the agents analytics keeps figures for.
	MaxTrackedAgents = 10_000
	// AnalyticsDefaultLimit and AnalyticsMaxLimit page
	// GET /api/analytics/agents.
	AnalyticsDefaultLimit = 1000
	AnalyticsMaxLimit     = 1000
)

type agentStats struct {
	sent, received, connTime map[int64]int64 // by bucket start
	connectedAt              int64           // 0 when not connected
	lastActive, lastSeen     int64
	totalConnections         int
}

// AgentAnalytics is one agent's figures.
type AgentAnalytics struct {
	AgentID             string `json:"agent_id"`
	Connected           bool   `json:"connected"`
	IdleMs              *int64 `json:"idle_ms"`
	Status              string `json:"status"`
	MessagesSent24h     int64  `json:"messages_sent_24h"`
	MessagesReceived24h int64  `json:"messages_received_24h"`
	MessagesSentHour    int64  `json:"messages_sent_this_hour"`
	ConnectionTime24hMs int64  `json:"connection_time_24h_ms"`
	LastActive          *int64 `json:"last_active"`
	LastSeen            *int64 `json:"last_seen"`
	TotalConnections    int    `json:"total_connections"`
}

// Summary is the fleet-wide view.
type Summary struct {
	TotalAgents      int   `json:"total_agents"`
	AgentsConnected  int   `json:"agents_connected"`
	AgentsActive     int   `json:"agents_active"`
	AgentsIdle       int   `json:"agents_idle"`
	AgentsOffline    int   `json:"agents_offline"`
	TotalMessages24h int64 `json:"total_messages_24h"`
	Timestamp        int64 `json:"timestamp"`
}

// HourBucket is one hour of one agent's traffic.
type HourBucket struct {
	Bucket   int64  `json:"bucket"`
	Hour     string `json:"hour"`
	Sent     int64  `json:"sent"`
	Received int64  `json:"received"`
}

// NewAnalytics returns empty analytics tracking at most MaxTrackedAgents.
func NewAnalytics() *Analytics { return NewAnalyticsLimited(MaxTrackedAgents) }

// NewAnalyticsLimited returns empty analytics tracking at most max agents.
func NewAnalyticsLimited(max int) *Analytics {
	return &Analytics{now: time.Now, max: max, agents: make(map[string]*agentStats)}
}

// agent returns id's figures, creating them when there is room, pruned to
// the last 24 hours. It returns nil when id cannot be tracked. The caller
// holds a.mu.
func (a *Analytics) agent(id string, now int64) *agentStats {
	s, ok := a.agents[id]
	if !ok {
		if len(a.agents) >= a.max && !a.evictOne() {
			return nil
		}
		s = &agentStats{sent: map[int64]int64{}, received: map[int64]int64{}, connTime: map[int64]int64{}}
		a.agents[id] = s
	}
	s.prune(bucketOf(now))
	return s
}

// evictOne drops the offline agent idle the longest, reporting whether
// there was one. It walks every entry, but runs only when the table is
// full and a new agent appears.
func (a *Analytics) evictOne() bool {
	victim, oldest := "", int64(0)
	for id, s := range a.agents {
		if s.connectedAt != 0 {
			continue
		}
		last := max(s.lastActive, s.lastSeen)
		if victim == "" || last < oldest {
			victim, oldest = id, last
		}
	}
	if victim == "" {
		return false
	}
	delete(a.agents, victim)
	return true
}

func bucketOf(ms int64) int64 { return ms / hourMs * hourMs }

// Reset forgets every figure.
func (a *Analytics) Reset() {
	a.mu.Lock()
	a.agents = make(map[string]*agentStats)
	a.mu.Unlock()
}

// RecordMessage counts one message from -> to ("" for a broadcast).
func (a *Analytics) RecordMessage(from, to string) {
	now := a.now().UnixMilli()
	b := bucketOf(now)
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.agent(from, now); s != nil {
		s.sent[b]++
		s.lastActive = now
	}
	if to != "" {
		if s := a.agent(to, now); s != nil {
			s.received[b]++
		}
	}
}

// RecordConnect notes a successful identify.
func (a *Analytics) RecordConnect(agent string) {
	now := a.now().UnixMilli()
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.agent(agent, now)
	if s == nil {
		return
	}
	s.connectedAt = now
	s.lastActive = now
	s.totalConnections++
}

// RecordDisconnect notes a closed connection.
func (a *Analytics) RecordDisconnect(agent string) {
	now := a.now().UnixMilli()
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.agent(agent, now)
	if s == nil {
		return
	}
	if s.connectedAt != 0 {
		s.connTime[bucketOf(now)] += now - s.connectedAt
		s.connectedAt = 0
	}
	s.lastSeen = now
}

// prune drops one agent's buckets older than 24 hours; caller holds a.mu.
func (s *agentStats) prune(current int64) {
	oldest := current - (bucketsPerDay-1)*hourMs
	for _, m := range []map[int64]int64{s.sent, s.received, s.connTime} {
		for b := range m {
			if b < oldest {
				delete(m, b)
			}
		}
	}
}

// Agents returns every known agent's figures, sorted by id.
func (a *Analytics) Agents() []AgentAnalytics {
	now := a.now().UnixMilli()
	cur := bucketOf(now)
	oldest := cur - (bucketsPerDay-1)*hourMs
	sum := func(m map[int64]int64) int64 {
		var t int64
		for b, v := range m {
			if b >= oldest {
				t += v
			}
		}
		return t
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]AgentAnalytics, 0, len(a.agents))
	for id, s := range a.agents {
		aa := AgentAnalytics{AgentID: id, Connected: s.connectedAt != 0,
			MessagesSent24h: sum(s.sent), MessagesReceived24h: sum(s.received),
			MessagesSentHour: s.sent[cur], ConnectionTime24hMs: sum(s.connTime),
			TotalConnections: s.totalConnections, Status: "offline"}
		if s.lastActive != 0 {
			idle := now - s.lastActive
			aa.IdleMs = &idle
			la := s.lastActive
			aa.LastActive = &la
		}
		if s.lastSeen != 0 {
			ls := s.lastSeen
			aa.LastSeen = &ls
		}
		if aa.Connected {
			aa.Status = "idle"
			if aa.IdleMs != nil && *aa.IdleMs < activeWindow.Milliseconds() {
				aa.Status = "active"
			}
		}
		out = append(out, aa)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AgentID < out[j].AgentID })
	return out
}

// Summary returns fleet-wide figures.
func (a *Analytics) Summary() Summary {
	s := Summary{Timestamp: a.now().UnixMilli()}
	for _, aa := range a.Agents() {
		s.TotalAgents++
		s.TotalMessages24h += aa.MessagesSent24h
		switch aa.Status {
		case "active":
			s.AgentsActive++
			s.AgentsConnected++
		case "idle":
			s.AgentsIdle++
			s.AgentsConnected++
		default:
			s.AgentsOffline++
		}
	}
	return s
}

// Hourly returns agent's last 24 hour buckets, oldest first.
func (a *Analytics) Hourly(agent string) []HourBucket {
	cur := bucketOf(a.now().UnixMilli())
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.agents[agent]
	out := make([]HourBucket, 0, bucketsPerDay)
	for i := bucketsPerDay - 1; i >= 0; i-- {
		b := cur - int64(i)*hourMs
		hb := HourBucket{Bucket: b, Hour: time.UnixMilli(b).UTC().Format("15:04")}
		if s != nil {
			hb.Sent, hb.Received = s.sent[b], s.received[b]
		}
		out = append(out, hb)
	}
	return out
}
