package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/alerts"
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
	recent        *timeline        // the timelines' list: most recently touched
	stalest       *timeline        // and least recently touched
	left          map[string]int64 // agent → when it left (offline condition)
	queueSamples  []int
	storageView   storageView
	storageEvents ring[map[string]any] // storageEntry objects, as the snapshot lists them
	compactions   ring[compactionEntry]
	degraded      map[string]int64     // table → since
	backupFailed  map[string]string    // table → reason, until a later backup succeeds
	drillFailed   map[string]string    // table → reason, until a later drill succeeds
	alerts        ring[map[string]any] // alertEntry objects, as the snapshot lists them
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
	// The timelines form a list, most recently touched first, so the
	// eviction beyond TimelineAgents takes the last one without scanning
	// them all (a fleet of more than TimelineAgents agents messaging each
	// other evicted on nearly every message).
	agent      string
	prev, next *timeline
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
		storageEvents: newRing[map[string]any](StorageEventsCap), compactions: newRing[compactionEntry](CompactionCap),
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
	switch d := e.Data.(type) {
	case tasks.EventData:
		out = a.applyTask(d, e.Time)
	case tasks.PauseEvent:
		out = workflowEvent{Type: "workflow_event", Event: d.Type, Timestamp: e.Time, Pause: &d}
	case tasks.ScheduleEvent:
		out = workflowEvent{Type: "workflow_event", Event: d.EventType(), Timestamp: e.Time, Schedule: &d}
	case presence.Joined:
		out = a.applyJoined(d.Entry, e.Time)
	case presence.Left:
		out = a.applyLeft(d, e.Time)
	case presence.StatusChanged:
		out = a.applyStatus(d.Entry, e.Time)
	case agents.StateChange:
		out = a.applyState(d, e.Time)
	case messaging.Routed:
		a.applyRouted(d, e.Time)
	case messaging.ChannelPublished:
		a.applyChannelPost(d, e.Time)
	case alerts.Raised:
		out = a.applyAlert(d.EventType(), d.Alert, e.Time)
	case alerts.Cleared:
		out = a.applyAlert(d.EventType(), d.Alert, e.Time)
	case alerts.Acknowledged:
		out = a.applyAlert(d.EventType(), d.Alert, e.Time)
	default:
		if entry, ok := a.applyStorage(e.Data); ok {
			out = entry
		}
	}
	// With no socket open nobody reads the events frame, and a socket that
	// opens later starts from a snapshot built after it registered
	// (addClient comes before sendSnapshot), which holds every change
	// applied above: encoding for nobody was a few percent of the hub's
	// CPU under load.
	if out == nil || a.Clients() == 0 {
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		a.log.Error("encode dashboard event", "event", "encode_failed", "type", e.Type(), "err", err)
		return
	}
	a.mu.Lock()
	a.pending = append(a.pending, b)
	a.mu.Unlock()
}

// The events frame and the snapshot once encoded the entries below from
// maps, whose keys encoding/json sorts; the structs declare their fields
// in that order so the bytes stay the same (TestGoldenFrames,
// TestOutgoingKeysSorted).

// agentJoined, agentLeft, statusChanged and stateChanged are the presence
// and agent state entries of the events frame.
type agentJoined struct {
	AgentID      string   `json:"agent_id"`
	Capabilities []string `json:"capabilities"`
	Name         string   `json:"name"`
	Timestamp    int64    `json:"timestamp"`
	Type         string   `json:"type"`
}

type agentLeft struct {
	AgentID   string `json:"agent_id"`
	Timestamp int64  `json:"timestamp"`
	Type      string `json:"type"`
}

type statusChanged struct {
	AgentID   string `json:"agent_id"`
	Status    string `json:"status"`
	Timestamp int64  `json:"timestamp"`
	Type      string `json:"type"`
}

type stateChanged struct {
	AgentID   string       `json:"agent_id"`
	Flags     []string     `json:"flags"`
	From      agents.State `json:"from"`
	TaskID    *string      `json:"task_id"`
	Timestamp int64        `json:"timestamp"`
	To        agents.State `json:"to"`
	Type      string       `json:"type"`
}

// alertEntry is an alert event: in the snapshot's alert list, and with
// Type "alert" in the events frame. Alert is the event type.
type alertEntry struct {
	AckNote   string `json:"ack_note,omitempty"`
	AckedAt   int64  `json:"acked_at,omitempty"`
	AckedBy   string `json:"acked_by,omitempty"`
	Alert     string `json:"alert"`
	ClearedAt int64  `json:"cleared_at,omitempty"`
	Message   string `json:"message"`
	Notify    bool   `json:"notify"`
	RaisedAt  int64  `json:"raised_at"`
	Rule      string `json:"rule"`
	Severity  string `json:"severity"`
	Timestamp int64  `json:"timestamp"`
	Type      string `json:"type,omitempty"`
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

func (a *Aggregator) applyTask(d tasks.EventData, at int64) any {
	// A failure's error text is on the task, not in the event.
	var errText string
	if d.Type == tasks.EventFailed {
		if t, err := a.queue.Get(d.TaskID); err == nil && t.LastError != nil {
			errText = fmt.Sprint(t.LastError)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch d.Type {
	case tasks.EventCompleted:
		// Completions are counted from the queue's event only: the
		// original also counted the socket's task_complete, twice.
		var tok int64
		if d.TokensUsed != nil {
			tok = *d.TokensUsed
		}
		a.completions.push(completion{TaskID: d.TaskID, AgentID: d.AgentID, Description: d.Description,
			DurationMs: d.RunMs, TokensUsed: tok, CompletedAt: at})
		b := a.bucketAt(at)
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
			DurationMs: d.RunMs, Error: errText, Outcome: outcome, FailedAt: at})
		b := a.bucketAt(at)
		b.failed++
		if d.RunMs > 0 {
			b.runs.add(d.RunMs)
		}
	case tasks.EventAssigned:
		if d.WaitMs > 0 {
			a.bucketAt(at).waits.add(d.WaitMs)
		}
	case tasks.EventDeadLetter:
		a.dlDirty = true
		if d.Reason != "" {
			// A deadline expiry: no task_failed came before it.
			a.failures.push(failure{TaskID: d.TaskID, AgentID: d.AgentID, Description: d.Description,
				Error: d.Reason, Outcome: "expired", FailedAt: at})
			a.bucketAt(at).failed++
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
		a.timelineLocked(d.AgentID, timelineEntry{Timestamp: at, Kind: "task", Event: d.Type, TaskID: d.TaskID, Detail: clip(detail, 200)})
	}
	ev := taskEvent{Type: "task_event", TaskID: d.TaskID, Event: d.Type, Timestamp: at, Status: string(d.Status),
		Priority: d.Priority, Description: clip(d.Description, 200), Reason: d.Reason, RunMs: d.RunMs, WaitMs: d.WaitMs,
		Generation: d.Generation}
	if d.AgentID != "" {
		id := d.AgentID
		ev.AgentID = &id
	}
	return ev
}

func (a *Aggregator) applyJoined(p presence.Entry, at int64) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.left, p.AgentID)
	a.timelineLocked(p.AgentID, timelineEntry{Timestamp: at, Kind: "presence", Event: "connected",
		Detail: "capabilities: " + joinOr(p.Capabilities, "none")})
	return agentJoined{Type: presence.EventJoined, AgentID: p.AgentID, Name: p.Name, Capabilities: nonNil(p.Capabilities), Timestamp: at}
}

func (a *Aggregator) applyLeft(l presence.Left, at int64) any {
	if l.AgentID == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.left[l.AgentID] = at
	a.timelineLocked(l.AgentID, timelineEntry{Timestamp: at, Kind: "presence", Event: "disconnected"})
	return agentLeft{Type: presence.EventLeft, AgentID: l.AgentID, Timestamp: at}
}

func (a *Aggregator) applyStatus(p presence.Entry, at int64) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.timelineLocked(p.AgentID, timelineEntry{Timestamp: at, Kind: "presence", Event: "status", Detail: clip(p.Status, 200)})
	return statusChanged{Type: presence.EventStatusChanged, AgentID: p.AgentID, Status: p.Status, Timestamp: at}
}

func (a *Aggregator) applyState(ch agents.StateChange, at int64) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.timelineLocked(ch.AgentID, timelineEntry{Timestamp: at, Kind: "state",
		Event: string(ch.From) + " → " + string(ch.To), TaskID: ch.TaskID})
	return stateChanged{Type: agents.EventStateChanged, AgentID: ch.AgentID, From: ch.From, To: ch.To,
		TaskID: nullable(ch.TaskID), Flags: nonNil(ch.Flags), Timestamp: at}
}

// applyRouted and applyChannelPost record messages in the agents'
// timelines only: message traffic can be heavy and the page does not need
// it live.
func (a *Aggregator) applyRouted(m messaging.Routed, at int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m.Kind == "broadcast" || m.To == "" {
		a.timelineLocked(m.From, timelineEntry{Timestamp: at, Kind: "message", Event: "broadcast sent", Detail: m.ID})
		return
	}
	// The detail says what kind of message and what became of it; the id
	// finds it in the messages view.
	detail := cmp.Or(m.Type, messaging.DefaultType) + " message, " + m.Outcome + ", id " + m.ID
	a.timelineLocked(m.From, timelineEntry{Timestamp: at, Kind: "message", Event: "sent to " + m.To, Detail: detail})
	a.timelineLocked(m.To, timelineEntry{Timestamp: at, Kind: "message", Event: "received from " + m.From, Detail: detail})
}

func (a *Aggregator) applyChannelPost(m messaging.ChannelPublished, at int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.timelineLocked(m.From, timelineEntry{Timestamp: at, Kind: "message", Event: "posted to #" + m.Channel, Detail: m.ID})
}

// applyAlert keeps the alert in the snapshot's list and returns its
// events frame entry.
func (a *Aggregator) applyAlert(kind string, al alerts.Alert, at int64) any {
	entry := alertEntry{Alert: kind, Rule: al.Rule, Severity: al.Severity, Message: al.Message, RaisedAt: al.RaisedAt,
		ClearedAt: al.ClearedAt, Notify: al.Notify, AckedAt: al.AckedAt, AckedBy: al.AckedBy, AckNote: al.AckNote, Timestamp: at}
	a.mu.Lock()
	a.alerts.push(objectOf(entry))
	a.mu.Unlock()
	entry.Type = "alert"
	return entry
}

// applyStorage folds a storage event into the storage state and returns
// its events frame entry; false for a payload that is not a storage
// event.
func (a *Aggregator) applyStorage(p bus.Payload) (storageEntry, bool) {
	entry, ok := storageEntryOf(p)
	if !ok {
		return storageEntry{}, false
	}
	a.mu.Lock()
	switch d := p.(type) {
	case resilience.CompactionCompleteEvent:
		// One history entry per run: a failed run publishes both events,
		// the second only adds its failures.
		a.compactions.push(compactionEntry{Results: entry.Results, Timestamp: d.Timestamp, Trigger: d.Trigger})
	case resilience.BackupCompleteEvent:
		for _, t := range d.TablesBackedUp {
			delete(a.backupFailed, t)
		}
		if len(d.TablesBackedUp) == 0 && len(backupErrorTables(d.Results)) == 0 {
			clear(a.backupFailed)
		}
	case resilience.BackupFailedEvent:
		for _, t := range tablesOrAll(failedTables(d.Failures)) {
			a.backupFailed[t] = d.Reason
		}
	case resilience.DrillCompleteEvent:
		tables := drillErrorTables(d.Results)
		for _, t := range tables {
			delete(a.drillFailed, t)
		}
		if len(tables) == 0 {
			clear(a.drillFailed)
		}
	case resilience.DrillFailedEvent:
		for _, t := range tablesOrAll(failedTables(d.Failures)) {
			a.drillFailed[t] = d.Reason
		}
	case resilience.DegradedModeEvent:
		if d.Table != "" {
			a.degraded[d.Table] = d.Timestamp
		}
	case resilience.RecoveryCompleteEvent:
		a.dlDirty = true
		delete(a.degraded, d.Table)
	}
	switch p.(type) {
	case resilience.CompactionCompleteEvent, resilience.DrillCompleteEvent:
		// Routine successes stay out of the event log; history shows them.
	default:
		log := entry
		log.Results = nil
		a.storageEvents.push(objectOf(log))
	}
	a.mu.Unlock()
	a.KickStorage()
	return entry, true
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
	switch {
	case ok:
		a.unlinkTimeline(tl)
	case len(a.timelines) >= TimelineAgents:
		// The evicted timeline's ring is reused, emptied.
		tl = a.stalest
		a.unlinkTimeline(tl)
		delete(a.timelines, tl.agent)
		clear(tl.entries.buf)
		*tl = timeline{entries: ring[timelineEntry]{buf: tl.entries.buf}, agent: agent}
		a.timelines[agent] = tl
	default:
		tl = &timeline{entries: newRing[timelineEntry](TimelineCap), agent: agent}
		a.timelines[agent] = tl
	}
	tl.next, a.recent = a.recent, tl
	if tl.next != nil {
		tl.next.prev = tl
	} else {
		a.stalest = tl
	}
	tl.entries.push(e)
}

// unlinkTimeline takes tl out of the timelines' list.
func (a *Aggregator) unlinkTimeline(tl *timeline) {
	if tl.prev != nil {
		tl.prev.next = tl.next
	} else {
		a.recent = tl.next
	}
	if tl.next != nil {
		tl.next.prev = tl.prev
	} else {
		a.stalest = tl.prev
	}
	tl.prev, tl.next = nil, nil
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
		// Newest failures first: the operator looks at what just broke.
		ts, total, err := a.queue.ListDeadLetter(tasks.Filter{Newest: true, Limit: a.cfg.MaxListed})
		if err != nil {
			a.log.Error("list dead letter", "event", "dead_letter_list_failed", "err", err)
			a.mu.Lock()
			a.dlDirty = true
			a.mu.Unlock()
		} else {
			views := make([]deadLetterView, 0, len(ts))
			for _, t := range ts {
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
