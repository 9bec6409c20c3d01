package api

import (
	"errors"
	"net/http"

	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/ratelimit"
	"github.com/agentcom/agentcom/internal/scheduler"
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
}

// Routes returns the task route table.
func (t *Tasks) Routes() []Route {
	return []Route{
		{Method: "POST", Path: "/api/tasks", Access: Agent, Handler: t.submit, Class: ratelimit.ClassTasks},
		{Method: "GET", Path: "/api/tasks", Access: AnyToken, Handler: t.list},
		{Method: "GET", Path: "/api/tasks/dead-letter", Access: AnyToken, Handler: t.deadLetter},
		{Method: "GET", Path: "/api/tasks/stats", Access: AnyToken, Handler: t.stats},
		{Method: "GET", Path: "/api/tasks/{task_id}", Access: AnyToken, Handler: t.get},
		{Method: "POST", Path: "/api/tasks/{task_id}/retry", Access: Agent, Handler: t.retry},
		{Method: "POST", Path: "/api/tasks/{task_id}/cancel", Access: Agent, Handler: t.cancel},
		{Method: "POST", Path: "/api/admin/push-task", Access: Admin, Handler: t.pushTask},
	}
}

func (t *Tasks) submit(r *Request) Response {
	if resp, ok := t.Server.Validate(r, protocol.BodyPostTask); !ok {
		return resp
	}
	p := tasks.SubmitParams{
		Description: r.Body.String("description"), Metadata: r.Body.Map("metadata"),
		Priority: tasks.ParsePriority(r.Body.Raw("priority")), NeededCapabilities: r.Body.Strings("needed_capabilities"),
		TargetAgent: r.Body.String("target_agent"), SubmittedBy: r.ID.AgentID,
	}
	if p.TargetAgent == "" {
		// agentcom-submit.js --target puts the agent in metadata.
		if ta, ok := p.Metadata["target_agent"].(string); ok {
			p.TargetAgent = ta
		}
	}
	if r.Body.Has("max_retries") {
		n := int(r.Body.Int("max_retries"))
		if n < 0 {
			return fieldErr("max_retries", "expected an integer >= 0")
		}
		p.MaxRetries = &n
	}
	if r.Body.Has("complete_by") {
		cb := r.Body.Int("complete_by")
		p.CompleteBy = &cb
	}
	task, err := t.Scheduler.Submit(p)
	if resp, refused := submitRefusal(err); refused {
		return resp
	}
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusCreated, map[string]any{"status": "queued", "task_id": task.ID,
		"priority": task.Priority, "created_at": task.CreatedAt})
}

// submitRefusal answers a submission the queue refused by its limits: a
// field too large (400 validation_failed, error "too_large") or the
// submitter's quota of unfinished tasks (429 queue_quota_exceeded).
func submitRefusal(err error) (Response, bool) {
	var le *tasks.LimitError
	switch {
	case errors.As(err, &le):
		return JSON(http.StatusBadRequest, map[string]any{"error": protocol.CodeValidationFailed,
			"errors": []protocol.FieldError{{Field: le.Field, Error: protocol.ErrTooLarge, Detail: le.Error()}},
			"limit":  le.Limit}), true
	case errors.Is(err, tasks.ErrQuota):
		return Err(http.StatusTooManyRequests, tasks.ErrQuota.Error(), "detail", err.Error()), true
	}
	return Response{}, false
}

func fieldErr(field, detail string) Response {
	return JSON(http.StatusBadRequest, map[string]any{"error": protocol.CodeValidationFailed,
		"errors": []protocol.FieldError{{Field: field, Error: protocol.ErrInvalidValue, Detail: detail}}})
}

// filter reads the listing query: status, priority (a lane name), assigned_to,
// offset and limit. Unknown status or priority values are ignored, as the
// original did.
func filter(r *Request) (tasks.Filter, *Response) {
	q := r.URL.Query()
	f := tasks.Filter{AssignedTo: q.Get("assigned_to")}
	switch s := tasks.Status(q.Get("status")); s {
	case tasks.StatusQueued, tasks.StatusAssigned, tasks.StatusCompleted, tasks.StatusCancelled, tasks.StatusDeadLetter:
		f.Status = s
	}
	if p, ok := tasks.LaneByName(q.Get("priority")); ok {
		f.Priority = &p
	}
	off, bad := QueryInt(r, "offset", 0)
	if bad != nil {
		return f, bad
	}
	lim, bad := QueryInt(r, "limit", 0)
	if bad != nil {
		return f, bad
	}
	f.Offset, f.Limit = int(max(off, 0)), int(max(lim, 0))
	return f, nil
}

func (t *Tasks) list(r *Request) Response {
	f, bad := filter(r)
	if bad != nil {
		return *bad
	}
	if f.Status == tasks.StatusDeadLetter {
		return JSON(http.StatusOK, map[string]any{"tasks": []any{}, "count": 0, "total": 0})
	}
	ts, total, err := t.Queue.List(f)
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"tasks": ts, "count": len(ts), "total": total})
}

func (t *Tasks) deadLetter(r *Request) Response {
	f, bad := filter(r)
	if bad != nil {
		return *bad
	}
	ts, total, err := t.Queue.ListDeadLetter(f)
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"tasks": ts, "count": len(ts), "total": total})
}

func (t *Tasks) stats(*Request) Response { return JSON(http.StatusOK, t.Queue.Stats()) }

func (t *Tasks) get(r *Request) Response {
	id := r.PathValue("task_id")
	task, err := t.Queue.Get(id)
	if errors.Is(err, tasks.ErrNotFound) {
		return Err(http.StatusNotFound, "task_not_found", "task_id", id)
	}
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, task)
}

func (t *Tasks) retry(r *Request) Response {
	id := r.PathValue("task_id")
	if !r.ID.IsAdmin() {
		if task, err := t.Queue.Get(id); err == nil && task.SubmittedBy != r.ID.AgentID {
			return Err(http.StatusForbidden, "forbidden", "detail", "only the submitter or an admin may retry this task")
		}
	}
	task, err := t.Scheduler.RetryDeadLetter(id)
	if errors.Is(err, tasks.ErrNotFound) {
		return Err(http.StatusNotFound, "task_not_found", "task_id", id)
	}
	if err != nil {
		return storageErr(err)
	}
	return JSON(http.StatusOK, map[string]any{"status": "requeued", "task_id": id, "priority": task.Priority})
}

func (t *Tasks) cancel(r *Request) Response {
	if resp, ok := t.Server.Validate(r, protocol.BodyTaskCancel); !ok {
		return resp
	}
	id := r.PathValue("task_id")
	task, holder, err := t.Scheduler.Cancel(id, r.ID.AgentID, r.ID.IsAdmin(), r.Body.String("reason"))
	switch {
	case errors.Is(err, tasks.ErrNotFound):
		return Err(http.StatusNotFound, "task_not_found", "task_id", id)
	case errors.Is(err, tasks.ErrForbidden):
		return Err(http.StatusForbidden, "forbidden", "detail", "only the submitter or an admin may cancel this task")
	case errors.Is(err, tasks.ErrInvalidState):
		return Err(http.StatusConflict, "task_not_cancellable", "task_id", id, "detail", "the task already ended")
	case err != nil:
		return storageErr(err)
	}
	if holder != "" && t.NotifyCancel != nil {
		t.NotifyCancel(holder, id)
	}
	return JSON(http.StatusOK, map[string]any{"status": "cancelled", "task_id": id, "was_assigned_to": nullable(holder),
		"generation": task.Generation})
}

// pushTask is the original's test hook. Here it submits an urgent task
// that only that agent may take, so it is tracked like any other and its
// completion is accepted.
func (t *Tasks) pushTask(r *Request) Response {
	if resp, ok := t.Server.Validate(r, protocol.BodyPushTask); !ok {
		return resp
	}
	agent := r.Body.String("agent_id")
	if _, ok := t.Presence.Get(agent); !ok {
		return Err(http.StatusNotFound, "agent_not_connected", "agent_id", agent)
	}
	task, err := t.Scheduler.Submit(tasks.SubmitParams{Description: r.Body.String("description"),
		Metadata: r.Body.Map("metadata"), Priority: tasks.PriorityUrgent, TargetAgent: agent, SubmittedBy: r.ID.AgentID})
	if resp, refused := submitRefusal(err); refused {
		return resp
	}
	if err != nil {
		return storageErr(err)
	}
	t.Scheduler.Pass()
	return JSON(http.StatusOK, map[string]any{"status": "pushed", "task_id": task.ID, "agent_id": agent})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
