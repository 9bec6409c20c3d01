package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Workflow routes: batch submits, pauses and periodic schedules. The
// workflow fields of a single submit are read by taskParams.

// maxDependencyIDLen bounds one depends_on entry.
const maxDependencyIDLen = 128

// UniqueWhileActive is the unique_for value that holds a key while its
// task is active (also the default when unique_for is absent).
const UniqueWhileActive = "while_active"

// taskParams reads a task submission (POST /api/tasks, or one item of a
// batch whose field names get prefix). by is the submitter.
// has says whether the body held a field, for the rules that tell an
// empty value from an absent one.
func taskParams(b protocol.PostTask, has func(string) bool, by string, now time.Time, prefix string) (tasks.SubmitParams, *protocol.FieldError) {
	bad := func(field, format string, a ...any) *protocol.FieldError {
		return &protocol.FieldError{Field: prefix + field, Error: protocol.ErrInvalidValue, Detail: fmt.Sprintf(format, a...)}
	}
	p := tasks.SubmitParams{
		Description: b.Description, Metadata: b.Metadata,
		Priority: tasks.ParsePriority(b.Priority), NeededCapabilities: b.NeededCapabilities,
		TargetAgent: b.TargetAgent, SubmittedBy: by,
	}
	if p.TargetAgent == "" {
		// agentcom-submit.js --target puts the agent in metadata.
		if ta, ok := p.Metadata["target_agent"].(string); ok {
			p.TargetAgent = ta
		}
	}
	if b.MaxRetries != nil {
		n := int(*b.MaxRetries)
		if n < 0 {
			return p, bad("max_retries", "expected an integer >= 0")
		}
		p.MaxRetries = &n
	}
	if b.CompleteBy != nil {
		cb := *b.CompleteBy
		p.CompleteBy = &cb
	}
	// Unique tasks.
	p.UniqueKey = b.UniqueKey
	if uf := b.UniqueFor; uf != "" {
		if p.UniqueKey == "" {
			return p, bad("unique_for", "needs unique_key")
		}
		if uf != UniqueWhileActive && uf != "while active" {
			d, err := time.ParseDuration(uf)
			if err != nil || d <= 0 || d > tasks.MaxUniqueFor {
				return p, bad("unique_for", "a duration up to %s (e.g. \"10m\", \"24h\") or %q", days(tasks.MaxUniqueFor), UniqueWhileActive)
			}
			p.UniqueFor = d
		}
	}
	if has("unique_key") && p.UniqueKey == "" {
		return p, bad("unique_key", "must not be empty")
	}
	// Scheduled tasks.
	if has("run_at") && has("run_in") {
		return p, bad("run_in", "give run_at or run_in, not both")
	}
	switch v := b.RunAt.(type) {
	case nil:
	case json.Number:
		ms, err := v.Int64()
		if err != nil {
			return p, bad("run_at", "Unix milliseconds (an integer) or an RFC 3339 time")
		}
		p.RunAt = ms
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return p, bad("run_at", "an RFC 3339 time such as \"2026-01-02T15:04:05Z\" or Unix milliseconds")
		}
		p.RunAt = t.UnixMilli()
	default:
		return p, bad("run_at", "Unix milliseconds (an integer) or an RFC 3339 time")
	}
	if p.RunAt != 0 {
		if d := time.UnixMilli(p.RunAt).Sub(now); d > tasks.MaxRunAhead || d < -tasks.MaxRunAhead {
			return p, bad("run_at", "must be within %s of now", days(tasks.MaxRunAhead))
		}
	}
	if ri := b.RunIn; ri != "" {
		d, err := time.ParseDuration(ri)
		if err != nil || d <= 0 || d > tasks.MaxRunAhead {
			return p, bad("run_in", "a positive duration up to %s (e.g. \"90s\", \"2h\")", days(tasks.MaxRunAhead))
		}
		p.RunAt = now.Add(d).UnixMilli()
	}
	// Dependencies.
	p.DependsOn = b.DependsOn
	if len(p.DependsOn) > tasks.MaxDependencies {
		return p, bad("depends_on", "at most %d dependencies", tasks.MaxDependencies)
	}
	for i, d := range p.DependsOn {
		if d == "" || len(d) > maxDependencyIDLen {
			return p, bad(fmt.Sprintf("depends_on[%d]", i), "a task id of 1 to %d characters", maxDependencyIDLen)
		}
	}
	switch f := b.OnDependencyFailure; f {
	case "", tasks.OnDepFailureCancel:
	case tasks.OnDepFailureRun:
		p.OnDependencyFailure = f
	default:
		return p, bad("on_dependency_failure", "\"cancel\" (default) or \"run\"")
	}
	if has("on_dependency_failure") && len(p.DependsOn) == 0 {
		return p, bad("on_dependency_failure", "needs depends_on")
	}
	return p, nil
}

// days renders a whole number of days.
func days(d time.Duration) string { return fmt.Sprintf("%d days", int(d/(24*time.Hour))) }

// fieldResponse is a 400 for one field.
func fieldResponse(fe *protocol.FieldError) Response {
	return fieldErrors(*fe)
}

// submitErr maps a queue error of a submission.
func submitErr(r *Request, err error) Response {
	if resp, refused := submitRefusal(err); refused {
		return resp
	}
	var ie *tasks.InputError
	if errors.As(err, &ie) {
		return fieldResponse(&protocol.FieldError{Field: ie.Field, Error: protocol.ErrInvalidValue, Detail: ie.Detail})
	}
	return storageErr(r, err)
}

// submitted is the answer to a submission.
func submitted(t *tasks.Task) protocol.TaskSubmitted {
	return protocol.TaskSubmitted{Status: string(t.Status), TaskID: t.ID, Priority: t.Priority, CreatedAt: t.CreatedAt}
}

// batch handles POST /api/tasks/batch: {"tasks": [{"key": "a", ...task
// fields, "depends_on": ["a", "task-..."]}]}. Either every task is stored
// (one transaction) or none.
func (t *Tasks) batch(r *Request) Response {
	// Each item is validated on its own below, so that its errors name
	// it (tasks[i].field): the batch schema knows tasks only as present.
	raw, ok := r.Body["tasks"].([]any)
	if !ok || len(raw) == 0 || len(raw) > tasks.MaxBatch {
		return fieldResponse(&protocol.FieldError{Field: "tasks", Error: protocol.ErrInvalidValue,
			Detail: fmt.Sprintf("an array of 1 to %d task objects", tasks.MaxBatch)})
	}
	now := time.Now()
	items := make([]tasks.BatchItem, len(raw))
	for i, v := range raw {
		prefix := fmt.Sprintf("tasks[%d].", i)
		m, ok := v.(map[string]any)
		if !ok {
			return fieldResponse(&protocol.FieldError{Field: fmt.Sprintf("tasks[%d]", i), Error: protocol.ErrWrongType, Detail: "expected a task object"})
		}
		obj := protocol.Object(m)
		key, _ := obj["key"].(string)
		delete(obj, "key")
		b, err := protocol.DecodeBody[protocol.PostTask](obj)
		if ve := (*protocol.ValidationError)(nil); errors.As(err, &ve) {
			errs := make([]protocol.FieldError, len(ve.Errors))
			for j, fe := range ve.Errors {
				fe.Field = prefix + fe.Field
				errs[j] = fe
			}
			return fieldErrors(errs...)
		}
		p, fe := taskParams(b, obj.Has, r.ID.AgentID, now, prefix)
		if fe != nil {
			return fieldResponse(fe)
		}
		if resp, ok := verifyFields(b, obj.Has, &p, r.ID, prefix); !ok {
			return resp
		}
		items[i] = tasks.BatchItem{Key: key, Params: p}
	}
	ts, err := t.Scheduler.SubmitBatch(items)
	if err != nil {
		return submitErr(r, err)
	}
	out := make([]protocol.TaskSubmitted, len(ts))
	for i, task := range ts {
		out[i] = submitted(task)
		out[i].Key = &items[i].Key
	}
	return JSON(http.StatusCreated, protocol.BatchSubmitted{Tasks: out})
}

// pauseTarget reads {"lane": L} or {"capability": C}.
func pauseTarget(r *Request) (tasks.PauseKind, string, *Response) {
	b := BodyOf[protocol.PostPause](r)
	lane, capName := b.Lane, b.Capability
	switch {
	case lane != "" && capName != "", lane == "" && capName == "":
		resp := fieldResponse(&protocol.FieldError{Field: "lane", Error: protocol.ErrInvalidValue,
			Detail: "give exactly one of lane (urgent, high, normal, low) or capability"})
		return "", "", &resp
	case lane != "":
		if _, ok := tasks.LaneByName(lane); !ok {
			resp := fieldResponse(&protocol.FieldError{Field: "lane", Error: protocol.ErrInvalidValue,
				Detail: "one of urgent, high, normal, low", Value: lane})
			return "", "", &resp
		}
		return tasks.PauseLane, lane, nil
	}
	return tasks.PauseCapability, capName, nil
}

func (t *Tasks) pause(r *Request) Response  { return t.setPaused(r, true) }
func (t *Tasks) resume(r *Request) Response { return t.setPaused(r, false) }

func (t *Tasks) setPaused(r *Request, pause bool) Response {
	kind, name, bad := pauseTarget(r)
	if bad != nil {
		return *bad
	}
	var changed bool
	var err error
	if pause {
		changed, err = t.Scheduler.Pause(kind, name, r.ID.AgentID)
	} else {
		changed, err = t.Scheduler.Resume(kind, name, r.ID.AgentID)
	}
	if err != nil {
		return submitErr(r, err)
	}
	out := protocol.PauseChanged{Paused: pause, Changed: changed, State: t.Queue.PausedState()}
	if kind == tasks.PauseLane {
		out.Lane = name
	} else {
		out.Capability = name
	}
	return JSON(http.StatusOK, out)
}

func (t *Tasks) paused(*Request) Response { return JSON(http.StatusOK, t.Queue.PausedState()) }

// Schedules routes.

func (t *Tasks) addSchedule(r *Request) Response {
	b := BodyOf[protocol.PostSchedule](r)
	s := tasks.Schedule{Name: b.Name, Cron: b.Cron, TimeZone: b.Timezone,
		Task: tasks.ScheduleTask{Description: b.Description, Priority: tasks.ParsePriority(b.Priority),
			Metadata: b.Metadata, NeededCapabilities: b.NeededCapabilities, TargetAgent: b.TargetAgent}}
	if b.MaxRetries != nil {
		n := int(*b.MaxRetries)
		if n < 0 {
			return fieldErr("max_retries", "expected an integer >= 0")
		}
		s.Task.MaxRetries = &n
	}
	out, err := t.Queue.AddSchedule(s, r.ID.AgentID)
	if errors.Is(err, tasks.ErrScheduleExists) {
		return Err(http.StatusConflict, "schedule_exists", "name", s.Name)
	}
	if err != nil {
		return submitErr(r, err)
	}
	t.Scheduler.Wake()
	return JSON(http.StatusCreated, out)
}

func (t *Tasks) listSchedules(*Request) Response {
	ss := t.Queue.Schedules()
	return JSON(http.StatusOK, protocol.ScheduleList{Schedules: ss, Count: len(ss)})
}

func (t *Tasks) getSchedule(r *Request) Response {
	s, err := t.Queue.GetSchedule(r.PathValue("name"))
	if err != nil {
		return scheduleErr(r, err, r.PathValue("name"))
	}
	return JSON(http.StatusOK, s)
}

func (t *Tasks) pauseSchedule(r *Request) Response  { return t.setSchedulePaused(r, true) }
func (t *Tasks) resumeSchedule(r *Request) Response { return t.setSchedulePaused(r, false) }

func (t *Tasks) setSchedulePaused(r *Request, paused bool) Response {
	s, err := t.Queue.SetSchedulePaused(r.PathValue("name"), paused, r.ID.AgentID)
	if err != nil {
		return scheduleErr(r, err, r.PathValue("name"))
	}
	t.Scheduler.Wake()
	return JSON(http.StatusOK, s)
}

func (t *Tasks) removeSchedule(r *Request) Response {
	name := r.PathValue("name")
	if err := t.Queue.RemoveSchedule(name, r.ID.AgentID); err != nil {
		return scheduleErr(r, err, name)
	}
	return JSON(http.StatusOK, protocol.ScheduleRemoved{Status: "removed", Name: name})
}

func (t *Tasks) runSchedule(r *Request) Response {
	name := r.PathValue("name")
	task, err := t.Scheduler.RunScheduleNow(name, r.ID.AgentID)
	if err != nil {
		return scheduleErr(r, err, name)
	}
	out := submitted(task)
	out.Schedule = name
	return JSON(http.StatusCreated, out)
}

func scheduleErr(r *Request, err error, name string) Response {
	if errors.Is(err, tasks.ErrScheduleNotFound) {
		return Err(http.StatusNotFound, "schedule_not_found", "name", name)
	}
	return storageErr(r, err)
}
