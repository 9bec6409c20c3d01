// Package alerts watches the hub for conditions an operator must hear
// about: a queue that keeps growing, a high failure rate, a stuck task,
// work waiting with no idle agent, an old backup, a degraded table. Rules
// and thresholds live in the config table and can be changed through the
// API without a restart; a change takes effect at the next check. An alert
// is raised once when its condition starts and cleared when it ends; both
// are published on the bus for the dashboard and push notifications.
package alerts

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Event types published on bus.TopicAlerts.
const (
	EventRaised  = "alert_raised"
	EventCleared = "alert_cleared"
	// EventAcknowledged: an operator acknowledged an active alert.
	EventAcknowledged = "alert_acknowledged"
)

// Raised, Cleared and Acknowledged are the alert events; each is the
// alert as it is after the change (encoded as the Alert itself).
type (
	Raised       struct{ Alert }
	Cleared      struct{ Alert }
	Acknowledged struct{ Alert }
)

// Topic is bus.TopicAlerts.
func (Raised) Topic() string { return bus.TopicAlerts }

// EventType is EventRaised.
func (Raised) EventType() string { return EventRaised }

// Topic is bus.TopicAlerts.
func (Cleared) Topic() string { return bus.TopicAlerts }

// EventType is EventCleared.
func (Cleared) EventType() string { return EventCleared }

// Topic is bus.TopicAlerts.
func (Acknowledged) Topic() string { return bus.TopicAlerts }

// EventType is EventAcknowledged.
func (Acknowledged) EventType() string { return EventAcknowledged }

// ErrNotActive: the rule has no active alert to acknowledge.
var ErrNotActive = errors.New("alert_not_active")

// Rule ids.
const (
	RuleQueueGrowing  = "queue_growing"
	RuleFailureRate   = "failure_rate"
	RuleStuckTask     = "stuck_task"
	RuleNoIdleAgent   = "no_idle_agent"
	RuleBackupAge     = "backup_age"
	RuleDegradedTable = "degraded_table"
)

// SettingsKey is where the rules are kept in the config table.
const SettingsKey = "alert_rules"

// Rule is one rule's switch and thresholds. Which fields matter depends on
// the rule: ForSeconds (queue_growing, stuck_task, no_idle_agent),
// Percent and MinTasks and WindowSeconds (failure_rate), MaxAgeSeconds
// (backup_age).
type Rule struct {
	Enabled       bool    `json:"enabled"`
	Severity      string  `json:"severity"` // warning or critical
	ForSeconds    int64   `json:"for_seconds,omitempty"`
	Percent       float64 `json:"percent,omitempty"`
	MinTasks      int     `json:"min_tasks,omitempty"`
	WindowSeconds int64   `json:"window_seconds,omitempty"`
	MaxAgeSeconds int64   `json:"max_age_seconds,omitempty"`
}

// Config is every rule plus the notification cooldown.
type Config struct {
	Rules map[string]Rule `json:"rules"`
	// CooldownSeconds: the same alert is not pushed again within this
	// long after it was last pushed.
	CooldownSeconds int64 `json:"cooldown_seconds"`
}

// DefaultConfig holds the documented defaults.
func DefaultConfig() Config {
	return Config{CooldownSeconds: 900, Rules: map[string]Rule{
		RuleQueueGrowing:  {Enabled: true, Severity: "warning", ForSeconds: 600},
		RuleFailureRate:   {Enabled: true, Severity: "critical", Percent: 50, MinTasks: 4, WindowSeconds: 3600},
		RuleStuckTask:     {Enabled: true, Severity: "warning", ForSeconds: 1800},
		RuleNoIdleAgent:   {Enabled: true, Severity: "warning", ForSeconds: 300},
		RuleBackupAge:     {Enabled: true, Severity: "warning", MaxAgeSeconds: 48 * 3600},
		RuleDegradedTable: {Enabled: true, Severity: "critical"},
	}}
}

// Bounds of the thresholds, so that every derived duration stays far from
// overflow: for_seconds, window_seconds and cooldown_seconds up to 30
// days, max_age_seconds up to 365 days, min_tasks up to 1,000,000,
// percent 0 to 100.
const (
	MaxSpanSeconds = 30 * 86_400
	MaxAgeSeconds  = 365 * 86_400
	MaxMinTasks    = 1_000_000
)

// Validate checks a configuration.
func (c Config) Validate() error {
	for id, r := range c.Rules {
		if _, ok := DefaultConfig().Rules[id]; !ok {
			return fmt.Errorf("unknown rule %q", id)
		}
		if r.Severity != "warning" && r.Severity != "critical" {
			return fmt.Errorf("rule %s: severity must be warning or critical", id)
		}
		if r.ForSeconds < 0 || r.WindowSeconds < 0 || r.MaxAgeSeconds < 0 || r.MinTasks < 0 || r.Percent < 0 || r.Percent > 100 {
			return fmt.Errorf("rule %s: thresholds must be >= 0 (percent <= 100)", id)
		}
		if r.ForSeconds > MaxSpanSeconds || r.WindowSeconds > MaxSpanSeconds {
			return fmt.Errorf("rule %s: for_seconds and window_seconds must be <= %d", id, MaxSpanSeconds)
		}
		if r.MaxAgeSeconds > MaxAgeSeconds || r.MinTasks > MaxMinTasks {
			return fmt.Errorf("rule %s: max_age_seconds must be <= %d and min_tasks <= %d", id, MaxAgeSeconds, MaxMinTasks)
		}
	}
	if c.CooldownSeconds < 0 || c.CooldownSeconds > MaxSpanSeconds {
		return fmt.Errorf("cooldown_seconds must be between 0 and %d", MaxSpanSeconds)
	}
	return nil
}

// merged fills rules missing from c with the defaults.
func (c Config) merged() Config {
	out := DefaultConfig()
	if c.Rules != nil {
		for id, r := range c.Rules {
			out.Rules[id] = r
		}
	}
	if c.CooldownSeconds > 0 || c.Rules != nil {
		out.CooldownSeconds = c.CooldownSeconds
	}
	return out
}

// Alert is one raised (or past) alert.
type Alert struct {
	Rule      string `json:"rule"`
	Severity  string `json:"severity"`
	Message   string `json:"message"`
	RaisedAt  int64  `json:"raised_at"`
	ClearedAt int64  `json:"cleared_at,omitempty"`
	// Notify says whether this raise should be pushed (outside the
	// cooldown of the same rule).
	Notify bool `json:"notify"`
	// AckedAt and AckedBy: an operator acknowledged the alert (it stays
	// active until its condition ends; the dashboard's health no longer
	// counts it). A new raise of the rule starts unacknowledged.
	AckedAt int64  `json:"acked_at,omitempty"`
	AckedBy string `json:"acked_by,omitempty"`
	AckNote string `json:"ack_note,omitempty"`
}

// maxAckNote bounds an acknowledgement's note.
const maxAckNote = 500

// Acknowledge marks the active alert of rule as seen by by. Acknowledging
// twice keeps the first acknowledgement.
func (m *Manager) Acknowledge(rule, by, note string) (Alert, error) {
	if len(note) > maxAckNote {
		note = note[:maxAckNote]
	}
	m.mu.Lock()
	a, ok := m.active[rule]
	if !ok {
		m.mu.Unlock()
		return Alert{}, ErrNotActive
	}
	if a.AckedAt == 0 {
		a.AckedAt, a.AckedBy, a.AckNote = m.now().UnixMilli(), by, note
	}
	out := *a
	m.mu.Unlock()
	bus.PublishAt(m.bus, out.AckedAt, Acknowledged{out})
	return out, nil
}

// Settings stores the configuration.
type Settings interface {
	Get(key string, dst any) (bool, error)
	Put(key string, v any) error
}

// Queue is what the rules read of the task queue.
type Queue interface {
	LaneCounts() [tasks.Lanes]int
	Assigned() []*tasks.Task
}

// Agents counts idle agents.
type Agents interface {
	IdleCount() int
}

// Storage reports storage protection; nil disables the storage rules.
type Storage interface {
	LastBackup() time.Time // zero: never
	DegradedTables() []string
}

// Manager evaluates the rules.
type Manager struct {
	settings Settings
	queue    Queue
	agents   Agents
	storage  Storage
	bus      *bus.Bus
	now      func() time.Time
	start    time.Time

	mu        sync.Mutex
	active    map[string]*Alert
	history   []Alert
	samples   []sample // queue depth over time
	outcomes  []outcome
	lastPush  map[string]time.Time
	idleSince time.Time // when "work waits, nobody idle" began
}

type sample struct {
	at    time.Time
	depth int
}

type outcome struct {
	at     time.Time
	failed bool
}

const historyCap = 50

// New returns a manager; storage may be nil.
func New(s Settings, q Queue, a Agents, st Storage, b *bus.Bus) *Manager {
	return &Manager{settings: s, queue: q, agents: a, storage: st, bus: b, now: time.Now, start: time.Now(),
		active: map[string]*Alert{}, lastPush: map[string]time.Time{}}
}

// SetStorage attaches the storage view once it exists.
func (m *Manager) SetStorage(st Storage) {
	m.mu.Lock()
	m.storage = st
	m.mu.Unlock()
}

// Config returns the rules in force.
func (m *Manager) Config() Config {
	var c Config
	if ok, err := m.settings.Get(SettingsKey, &c); !ok || err != nil {
		return DefaultConfig()
	}
	return c.merged()
}

// SetConfig validates and stores new rules; the next check uses them.
func (m *Manager) SetConfig(c Config) (Config, error) {
	c = c.merged()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	if err := m.settings.Put(SettingsKey, c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Run checks every interval and counts task outcomes until ctx ends.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	sub := bus.SubscribeTo[tasks.EventData](m.bus, 4096)
	defer sub.Close()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-sub.C:
			switch e.V.Type {
			case tasks.EventCompleted, tasks.EventFailed:
				m.mu.Lock()
				m.outcomes = append(m.outcomes, outcome{at: time.UnixMilli(e.Time), failed: e.V.Type == tasks.EventFailed})
				m.mu.Unlock()
			}
		case <-t.C:
			m.Check()
		}
	}
}

// Active returns the raised alerts, sorted by rule.
func (m *Manager) Active() []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Alert, 0, len(m.active))
	for _, a := range m.active {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rule < out[j].Rule })
	return out
}

// History returns past alerts, newest first.
func (m *Manager) History() []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Alert(nil), m.history...)
}

// Check evaluates every enabled rule once.
func (m *Manager) Check() {
	cfg := m.Config()
	now := m.now()
	conds := map[string]string{} // rule -> message, for conditions that hold
	lanes := m.queue.LaneCounts()
	depth := 0
	for _, n := range lanes {
		depth += n
	}
	m.mu.Lock()
	m.samples = append(m.samples, sample{at: now, depth: depth})
	storage := m.storage
	m.mu.Unlock()

	if r := cfg.Rules[RuleQueueGrowing]; r.Enabled {
		if msg, ok := m.queueGrowing(now, time.Duration(r.ForSeconds)*time.Second); ok {
			conds[RuleQueueGrowing] = msg
		}
	}
	if r := cfg.Rules[RuleFailureRate]; r.Enabled {
		if msg, ok := m.failureRate(now, r); ok {
			conds[RuleFailureRate] = msg
		}
	}
	if r := cfg.Rules[RuleStuckTask]; r.Enabled {
		var stuck []string
		cut := now.Add(-time.Duration(r.ForSeconds) * time.Second).UnixMilli()
		for _, t := range m.queue.Assigned() {
			if t.UpdatedAt < cut {
				stuck = append(stuck, t.ID)
			}
		}
		if len(stuck) > 0 {
			sort.Strings(stuck)
			conds[RuleStuckTask] = fmt.Sprintf("Stuck tasks (no progress for %ds): %s", r.ForSeconds, strings.Join(stuck, ", "))
		}
	}
	if r := cfg.Rules[RuleNoIdleAgent]; r.Enabled {
		m.mu.Lock()
		if depth > 0 && m.agents.IdleCount() == 0 {
			if m.idleSince.IsZero() {
				m.idleSince = now
			}
			if now.Sub(m.idleSince) >= time.Duration(r.ForSeconds)*time.Second {
				conds[RuleNoIdleAgent] = fmt.Sprintf("%d task(s) waiting with no idle agent for %s", depth, now.Sub(m.idleSince).Round(time.Second))
			}
		} else {
			m.idleSince = time.Time{}
		}
		m.mu.Unlock()
	}
	if storage != nil {
		if r := cfg.Rules[RuleBackupAge]; r.Enabled {
			last := storage.LastBackup()
			max := time.Duration(r.MaxAgeSeconds) * time.Second
			switch {
			case last.IsZero() && now.Sub(m.start) > max:
				conds[RuleBackupAge] = "No successful backup since the hub started"
			case !last.IsZero() && now.Sub(last) > max:
				conds[RuleBackupAge] = fmt.Sprintf("Last successful backup %s ago", now.Sub(last).Round(time.Minute))
			}
		}
		if r := cfg.Rules[RuleDegradedTable]; r.Enabled {
			if d := storage.DegradedTables(); len(d) > 0 {
				conds[RuleDegradedTable] = "Tables in degraded mode (data lost, no good backup): " + strings.Join(d, ", ")
			}
		}
	}
	m.apply(cfg, conds, now)
}

func (m *Manager) queueGrowing(now time.Time, span time.Duration) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Keep samples covering a little more than the span.
	cut := now.Add(-span - span/2 - time.Minute)
	i := sort.Search(len(m.samples), func(i int) bool { return !m.samples[i].at.Before(cut) })
	m.samples = m.samples[i:]
	// Growing: every sample within the span is above the one before it,
	// and the samples do cover the span.
	start := now.Add(-span)
	first := -1
	for j, s := range m.samples {
		if !s.at.Before(start) {
			first = j
			break
		}
	}
	if first <= 0 {
		return "", false
	}
	win := m.samples[first-1:]
	if len(win) < 3 {
		return "", false
	}
	for j := 1; j < len(win); j++ {
		if win[j].depth <= win[j-1].depth {
			return "", false
		}
	}
	return fmt.Sprintf("Queue growing for %s: %d -> %d", span, win[0].depth, win[len(win)-1].depth), true
}

func (m *Manager) failureRate(now time.Time, r Rule) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cut := now.Add(-time.Duration(r.WindowSeconds) * time.Second)
	i := sort.Search(len(m.outcomes), func(i int) bool { return !m.outcomes[i].at.Before(cut) })
	m.outcomes = m.outcomes[i:]
	failed := 0
	for _, o := range m.outcomes {
		if o.failed {
			failed++
		}
	}
	total := len(m.outcomes)
	if total == 0 || total < r.MinTasks {
		return "", false
	}
	pct := 100 * float64(failed) / float64(total)
	if pct <= r.Percent {
		return "", false
	}
	return fmt.Sprintf("High failure rate: %d/%d tasks failed (%.0f%%) in the last %ds", failed, total, pct, r.WindowSeconds), true
}

// apply raises new alerts and clears ended ones.
func (m *Manager) apply(cfg Config, conds map[string]string, now time.Time) {
	var events []bus.Payload
	m.mu.Lock()
	for rule, msg := range conds {
		if a, ok := m.active[rule]; ok {
			a.Message = msg
			continue
		}
		cool := time.Duration(cfg.CooldownSeconds) * time.Second
		notify := m.lastPush[rule].IsZero() || now.Sub(m.lastPush[rule]) >= cool
		if notify {
			m.lastPush[rule] = now
		}
		a := &Alert{Rule: rule, Severity: cfg.Rules[rule].Severity, Message: msg, RaisedAt: now.UnixMilli(), Notify: notify}
		m.active[rule] = a
		events = append(events, Raised{*a})
	}
	for rule, a := range m.active {
		if _, holds := conds[rule]; holds {
			continue
		}
		a.ClearedAt = now.UnixMilli()
		delete(m.active, rule)
		m.history = append([]Alert{*a}, m.history...)
		if len(m.history) > historyCap {
			m.history = m.history[:historyCap]
		}
		events = append(events, Cleared{*a})
	}
	m.mu.Unlock()
	for _, e := range events {
		bus.PublishAt(m.bus, now.UnixMilli(), e)
	}
}
