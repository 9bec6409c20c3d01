package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Bounds of the aggregator's memory.
const (
	RecentCap        = 100 // recent completions, recent failures
	TimelineCap      = 50  // entries per agent timeline
	TimelineAgents   = 500 // agents whose timeline is kept
	StorageEventsCap = 50
	CompactionCap    = 20
	AlertsCap        = 50
	SeriesMinutes    = 60 // minutes of the snapshot's series
	busBuffer        = 8192
)

// Aggregator consumes the bus and keeps the live picture the dashboard
// shows. One goroutine (Run) applies events; snapshots are built on
// demand by a single builder and shared.
type Aggregator struct {
	cfg      Config
	queue    Queue
	agents   Agents
	pres     Presence
	storage  Storage
	series   storage.SeriesStore // nil: chart history in memory only
	alertSrc AlertSource         // nil: no alerter
	log      *slog.Logger
	now      func() time.Time
	started  time.Time
	sub      *bus.Sub

	snapReq     chan chan *Encoded
	storageKick chan struct{}
	builds      atomic.Int64

	mu            sync.Mutex
	completions   ring[completion]
	failures      ring[failure]
	hist          map[int64]*bucket // minute → chart data, HistoryMinutes at most
	timelines     map[string]*timeline
	left          map[string]int64 // agent → when it left (offline condition)
	queueSamples  []int
	storageView   storageView
	storageEvents ring[map[string]any]
	compactions   ring[map[string]any]
	degraded      map[string]int64  // table → since
	backupFailed  map[string]string // table → reason, until a later backup succeeds
	drillFailed   map[string]string // table → reason, until a later drill succeeds
	alerts        ring[map[string]any]
	dlTasks       []deadLetterView
	dlTotal       int
	dlDirty       bool
	pending       []json.RawMessage // encoded events since the last flush
	droppedSeen   int64

	cmu     sync.Mutex
	clients map[*client]struct{}
	closed  bool
}

// Encoded is one built snapshot: the bare object (GET /api/dashboard/state)
// and the socket frame around it, shared by every caller.
type Encoded struct {
	Data  []byte
	Frame []byte
}

type completion struct {
	TaskID      string `json:"task_id"`
	AgentID     string `json:"agent_id"`
	Description string `json:"description"`
	DurationMs  int64  `json:"duration_ms"`
	TokensUsed  int64  `json:"tokens_used"`
	CompletedAt int64  `json:"completed_at"`
}

type failure struct {
	TaskID      string `json:"task_id"`
	AgentID     string `json:"agent_id"`
	Description string `json:"description"`
	DurationMs  int64  `json:"duration_ms"`
	Error       string `json:"error"`
	// Outcome is retried, dead_letter or expired (deadline passed).
	Outcome  string `json:"outcome"`
	FailedAt int64  `json:"failed_at"`
}

type timeline struct {
	entries ring[timelineEntry]
	touched int64
}

type timelineEntry struct {
	Timestamp int64  `json:"timestamp"`
	Kind      string `json:"kind"` // state, task, message, presence
	Event     string `json:"event"`
	TaskID    string `json:"task_id,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

type deadLetterView struct {
	ID          string  `json:"id"`
	Description string  `json:"description"`
	LastError   *string `json:"last_error"`
	RetryCount  int     `json:"retry_count"`
	Priority    int     `json:"priority"`
	CreatedAt   int64   `json:"created_at"`
	UpdatedAt   int64   `json:"updated_at"`
}

// NewAggregator subscribes to the bus at once, so events published before
// Run starts are not lost.
func NewAggregator(cfg Config, d Deps) *Aggregator {
	cfg = cfg.withDefaults()
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Aggregator{
		cfg: cfg, queue: d.Queue, agents: d.Agents, pres: d.Presence, storage: d.Storage, series: d.Series, alertSrc: d.Alerts,
		hist: map[int64]*bucket{},
		log:  log, now: time.Now, started: time.Now(),
		sub:         d.Bus.Subscribe(busBuffer, bus.TopicTasks, bus.TopicAgents, bus.TopicMessages, bus.TopicStorage, bus.TopicAlerts),
		snapReq:     make(chan chan *Encoded),
		storageKick: make(chan struct{}, 1),
		completions: newRing[completion](RecentCap), failures: newRing[failure](RecentCap),
		timelines: map[string]*timeline{}, left: map[string]int64{},
		storageEvents: newRing[map[string]any](StorageEventsCap), compactions: newRing[map[string]any](CompactionCap),
		degraded: map[string]int64{}, backupFailed: map[string]string{}, drillFailed: map[string]string{},
		alerts: newRing[map[string]any](AlertsCap), dlDirty: true,
		clients: map[*client]struct{}{},
	}
	a.storageView = storageView{err: "not loaded yet"}
	if a.storage == nil {
		a.storageView.err = "storage coordinator not configured"
	}
	if err := a.loadHistory(); err != nil {
		log.Error("load chart history", "event", "chart_history_load_failed", "err", err)
	}
	return a
}

// Run applies bus events, flushes event batches, builds snapshots and
// refreshes the storage view until ctx ends. It then closes every socket.
func (a *Aggregator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { a.snapshotLoop(ctx) })
	wg.Go(func() { a.storageLoop(ctx) })
	flush := time.NewTicker(a.cfg.FlushInterval)
	depth := time.NewTicker(a.cfg.DepthSample)
	growth := time.NewTicker(a.cfg.QueueSample)
	persist := time.NewTicker(a.cfg.HistoryPersist)
	defer func() {
		flush.Stop()
		depth.Stop()
		growth.Stop()
		persist.Stop()
		a.sub.Close()
		wg.Wait()
	}()
	a.seedRecent()
	a.sampleDepth(false)
	for {
		select {
		case <-ctx.Done():
			a.closeClients()
			a.savePoints()
			return
		case <-persist.C:
			a.savePoints()
		case e, ok := <-a.sub.C:
			if !ok {
				return
			}
			a.Apply(e)
		case <-flush.C:
			a.Flush()
		case <-depth.C:
			a.sampleDepth(false)
		case <-growth.C:
			a.sampleDepth(true)
		}
	}
}

// seedRecent fills the recent completions and failures from the tables,
// newest last, with what ended before the aggregator subscribed (later
// endings arrive as events): a restart keeps the lists. Failures that
// were retried left no record of their own and are not restored.
func (a *Aggregator) seedRecent() {
	cut := a.started.UnixMilli()
	load := func(st tasks.Status) []*tasks.Task {
		ts, _, err := a.queue.Search(tasks.Filter{Status: st, Newest: true, CreatedTo: cut, Limit: RecentCap})
		if err != nil {
			a.log.Error("seed recent tasks", "event", "recent_seed_failed", "err", err)
			return nil
		}
		return ts
	}
	done, dead := load(tasks.StatusCompleted), load(tasks.StatusDeadLetter)
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(done) - 1; i >= 0; i-- {
		t := done[i]
		if t.UpdatedAt >= cut {
			continue
		}
		at := lastAttempt(t)
		var tok int64
		if t.TokensUsed != nil {
			tok = *t.TokensUsed
		}
		a.completions.push(completion{TaskID: t.ID, AgentID: at.AgentID, Description: clip(t.Description, 200),
			DurationMs: max(at.EndedAt-at.AssignedAt, 0), TokensUsed: tok, CompletedAt: t.UpdatedAt})
	}
	for i := len(dead) - 1; i >= 0; i-- {
		t := dead[i]
		if t.UpdatedAt >= cut {
			continue
		}
		at := lastAttempt(t)
		errText := ""
		if t.LastError != nil {
			errText = fmt.Sprint(t.LastError)
		}
		a.failures.push(failure{TaskID: t.ID, AgentID: at.AgentID, Description: clip(t.Description, 200),
			DurationMs: max(at.EndedAt-at.AssignedAt, 0), Error: clip(errText, 500), Outcome: "dead_letter", FailedAt: t.UpdatedAt})
	}
}

func lastAttempt(t *tasks.Task) tasks.Attempt {
	if len(t.Attempts) == 0 {
		return tasks.Attempt{}
	}
	return t.Attempts[len(t.Attempts)-1]
}

// Apply folds one bus event into the state and queues it for the
// browsers. Run calls it for every event; tests call it directly.
func (a *Aggregator) Apply(e bus.Event) {
	if e.Time == 0 {
		e.Time = a.now().UnixMilli()
	}
	var out any
	switch e.Topic {
	case bus.TopicTasks:
		out = a.applyTask(e)
	case bus.TopicAgents:
		out = a.applyAgent(e)
	case bus.TopicMessages:
		a.applyMessage(e)
	case bus.TopicStorage:
		out = a.applyStorage(e)
	case bus.TopicAlerts:
		m := toMap(e.Data)
		m["alert"] = e.Type
		m["timestamp"] = e.Time
		a.mu.Lock()
		a.alerts.push(m)
		a.mu.Unlock()
		ev := map[string]any{"type": "alert"}
		for k, v := range m {
			ev[k] = v
		}
		ev["type"] = "alert"
		out = ev
	}
	if out == nil {
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		a.log.Error("encode dashboard event", "event", "encode_failed", "type", e.Type, "err", err)
		return
	}
	a.mu.Lock()
	a.pending = append(a.pending, b)
	a.mu.Unlock()
}

// taskEvent is a task_event of the events frame: the original's fields
// first, then additions.
type taskEvent struct {
	Type        string  `json:"type"`
	TaskID      string  `json:"task_id"`
	Event       string  `json:"event"`
	AgentID     *string `json:"agent_id"`
	Timestamp   int64   `json:"timestamp"`
	Status      string  `json:"status,omitempty"`
	Priority    int     `json:"priority"`
	Description string  `json:"description,omitempty"`
	Reason      string  `json:"reason,omitempty"`
	RunMs       int64   `json:"run_ms,omitempty"`
	WaitMs      int64   `json:"wait_ms,omitempty"`
	Generation  int64   `json:"generation,omitempty"`
}

// workflowEvent is a pause or schedule change in the events frame; the
// page refreshes its snapshot on one.
type workflowEvent struct {
	Type      string               `json:"type"`
	Event     string               `json:"event"` // lane_paused, lane_resumed, schedule_changed
	Timestamp int64                `json:"timestamp"`
	Pause     *tasks.PauseEvent    `json:"pause,omitempty"`
	Schedule  *tasks.ScheduleEvent `json:"schedule,omitempty"`
}

func taskData(data any) (tasks.EventData, bool) {
	switch d := data.(type) {
	case tasks.EventData:
		return d, true
	case *tasks.EventData:
		if d != nil {
			return *d, true
		}
	}
	return tasks.EventData{}, false
}

func (a *Aggregator) applyTask(e bus.Event) any {
	switch w := e.Data.(type) {
	case tasks.PauseEvent:
		return workflowEvent{Type: "workflow_event", Event: e.Type, Timestamp: e.Time, Pause: &w}
	case tasks.ScheduleEvent:
		return workflowEvent{Type: "workflow_event", Event: e.Type, Timestamp: e.Time, Schedule: &w}
	}
	d, ok := taskData(e.Data)
	if !ok {
		return nil
	}
	// A failure's error text is on the task, not in the event.
	var errText string
	if e.Type == tasks.EventFailed {
		if t, err := a.queue.Get(d.TaskID); err == nil && t.LastError != nil {
			errText = fmt.Sprint(t.LastError)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch e.Type {
	case tasks.EventCompleted:
		// Completions are counted from the queue's event only: the
		// original also counted the socket's task_complete, twice.
		var tok int64
		if d.TokensUsed != nil {
			tok = *d.TokensUsed
		}
		a.completions.push(completion{TaskID: d.TaskID, AgentID: d.AgentID, Description: d.Description,
			DurationMs: d.RunMs, TokensUsed: tok, CompletedAt: e.Time})
		b := a.bucketAt(e.Time)
		b.completed++
		b.durSum += d.RunMs
		b.tokens += tok
		if d.RunMs > 0 {
			b.runs.add(d.RunMs)
		}
	case tasks.EventFailed:
		outcome := "retried"
		if d.Status == tasks.StatusDeadLetter {
			outcome = "dead_letter"
		}
		a.failures.push(failure{TaskID: d.TaskID, AgentID: d.AgentID, Description: d.Description,
			DurationMs: d.RunMs, Error: errText, Outcome: outcome, FailedAt: e.Time})
		b := a.bucketAt(e.Time)
		b.failed++
		if d.RunMs > 0 {
			b.runs.add(d.RunMs)
		}
	case tasks.EventAssigned:
		if d.WaitMs > 0 {
			a.bucketAt(e.Time).waits.add(d.WaitMs)
		}
	case tasks.EventDeadLetter:
		a.dlDirty = true
		if d.Reason != "" {
			// A deadline expiry: no task_failed came before it.
			a.failures.push(failure{TaskID: d.TaskID, AgentID: d.AgentID, Description: d.Description,
				Error: d.Reason, Outcome: "expired", FailedAt: e.Time})
			a.bucketAt(e.Time).failed++
		}
	case tasks.EventRetried:
		a.dlDirty = true
	}
	if d.AgentID != "" {
		detail := d.Description
		if d.Reason != "" {
			detail = d.Reason
		}
		if errText != "" {
			detail = errText
		}
		a.timelineLocked(d.AgentID, timelineEntry{Timestamp: e.Time, Kind: "task", Event: e.Type, TaskID: d.TaskID, Detail: clip(detail, 200)})
	}
	ev := taskEvent{Type: "task_event", TaskID: d.TaskID, Event: e.Type, Timestamp: e.Time, Status: string(d.Status),
		Priority: d.Priority, Description: clip(d.Description, 200), Reason: d.Reason, RunMs: d.RunMs, WaitMs: d.WaitMs,
		Generation: d.Generation}
	if d.AgentID != "" {
		id := d.AgentID
		ev.AgentID = &id
	}
	return ev
}

func (a *Aggregator) applyAgent(e bus.Event) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch e.Type {
	case presence.EventJoined:
		p, ok := e.Data.(presence.Entry)
		if !ok {
			return nil
		}
		delete(a.left, p.AgentID)
		a.timelineLocked(p.AgentID, timelineEntry{Timestamp: e.Time, Kind: "presence", Event: "connected",
			Detail: "capabilities: " + joinOr(p.Capabilities, "none")})
		return map[string]any{"type": "agent_joined", "agent_id": p.AgentID, "name": p.Name,
			"capabilities": nonNil(p.Capabilities), "timestamp": e.Time}
	case presence.EventLeft:
		id := str(asMap(e.Data), "agent_id")
		if id == "" {
			return nil
		}
		a.left[id] = e.Time
		a.timelineLocked(id, timelineEntry{Timestamp: e.Time, Kind: "presence", Event: "disconnected"})
		return map[string]any{"type": "agent_left", "agent_id": id, "timestamp": e.Time}
	case presence.EventStatusChanged:
		p, ok := e.Data.(presence.Entry)
		if !ok {
			return nil
		}
		a.timelineLocked(p.AgentID, timelineEntry{Timestamp: e.Time, Kind: "presence", Event: "status", Detail: clip(p.Status, 200)})
		return map[string]any{"type": "status_changed", "agent_id": p.AgentID, "status": p.Status, "timestamp": e.Time}
	case agents.EventStateChanged:
		ch, ok := e.Data.(agents.StateChange)
		if !ok {
			return nil
		}
		a.timelineLocked(ch.AgentID, timelineEntry{Timestamp: e.Time, Kind: "state",
			Event: string(ch.From) + " → " + string(ch.To), TaskID: ch.TaskID})
		return map[string]any{"type": "agent_state_changed", "agent_id": ch.AgentID, "from": ch.From, "to": ch.To,
			"task_id": nullable(ch.TaskID), "flags": nonNil(ch.Flags), "timestamp": e.Time}
	}
	return nil
}

// applyMessage records messages in the agents' timelines only: message
// traffic can be heavy and the page does not need it live.
func (a *Aggregator) applyMessage(e bus.Event) {
	m := asMap(e.Data)
	from, id := str(m, "from"), str(m, "id")
	a.mu.Lock()
	defer a.mu.Unlock()
	switch e.Type {
	case messaging.EventMessageRouted:
		to := str(m, "to")
		if str(m, "kind") == "broadcast" || to == "" || to == "null" {
			a.timelineLocked(from, timelineEntry{Timestamp: e.Time, Kind: "message", Event: "broadcast sent", Detail: id})
			return
		}
		// The detail says what kind of message and what became of it; the
		// id finds it in the messages view.
		detail := cmp.Or(str(m, "type"), messaging.DefaultType) + " message, " + str(m, "outcome") + ", id " + id
		a.timelineLocked(from, timelineEntry{Timestamp: e.Time, Kind: "message", Event: "sent to " + to, Detail: detail})
		a.timelineLocked(to, timelineEntry{Timestamp: e.Time, Kind: "message", Event: "received from " + from, Detail: detail})
	case messaging.EventChannelPublished:
		a.timelineLocked(from, timelineEntry{Timestamp: e.Time, Kind: "message", Event: "posted to #" + str(m, "channel"), Detail: id})
	}
}

func (a *Aggregator) applyStorage(e bus.Event) any {
	m := toMap(e.Data)
	if _, ok := m["timestamp"]; !ok {
		m["timestamp"] = e.Time
	}
	tables := tablesOf(m)
	a.mu.Lock()
	switch e.Type {
	case resilience.EventCompactionComplete, resilience.EventCompactionFailed:
		// One history entry per run: a failed run publishes both events,
		// the second only adds its failures.
		if e.Type == resilience.EventCompactionComplete || len(list(m, "results")) > 0 {
			entry := map[string]any{"timestamp": m["timestamp"], "results": normalizeResults(list(m, "results"))}
			if t := str(m, "trigger"); t != "" {
				entry["trigger"] = t
			}
			a.compactions.push(entry)
		}
		if e.Type == resilience.EventCompactionComplete {
			m["results"] = normalizeResults(list(m, "results"))
		} else {
			m["failures"] = normalizeFailures(m)
		}
	case resilience.EventBackupComplete:
		for _, t := range stringsOf(m["tables_backed_up"]) {
			delete(a.backupFailed, t)
		}
		if len(stringsOf(m["tables_backed_up"])) == 0 && len(tables) == 0 {
			clear(a.backupFailed)
		}
	case resilience.EventBackupFailed:
		reason := str(m, "reason")
		if len(tables) == 0 {
			tables = []string{"all"}
		}
		for _, t := range tables {
			a.backupFailed[t] = reason
		}
	case resilience.EventDrillComplete:
		for _, t := range tables {
			delete(a.drillFailed, t)
		}
		if len(tables) == 0 {
			clear(a.drillFailed)
		}
	case resilience.EventDrillFailed:
		if len(tables) == 0 {
			tables = []string{"all"}
		}
		for _, t := range tables {
			a.drillFailed[t] = str(m, "reason")
		}
	case resilience.EventDegradedMode:
		for _, t := range tables {
			a.degraded[t] = num(m, "timestamp")
		}
	case resilience.EventRecoveryComplete:
		a.dlDirty = true
		if str(m, "status") != "degraded" {
			for _, t := range tables {
				delete(a.degraded, t)
			}
		}
	}
	switch e.Type {
	case resilience.EventCompactionComplete, resilience.EventDrillComplete:
		// Routine successes stay out of the event log; history shows them.
	default:
		log := map[string]any{"type": e.Type}
		for k, v := range m {
			if k != "results" {
				log[k] = v
			}
		}
		a.storageEvents.push(log)
	}
	a.mu.Unlock()
	a.KickStorage()
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	out["type"] = e.Type
	return out
}

// normalizeResults keeps every key of a compaction result and makes the
// original's fields dependable: a table, a status and duration_ms (0 if
// absent); reasons are strings.
func normalizeResults(rs []map[string]any) []map[string]any {
	out := make([]map[string]any, 0, len(rs))
	for _, r := range rs {
		c := map[string]any{}
		for k, v := range r {
			c[k] = v
		}
		c["table"] = str(r, "table")
		c["status"] = str(r, "status")
		c["duration_ms"] = num(r, "duration_ms")
		if _, ok := r["reason"]; ok {
			c["reason"] = str(r, "reason")
		}
		out = append(out, c)
	}
	return out
}

// normalizeFailures is the failures list of compaction_failed: given, or
// the error results.
func normalizeFailures(m map[string]any) []map[string]any {
	src := list(m, "failures")
	if len(src) == 0 {
		for _, r := range list(m, "results") {
			if s := str(r, "status"); s == "error" || s == "failed" {
				src = append(src, r)
			}
		}
	}
	out := make([]map[string]any, 0, len(src))
	for _, f := range src {
		reason := str(f, "reason")
		if reason == "" {
			reason = "unknown"
		}
		out = append(out, map[string]any{"table": str(f, "table"), "reason": reason})
	}
	return out
}

// Flush sends the events gathered since the last flush to every socket as
// one frame, encoded once.
func (a *Aggregator) Flush() {
	if frame := a.eventsFrame(); frame != nil {
		a.broadcast(frame)
	}
}

// eventsFrame takes the events gathered since the last call and encodes
// them as one events frame; nil when there is nothing to send.
func (a *Aggregator) eventsFrame() []byte {
	a.mu.Lock()
	pending := a.pending
	a.pending = nil
	a.mu.Unlock()
	if d := a.sub.Dropped(); d > a.droppedSeen {
		a.log.Warn("dashboard fell behind the bus", "event", "bus_dropped", "count", d-a.droppedSeen)
		a.droppedSeen = d
		pending = append(pending, json.RawMessage(`{"type":"resync"}`))
	}
	if len(pending) == 0 {
		return nil
	}
	var buf bytes.Buffer
	buf.WriteString(`{"type":"events","data":[`)
	for i, p := range pending {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(p)
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

// sampleDepth records the queue depth for the chart and, every
// QueueSample, for "Queue growing".
func (a *Aggregator) sampleDepth(growth bool) {
	lanes := a.queue.LaneCounts()
	n := 0
	for _, c := range lanes {
		n += c
	}
	connected := len(a.pres.List())
	now := a.now().UnixMilli()
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.bucketAt(now)
	b.noteDepth(n, lanes)
	b.agents = max(b.agents, connected)
	if growth {
		a.queueSamples = append(a.queueSamples, n)
		if len(a.queueSamples) > 3 {
			a.queueSamples = a.queueSamples[len(a.queueSamples)-3:]
		}
	}
}

// noteDepth keeps the minute's largest queued count and its lanes.
func (b *bucket) noteDepth(n int, lanes [tasks.Lanes]int) {
	if !b.depthSet || n > b.depth {
		b.depth, b.lanes = n, lanes
	}
	b.depthSet = true
}

// savePoints persists the chart history, logging a failure (the next
// tick tries again).
func (a *Aggregator) savePoints() {
	if err := a.persistHistory(); err != nil {
		a.log.Warn("store chart history", "event", "chart_history_store_failed", "err", err)
	}
}

// timelineLocked appends to an agent's timeline, evicting the least
// recently active agent's timeline beyond TimelineAgents.
func (a *Aggregator) timelineLocked(agent string, e timelineEntry) {
	if agent == "" {
		return
	}
	tl, ok := a.timelines[agent]
	if !ok {
		if len(a.timelines) >= TimelineAgents {
			var oldest string
			var at int64
			for id, t := range a.timelines {
				if oldest == "" || t.touched < at {
					oldest, at = id, t.touched
				}
			}
			delete(a.timelines, oldest)
		}
		tl = &timeline{entries: newRing[timelineEntry](TimelineCap)}
		a.timelines[agent] = tl
	}
	tl.touched = e.Timestamp
	tl.entries.push(e)
}

// Timeline returns an agent's recent timeline, newest first.
func (a *Aggregator) Timeline(agent string) []timelineEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	if tl, ok := a.timelines[agent]; ok {
		return tl.entries.items()
	}
	return []timelineEntry{}
}

// KickStorage asks for a storage view refresh soon; it never blocks.
func (a *Aggregator) KickStorage() {
	select {
	case a.storageKick <- struct{}{}:
	default:
	}
}

func (a *Aggregator) storageLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.StorageRefresh)
	defer t.Stop()
	for {
		a.RefreshStorage(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.storageKick:
		}
	}
}

// RefreshStorage reloads the storage view now. Snapshots never wait for
// the coordinator: they use the last view.
func (a *Aggregator) RefreshStorage(ctx context.Context) {
	if a.storage == nil {
		return
	}
	v := fetchStorage(ctx, a.storage, a.cfg.StorageTimeout)
	a.mu.Lock()
	a.storageView = v
	a.mu.Unlock()
}

// Snapshot returns a snapshot whose build started after the call. Callers
// arriving while one is built share the next one; builds are at least
// SnapshotInterval apart. Run must be running.
func (a *Aggregator) Snapshot(ctx context.Context) (*Encoded, error) {
	w := make(chan *Encoded, 1)
	select {
	case a.snapReq <- w:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case s := <-w:
		if s == nil {
			return nil, context.Canceled
		}
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (a *Aggregator) snapshotLoop(ctx context.Context) {
	var last time.Time
	for {
		var waiters []chan *Encoded
		select {
		case <-ctx.Done():
			return
		case w := <-a.snapReq:
			waiters = append(waiters, w)
		}
		if d := time.Until(last.Add(a.cfg.SnapshotInterval)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				for _, w := range waiters {
					w <- nil
				}
				return
			case <-t.C:
			}
		}
	drain:
		for {
			select {
			case w := <-a.snapReq:
				waiters = append(waiters, w)
			default:
				break drain
			}
		}
		last = time.Now()
		enc := a.Build()
		for _, w := range waiters {
			w <- enc
		}
	}
}

// Build builds and encodes a snapshot now (Snapshot throttles and shares
// this).
func (a *Aggregator) Build() *Encoded {
	a.builds.Add(1)
	s := a.snapshot()
	data, err := json.Marshal(s)
	if err != nil {
		// Every part is JSON-safe by construction; keep the socket alive
		// with the error rather than nothing.
		a.log.Error("encode snapshot", "event", "snapshot_failed", "err", err)
		data, _ = json.Marshal(map[string]any{"error": err.Error(), "timestamp": a.now().UnixMilli()})
	}
	frame := make([]byte, 0, len(data)+32)
	frame = append(frame, `{"type":"snapshot","data":`...)
	frame = append(frame, data...)
	frame = append(frame, '}')
	return &Encoded{Data: data, Frame: frame}
}

// Builds counts the snapshots built so far.
func (a *Aggregator) Builds() int64 { return a.builds.Load() }

// deadLetters returns the cached dead-letter list, reloading it after a
// change.
func (a *Aggregator) deadLetters() ([]deadLetterView, int) {
	a.mu.Lock()
	dirty := a.dlDirty
	a.dlDirty = false
	a.mu.Unlock()
	if dirty {
		ts, total, err := a.queue.ListDeadLetter(tasks.Filter{})
		if err != nil {
			a.log.Error("list dead letter", "event", "dead_letter_list_failed", "err", err)
			a.mu.Lock()
			a.dlDirty = true
			a.mu.Unlock()
		} else {
			// Newest failures first: the operator looks at what just broke.
			sort.SliceStable(ts, func(i, j int) bool { return ts[i].UpdatedAt > ts[j].UpdatedAt })
			views := make([]deadLetterView, 0, min(len(ts), a.cfg.MaxListed))
			for _, t := range ts[:min(len(ts), a.cfg.MaxListed)] {
				v := deadLetterView{ID: t.ID, Description: t.Description, RetryCount: t.RetryCount, Priority: t.Priority,
					CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
				if t.LastError != nil {
					s := fmt.Sprint(t.LastError)
					v.LastError = &s
				}
				views = append(views, v)
			}
			a.mu.Lock()
			a.dlTasks, a.dlTotal = views, total
			a.mu.Unlock()
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dlTasks, a.dlTotal
}

// addClient registers a socket for event frames; false once closed.
func (a *Aggregator) addClient(c *client) bool {
	a.cmu.Lock()
	defer a.cmu.Unlock()
	if a.closed {
		return false
	}
	a.clients[c] = struct{}{}
	return true
}

func (a *Aggregator) removeClient(c *client) {
	a.cmu.Lock()
	delete(a.clients, c)
	a.cmu.Unlock()
}

// Clients is the number of connected sockets.
func (a *Aggregator) Clients() int {
	a.cmu.Lock()
	defer a.cmu.Unlock()
	return len(a.clients)
}

func (a *Aggregator) broadcast(frame []byte) {
	a.cmu.Lock()
	targets := make([]*client, 0, len(a.clients))
	for c := range a.clients {
		targets = append(targets, c)
	}
	a.cmu.Unlock()
	for _, c := range targets {
		c.enqueue(frame)
	}
}

// closeClientsIf closes the sockets match selects and returns how many.
func (a *Aggregator) closeClientsIf(match func(*client) bool, code websocket.StatusCode, reason string) int {
	a.cmu.Lock()
	var targets []*client
	for c := range a.clients {
		if match(c) {
			targets = append(targets, c)
		}
	}
	a.cmu.Unlock()
	for _, c := range targets {
		c.kill(code, reason)
	}
	return len(targets)
}

func (a *Aggregator) closeClients() {
	a.cmu.Lock()
	a.closed = true
	targets := make([]*client, 0, len(a.clients))
	for c := range a.clients {
		targets = append(targets, c)
	}
	a.cmu.Unlock()
	for _, c := range targets {
		c.kill(closeGoingAway, "hub shutting down")
	}
}

// ring is a bounded list, newest first.
type ring[T any] struct {
	buf  []T
	next int
	n    int
}

func newRing[T any](capacity int) ring[T] { return ring[T]{buf: make([]T, capacity)} }

func (r *ring[T]) push(v T) {
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// items returns a copy, newest first.
func (r *ring[T]) items() []T {
	out := make([]T, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func joinOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	out := s[0]
	for _, x := range s[1:] {
		out += ", " + x
	}
	return out
}

func stringsOf(v any) []string {
	arr, _ := v.([]any)
	var out []string
	for _, e := range arr {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
