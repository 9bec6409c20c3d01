package tasks

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
)

// Workflow limits: every workflow input is bounded.
const (
	MaxDependencies = 32                   // depends_on entries per task
	MaxBatch        = 100                  // tasks per batch submit
	MaxUniqueKeyLen = 256                  // characters of a unique_key
	MaxUniqueFor    = 366 * 24 * time.Hour // longest unique_for window
	MaxRunAhead     = 366 * 24 * time.Hour // farthest run_at / run_in
	MaxPausedCaps   = 256                  // paused capabilities at once
	MaxCapLen       = 256                  // characters of a paused capability name
)

// On-dependency-failure policies.
const (
	OnDepFailureCancel = "cancel"
	OnDepFailureRun    = "run"
)

// Workflow event types published on bus.TopicTasks.
const (
	// EventReleased: a waiting or scheduled task entered its lane.
	EventReleased = "task_released"
	// EventPaused and EventResumed carry a PauseEvent.
	EventPaused  = "lane_paused"
	EventResumed = "lane_resumed"
	// EventSchedule carries a ScheduleEvent.
	EventSchedule = "schedule_changed"
)

// ErrInput matches every InputError.
var ErrInput = errors.New("invalid input")

// InputError is a submission refused for one field, with a detail for
// the client. Nothing was stored.
type InputError struct {
	Field  string
	Detail string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Detail }

// Unwrap lets callers test errors.Is(err, ErrInput).
func (e *InputError) Unwrap() error { return ErrInput }

func inputErr(field, format string, a ...any) error {
	return &InputError{Field: field, Detail: fmt.Sprintf(format, a...)}
}

// Upstream is one dependency's outcome handed to the agent that runs a
// dependent task (the task_assign frame's "dependencies").
type Upstream struct {
	TaskID      string `json:"task_id"`
	Description string `json:"description"`
	Status      Status `json:"status"`
	Result      any    `json:"result,omitempty"`
	// ResultTruncated says the result was larger than MaxUpstreamResult
	// and left out; the agent can read it with GET /api/tasks/:id.
	ResultTruncated bool `json:"result_truncated,omitempty"`
}

// MaxUpstreamResult bounds the encoded size of one dependency result put
// in an assignment.
const MaxUpstreamResult = 64 << 10

// uniqEntry is the task that holds a unique key.
type uniqEntry struct {
	id    string
	until int64 // 0: while the task is active
	// rec is the task the key's workflow record names ("" when there is
	// none): the record that keeps the key across an archive and a
	// restart (see uniqueRecords).
	rec string
}

// PauseKind says what a pause applies to.
type PauseKind string

// Pause kinds.
const (
	PauseLane       PauseKind = "lane"
	PauseCapability PauseKind = "capability"
)

type pauseID struct {
	Kind PauseKind
	Name string
}

// PauseEvent is the payload of EventPaused and EventResumed; Type says
// which (not encoded: it is the event's type).
type PauseEvent struct {
	Type string    `json:"-"`
	Kind PauseKind `json:"kind"`
	Name string    `json:"name"`
	By   string    `json:"by,omitempty"`
}

// Topic is bus.TopicTasks.
func (PauseEvent) Topic() string { return bus.TopicTasks }

// EventType is EventPaused or EventResumed.
func (e PauseEvent) EventType() string { return e.Type }

// Paused lists what is paused.
type Paused struct {
	Lanes        []string `json:"lanes"`
	Capabilities []string `json:"capabilities"`
}

// initialStatus decides where a new or waiting task stands given its
// dependencies' statuses: waiting while one has not ended, cancelled
// (naming the dependency) when one ended without completing and the
// policy is cancel, else scheduled or queued by run_at.
func initialStatus(t *Task, statusOf func(string) Status, now int64) (Status, string) {
	pending := false
	for _, d := range t.DependsOn {
		switch st := statusOf(d); st {
		case StatusCompleted:
		case StatusCancelled, StatusDeadLetter, "":
			if t.OnDependencyFailure != OnDepFailureRun {
				if st == "" {
					st = "missing"
				}
				return StatusCancelled, fmt.Sprintf("dependency %s ended %s", d, st)
			}
		default:
			pending = true
		}
	}
	switch {
	case pending:
		return StatusWaiting, ""
	case t.RunAt > now:
		return StatusScheduled, ""
	}
	return StatusQueued, ""
}

// statusOf returns a task's status from memory or, for a task that is not
// live, from the tables ("" when it does not exist). It must be called
// without q.mu held.
func (q *Queue) statusOf(id string) (Status, error) {
	t, err := q.Get(id)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return t.Status, nil
}

// checkDependencies validates a new task's depends_on against existing
// tasks and returns their statuses. field names the list in errors.
func (q *Queue) checkDependencies(field string, deps []string, known map[string]bool) (map[string]Status, error) {
	if len(deps) > MaxDependencies {
		return nil, inputErr(field, "at most %d dependencies", MaxDependencies)
	}
	out := make(map[string]Status, len(deps))
	for i, d := range deps {
		if known[d] {
			out[d] = StatusWaiting // a task of the same batch: not started yet
			continue
		}
		st, err := q.statusOf(d)
		if err != nil {
			return nil, err
		}
		if st == "" {
			return nil, inputErr(fmt.Sprintf("%s[%d]", field, i), "unknown task id %q", d)
		}
		out[d] = st
	}
	return out, nil
}

// insertLocked puts a stored new task into memory: the live set, its
// lane or timer, the counters, its dependency edges and its unique key.
func (q *Queue) insertLocked(t *Task, now int64) {
	q.count(t.Status, t.Priority, +1)
	if len(t.DependsOn) > 0 {
		q.dependsOn[t.ID] = t.DependsOn
	}
	for _, d := range t.DependsOn {
		q.dependents[d] = append(q.dependents[d], t.ID)
	}
	if t.UniqueKey != "" {
		q.uniq[t.UniqueKey] = uniqEntry{id: t.ID, until: t.UniqueUntil, rec: q.uniq[t.UniqueKey].rec}
	}
	if !t.Status.Active() {
		return
	}
	q.live[t.ID] = t
	switch t.Status {
	case StatusQueued:
		q.idx.add(t, now)
	case StatusAssigned: // assigned in its submission's write
		addHeld(q.held, t)
	case StatusScheduled:
		heap.Push(&q.timers, delayed{due: t.RunAt, id: t.ID})
	}
}

// uniqueHolder returns the task holding key, or nil when the key is free:
// no task has it, or its task ended and its window passed. A cancelled or
// dead-lettered task frees its key at once. Caller holds q.uniqMu.
func (q *Queue) uniqueHolder(key string, now int64) (*Task, error) {
	q.mu.Lock()
	e, ok := q.uniq[key]
	q.mu.Unlock()
	if !ok {
		return nil, nil
	}
	t, err := q.Get(e.id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if t.Status.Active() || (t.Status == StatusCompleted && t.UniqueUntil > now) {
		q.markPaused(t)
		return t, nil
	}
	return nil, nil
}

// wake re-examines the waiting tasks that depend on id, after id changed.
func (q *Queue) wake(id string) {
	q.mu.Lock()
	ids := slices.Clone(q.dependents[id])
	q.mu.Unlock()
	if len(ids) > 0 {
		_ = q.resolve(ids...)
	}
}

// resolve moves waiting tasks on when their dependencies allow: into
// their lane (or scheduled) when all completed, cancelled when one failed
// under the cancel policy, whose own dependents are then examined too.
//
// A waiting task's state is a function of its dependencies' records, so
// resolve is safe to run at any time and as often as wanted; Reload runs
// it over every waiting task, which repairs a crash between a
// dependency's change and its dependents' release.
func (q *Queue) resolve(ids ...string) error {
	work := slices.Clone(ids)
	var errs []error
	for steps := 0; len(work) > 0 && steps < 100_000; steps++ {
		id := work[len(work)-1]
		work = work[:len(work)-1]
		q.mu.Lock()
		t := q.live[id]
		if t == nil || t.Status != StatusWaiting {
			q.mu.Unlock()
			continue
		}
		ver := t.Version
		probe := t.Clone()
		known := map[string]Status{}
		var unknown []string
		for _, d := range t.DependsOn {
			if lt := q.live[d]; lt != nil {
				known[d] = lt.Status
			} else {
				unknown = append(unknown, d)
			}
		}
		q.mu.Unlock()
		failed := false
		for _, d := range unknown {
			st, err := q.statusOf(d)
			if err != nil {
				errs = append(errs, err)
				failed = true
				break
			}
			known[d] = st
		}
		if failed {
			continue
		}
		now := q.now().UnixMilli()
		next, reason := initialStatus(probe, func(d string) Status { return known[d] }, now)
		if next == StatusWaiting {
			continue
		}
		q.mu.Lock()
		t = q.live[id]
		if t == nil || t.Status != StatusWaiting {
			q.mu.Unlock()
			continue
		}
		if t.Version != ver { // changed meanwhile: look again
			q.mu.Unlock()
			work = append(work, id)
			continue
		}
		if next == StatusCancelled {
			q.cancelLocked(t, "hub", reason, now)
		} else {
			q.releaseLocked(t, next, now)
		}
		snap := t.Clone()
		q.mu.Unlock()
		if err := q.persist(context.Background(), snap); err != nil {
			errs = append(errs, fmt.Errorf("resolve %s: %w", id, err))
			continue
		}
		q.noteEnded(snap)
		if next == StatusCancelled {
			q.emitReason(EventCancelled, snap, "", reason)
			q.mu.Lock()
			work = append(work, q.dependents[id]...)
			q.mu.Unlock()
		} else {
			q.emitReason(EventReleased, snap, "", "dependencies completed")
		}
	}
	return errors.Join(errs...)
}

// releaseLocked moves a waiting or scheduled task to status to (queued,
// or scheduled for a waiting task whose run_at is ahead).
func (q *Queue) releaseLocked(t *Task, to Status, now int64) {
	q.count(t.Status, t.Priority, -1)
	q.count(to, t.Priority, +1)
	t.Status = to
	t.UpdatedAt = now
	t.Version++
	switch to {
	case StatusQueued:
		t.addHistory("queued", now, "released")
		q.idx.add(t, now)
	case StatusScheduled:
		t.addHistory("scheduled", now, map[string]any{"run_at": t.RunAt})
		heap.Push(&q.timers, delayed{due: t.RunAt, id: t.ID})
	}
}

// promoteScheduled queues the scheduled tasks whose run_at has come, in
// one store operation, and reports how many.
func (q *Queue) promoteScheduled(now int64) (int, error) {
	q.mu.Lock()
	var snaps []*Task
	for len(q.timers) > 0 && q.timers[0].due <= now {
		d := heap.Pop(&q.timers).(delayed)
		t := q.live[d.id]
		if t == nil || t.Status != StatusScheduled || t.RunAt != d.due {
			continue
		}
		q.releaseLocked(t, StatusQueued, now)
		snaps = append(snaps, t.Clone())
	}
	q.mu.Unlock()
	if len(snaps) == 0 {
		return 0, nil
	}
	if err := q.persist(context.Background(), snaps...); err != nil {
		return 0, fmt.Errorf("release scheduled tasks: %w", err)
	}
	for _, t := range snaps {
		q.emitReason(EventReleased, t, "", "run_at reached")
	}
	return len(snaps), nil
}

// nextTimer is the earliest run_at of a scheduled task (0: none). Caller
// holds q.mu.
func (q *Queue) nextTimerLocked() int64 {
	for len(q.timers) > 0 {
		d := q.timers[0]
		if t := q.live[d.id]; t != nil && t.Status == StatusScheduled && t.RunAt == d.due {
			return d.due
		}
		heap.Pop(&q.timers)
	}
	return 0
}

// Dependents returns the ids of the tasks that depend on id, in the live
// table or the dead letter (every status; an archived dependent is not
// listed, as the archive is not loaded), sorted.
func (q *Queue) Dependents(id string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := slices.Clone(q.dependents[id])
	slices.Sort(out)
	return slices.Compact(out)
}

// dropEdgesLocked forgets the dependency edges of tasks that left the
// live table and the dead letter (archived), so memory and Dependents
// match what a load would find. Caller holds q.mu.
func (q *Queue) dropEdgesLocked(ids []string) {
	gone := map[string]bool{}
	for _, id := range ids {
		if _, ok := q.dependsOn[id]; ok {
			gone[id] = true
		}
	}
	if len(gone) == 0 {
		return
	}
	deps := map[string]bool{}
	for id := range gone {
		for _, d := range q.dependsOn[id] {
			deps[d] = true
		}
		delete(q.dependsOn, id)
	}
	for d := range deps {
		if rest := slices.DeleteFunc(q.dependents[d], func(id string) bool { return gone[id] }); len(rest) > 0 {
			q.dependents[d] = rest
		} else {
			delete(q.dependents, d)
		}
	}
}

// UpstreamOf returns the outcome of each of t's dependencies, results
// bounded by MaxUpstreamResult.
func (q *Queue) UpstreamOf(t *Task) []Upstream {
	if len(t.DependsOn) == 0 {
		return nil
	}
	out := make([]Upstream, 0, len(t.DependsOn))
	for _, d := range t.DependsOn {
		dt, err := q.Get(d)
		if err != nil {
			out = append(out, Upstream{TaskID: d})
			continue
		}
		u := Upstream{TaskID: d, Description: dt.Description, Status: dt.Status, Result: dt.Result}
		if b, err := jsonSize(dt.Result); err != nil || b > MaxUpstreamResult {
			u.Result, u.ResultTruncated = nil, true
		}
		out = append(out, u)
	}
	return out
}

// Pause stops assignment from a lane or capability. It reports false when
// it was already paused. Tasks stay where they are.
func (q *Queue) Pause(kind PauseKind, name, by string) (bool, error) {
	q.wfMu.Lock()
	defer q.wfMu.Unlock()
	id := pauseID{kind, name}
	q.mu.Lock()
	_, already := q.paused[id]
	caps := 0
	for p := range q.paused {
		if p.Kind == PauseCapability {
			caps++
		}
	}
	q.mu.Unlock()
	if already {
		return false, nil
	}
	if kind == PauseCapability && caps >= MaxPausedCaps {
		return false, inputErr("capability", "at most %d capabilities may be paused at once", MaxPausedCaps)
	}
	rec := pauseRecord{By: by, At: q.now().UnixMilli()}
	r, err := putRecord(pauseKey(kind, name), rec)
	if err != nil {
		return false, err
	}
	if err := q.persistWith([]wfRecord{r}); err != nil {
		return false, fmt.Errorf("pause %s %s: %w", kind, name, err)
	}
	q.mu.Lock()
	q.paused[id] = rec
	q.mu.Unlock()
	q.publish(PauseEvent{Type: EventPaused, Kind: kind, Name: name, By: by})
	return true, nil
}

// Resume lets assignment from a lane or capability go on. It reports
// false when it was not paused.
func (q *Queue) Resume(kind PauseKind, name, by string) (bool, error) {
	q.wfMu.Lock()
	defer q.wfMu.Unlock()
	id := pauseID{kind, name}
	q.mu.Lock()
	_, paused := q.paused[id]
	q.mu.Unlock()
	if !paused {
		return false, nil
	}
	if err := q.persistWith([]wfRecord{deleteRecord(pauseKey(kind, name))}); err != nil {
		return false, fmt.Errorf("resume %s %s: %w", kind, name, err)
	}
	q.mu.Lock()
	delete(q.paused, id)
	q.mu.Unlock()
	q.publish(PauseEvent{Type: EventResumed, Kind: kind, Name: name, By: by})
	return true, nil
}

// PausedState lists what is paused, sorted.
func (q *Queue) PausedState() Paused {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := Paused{Lanes: []string{}, Capabilities: []string{}}
	for id := range q.paused {
		if id.Kind == PauseLane {
			p.Lanes = append(p.Lanes, id.Name)
		} else {
			p.Capabilities = append(p.Capabilities, id.Name)
		}
	}
	sort.Strings(p.Lanes)
	sort.Strings(p.Capabilities)
	return p
}

// pausedLocked reports whether tasks of lane pri needing caps are held by
// a pause. Caller holds q.mu.
func (q *Queue) pausedLocked(pri int, caps []string) bool {
	if len(q.paused) == 0 {
		return false
	}
	if _, ok := q.paused[pauseID{PauseLane, LaneName(pri)}]; ok {
		return true
	}
	for _, c := range caps {
		if _, ok := q.paused[pauseID{PauseCapability, c}]; ok {
			return true
		}
	}
	return false
}

// markPaused flags a queued task snapshot held by a pause, for listings.
func (q *Queue) markPaused(t *Task) {
	if t.Status != StatusQueued {
		return
	}
	q.mu.Lock()
	t.Paused = q.pausedLocked(t.Priority, t.NeededCapabilities)
	q.mu.Unlock()
}

// jsonSize is the encoded size of v.
func jsonSize(v any) (int, error) {
	b, err := json.Marshal(v)
	return len(b), err
}

// publish sends a workflow event that is not about one task.
func (q *Queue) publish(p bus.Payload) {
	bus.Publish(q.bus, p)
}

// BatchItem is one task of a batch submit. Params.DependsOn may name
// other items of the batch by Key, or existing tasks by id.
type BatchItem struct {
	Key    string
	Params SubmitParams
}

// MaxBatchKeyLen bounds a batch item's key.
const MaxBatchKeyLen = 128

// SubmitBatch stores a batch of tasks in one store operation, dependencies
// between them given by key. It refuses the whole batch, storing nothing,
// on an unknown dependency, a cycle or a unique key (not supported in a
// batch). The tasks are returned in the items' order.
func (q *Queue) SubmitBatch(items []BatchItem) ([]*Task, error) {
	ts, _, err := q.SubmitBatchAssign(items, nil)
	return ts, err
}

// SubmitBatchAssign is SubmitBatch that may also assign queued tasks of
// the batch in the same store write, as SubmitAssign does; it returns the
// tasks as submitted and the snapshots of those it assigned.
func (q *Queue) SubmitBatchAssign(items []BatchItem, pick Pick) (submitted, assigned []*Task, err error) {
	if len(items) == 0 || len(items) > MaxBatch {
		return nil, nil, inputErr("tasks", "1 to %d tasks", MaxBatch)
	}
	keys := make(map[string]int, len(items))
	for i, it := range items {
		field := fmt.Sprintf("tasks[%d]", i)
		switch {
		case it.Key == "" || len(it.Key) > MaxBatchKeyLen:
			return nil, nil, inputErr(field+".key", "1 to %d characters", MaxBatchKeyLen)
		case it.Params.UniqueKey != "":
			return nil, nil, inputErr(field+".unique_key", "not supported in a batch; submit unique tasks one by one")
		}
		if _, dup := keys[it.Key]; dup {
			return nil, nil, inputErr(field+".key", "key %q used twice", it.Key)
		}
		keys[it.Key] = i
	}
	now := q.now().UnixMilli()
	ids := make([]string, len(items))
	known := make(map[string]bool, len(items))
	for i := range ids {
		ids[i] = newID(&q.ids, now)
		known[ids[i]] = true
	}
	edges := make([][]int, len(items)) // batch-internal dependencies by index
	statuses := map[string]Status{}
	deps := make([][]string, len(items))
	for i, it := range items {
		field := fmt.Sprintf("tasks[%d].depends_on", i)
		list := dedupe(it.Params.DependsOn)
		for j, d := range list {
			if k, ok := keys[d]; ok {
				if k == i {
					return nil, nil, inputErr(fmt.Sprintf("%s[%d]", field, j), "a task cannot depend on itself")
				}
				edges[i] = append(edges[i], k)
				list[j] = ids[k]
			}
		}
		st, err := q.checkDependencies(field, list, known)
		if err != nil {
			return nil, nil, err
		}
		for d, s := range st {
			statuses[d] = s
		}
		deps[i] = list
	}
	if cyc := findCycle(edges); cyc != nil {
		names := make([]string, len(cyc))
		for i, k := range cyc {
			names[i] = items[k].Key
		}
		return nil, nil, inputErr(fmt.Sprintf("tasks[%d].depends_on", cyc[0]), "dependency cycle: %s", strings.Join(names, " -> "))
	}
	ts := make([]*Task, len(items))
	for i, it := range items {
		p := it.Params
		p.DependsOn = deps[i]
		t := q.newTask(p, now)
		t.ID = ids[i]
		st, reason := initialStatus(t, func(d string) Status { return statuses[d] }, now)
		if st == StatusCancelled {
			return nil, nil, inputErr(fmt.Sprintf("tasks[%d].depends_on", i), "%s: nothing would run (set on_dependency_failure to \"run\" to run anyway)", reason)
		}
		t.Status = st
		ts[i] = t
	}
	return q.store(now, pick, ts...)
}

// findCycle returns the indexes of one cycle (first repeated at the end)
// in the graph, or nil.
func findCycle(edges [][]int) []int {
	const (
		unseen = iota
		open
		done
	)
	state := make([]int, len(edges))
	var stack []int
	var visit func(int) []int
	visit = func(n int) []int {
		state[n] = open
		stack = append(stack, n)
		for _, m := range edges[n] {
			switch state[m] {
			case open:
				i := slices.Index(stack, m)
				return append(slices.Clone(stack[i:]), m)
			case unseen:
				if c := visit(m); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	for n := range edges {
		if state[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}
