package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/tasks"
)

// TestTaskShowArchived: task show finds an archived task and says so;
// task list --archived lists the archive, task list no longer has it.
func TestTaskShowArchived(t *testing.T) {
	var ms atomic.Int64
	ms.Store(time.Now().UnixMilli())
	now := func() time.Time { return time.UnixMilli(ms.Load()) }
	h := hubtest.Start(t, "", func(c *hub.Config) {
		c.Queue.Now = now
		c.TaskArchive = tasks.ArchiveConfig{Retention: time.Hour, Interval: time.Hour, Now: now}
	})
	st, resp := h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "old work", "target_agent": "nobody"})
	if st != 201 {
		t.Fatalf("submit: %d %v", st, resp)
	}
	id := resp["task_id"].(string)
	if st, body := h.Do("POST", "/api/tasks/"+id+"/cancel", h.AdminToken, map[string]any{}); st != 200 {
		t.Fatalf("cancel: %d %v", st, body)
	}
	ms.Add((2 * time.Hour).Milliseconds())
	if res, err := h.Archiver.RunOnce(context.Background()); err != nil || res.Moved != 1 {
		t.Fatalf("archive pass: %+v, %v", res, err)
	}
	env := map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken}
	if code, out, errs := runCmd(t, env, "task", "show", id); code != 0 || !strings.Contains(out, "archived") || !strings.Contains(out, "cancelled") {
		t.Fatalf("task show: %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := runCmd(t, env, "task", "list", "--archived"); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("task list --archived: %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := runCmd(t, env, "task", "list"); code != 0 || strings.Contains(out, id) {
		t.Fatalf("task list: %d\n%s\n%s", code, out, errs)
	}
}

// TestServeTaskRetentionRefused: a retention out of bounds, or zero, is a
// usage error, never "disabled".
func TestServeTaskRetentionRefused(t *testing.T) {
	for _, v := range []string{"0", "30m", "0d", "5000d", "soon"} {
		code, _, errs := runCmd(t, nil, "serve", "--data", t.TempDir(), "--task-retention", v)
		if code != 2 || !strings.Contains(errs, "task-retention") {
			t.Errorf("--task-retention %s: %d %s", v, code, errs)
		}
	}
	code, _, errs := runCmd(t, map[string]string{"AGENTCOM_TASK_RETENTION": "0s"}, "serve", "--data", t.TempDir())
	if code != 2 || !strings.Contains(errs, "task-retention") {
		t.Errorf("AGENTCOM_TASK_RETENTION=0s: %d %s", code, errs)
	}
}
