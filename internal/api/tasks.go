package api

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/ratelimit"
	"github.com/agentcom/agentcom/internal/scheduler"
	"github.com/agentcom/agentcom/internal/tasklog"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Tasks holds what the task routes call.
type Tasks struct {
	Server    *Server
	Queue     *tasks.Queue
	Scheduler *scheduler.Scheduler
	Presence  *presence.Directory
	// NotifyCancel tells a holder its task was cancelled.
	NotifyCancel func(agentID, taskID string) bool
	// Logs holds the agents' live output.
	Logs *tasklog.Store
}

// Routes returns the task route table.
func (t *Tasks) Routes() []Route {
	return []Route{
		{Method: "POST", Path: "/api/tasks", Access: Agent, Handler: t.submit, Class: ratelimit.ClassTasks, Body: protocol.BodyPostTask},
		{Method: "GET", Path: "/api/tasks", Access: AnyToken, Handler: t.list},
		{Method: "GET", Path: "/api/tasks/dead-letter", Access: AnyToken, Handler: t.deadLetter},
		{Method: "GET", Path: "/api/tasks/stats", Access: AnyToken, Handler: t.stats},
		{Method: "GET", Path: "/api/tasks/{task_id}", Access: AnyToken, Handler: t.get},
		{Method: "GET", Path: "/api/tasks/{task_id}/logs", Access: AnyToken, Handler: t.logs},
		{Method: "POST", Path: "/api/tasks/{task_id}/retry", Access: Agent, Handler: t.retry, Body: protocol.BodyEmpty},
		{Method: "POST", Path: "/api/tasks/{task_id}/cancel", Access: Agent, Handler: t.cancel, Body: protocol.BodyTaskCancel},
		{Method: "POST", Path: "/api/admin/push-task", Access: Admin, Handler: t.pushTask, Body: protocol.BodyPushTask},
		{Method: "POST", Path: "/api/tasks/batch", Access: Agent, Handler: t.batch, Class: ratelimit.ClassTasks, Body: protocol.BodyPostTaskBatch},
		{Method: "GET", Path: "/api/tasks/paused", Access: AnyToken, Handler: t.paused},
		{Method: "POST", Path: "/api/tasks/pause", Access: Admin, Handler: t.pause, Body: protocol.BodyPause},
		{Method: "POST", Path: "/api/tasks/resume", Access: Admin, Handler: t.resume, Body: protocol.BodyPause},
		{Method: "GET", Path: "/api/schedules", Access: AnyToken, Handler: t.listSchedules},
		{Method: "POST", Path: "/api/schedules", Access: Admin, Handler: t.addSchedule, Body: protocol.BodyPostSchedule},
		{Method: "GET", Path: "/api/schedules/{name}", Access: AnyToken, Handler: t.getSchedule},
		{Method: "DELETE", Path: "/api/schedules/{name}", Access: Admin, Handler: t.removeSchedule},
		{Method: "POST", Path: "/api/schedules/{name}/pause", Access: Admin, Handler: t.pauseSchedule, Body: protocol.BodyEmpty},
		{Method: "POST", Path: "/api/schedules/{name}/resume", Access: Admin, Handler: t.resumeSchedule, Body: protocol.BodyEmpty},
		{Method: "POST", Path: "/api/schedules/{name}/run", Access: Admin, Handler: t.runSchedule, Body: protocol.BodyEmpty},
		{Method: "POST", Path: "/api/tasks/bulk", Access: Admin, Handler: t.bulk, Body: protocol.BodyTaskBulk},
		// The dashboard's own doors to the same handlers: open on a
		// loopback-only hub, else a viewer (read) or admin (act) token.
		{Method: "GET", Path: "/api/dashboard/tasks", Access: Dashboard, Handler: t.list},
		{Method: "GET", Path: "/api/dashboard/tasks/{task_id}", Access: Dashboard, Handler: t.get},
		{Method: "GET", Path: "/api/dashboard/tasks/{task_id}/logs", Access: Dashboard, Handler: t.logs},
		{Method: "POST", Path: "/api/dashboard/tasks/bulk", Access: DashboardAdmin, Handler: t.bulk, Body: protocol.BodyTaskBulk},
	}
}

func (t *Tasks) submit(r *Request) Response {
	b := BodyOf[protocol.PostTask](r)
	p, fe := taskParams(b, r.Body.Has, r.ID.AgentID, time.Now(), "")
	if fe != nil {
		return fieldResponse(fe)
	}
	if resp, ok := verifyFields(b, r.Body.Has, &p, r.ID, ""); !ok {
		return resp
	}
	task, dup, err := t.Scheduler.SubmitTask(p)
	if err != nil {
		return submitErr(r, err)
	}
	out := submitted(task)
	if dup {
		// The task already holding the unique key.
		out.Duplicate = true
		return JSON(http.StatusOK, out)
	}
	return JSON(http.StatusCreated, out)
}

// verifyFields moves the body's "verify" commands and
// "max_verify_attempts" into the task's metadata, where sidecars read them
// (and where agentcom-submit.js --metadata puts them). prefix goes before
// field names in errors (a batch item's "tasks[i].").
//
// Verification commands run on the agent's machine through a shell with no
// model in between, so only an admin may attach them (in the body or in
// metadata.verify): an agent token that could would run commands on every
// other agent's machine.
func verifyFields(b protocol.PostTask, has func(string) bool, p *tasks.SubmitParams, id auth.Identity, prefix string) (Response, bool) {
	if id.Role != auth.RoleAdmin && (has("verify") || hasKey(p.Metadata, "verify")) {
		return Err(http.StatusForbidden, "verify_requires_admin", "field", prefix+"verify",
			"message", "verification commands run a shell on the agent's machine: only an admin token may attach them"), false
	}
	if has("verify") {
		cmds := b.Verify
		if len(cmds) > protocol.MaxVerifyCommands {
			return fieldErr(prefix+"verify", fmt.Sprintf("at most %d commands", protocol.MaxVerifyCommands)), false
		}
		for _, c := range cmds {
			if strings.TrimSpace(c) == "" || utf8.RuneCountInString(c) > protocol.MaxCheckCommand || strings.ContainsRune(c, 0) {
				return fieldErr(prefix+"verify", fmt.Sprintf("each command must be non-empty, without NUL, at most %d characters", protocol.MaxCheckCommand)), false
			}
		}
		if p.Metadata == nil {
			p.Metadata = map[string]any{}
		}
		p.Metadata["verify"] = cmds
	}
	if b.MaxVerifyAttempts != nil {
		n := *b.MaxVerifyAttempts
		if n < 1 || n > protocol.MaxVerifyAttempts {
			return fieldErr(prefix+"max_verify_attempts", fmt.Sprintf("expected an integer from 1 to %d", protocol.MaxVerifyAttempts)), false
		}
		if p.Metadata == nil {
			p.Metadata = map[string]any{}
		}
		p.Metadata["max_verify_attempts"] = n
	}
	return Response{}, true
}

// logs serves the task's live output: ?since=OFFSET (default 0) returns
// what came after it; with ?wait_ms=N (at most 30000) and nothing new
// yet, the request waits up to N ms for output or for the task to end
// (long polling: loop with since=next until done).
func (t *Tasks) logs(r *Request) Response {
	id := r.PathValue("task_id")
	since, bad := QueryInt(r, "since", 0)
	if bad != nil {
		return *bad
	}
	waitMs, bad := QueryInt(r, "wait_ms", 0)
	if bad != nil {
		return *bad
	}
	if since < 0 || waitMs < 0 {
		return fieldErr("since", "since and wait_ms must be >= 0")
	}
	wait := time.Duration(min(waitMs, protocol.MaxLogsWaitMs)) * time.Millisecond
	var timeout <-chan time.Time
	if wait > 0 {
		tm := time.NewTimer(wait)
		defer tm.Stop()
		timeout = tm.C
	}
	for {
		var changed <-chan struct{}
		if wait > 0 && t.Logs != nil {
			changed = t.Logs.Changed(id) // before reading: no change is missed
		}
		task, err := t.Queue.Get(id)
		if errors.Is(err, tasks.ErrNotFound) {
			return Err(http.StatusNotFound, protocol.CodeTaskNotFound, "task_id", id)
		}
		if err != nil {
			return storageErr(r, err)
		}
		out := protocol.TaskLogs{TaskID: id, Status: string(task.Status), Offset: since, Next: since}
		if t.Logs != nil {
			c := t.Logs.Read(id, since)
			out.Offset, out.Next, out.Data, out.Truncated = c.Offset, c.Next, c.Data, c.Truncated
		}
		switch task.Status {
		case tasks.StatusCompleted, tasks.StatusDeadLetter, tasks.StatusCancelled:
			out.Done = true
		}
		if out.Data != "" || out.Done || changed == nil {
			return JSON(http.StatusOK, out)
		}
		select {
		case <-changed:
		case <-timeout:
			return JSON(http.StatusOK, out)
		case <-r.Context().Done():
			return JSON(http.StatusOK, out)
		}
	}
}

// submitRefusal answers a submission the queue refused by its limits: a
// field too large (400 validation_failed, error "too_large") or the
// submitter's quota of unfinished tasks (429 queue_quota_exceeded).
func submitRefusal(err error) (Response, bool) {
	var le *tasks.LimitError
	switch {
	case errors.As(err, &le):
		return JSON(http.StatusBadRequest, protocol.ValidationReply{Error: protocol.CodeValidationFailed,
			Errors: []protocol.FieldError{{Field: le.Field, Error: protocol.ErrTooLarge, Detail: ruleDetail(le)}},
			Limit:  le.Limit}), true
	case errors.Is(err, tasks.ErrQuota):
		return JSON(http.StatusTooManyRequests, protocol.ErrorReply{Error: protocol.CodeQueueQuota, Detail: ruleDetail(err)}), true
	}
	return Response{}, false
}

func fieldErr(field, detail string) Response {
	return fieldErrors(protocol.FieldError{Field: field, Error: protocol.ErrInvalidValue, Detail: detail})
}

// Listing page sizes: a request without limit gets DefaultTaskLimit
// tasks (large, so old clients that never paged still see everything a
// normal hub holds), and no request gets more than MaxTaskLimit.
const (
	DefaultTaskLimit = 1000
	MaxTaskLimit     = 1000
	// MaxBulkTasks bounds one bulk retry or cancel.
	MaxBulkTasks = 500
	maxQueryText = 200
)

// TaskList is the answer of GET /api/tasks and /api/tasks/dead-letter:
// the original's tasks and count, then the paging fields.
type TaskList struct {
	Tasks  []protocol.Task `json:"tasks"`
	Count  int             `json:"count"`
	Total  int             `json:"total"`
	Offset int             `json:"offset"`
	Limit  int             `json:"limit"`
	// NextOffset is the offset of the next page, null on the last one.
	NextOffset *int `json:"next_offset"`
	// Paused is what is paused (queued tasks it holds have "paused").
	Paused tasks.Paused `json:"paused"`
}

// taskStatuses are the values of the status filter.
var taskStatuses = []tasks.Status{tasks.StatusQueued, tasks.StatusAssigned, tasks.StatusCompleted,
	tasks.StatusCancelled, tasks.StatusDeadLetter, tasks.StatusWaiting, tasks.StatusScheduled}

// filter reads the listing query: status (or all), priority or lane (a lane name),
// assigned_to, agent (holder or any attempt), capability, submitted_by,
// q (text in id, description, last error), since and until (created_at,
// Unix ms), order (scheduling or newest), offset and limit. Unknown
// status, lane or order values are refused rather than ignored (the
// original dropped the filter, which listed everything).
func filter(r *Request) (tasks.Filter, *Response) {
	q := r.URL.Query()
	f := tasks.Filter{AssignedTo: q.Get("assigned_to"), Agent: q.Get("agent"), Capability: q.Get("capability"),
		SubmittedBy: q.Get("submitted_by"), Text: q.Get("q")}
	for _, name := range []string{"assigned_to", "agent", "capability", "submitted_by", "q"} {
		if len(q.Get(name)) > maxQueryText {
			bad := fieldErr(name, "at most 200 bytes")
			return f, &bad
		}
	}
	if s := q.Get("status"); s != "" && s != statusAll {
		if !slices.Contains(taskStatuses, tasks.Status(s)) {
			bad := fieldErr("status", "one of queued, assigned, completed, cancelled, dead_letter, waiting, scheduled, all")
			return f, &bad
		}
		f.Status = tasks.Status(s)
	}
	lane := cmp.Or(q.Get("lane"), q.Get("priority"))
	if lane != "" {
		p, ok := tasks.LaneByName(lane)
		if !ok {
			bad := fieldErr("lane", "one of urgent, high, normal, low")
			return f, &bad
		}
		f.Priority = &p
	}
	switch q.Get("order") {
	case "", "scheduling":
	case "newest":
		f.Newest = true
	default:
		bad := fieldErr("order", "scheduling or newest")
		return f, &bad
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"since", &f.CreatedFrom}, {"until", &f.CreatedTo}} {
		v, bad := QueryInt(r, p.name, 0)
		if bad != nil {
			return f, bad
		}
		*p.dst = max(v, 0)
	}
	off, bad := QueryInt(r, "offset", 0)
	if bad != nil {
		return f, bad
	}
	lim, bad := QueryLimit(r, DefaultTaskLimit, MaxTaskLimit)
	if bad != nil {
		return f, bad
	}
	f.Offset, f.Limit = int(max(off, 0)), lim
	return f, nil
}

// statusAll lists every task, dead letter included.
const statusAll = "all"

// list lists the queue table, as the original did, when no status is
// given; status=all adds the dead letter, status=dead_letter lists only
// it; archived=true lists the archive instead (ended tasks past the
// retention, with the same filters and pages).
func (t *Tasks) list(r *Request) Response {
	switch r.URL.Query().Get("archived") {
	case "", "false":
	case "true":
		return t.listWith(r, t.Queue.ListArchive)
	default:
		return fieldErr("archived", "true or false")
	}
	if r.URL.Query().Get("status") == "" {
		return t.listWith(r, t.Queue.List)
	}
	return t.listWith(r, t.Queue.Search)
}

func (t *Tasks) deadLetter(r *Request) Response {
	return t.listWith(r, t.Queue.ListDeadLetter)
}

func (t *Tasks) listWith(r *Request, find func(tasks.Filter) ([]*tasks.Task, int, error)) Response {
	f, bad := filter(r)
	if bad != nil {
		return *bad
	}
	ts, total, err := find(f)
	if err != nil {
		return storageErr(r, err)
	}
	out := TaskList{Tasks: tasks.WireList(ts), Count: len(ts), Total: total, Offset: f.Offset, Limit: f.Limit, Paused: t.Queue.PausedState()}
	if next := f.Offset + len(ts); next < total {
		out.NextOffset = &next
	}
	return JSON(http.StatusOK, out)
}

// BulkResult is one task's outcome in a bulk action.
type BulkResult struct {
	TaskID string `json:"task_id"`
	// Status is requeued or cancelled on success, else an error code:
	// task_not_found, task_not_retryable, task_not_cancellable,
	// storage_error.
	Status string `json:"status"`
	// State is the task's status when the action did not apply.
	State string `json:"state,omitempty"`
	// ErrorID names the hub log line of a storage_error.
	ErrorID string `json:"error_id,omitempty"`
}

// BulkResponse answers POST /api/tasks/bulk.
type BulkResponse struct {
	Action    string       `json:"action"`
	Succeeded int          `json:"succeeded"`
	Failed    int          `json:"failed"`
	Results   []BulkResult `json:"results"`
}

// bulk retries (dead letter) or cancels (queued, assigned) many tasks.
// Each task is handled on its own: one that cannot be acted on is
// reported and the others go on.
func (t *Tasks) bulk(r *Request) Response {
	b := BodyOf[protocol.PostTasksBulk](r)
	action := b.Action
	if action != "retry" && action != "cancel" {
		return fieldErr("action", "retry or cancel")
	}
	ids := b.TaskIDs
	if len(ids) == 0 || len(ids) > MaxBulkTasks {
		return fieldErr("task_ids", "between 1 and 500 task ids")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || len(id) > 64 {
			return fieldErr("task_ids", "task ids are 1 to 64 bytes")
		}
		if seen[id] {
			return fieldErr("task_ids", "duplicate task id "+id)
		}
		seen[id] = true
	}
	reason := b.Reason
	out := BulkResponse{Action: action, Results: make([]BulkResult, 0, len(ids))}
	for _, id := range ids {
		res := BulkResult{TaskID: id}
		var err error
		if action == "retry" {
			if _, err = t.Scheduler.RetryDeadLetter(id); err == nil {
				res.Status = "requeued"
			}
		} else {
			var holder string
			if _, holder, err = t.Scheduler.Cancel(id, r.ID.AgentID, true, reason); err == nil {
				res.Status = "cancelled"
				if holder != "" && t.NotifyCancel != nil {
					t.NotifyCancel(holder, id)
				}
			}
		}
		if err != nil {
			var se *tasks.StateError
			switch {
			case errors.Is(err, tasks.ErrNotFound):
				res.Status = protocol.CodeTaskNotFound
			case errors.As(err, &se) && action == "retry":
				res.Status, res.State = protocol.CodeTaskNotRetryable, string(se.Status)
			case errors.As(err, &se):
				res.Status, res.State = protocol.CodeTaskNotCancellable, string(se.Status)
			default:
				// The cause stays in the log, under the id the result
				// carries.
				res.Status, res.ErrorID = "storage_error", NewErrorID()
				r.logger().Error("bulk action failed", "event", "internal_error", "error_id", res.ErrorID,
					"action", action, "task_id", id, "err", err)
			}
			out.Failed++
		} else {
			out.Succeeded++
		}
		out.Results = append(out.Results, res)
	}
	return JSON(http.StatusOK, out)
}

func (t *Tasks) stats(*Request) Response { return JSON(http.StatusOK, t.Queue.Stats()) }

func (t *Tasks) get(r *Request) Response {
	id := r.PathValue("task_id")
	task, err := t.Queue.Get(id)
	if errors.Is(err, tasks.ErrNotFound) {
		return Err(http.StatusNotFound, protocol.CodeTaskNotFound, "task_id", id)
	}
	if err != nil {
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.TaskDetail{Task: task.Wire(), Dependents: t.Queue.Dependents(id)})
}

func (t *Tasks) retry(r *Request) Response {
	id := r.PathValue("task_id")
	if !r.ID.IsAdmin() {
		if task, err := t.Queue.Get(id); err == nil && task.SubmittedBy != r.ID.AgentID {
			return Err(http.StatusForbidden, "forbidden", "detail", "only the submitter or an admin may retry this task")
		}
	}
	task, err := t.Scheduler.RetryDeadLetter(id)
	var se *tasks.StateError
	switch {
	case errors.Is(err, tasks.ErrNotFound):
		return Err(http.StatusNotFound, protocol.CodeTaskNotFound, "task_id", id)
	case errors.As(err, &se):
		return stateRefusal(protocol.CodeTaskNotRetryable, se, "only a dead-lettered task can be retried")
	case err != nil:
		return storageErr(r, err)
	}
	return JSON(http.StatusOK, protocol.TaskRequeued{Status: "requeued", TaskID: id, Priority: task.Priority})
}

func (t *Tasks) cancel(r *Request) Response {
	id := r.PathValue("task_id")
	task, holder, err := t.Scheduler.Cancel(id, r.ID.AgentID, r.ID.IsAdmin(), BodyOf[protocol.PostTaskCancel](r).Reason)
	var se *tasks.StateError
	switch {
	case errors.Is(err, tasks.ErrNotFound):
		return Err(http.StatusNotFound, protocol.CodeTaskNotFound, "task_id", id)
	case errors.Is(err, tasks.ErrForbidden):
		return Err(http.StatusForbidden, "forbidden", "detail", "only the submitter or an admin may cancel this task")
	case errors.As(err, &se):
		return stateRefusal(protocol.CodeTaskNotCancellable, se, "the task already ended")
	case err != nil:
		return storageErr(r, err)
	}
	if holder != "" && t.NotifyCancel != nil {
		t.NotifyCancel(holder, id)
	}
	return JSON(http.StatusOK, protocol.TaskCancelledReply{Status: "cancelled", TaskID: id, WasAssignedTo: nullable(holder),
		Generation: task.Generation})
}

// pushTask is the original's test hook. Here it submits an urgent task
// that only that agent may take, so it is tracked like any other and its
// completion is accepted.
func (t *Tasks) pushTask(r *Request) Response {
	b := BodyOf[protocol.PostPushTask](r)
	agent := b.AgentID
	if _, ok := t.Presence.Get(agent); !ok {
		return Err(http.StatusNotFound, "agent_not_connected", "agent_id", agent)
	}
	task, err := t.Scheduler.Submit(tasks.SubmitParams{Description: b.Description,
		Metadata: b.Metadata, Priority: tasks.PriorityUrgent, TargetAgent: agent, SubmittedBy: r.ID.AgentID})
	if resp, refused := submitRefusal(err); refused {
		return resp
	}
	if err != nil {
		return storageErr(r, err)
	}
	t.Scheduler.Pass()
	return JSON(http.StatusOK, protocol.TaskPushed{Status: "pushed", TaskID: task.ID, AgentID: agent})
}

// stateRefusal is the 409 of a retry or cancel refused by the task's
// state, naming that state (and who cancelled it).
func stateRefusal(code string, se *tasks.StateError, detail string) Response {
	return JSON(http.StatusConflict, protocol.TaskStateRefusal{Error: code, TaskID: se.TaskID, Status: string(se.Status),
		CancelledBy: se.CancelledBy, Detail: detail})
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}
