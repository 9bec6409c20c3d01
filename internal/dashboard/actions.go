package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/tasks"
)

// handle answers one validated client frame.
func (c *client) handle(ctx context.Context, f clientFrame) {
	if _, acts := frameKind(f.Type); acts && !c.canAct {
		fr := errorFrame(f.Type, f.Ref, protocol.CodeForbidden, "this dashboard token may only watch; actions need an admin token", nil)
		if f.TaskID != "" {
			fr["task_id"] = f.TaskID
		}
		c.send(fr)
		return
	}
	switch f.Type {
	case FrameRequestSnapshot:
		c.sendSnapshot(ctx)
	case FramePing:
		c.send(withRef(map[string]any{"type": "pong", "timestamp": time.Now().UnixMilli()}, f.Ref))
	case FrameAgentTimeline:
		c.send(withRef(map[string]any{"type": "agent_timeline", "agent_id": f.AgentID, "entries": c.d.agg.Timeline(f.AgentID)}, f.Ref))
	case FrameRetryTask:
		c.send(withRef(c.d.retryTask(f.TaskID), f.Ref))
	case FrameCancelTask:
		c.send(withRef(c.d.cancelTask(f.TaskID, c.id.AgentID, f.Reason), f.Ref))
	case FrameBackupNow, FrameCompact, FrameRestore:
		c.storageAction(f)
	case FramePause, FrameResume:
		c.send(withRef(c.d.setPaused(f, c.id.AgentID), f.Ref))
	case FrameSchedule:
		c.send(withRef(c.d.scheduleAction(f.Name, f.Action, c.id.AgentID), f.Ref))
	}
}

// setPaused pauses or resumes a lane or capability: pause_result.
func (d *Dashboard) setPaused(f clientFrame, by string) map[string]any {
	kind, name := tasks.PauseLane, f.Lane
	if f.Capability != "" {
		kind, name = tasks.PauseCapability, f.Capability
	}
	r := map[string]any{"type": "pause_result", "kind": kind, "name": name}
	var changed bool
	var err error
	if f.Type == FramePause {
		changed, err = d.sched.Pause(kind, name, by)
	} else {
		changed, err = d.sched.Resume(kind, name, by)
	}
	switch {
	case err != nil:
		r["status"], r["error"] = "error", actionError(err)
	case !changed:
		r["status"] = "unchanged"
	case f.Type == FramePause:
		r["status"] = "paused"
	default:
		r["status"] = "resumed"
	}
	return r
}

// scheduleAction pauses, resumes, runs or removes a schedule:
// schedule_result.
func (d *Dashboard) scheduleAction(name, action, by string) map[string]any {
	r := map[string]any{"type": "schedule_result", "name": name, "action": action}
	var err error
	switch action {
	case "pause", "resume":
		_, err = d.sched.SetSchedulePaused(name, action == "pause", by)
	case "run":
		var t *tasks.Task
		if t, err = d.sched.RunScheduleNow(name, by); err == nil {
			r["task_id"] = t.ID
		}
	case "remove":
		err = d.sched.RemoveSchedule(name, by)
	}
	switch {
	case err == nil:
		r["status"] = "ok"
	case errors.Is(err, tasks.ErrScheduleNotFound):
		r["status"] = "not_found"
	default:
		r["status"], r["error"] = "error", actionError(err)
	}
	return r
}

// actionError is the client's text of a failed action: an input error's
// detail, else a stable code (storage details stay in the hub's log).
func actionError(err error) string {
	var ie *tasks.InputError
	if errors.As(err, &ie) {
		return ie.Detail
	}
	return "storage_error"
}

// retryTask requeues a dead-letter task: the original's retry_result.
func (d *Dashboard) retryTask(id string) map[string]any {
	r := map[string]any{"type": "retry_result", "task_id": id}
	_, err := d.sched.RetryDeadLetter(id)
	switch {
	case err == nil:
		r["status"] = "requeued"
	case errors.Is(err, tasks.ErrNotFound), errors.Is(err, tasks.ErrInvalidState):
		// The original answers not_found for a task that exists but is
		// not dead-lettered; its dashboard client knows only that.
		r["status"] = "not_found"
	default:
		r["status"], r["error"] = "error", err.Error()
	}
	return r
}

// cancelTask cancels a queued or running task, telling its holder.
func (d *Dashboard) cancelTask(id, by, reason string) map[string]any {
	if reason == "" {
		reason = "cancelled from the dashboard"
	}
	r := map[string]any{"type": "cancel_result", "task_id": id, "was_assigned_to": nil}
	_, holder, err := d.sched.Cancel(id, by, true, reason)
	switch {
	case err == nil:
		r["status"] = "cancelled"
		if holder != "" {
			r["was_assigned_to"] = holder
			if d.notifyCancel != nil {
				d.notifyCancel(holder, id)
			}
		}
	case errors.Is(err, tasks.ErrNotFound):
		r["status"] = "not_found"
	case errors.Is(err, tasks.ErrInvalidState):
		r["status"] = "not_cancellable"
	default:
		r["status"], r["error"] = "error", err.Error()
	}
	return r
}

// storageAction runs a backup, compaction or restore off the socket's
// reader (they take seconds), one at a time per socket, and replies with
// the result frame.
func (c *client) storageAction(f clientFrame) {
	d := c.d
	if d.storage == nil {
		c.send(errorFrame(f.Type, f.Ref, ErrStorageUnavailable.Error(), "this hub has no storage coordinator", nil))
		return
	}
	if !c.storageBusy.CompareAndSwap(false, true) {
		c.send(errorFrame(f.Type, f.Ref, "busy", "a storage action started from this page is still running", nil))
		return
	}
	if !d.actions.add() {
		c.storageBusy.Store(false)
		c.send(errorFrame(f.Type, f.Ref, ErrStorageUnavailable.Error(), "hub shutting down", nil))
		return
	}
	go func() {
		defer d.actions.done()
		ctx, cancel := context.WithTimeout(d.runCtx, d.cfg.ActionTimeout)
		defer cancel()
		res := withRef(d.runStorage(ctx, f), f.Ref)
		// Free the socket's slot before answering: a page that sends its
		// next action on receipt of this result must not be told "busy".
		c.storageBusy.Store(false)
		c.send(res)
	}()
}

// runStorage calls the coordinator and builds the result frame.
func (d *Dashboard) runStorage(ctx context.Context, f clientFrame) map[string]any {
	var (
		res any
		err error
		r   map[string]any
	)
	switch f.Type {
	case FrameBackupNow:
		r = map[string]any{"type": "backup_result"}
		res, err = d.storage.Backup(ctx)
	case FrameCompact:
		r = map[string]any{"type": "compact_result", "table": nullable(f.Table), "force": f.Force}
		res, err = d.storage.Compact(ctx, f.Table, f.Force)
	case FrameRestore:
		r = map[string]any{"type": "restore_result", "table": f.Table, "backup": nullable(f.Backup), "dry_run": f.DryRun}
		res, err = d.storage.Restore(ctx, f.Table, f.Backup, f.DryRun)
	}
	d.log.Info("storage action from dashboard", "event", "dashboard_storage_action",
		"action", f.Type, "table", f.Table, "dry_run", f.DryRun, "err", err)
	d.agg.KickStorage()
	r["result"] = toJSONSafe(res)
	if err != nil {
		r["status"], r["error"] = "error", err.Error()
	} else {
		r["status"] = "ok"
	}
	return r
}

func withRef(m map[string]any, ref string) map[string]any {
	if ref != "" {
		m["ref"] = ref
	}
	return m
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
