package dashboard

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/alerts"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Health statuses.
const (
	HealthOK       = "ok"
	HealthWarning  = "warning"
	HealthCritical = "critical"
)

// Health is the snapshot's health: the original's status and condition
// texts, plus each condition's level for the page.
type Health struct {
	Status     string      `json:"status"`
	Conditions []string    `json:"conditions"`
	Details    []Condition `json:"details"`
}

// Condition is one reason behind the health status.
type Condition struct {
	Key   string `json:"key"` // agent_offline, queue_growing, failure_rate, stuck_tasks, backup, fragmentation, ...
	Level string `json:"level"`
	Text  string `json:"text"`
}

// Health computes the health now (the notifier polls it).
func (a *Aggregator) Health() Health {
	agentList := a.agents.List()
	assigned := a.queue.Assigned()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.healthLocked(a.now().UnixMilli(), agentList, assigned, a.storageView)
}

// healthLocked evaluates the conditions of the original (B3.1) in its
// order and with its texts, fixed where it was wrong, then the storage
// conditions it lacked:
//
//  1. Agent offline: agents that left within OfflineGrace and did not
//     come back (the original never cleared them).
//  2. Queue growing: three queued counts QueueSample apart, strictly rising.
//  3. High failure rate (critical): failed attempts over finished ones in
//     the last hour above 50 %, counted once each (the original counted
//     every completion and failure twice).
//  4. Stuck tasks: assigned, not updated for StuckAfter, and the holder
//     not heard from for as long (a heartbeating agent's task is not stuck).
//  5. Backup never run (after BackupGrace) or older than BackupStale.
//  6. Fragmentation above 50 % (a real waste ratio now).
//  7. Degraded tables (critical), backup and drill failures, storage
//     health unavailable.
func (a *Aggregator) healthLocked(now int64, agentList []agents.Agent, assigned []*tasks.Task, sv storageView) Health {
	var cs []Condition
	add := func(key, level, text string) { cs = append(cs, Condition{Key: key, Level: level, Text: text}) }

	connected := map[string]agents.Agent{}
	for _, ag := range agentList {
		connected[ag.ID] = ag
	}
	var offline []string
	for id, at := range a.left {
		if now-at > a.cfg.OfflineGrace.Milliseconds() {
			delete(a.left, id) // keeps the map as small as the grace window
			continue
		}
		if _, back := connected[id]; back {
			continue
		}
		offline = append(offline, id)
	}
	if len(offline) > 0 {
		sort.Strings(offline)
		add("agent_offline", HealthWarning, "Agent offline: "+strings.Join(offline, ", "))
	}

	if q := a.queueSamples; len(q) == 3 && q[0] < q[1] && q[1] < q[2] {
		add("queue_growing", HealthWarning, fmt.Sprintf("Queue growing: %d -> %d -> %d", q[0], q[1], q[2]))
	}

	_, tp := a.seriesLocked(now)
	if total := tp.CompletedLastHour + tp.FailedLastHour; total >= a.cfg.FailureMinSample && total > 0 && tp.FailedLastHour*2 > total {
		add("failure_rate", HealthCritical, fmt.Sprintf("High failure rate: %d/%d tasks failed this hour", tp.FailedLastHour, total))
	}

	stuckMs := a.cfg.StuckAfter.Milliseconds()
	var stuck []string
	for _, t := range assigned {
		if now-t.UpdatedAt <= stuckMs {
			continue
		}
		if ag, ok := connected[t.Holder()]; ok && now-ag.LastHeard <= stuckMs {
			continue
		}
		stuck = append(stuck, t.ID)
	}
	if len(stuck) > 0 {
		sort.Strings(stuck)
		add("stuck_tasks", HealthWarning, "Stuck tasks: "+strings.Join(stuck, ", "))
	}

	if a.storage != nil {
		a.storageConditions(now, sv, add)
	}
	a.alertConditions(cs, add)

	h := Health{Status: HealthOK, Conditions: make([]string, 0, len(cs)), Details: nonNil(cs)}
	for _, c := range cs {
		h.Conditions = append(h.Conditions, c.Text)
		switch {
		case c.Level == HealthCritical:
			h.Status = HealthCritical
		case h.Status == HealthOK:
			h.Status = HealthWarning
		}
	}
	return h
}

func (a *Aggregator) storageConditions(now int64, sv storageView, add func(key, level, text string)) {
	if sv.raw == nil {
		add("storage_unavailable", HealthWarning, "Storage health unavailable: "+sv.err)
	} else {
		last := sv.parsed.LastBackupAt
		if last == nil {
			for _, t := range sv.parsed.Tables {
				if t.LastBackupAt != nil && (last == nil || *t.LastBackupAt > *last) {
					v := *t.LastBackupAt
					last = &v
				}
			}
		}
		switch {
		case last == nil:
			if now-a.started.UnixMilli() > a.cfg.BackupGrace.Milliseconds() {
				add("backup", HealthWarning, "Backup: never run")
			}
		case now-*last > a.cfg.BackupStale.Milliseconds():
			add("backup", HealthWarning, fmt.Sprintf("Backup stale: last backup %dh ago", (now-*last)/3600000))
		}
		var frag []string
		for _, t := range sv.parsed.Tables {
			if t.Status == "ok" && t.FragmentationRatio != nil && *t.FragmentationRatio > 0.5 {
				frag = append(frag, t.Table)
			}
		}
		if len(frag) > 0 {
			add("fragmentation", HealthWarning, "Fragmentation >50%: "+strings.Join(frag, ", "))
		}
	}
	if d := a.degradedLocked(sv); len(d) > 0 {
		add("degraded", HealthCritical, "Degraded: "+strings.Join(d, ", ")+" running empty after data loss")
	}
	if len(a.backupFailed) > 0 {
		add("backup_failed", HealthWarning, "Backup failed: "+describe(a.backupFailed))
	}
	if len(a.drillFailed) > 0 {
		add("drill_failed", HealthWarning, "Restore drill failed: "+describe(a.drillFailed))
	}
}

// alertRuleConditions maps an alert rule onto the health condition that
// already reports the same thing.
var alertRuleConditions = map[string]string{
	alerts.RuleQueueGrowing: "queue_growing", alerts.RuleFailureRate: "failure_rate", alerts.RuleStuckTask: "stuck_tasks",
	alerts.RuleBackupAge: "backup", alerts.RuleDegradedTable: "degraded",
}

// alertConditions adds the alerter's active, unacknowledged alerts that
// no condition reports yet: the header never says healthy while an alert
// nobody has acknowledged is raised.
func (a *Aggregator) alertConditions(have []Condition, add func(key, level, text string)) {
	if a.alertSrc == nil {
		return
	}
	for _, al := range a.alertSrc.Active() {
		if al.AckedAt > 0 {
			continue
		}
		if key, ok := alertRuleConditions[al.Rule]; ok && slices.ContainsFunc(have, func(c Condition) bool { return c.Key == key }) {
			continue
		}
		level := HealthWarning
		if al.Severity == HealthCritical {
			level = HealthCritical
		}
		add("alert_"+al.Rule, level, "Alert: "+al.Message)
	}
}

// describe lists "table (reason)" sorted by table.
func describe(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k
		if r := m[k]; r != "" {
			parts[i] += " (" + clip(r, 120) + ")"
		}
	}
	return strings.Join(parts, ", ")
}
