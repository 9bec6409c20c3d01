package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/internal/api"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Result frames of the dashboard's actions. Fields are in the
// alphabetical order of their JSON names, as the maps they replace
// encoded. Error is a stable code (or an input error's designed detail),
// never an error's text; ErrorID names the hub log line of an internal
// failure.
type (
	pongFrame struct {
		Ref       string `json:"ref,omitempty"`
		Timestamp int64  `json:"timestamp"`
		Type      string `json:"type"`
	}
	timelineFrame struct {
		AgentID string `json:"agent_id"`
		Entries any    `json:"entries"`
		Ref     string `json:"ref,omitempty"`
		Type    string `json:"type"`
	}
	pauseResult struct {
		Error  string `json:"error,omitempty"`
		Kind   string `json:"kind"`
		Name   string `json:"name"`
		Ref    string `json:"ref,omitempty"`
		Status string `json:"status"`
		Type   string `json:"type"`
	}
	scheduleResult struct {
		Action string `json:"action"`
		Error  string `json:"error,omitempty"`
		Name   string `json:"name"`
		Ref    string `json:"ref,omitempty"`
		Status string `json:"status"`
		TaskID string `json:"task_id,omitempty"`
		Type   string `json:"type"`
	}
	retryResult struct {
		Error   string `json:"error,omitempty"`
		ErrorID string `json:"error_id,omitempty"`
		Ref     string `json:"ref,omitempty"`
		Status  string `json:"status"`
		TaskID  string `json:"task_id"`
		Type    string `json:"type"`
	}
	cancelResult struct {
		Error         string  `json:"error,omitempty"`
		ErrorID       string  `json:"error_id,omitempty"`
		Ref           string  `json:"ref,omitempty"`
		Status        string  `json:"status"`
		TaskID        string  `json:"task_id"`
		Type          string  `json:"type"`
		WasAssignedTo *string `json:"was_assigned_to"`
	}
	backupResult struct {
		Error   string `json:"error,omitempty"`
		ErrorID string `json:"error_id,omitempty"`
		Ref     string `json:"ref,omitempty"`
		Result  any    `json:"result"`
		Status  string `json:"status"`
		Type    string `json:"type"`
	}
	compactResult struct {
		Error   string  `json:"error,omitempty"`
		ErrorID string  `json:"error_id,omitempty"`
		Force   bool    `json:"force"`
		Ref     string  `json:"ref,omitempty"`
		Result  any     `json:"result"`
		Status  string  `json:"status"`
		Table   *string `json:"table"`
		Type    string  `json:"type"`
	}
	restoreResult struct {
		Backup  *string `json:"backup"`
		DryRun  bool    `json:"dry_run"`
		Error   string  `json:"error,omitempty"`
		ErrorID string  `json:"error_id,omitempty"`
		Ref     string  `json:"ref,omitempty"`
		Result  any     `json:"result"`
		Status  string  `json:"status"`
		Table   string  `json:"table"`
		Type    string  `json:"type"`
	}
)

// Stable error codes of the action results.
const (
	codeRetryFailed         = "retry_failed"
	codeCancelFailed        = "cancel_failed"
	codeStorageActionFailed = "storage_action_failed"
	// codeStorageUnavailable is ErrStorageUnavailable's text.
	codeStorageUnavailable = "storage_unavailable"
)

// internalFailure logs an action's error under a new error_id and
// returns the id for the result frame.
func (d *Dashboard) internalFailure(action, code string, err error, attrs ...any) string {
	id := api.NewErrorID()
	d.log.Error("dashboard action failed", append([]any{"event", "internal_error", "error_id", id, "action", action,
		"code", code, "err", err}, attrs...)...)
	return id
}

// handle answers one validated client frame.
func (c *client) handle(ctx context.Context, f clientFrame) {
	if _, acts := frameKind(f.Type); acts && !c.canAct {
		fr := errorFrame(f.Type, f.Ref, protocol.CodeForbidden, "this dashboard token may only watch; actions need an admin token", nil)
		if f.TaskID != "" {
			fr.TaskID = f.TaskID
		}
		c.send(fr)
		return
	}
	switch f.Type {
	case FrameRequestSnapshot:
		c.sendSnapshot(ctx)
	case FramePing:
		c.send(pongFrame{Type: "pong", Timestamp: time.Now().UnixMilli(), Ref: f.Ref})
	case FrameAgentTimeline:
		c.send(timelineFrame{Type: "agent_timeline", AgentID: f.AgentID, Entries: c.d.agg.Timeline(f.AgentID), Ref: f.Ref})
	case FrameRetryTask:
		r := c.d.retryTask(f.TaskID)
		r.Ref = f.Ref
		c.send(r)
	case FrameCancelTask:
		r := c.d.cancelTask(f.TaskID, c.id.AgentID, f.Reason)
		r.Ref = f.Ref
		c.send(r)
	case FrameBackupNow, FrameCompact, FrameRestore:
		c.storageAction(f)
	case FramePause, FrameResume:
		r := c.d.setPaused(f, c.id.AgentID)
		r.Ref = f.Ref
		c.send(r)
	case FrameSchedule:
		r := c.d.scheduleAction(f.Name, f.Action, c.id.AgentID)
		r.Ref = f.Ref
		c.send(r)
	}
}

// setPaused pauses or resumes a lane or capability: pause_result.
func (d *Dashboard) setPaused(f clientFrame, by string) pauseResult {
	kind, name := tasks.PauseLane, f.Lane
	if f.Capability != "" {
		kind, name = tasks.PauseCapability, f.Capability
	}
	r := pauseResult{Type: "pause_result", Kind: string(kind), Name: name}
	var changed bool
	var err error
	if f.Type == FramePause {
		changed, err = d.sched.Pause(kind, name, by)
	} else {
		changed, err = d.sched.Resume(kind, name, by)
	}
	switch {
	case err != nil:
		r.Status, r.Error = "error", d.actionError(f.Type, err)
	case !changed:
		r.Status = "unchanged"
	case f.Type == FramePause:
		r.Status = "paused"
	default:
		r.Status = "resumed"
	}
	return r
}

// scheduleAction pauses, resumes, runs or removes a schedule:
// schedule_result.
func (d *Dashboard) scheduleAction(name, action, by string) scheduleResult {
	r := scheduleResult{Type: "schedule_result", Name: name, Action: action}
	var err error
	switch action {
	case "pause", "resume":
		_, err = d.sched.SetSchedulePaused(name, action == "pause", by)
	case "run":
		var t *tasks.Task
		if t, err = d.sched.RunScheduleNow(name, by); err == nil {
			r.TaskID = t.ID
		}
	case "remove":
		err = d.sched.RemoveSchedule(name, by)
	}
	switch {
	case err == nil:
		r.Status = "ok"
	case errors.Is(err, tasks.ErrScheduleNotFound):
		r.Status = "not_found"
	default:
		r.Status, r.Error = "error", d.actionError("schedule_"+action, err)
	}
	return r
}

// actionError is the client's text of a failed action: an input error's
// detail, else a stable code (the cause is logged with an error_id).
func (d *Dashboard) actionError(action string, err error) string {
	var ie *tasks.InputError
	if errors.As(err, &ie) {
		return ie.Detail
	}
	d.internalFailure(action, "storage_error", err)
	return "storage_error"
}

// retryTask requeues a dead-letter task: the original's retry_result.
func (d *Dashboard) retryTask(id string) retryResult {
	r := retryResult{Type: "retry_result", TaskID: id}
	_, err := d.sched.RetryDeadLetter(id)
	switch {
	case err == nil:
		r.Status = "requeued"
	case errors.Is(err, tasks.ErrNotFound), errors.Is(err, tasks.ErrInvalidState):
		// The original answers not_found for a task that exists but is
		// not dead-lettered; its dashboard client knows only that.
		r.Status = "not_found"
	default:
		r.Status, r.Error = "error", codeRetryFailed
		r.ErrorID = d.internalFailure(FrameRetryTask, codeRetryFailed, err, "task_id", id)
	}
	return r
}

// cancelTask cancels a queued or running task, telling its holder.
func (d *Dashboard) cancelTask(id, by, reason string) cancelResult {
	if reason == "" {
		reason = "cancelled from the dashboard"
	}
	r := cancelResult{Type: "cancel_result", TaskID: id}
	_, holder, err := d.sched.Cancel(id, by, true, reason)
	switch {
	case err == nil:
		r.Status = "cancelled"
		if holder != "" {
			r.WasAssignedTo = &holder
			if d.notifyCancel != nil {
				d.notifyCancel(holder, id)
			}
		}
	case errors.Is(err, tasks.ErrNotFound):
		r.Status = "not_found"
	case errors.Is(err, tasks.ErrInvalidState):
		r.Status = "not_cancellable"
	default:
		r.Status, r.Error = "error", codeCancelFailed
		r.ErrorID = d.internalFailure(FrameCancelTask, codeCancelFailed, err, "task_id", id)
	}
	return r
}

// storageAction runs a backup, compaction or restore off the socket's
// reader (they take seconds), one at a time per socket, and replies with
// the result frame.
func (c *client) storageAction(f clientFrame) {
	d := c.d
	if d.storage == nil {
		c.send(errorFrame(f.Type, f.Ref, codeStorageUnavailable, "this hub has no storage coordinator", nil))
		return
	}
	if !c.storageBusy.CompareAndSwap(false, true) {
		c.send(errorFrame(f.Type, f.Ref, "busy", "a storage action started from this page is still running", nil))
		return
	}
	if !d.actions.add() {
		c.storageBusy.Store(false)
		c.send(errorFrame(f.Type, f.Ref, codeStorageUnavailable, "hub shutting down", nil))
		return
	}
	go func() {
		defer d.actions.done()
		ctx, cancel := context.WithTimeout(d.runCtx, d.cfg.ActionTimeout)
		defer cancel()
		res := d.runStorage(ctx, f)
		// Free the socket's slot before answering: a page that sends its
		// next action on receipt of this result must not be told "busy".
		c.storageBusy.Store(false)
		c.send(res)
	}()
}

// runStorage calls the coordinator and builds the result frame.
func (d *Dashboard) runStorage(ctx context.Context, f clientFrame) any {
	var (
		res any
		err error
	)
	switch f.Type {
	case FrameBackupNow:
		res, err = d.storage.Backup(ctx)
	case FrameCompact:
		res, err = d.storage.Compact(ctx, f.Table, f.Force)
	case FrameRestore:
		res, err = d.storage.Restore(ctx, f.Table, f.Backup, f.DryRun)
	}
	d.log.Info("storage action from dashboard", "event", "dashboard_storage_action",
		"action", f.Type, "table", f.Table, "dry_run", f.DryRun, "failed", err != nil)
	d.agg.KickStorage()
	status, code, errID := "ok", "", ""
	if err != nil {
		status, code = "error", codeStorageActionFailed
		errID = d.internalFailure(f.Type, code, err, "table", f.Table)
	}
	result := toJSONSafe(res)
	switch f.Type {
	case FrameBackupNow:
		return backupResult{Type: "backup_result", Result: result, Status: status, Error: code, ErrorID: errID, Ref: f.Ref}
	case FrameCompact:
		return compactResult{Type: "compact_result", Table: nullable(f.Table), Force: f.Force, Result: result,
			Status: status, Error: code, ErrorID: errID, Ref: f.Ref}
	}
	return restoreResult{Type: "restore_result", Table: f.Table, Backup: nullable(f.Backup), DryRun: f.DryRun, Result: result,
		Status: status, Error: code, ErrorID: errID, Ref: f.Ref}
}

// toJSONSafe returns v encoded, or its printed form when it does not
// encode, so a result never breaks the frame.
func toJSONSafe(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return json.RawMessage(b)
}
