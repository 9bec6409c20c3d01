package tasks

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/cron"
)

// Periodic schedules: a stored cron expression and a task template. Each
// tick enqueues one task; the schedule record, with the tick it last
// enqueued, is written in the same store operation as that task, so a crash
// (even kill -9) either keeps both or neither and no tick runs twice. A
// tick missed while the hub was down is enqueued once at start (only the
// latest of several).

// Schedule limits.
const (
	MaxSchedules = 1000
	// MaxScheduleNameLen bounds a schedule name; names match
	// scheduleNameRE.
	MaxScheduleNameLen = 64
)

var scheduleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Schedule errors.
var (
	ErrScheduleNotFound = errors.New("schedule_not_found")
	ErrScheduleExists   = errors.New("schedule_exists")
)

// ScheduleTask is the template of the tasks a schedule enqueues.
type ScheduleTask struct {
	Description        string         `json:"description"`
	Priority           int            `json:"priority"`
	Metadata           map[string]any `json:"metadata,omitempty"`
	NeededCapabilities []string       `json:"needed_capabilities,omitempty"`
	TargetAgent        string         `json:"target_agent,omitempty"`
	MaxRetries         *int           `json:"max_retries,omitempty"`
}

// Schedule is a periodic task. JSON names are the wire and storage names.
type Schedule struct {
	Name      string       `json:"name"`
	Cron      string       `json:"cron"`
	TimeZone  string       `json:"timezone"`
	Task      ScheduleTask `json:"task"`
	Paused    bool         `json:"paused"`
	CreatedBy string       `json:"created_by"`
	CreatedAt int64        `json:"created_at"`
	UpdatedAt int64        `json:"updated_at"`
	// Since: ticks at or before it never run (creation, or the last
	// resume: a paused schedule does not catch up).
	Since int64 `json:"since"`
	// LastTick is the last tick enqueued (Unix ms, 0: none yet), stored
	// with that tick's task.
	LastTick   int64  `json:"last_tick"`
	LastTaskID string `json:"last_task_id,omitempty"`
	// NextRun is computed for listings (Unix ms, 0: none).
	NextRun int64 `json:"next_run"`
	// Error says why a stored schedule cannot run (computed at load).
	Error string `json:"error,omitempty"`

	expr *cron.Schedule
	loc  *time.Location
}

// compile parses the expression and time zone.
func (s *Schedule) compile() error {
	if s.Name == "" || len(s.Name) > MaxScheduleNameLen || !scheduleNameRE.MatchString(s.Name) {
		return inputErr("name", "1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit", MaxScheduleNameLen)
	}
	expr, err := cron.Parse(s.Cron)
	if err != nil {
		return inputErr("cron", "%v", err)
	}
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil || s.TimeZone == "Local" {
		return inputErr("timezone", "unknown time zone %q (use an IANA name such as UTC or Europe/Paris)", s.TimeZone)
	}
	s.expr, s.loc = expr, loc
	return nil
}

// ref is the time after which the next tick counts.
func (s *Schedule) ref() time.Time { return time.UnixMilli(max(s.LastTick, s.Since)) }

// next is the schedule's next tick (zero: none).
func (s *Schedule) next() time.Time {
	if s.Paused || s.expr == nil {
		return time.Time{}
	}
	return s.expr.Next(s.ref(), s.loc)
}

// view is a copy for callers, with NextRun filled in.
func (s *Schedule) view() Schedule {
	v := *s
	v.Task.NeededCapabilities = slices.Clone(s.Task.NeededCapabilities)
	v.NextRun = 0
	if n := s.next(); !n.IsZero() {
		v.NextRun = n.UnixMilli()
	}
	return v
}

func (s *Schedule) record() (wfRecord, error) {
	cp := *s
	cp.NextRun, cp.Error = 0, "" // computed, never stored
	return putRecord(wfSchedule+s.Name, &cp)
}

// AddSchedule stores a new schedule; its first tick is the first one after
// now. Field problems are InputErrors.
func (q *Queue) AddSchedule(s Schedule, by string) (Schedule, error) {
	s.Error = ""
	if err := s.compile(); err != nil {
		return Schedule{}, err
	}
	if s.Task.Description == "" {
		return Schedule{}, inputErr("description", "required")
	}
	now := q.now().UnixMilli()
	s.CreatedBy, s.CreatedAt, s.UpdatedAt, s.Since = by, now, now, now
	s.LastTick, s.LastTaskID = 0, ""
	q.wfMu.Lock()
	defer q.wfMu.Unlock()
	if _, ok := q.schedules[s.Name]; ok {
		return Schedule{}, ErrScheduleExists
	}
	if len(q.schedules) >= MaxSchedules {
		return Schedule{}, inputErr("name", "at most %d schedules", MaxSchedules)
	}
	if err := q.saveScheduleLocked(&s); err != nil {
		return Schedule{}, err
	}
	q.publish(ScheduleEvent{Name: s.Name, Change: "added", By: by})
	return s.view(), nil
}

// ScheduleEvent is the payload of EventSchedule.
type ScheduleEvent struct {
	Name   string `json:"name"`
	Change string `json:"change"` // added, paused, resumed, removed, run
	By     string `json:"by,omitempty"`
	TaskID string `json:"task_id,omitempty"`
}

// Topic is bus.TopicTasks.
func (ScheduleEvent) Topic() string { return bus.TopicTasks }

// EventType is EventSchedule.
func (ScheduleEvent) EventType() string { return EventSchedule }

// saveScheduleLocked stores s and then keeps it in memory. Caller holds
// wfMu.
func (q *Queue) saveScheduleLocked(s *Schedule, ts ...*Task) error {
	r, err := s.record()
	if err != nil {
		return err
	}
	if err := q.persistWith([]wfRecord{r}, ts...); err != nil {
		return fmt.Errorf("store schedule %s: %w", s.Name, err)
	}
	q.schedules[s.Name] = s
	return nil
}

// Schedules lists the schedules by name.
func (q *Queue) Schedules() []Schedule {
	q.wfMu.Lock()
	defer q.wfMu.Unlock()
	out := make([]Schedule, 0, len(q.schedules))
	for _, s := range q.schedules {
		out = append(out, s.view())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// GetSchedule returns one schedule.
func (q *Queue) GetSchedule(name string) (Schedule, error) {
	q.wfMu.Lock()
	defer q.wfMu.Unlock()
	s, ok := q.schedules[name]
	if !ok {
		return Schedule{}, ErrScheduleNotFound
	}
	return s.view(), nil
}

// SetSchedulePaused pauses or resumes a schedule. A resumed schedule runs
// from its next tick after now: ticks missed while paused are skipped.
func (q *Queue) SetSchedulePaused(name string, paused bool, by string) (Schedule, error) {
	q.wfMu.Lock()
	defer q.wfMu.Unlock()
	old, ok := q.schedules[name]
	if !ok {
		return Schedule{}, ErrScheduleNotFound
	}
	if old.Paused == paused {
		return old.view(), nil
	}
	s := *old
	now := q.now().UnixMilli()
	s.Paused, s.UpdatedAt = paused, now
	if !paused {
		s.Since = now
	}
	if err := q.saveScheduleLocked(&s); err != nil {
		return Schedule{}, err
	}
	change := "resumed"
	if paused {
		change = "paused"
	}
	q.publish(ScheduleEvent{Name: name, Change: change, By: by})
	return s.view(), nil
}

// RemoveSchedule deletes a schedule. Tasks it enqueued are kept.
func (q *Queue) RemoveSchedule(name, by string) error {
	q.wfMu.Lock()
	defer q.wfMu.Unlock()
	if _, ok := q.schedules[name]; !ok {
		return ErrScheduleNotFound
	}
	if err := q.persistWith([]wfRecord{deleteRecord(wfSchedule + name)}); err != nil {
		return fmt.Errorf("remove schedule %s: %w", name, err)
	}
	delete(q.schedules, name)
	q.publish(ScheduleEvent{Name: name, Change: "removed", By: by})
	return nil
}

// RunScheduleNow enqueues one task from the schedule at once (tick 0); the
// schedule's own ticks are unchanged.
func (q *Queue) RunScheduleNow(name, by string) (*Task, error) {
	q.wfMu.Lock()
	s, ok := q.schedules[name]
	var p SubmitParams
	if ok {
		p = s.params(0)
	}
	q.wfMu.Unlock()
	if !ok {
		return nil, ErrScheduleNotFound
	}
	t, err := q.Submit(p)
	if err != nil {
		return nil, err
	}
	q.publish(ScheduleEvent{Name: name, Change: "run", By: by, TaskID: t.ID})
	return t, nil
}

// params is the submission of one tick.
func (s *Schedule) params(tick int64) SubmitParams {
	md := make(map[string]any, len(s.Task.Metadata))
	for k, v := range s.Task.Metadata {
		md[k] = v
	}
	return SubmitParams{
		Description: s.Task.Description, Metadata: md, Priority: s.Task.Priority,
		MaxRetries: s.Task.MaxRetries, NeededCapabilities: slices.Clone(s.Task.NeededCapabilities),
		TargetAgent: s.Task.TargetAgent, SubmittedBy: s.CreatedBy, Schedule: s.Name, ScheduleTick: tick,
	}
}

// fireSchedules enqueues one task for every schedule with a due tick:
// the latest tick at or before now (earlier missed ticks are folded into
// it). It reports how many tasks it enqueued.
func (q *Queue) fireSchedules(now time.Time) (int, error) {
	q.wfMu.Lock()
	defer q.wfMu.Unlock()
	names := make([]string, 0, len(q.schedules))
	for n := range q.schedules {
		names = append(names, n)
	}
	sort.Strings(names)
	fired := 0
	var errs []error
	for _, n := range names {
		s := q.schedules[n]
		next := s.next()
		if next.IsZero() || next.After(now) {
			continue
		}
		tick := s.expr.Prev(s.ref(), now, s.loc)
		if tick.IsZero() {
			tick = next
		}
		ms := q.now().UnixMilli()
		t := q.newTask(s.params(tick.UnixMilli()), ms)
		t.Status = StatusQueued
		t.History = []Event{{Event: "queued", Timestamp: ms, Details: map[string]any{"schedule": n, "tick": tick.UnixMilli()}}}
		t.Version = 1
		upd := *s
		upd.LastTick, upd.LastTaskID, upd.UpdatedAt = tick.UnixMilli(), t.ID, ms
		snap := t.Clone()
		// One store operation: the task and the tick it stands for.
		if err := q.saveScheduleLocked(&upd, snap); err != nil {
			errs = append(errs, err)
			continue
		}
		q.mu.Lock()
		// A schedule's tasks count against its creator's quota but are
		// never refused by it: the tick is already stored.
		q.perSubmitter[t.SubmittedBy]++
		q.insertLocked(t, ms)
		q.mu.Unlock()
		q.emit(EventSubmitted, snap, "", 0, 0)
		fired++
	}
	return fired, errors.Join(errs...)
}

// nextTick is the earliest next tick of any schedule (Unix ms, 0: none).
func (q *Queue) nextTick() int64 {
	q.wfMu.Lock()
	defer q.wfMu.Unlock()
	var next int64
	for _, s := range q.schedules {
		if n := s.next(); !n.IsZero() && (next == 0 || n.UnixMilli() < next) {
			next = n.UnixMilli()
		}
	}
	return next
}

// SchedulesCount reports how many schedules are active and paused (for
// metrics).
func (q *Queue) SchedulesCount() (active, paused int) {
	q.wfMu.Lock()
	defer q.wfMu.Unlock()
	for _, s := range q.schedules {
		if s.Paused {
			paused++
		} else {
			active++
		}
	}
	return active, paused
}
