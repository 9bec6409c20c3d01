package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/agentcom/agentcom/internal/protocol"
)

// BatchTask is one task of POST /api/tasks/batch: a client-chosen key and
// the task fields; DependsOn may name other keys of the batch.
type BatchTask = protocol.BatchTask

// SubmitBatch calls POST /api/tasks/batch. The answer lists the tasks in
// order, each with its key.
func (c *Client) SubmitBatch(ctx context.Context, ts []BatchTask) ([]BatchSubmitted, error) {
	var r struct {
		Tasks []BatchSubmitted `json:"tasks"`
	}
	err := c.post(ctx, "/api/tasks/batch", protocol.PostTaskBatch{Tasks: ts}, &r)
	return r.Tasks, err
}

// SubmitBatchRaw posts a batch body as given (a {"tasks": [...]} object).
func (c *Client) SubmitBatchRaw(ctx context.Context, body json.RawMessage) ([]BatchSubmitted, error) {
	var r struct {
		Tasks []BatchSubmitted `json:"tasks"`
	}
	err := c.post(ctx, "/api/tasks/batch", body, &r)
	return r.Tasks, err
}

// BatchSubmitted is one task of a batch answer.
type BatchSubmitted struct {
	Submitted
	Key string `json:"key"`
}

// Paused is the answer of GET /api/tasks/paused.
type Paused struct {
	Lanes        []string `json:"lanes"`
	Capabilities []string `json:"capabilities"`
}

// Paused calls GET /api/tasks/paused.
func (c *Client) Paused(ctx context.Context) (Paused, error) {
	var p Paused
	err := c.get(ctx, "/api/tasks/paused", &p)
	return p, err
}

// PauseResult is the answer of POST /api/tasks/pause and /resume.
type PauseResult struct {
	Changed bool   `json:"changed"`
	State   Paused `json:"state"`
}

// SetPaused calls POST /api/tasks/pause (pause) or /api/tasks/resume for
// a lane (kind "lane") or a capability (kind "capability").
func (c *Client) SetPaused(ctx context.Context, kind, name string, pause bool) (PauseResult, error) {
	path := "/api/tasks/resume"
	if pause {
		path = "/api/tasks/pause"
	}
	var r PauseResult
	var body protocol.PostPause
	switch kind {
	case "lane":
		body.Lane = name
	case "capability":
		body.Capability = name
	default:
		return r, fmt.Errorf("pause: kind %q is neither lane nor capability", kind)
	}
	err := c.post(ctx, path, body, &r)
	return r, err
}

// Schedule is a periodic schedule.
type Schedule struct {
	Name       string          `json:"name"`
	Cron       string          `json:"cron"`
	TimeZone   string          `json:"timezone"`
	Task       json.RawMessage `json:"task"`
	Paused     bool            `json:"paused"`
	CreatedBy  string          `json:"created_by"`
	CreatedAt  int64           `json:"created_at"`
	LastTick   int64           `json:"last_tick"`
	LastTaskID string          `json:"last_task_id,omitempty"`
	NextRun    int64           `json:"next_run"`
}

// ScheduleAdd is the body of POST /api/schedules, the hub's own type.
type ScheduleAdd = protocol.PostSchedule

// AddSchedule calls POST /api/schedules.
func (c *Client) AddSchedule(ctx context.Context, s ScheduleAdd) (Schedule, error) {
	var out Schedule
	err := c.post(ctx, "/api/schedules", s, &out)
	return out, err
}

// Schedules calls GET /api/schedules.
func (c *Client) Schedules(ctx context.Context) ([]Schedule, error) {
	var r struct {
		Schedules []Schedule `json:"schedules"`
	}
	err := c.get(ctx, "/api/schedules", &r)
	return r.Schedules, err
}

// ScheduleAction calls POST /api/schedules/NAME/ACTION (pause, resume)
// and returns the schedule.
func (c *Client) ScheduleAction(ctx context.Context, name, action string) (Schedule, error) {
	var out Schedule
	err := c.post(ctx, "/api/schedules/"+url.PathEscape(name)+"/"+action, protocol.Empty{}, &out)
	return out, err
}

// RunSchedule calls POST /api/schedules/NAME/run: one task at once.
func (c *Client) RunSchedule(ctx context.Context, name string) (Submitted, error) {
	var out Submitted
	err := c.post(ctx, "/api/schedules/"+url.PathEscape(name)+"/run", protocol.Empty{}, &out)
	return out, err
}

// RemoveSchedule calls DELETE /api/schedules/NAME.
func (c *Client) RemoveSchedule(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/api/schedules/"+url.PathEscape(name), nil, nil, nil)
}
