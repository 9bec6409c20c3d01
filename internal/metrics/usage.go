package metrics

import (
	"sort"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
)

// Usage sums: what agents reported spending (tokens, cost), in total, per
// agent, per hour and per UTC day. They are fed by task completions and
// failures that carry usage, and seeded at start from the tasks' stored
// usage (attributed to the hour the task last changed).
const (
	usageHours     = 30 * 24 // hourly buckets kept
	usageMaxAgents = 10000   // agents tracked by name; the rest count as "other"
	usageSeriesLen = 48      // hours listed in the summary
	usageDaysLen   = 30      // days listed in the summary
)

// UsageSummary is the "usage" part of /api/metrics.
type UsageSummary struct {
	Total   protocol.Usage            `json:"total"`
	ByAgent map[string]protocol.Usage `json:"by_agent"`
	// Hourly lists the last 48 hours that had usage, oldest first; Start
	// is the hour's start (Unix ms).
	Hourly []UsageBucket `json:"hourly"`
	// Daily lists the last 30 UTC days that had usage, oldest first.
	Daily []UsageBucket `json:"daily"`
}

// UsageBucket is the usage of one hour or day.
type UsageBucket struct {
	Start int64 `json:"start"`
	protocol.Usage
}

type usageSums struct {
	total   protocol.Usage
	byAgent map[string]protocol.Usage
	hourly  map[int64]protocol.Usage // hour start (Unix ms) -> sum
}

func newUsageSums() usageSums {
	return usageSums{byAgent: map[string]protocol.Usage{}, hourly: map[int64]protocol.Usage{}}
}

// add records u spent by agent at t. Caller holds m.mu.
func (s *usageSums) add(agent string, at time.Time, u protocol.Usage) {
	u = u.Normalize()
	if u.IsZero() {
		return
	}
	s.total = s.total.Add(u)
	if agent == "" {
		agent = "unknown"
	}
	if _, ok := s.byAgent[agent]; !ok && len(s.byAgent) >= usageMaxAgents {
		agent = "other"
	}
	s.byAgent[agent] = s.byAgent[agent].Add(u)
	h := at.UTC().Truncate(time.Hour).UnixMilli()
	s.hourly[h] = s.hourly[h].Add(u)
	if len(s.hourly) > usageHours {
		cut := at.UTC().Truncate(time.Hour).Add(-usageHours * time.Hour).UnixMilli()
		for k := range s.hourly {
			if k <= cut {
				delete(s.hourly, k)
			}
		}
	}
}

func (s *usageSums) summary() UsageSummary {
	out := UsageSummary{Total: s.total, ByAgent: make(map[string]protocol.Usage, len(s.byAgent)),
		Hourly: []UsageBucket{}, Daily: []UsageBucket{}}
	for a, u := range s.byAgent {
		out.ByAgent[a] = u
	}
	hours := make([]int64, 0, len(s.hourly))
	for h := range s.hourly {
		hours = append(hours, h)
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i] < hours[j] })
	days := map[int64]protocol.Usage{}
	var dayKeys []int64
	for _, h := range hours {
		d := time.UnixMilli(h).UTC().Truncate(24 * time.Hour).UnixMilli()
		if _, ok := days[d]; !ok {
			dayKeys = append(dayKeys, d)
		}
		days[d] = days[d].Add(s.hourly[h])
	}
	for _, h := range hours[max(len(hours)-usageSeriesLen, 0):] {
		out.Hourly = append(out.Hourly, UsageBucket{Start: h, Usage: s.hourly[h]})
	}
	for _, d := range dayKeys[max(len(dayKeys)-usageDaysLen, 0):] {
		out.Daily = append(out.Daily, UsageBucket{Start: d, Usage: days[d]})
	}
	return out
}

// AddUsage records usage an agent reported at t (seeding at start).
func (m *Metrics) AddUsage(agent string, at time.Time, u protocol.Usage) {
	m.mu.Lock()
	m.usage.add(agent, at, u)
	m.mu.Unlock()
	u = u.Normalize()
	if agent == "" {
		agent = "unknown"
	}
	m.tokens.WithLabelValues(agent, "input").Add(float64(u.InputTokens))
	m.tokens.WithLabelValues(agent, "output").Add(float64(u.OutputTokens))
	m.tokens.WithLabelValues(agent, "total").Add(float64(u.TotalTokens))
	m.cost.WithLabelValues(agent).Add(u.CostUSD)
}
