package dashboard

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/agentcom/agentcom/internal/tasks"
)

// Snapshot is the whole dashboard state (WS snapshot.data and GET
// /api/dashboard/state). The first fields are the original's, in its
// shape; the rest are additions.
type Snapshot struct {
	UptimeMs          int64             `json:"uptime_ms"`
	Timestamp         int64             `json:"timestamp"`
	Health            Health            `json:"health"`
	Agents            []agentView       `json:"agents"`
	Queue             queueView         `json:"queue"`
	DeadLetterTasks   []deadLetterView  `json:"dead_letter_tasks"`
	RecentCompletions []completion      `json:"recent_completions"`
	Throughput        throughput        `json:"throughput"`
	DetsHealth        json.RawMessage   `json:"dets_health"` // null when unavailable
	CompactionHistory []json.RawMessage `json:"compaction_history"`

	QueuedTasks    []queuedView     `json:"queued_tasks"`
	RunningTasks   []runningView    `json:"running_tasks"`
	RecentFailures []failure        `json:"recent_failures"`
	Series         series           `json:"series"`
	Storage        storagePanel     `json:"storage"`
	Alerts         []map[string]any `json:"alerts"`
	// AlertPanel is the alerter's view: active alerts with their
	// acknowledgements, and recent cleared ones.
	AlertPanel alertsView `json:"alert_panel"`

	// Workflows: what is paused, the tasks waiting for dependencies or
	// a run_at time (oldest first, bounded like the queue list), and the
	// periodic schedules.
	Paused       tasks.Paused     `json:"paused"`
	PendingTasks []pendingView    `json:"pending_tasks"`
	Schedules    []tasks.Schedule `json:"schedules"`
}

type pendingView struct {
	ID          string   `json:"id"`
	Description string   `json:"description"`
	Status      string   `json:"status"` // waiting or scheduled
	Lane        string   `json:"lane"`
	RunAt       int64    `json:"run_at,omitempty"`
	DependsOn   []string `json:"depends_on,omitempty"`
	Schedule    string   `json:"schedule,omitempty"`
	CreatedAt   int64    `json:"created_at"`
}

type agentView struct {
	AgentID         string              `json:"agent_id"`
	Name            string              `json:"name"`
	FSMState        string              `json:"fsm_state"`
	CurrentTaskID   *string             `json:"current_task_id"`
	Capabilities    []map[string]string `json:"capabilities"`
	ConnectedAt     int64               `json:"connected_at"`
	LastStateChange int64               `json:"last_state_change"`
	LastSeen        int64               `json:"last_seen"`
	Status          string              `json:"status"`
	Flags           []string            `json:"flags"`
	CurrentTask     string              `json:"current_task_description,omitempty"`
}

type queueView struct {
	// ByStatus counts the task_queue table per status (queued, assigned
	// and completed are always present).
	ByStatus map[string]int `json:"by_status"`
	// ByPriority counts queued tasks per lane "0".."3". (The original
	// counted every status here, though the page labels it queue depth.)
	ByPriority map[string]int `json:"by_priority"`
	DeadLetter int            `json:"dead_letter"`
	ByLane     map[string]int `json:"by_lane"` // the same, keyed urgent/high/normal/low
	Queued     int            `json:"queued"`
	Running    int            `json:"running"`
}

type queuedView struct {
	ID                 string   `json:"id"`
	Description        string   `json:"description"`
	Priority           int      `json:"priority"`
	Lane               string   `json:"lane"`
	SubmittedBy        string   `json:"submitted_by"`
	CreatedAt          int64    `json:"created_at"`
	NotBefore          int64    `json:"not_before,omitempty"`
	RetryCount         int      `json:"retry_count"`
	NeededCapabilities []string `json:"needed_capabilities"`
	TargetAgent        *string  `json:"target_agent"`
	PR                 any      `json:"pr,omitempty"`
	Paused             bool     `json:"paused,omitempty"` // held by a paused lane or capability
}

type runningView struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Priority    int    `json:"priority"`
	AgentID     string `json:"agent_id"`
	AssignedAt  int64  `json:"assigned_at"`
	AgeMs       int64  `json:"age_ms"`
	Accepted    bool   `json:"accepted"`
	Generation  int64  `json:"generation"`
	UpdatedAt   int64  `json:"updated_at"`
}

type throughput struct {
	CompletedLastHour int   `json:"completed_last_hour"`
	AvgCompletionMs   int64 `json:"avg_completion_ms"`
	TotalTokensHour   int64 `json:"total_tokens_hour"`
	FailedLastHour    int   `json:"failed_last_hour"`
}

// series holds one value per minute for the last hour, oldest first; the
// last element is the current minute. A queue depth is null for minutes
// before the hub started.
type series struct {
	BucketMs   int64  `json:"bucket_ms"`
	End        int64  `json:"end"` // start of the current minute
	Completed  []int  `json:"completed"`
	Failed     []int  `json:"failed"`
	QueueDepth []*int `json:"queue_depth"`
}

type storagePanel struct {
	Available      bool             `json:"available"`
	Error          string           `json:"error,omitempty"`
	UpdatedAt      int64            `json:"updated_at"`
	Events         []map[string]any `json:"events"` // backups, failures, recoveries, degraded, drills: newest first
	DegradedTables []string         `json:"degraded_tables"`
}

func (a *Aggregator) snapshot() Snapshot {
	now := a.now()
	nowMs := now.UnixMilli()
	agentList := a.agents.List()
	pres := map[string]int{}
	presList := a.pres.List()
	for i, p := range presList {
		pres[p.AgentID] = i
	}
	stats := a.queue.Stats()
	lanes := a.queue.LaneCounts()
	queued := a.queue.Queued(a.cfg.MaxListed)
	assigned := a.queue.Assigned()
	dl, dlTotal := a.deadLetters()

	s := Snapshot{Timestamp: nowMs, UptimeMs: nowMs - a.started.UnixMilli()}

	descs := map[string]string{}
	sort.Slice(assigned, func(i, j int) bool { return assignedAt(assigned[i]) < assignedAt(assigned[j]) })
	s.RunningTasks = make([]runningView, 0, min(len(assigned), a.cfg.MaxListed))
	for _, t := range assigned {
		descs[t.ID] = t.Description
		if len(s.RunningTasks) >= a.cfg.MaxListed {
			continue
		}
		at := assignedAt(t)
		accepted := len(t.Attempts) > 0 && t.Attempts[len(t.Attempts)-1].AcceptedAt > 0
		s.RunningTasks = append(s.RunningTasks, runningView{ID: t.ID, Description: t.Description, Priority: t.Priority,
			AgentID: t.Holder(), AssignedAt: at, AgeMs: max(nowMs-at, 0), Accepted: accepted, Generation: t.Generation,
			UpdatedAt: t.UpdatedAt})
	}

	s.Agents = make([]agentView, 0, len(agentList))
	for _, ag := range agentList {
		v := agentView{AgentID: ag.ID, Name: ag.Name, FSMState: string(ag.State), CurrentTaskID: nullable(ag.CurrentTask),
			ConnectedAt: ag.ConnectedAt, LastStateChange: ag.LastStateChange, LastSeen: ag.LastHeard,
			Flags: nonNil(ag.Flags), CurrentTask: clip(descs[ag.CurrentTask], 200)}
		caps := ag.Capabilities
		if i, ok := pres[ag.ID]; ok {
			p := presList[i]
			v.Status = p.Status
			v.LastSeen = max(v.LastSeen, p.LastSeen)
			if len(caps) == 0 {
				caps = p.Capabilities
			}
			if v.Name == "" {
				v.Name = p.Name
			}
		}
		if v.Name == "" {
			v.Name = ag.ID
		}
		v.Capabilities = make([]map[string]string, len(caps))
		for i, c := range caps {
			v.Capabilities[i] = map[string]string{"name": c}
		}
		s.Agents = append(s.Agents, v)
	}

	s.Queue = queueView{ByStatus: map[string]int{"queued": 0, "assigned": 0, "completed": 0}, ByPriority: map[string]int{},
		ByLane: map[string]int{}, DeadLetter: stats.DeadLetter, Running: len(assigned)}
	for k, v := range stats.ByStatus {
		s.Queue.ByStatus[k] = v
	}
	for p, c := range lanes {
		s.Queue.ByPriority[strconv.Itoa(p)] = c
		s.Queue.ByLane[tasks.LaneName(p)] = c
		s.Queue.Queued += c
	}
	if dlTotal > s.Queue.DeadLetter {
		s.Queue.DeadLetter = dlTotal
	}
	s.QueuedTasks = make([]queuedView, 0, len(queued))
	for _, t := range queued {
		v := queuedView{ID: t.ID, Description: t.Description, Priority: t.Priority, Lane: tasks.LaneName(t.Priority),
			SubmittedBy: t.SubmittedBy, CreatedAt: t.CreatedAt, NotBefore: t.NotBefore, RetryCount: t.RetryCount,
			NeededCapabilities: nonNil(t.NeededCapabilities), TargetAgent: t.TargetAgent, Paused: t.Paused}
		if pr, ok := t.Metadata["pr_url"]; ok {
			v.PR = pr
		}
		s.QueuedTasks = append(s.QueuedTasks, v)
	}
	s.DeadLetterTasks = nonNil(dl)
	s.Paused = a.queue.PausedState()
	s.Schedules = a.queue.Schedules()
	s.PendingTasks = []pendingView{}
	for _, st := range []tasks.Status{tasks.StatusWaiting, tasks.StatusScheduled} {
		ts, _, err := a.queue.Search(tasks.Filter{Status: st, Limit: a.cfg.MaxListed})
		if err != nil {
			continue // memory only: cannot fail
		}
		for _, t := range ts {
			s.PendingTasks = append(s.PendingTasks, pendingView{ID: t.ID, Description: clip(t.Description, 200), Status: string(t.Status),
				Lane: tasks.LaneName(t.Priority), RunAt: t.RunAt, DependsOn: t.DependsOn, Schedule: t.Schedule, CreatedAt: t.CreatedAt})
		}
	}
	s.AlertPanel = a.alertsNow()

	a.mu.Lock()
	defer a.mu.Unlock()
	// The depth just read is a sample too: the chart's current minute is
	// never behind what the page shows beside it.
	a.bucketAt(nowMs).noteDepth(s.Queue.Queued, lanes)
	s.RecentCompletions = a.completions.items()
	s.RecentFailures = a.failures.items()
	s.Series, s.Throughput = a.seriesLocked(nowMs)
	s.Alerts = a.alerts.items()

	sv := a.storageView
	s.Storage = storagePanel{Available: sv.raw != nil, Error: sv.err, UpdatedAt: sv.updatedAt,
		Events: a.storageEvents.items(), DegradedTables: a.degradedLocked(sv)}
	if sv.raw != nil {
		s.DetsHealth = sv.raw
	} else {
		s.DetsHealth = json.RawMessage("null")
	}
	// The coordinator's own history wins when it keeps one; otherwise the
	// history gathered from compaction events.
	if sv.parsed.CompactionHistory != nil {
		s.CompactionHistory = sv.parsed.CompactionHistory
	} else {
		for _, e := range a.compactions.items() {
			b, err := json.Marshal(e)
			if err == nil {
				s.CompactionHistory = append(s.CompactionHistory, b)
			}
		}
	}
	s.CompactionHistory = nonNil(s.CompactionHistory)
	s.Health = a.healthLocked(nowMs, agentList, assigned, sv)
	return s
}

// seriesLocked reads the minute buckets of the last hour. A queue depth
// is null for a minute without a sample (the hub was down then) and
// carries the last sample forward while the hub runs.
func (a *Aggregator) seriesLocked(nowMs int64) (series, throughput) {
	cur := nowMs / minuteMs
	startMinute := a.started.UnixMilli() / minuteMs
	s := series{BucketMs: minuteMs, End: cur * minuteMs, Completed: make([]int, SeriesMinutes), Failed: make([]int, SeriesMinutes),
		QueueDepth: make([]*int, SeriesMinutes)}
	var tp throughput
	var durSum int64
	var lastDepth *int
	for i := range SeriesMinutes {
		minute := cur - int64(SeriesMinutes-1-i)
		if b, ok := a.hist[minute]; ok {
			s.Completed[i], s.Failed[i] = b.completed, b.failed
			tp.CompletedLastHour += b.completed
			tp.FailedLastHour += b.failed
			tp.TotalTokensHour += b.tokens
			durSum += b.durSum
			if b.depthSet {
				d := b.depth
				lastDepth = &d
				s.QueueDepth[i] = &d
			}
		}
		if s.QueueDepth[i] == nil && minute >= startMinute && lastDepth != nil {
			d := *lastDepth
			s.QueueDepth[i] = &d
		}
	}
	if tp.CompletedLastHour > 0 {
		tp.AvgCompletionMs = durSum / int64(tp.CompletedLastHour)
	}
	return s, tp
}

func (a *Aggregator) degradedLocked(sv storageView) []string {
	set := map[string]bool{}
	for t := range a.degraded {
		set[t] = true
	}
	for _, t := range sv.parsed.DegradedTables {
		set[t] = true
	}
	for _, t := range sv.parsed.Tables {
		if t.Status == "degraded" {
			set[t.Table] = true
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func assignedAt(t *tasks.Task) int64 {
	if t.AssignedAt != nil {
		return *t.AssignedAt
	}
	return t.UpdatedAt
}
