package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
)

// Health is the answer of GET /health.
type Health struct {
	Status          string `json:"status"`
	Service         string `json:"service"`
	AgentsConnected int    `json:"agents_connected"`
	Version         string `json:"version,omitempty"`
}

// Health calls GET /health (no auth).
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.get(ctx, "/health", &h)
	return h, err
}

// Agent is one connected agent of GET /api/agents.
type Agent struct {
	AgentID      string   `json:"agent_id"`
	Name         string   `json:"name"`
	Status       string   `json:"status"`
	Capabilities []string `json:"capabilities"`
	ConnectedAt  int64    `json:"connected_at"`
	LastSeen     int64    `json:"last_seen,omitempty"`
	FSMState     string   `json:"fsm_state"`
}

// Agents calls GET /api/agents: the agents connected right now.
func (c *Client) Agents(ctx context.Context) ([]Agent, error) {
	var r struct {
		Agents []Agent `json:"agents"`
	}
	err := c.get(ctx, "/api/agents", &r)
	return r.Agents, err
}

// Registration is the answer of POST /api/onboard/register.
type Registration struct {
	AgentID     string  `json:"agent_id"`
	Token       string  `json:"token"`
	HubWSURL    string  `json:"hub_ws_url"`
	HubAPIURL   string  `json:"hub_api_url"`
	DefaultRepo *string `json:"default_repo"`
}

// Register calls POST /api/onboard/register for agentID. A non-empty
// joinSecret is sent both in the body field "join_secret" and in the
// X-Join-Secret header, so hubs that read either accept it. A taken name
// answers 409 (IsConflict).
func (c *Client) Register(ctx context.Context, agentID, joinSecret string) (Registration, error) {
	body := protocol.PostOnboardRegister{AgentID: agentID, JoinSecret: joinSecret}
	var h http.Header
	if joinSecret != "" {
		h = http.Header{"X-Join-Secret": {joinSecret}}
	}
	var r Registration
	err := c.Do(ctx, http.MethodPost, "/api/onboard/register", body, &r, h)
	return r, err
}

// TaskSubmit is the body of POST /api/tasks, the hub's own type. Zero
// optional fields are left out so the hub applies its defaults; pointers
// let an explicit 0 be sent. Priority is a lane name or number, RunAt
// Unix milliseconds.
type TaskSubmit = protocol.PostTask

// Submitted is the answer of POST /api/tasks.
type Submitted struct {
	Status    string `json:"status"`
	TaskID    string `json:"task_id"`
	Priority  int    `json:"priority"`
	CreatedAt int64  `json:"created_at"`
	// Duplicate: a task holding the same unique_key was returned.
	Duplicate bool `json:"duplicate,omitempty"`
}

// SubmitTask calls POST /api/tasks.
func (c *Client) SubmitTask(ctx context.Context, t TaskSubmit) (Submitted, error) {
	var r Submitted
	err := c.post(ctx, "/api/tasks", t, &r)
	return r, err
}

// TaskEvent is one entry of a task's history (newest first).
type TaskEvent struct {
	Event     string          `json:"event"`
	Timestamp int64           `json:"timestamp"`
	Details   json.RawMessage `json:"details,omitempty"`
}

// Task is the hub's task object (TaskJSON). Fields whose type the original
// hub does not enforce are kept raw.
type Task struct {
	ID                 string          `json:"id"`
	Description        json.RawMessage `json:"description,omitempty"`
	Metadata           json.RawMessage `json:"metadata,omitempty"`
	Priority           int             `json:"priority"`
	Status             string          `json:"status"`
	AssignedTo         *string         `json:"assigned_to"`
	AssignedAt         *int64          `json:"assigned_at"`
	Generation         int64           `json:"generation"`
	RetryCount         int             `json:"retry_count"`
	MaxRetries         json.RawMessage `json:"max_retries,omitempty"`
	NeededCapabilities json.RawMessage `json:"needed_capabilities,omitempty"`
	LastError          json.RawMessage `json:"last_error,omitempty"`
	CompleteBy         json.RawMessage `json:"complete_by,omitempty"`
	Result             json.RawMessage `json:"result,omitempty"`
	TokensUsed         json.RawMessage `json:"tokens_used,omitempty"`
	SubmittedBy        string          `json:"submitted_by"`
	TargetAgent        *string         `json:"target_agent,omitempty"`
	CreatedAt          int64           `json:"created_at"`
	UpdatedAt          int64           `json:"updated_at"`
	History            []TaskEvent     `json:"history,omitempty"`
	Attempts           []TaskAttempt   `json:"attempts,omitempty"`
	LastOutput         json.RawMessage `json:"last_output,omitempty"`
	CancelledBy        string          `json:"cancelled_by,omitempty"`
	// Workflow fields.
	DependsOn    []string `json:"depends_on,omitempty"`
	Dependents   []string `json:"dependents,omitempty"` // GET /api/tasks/:id only
	RunAt        int64    `json:"run_at,omitempty"`
	UniqueKey    string   `json:"unique_key,omitempty"`
	Schedule     string   `json:"schedule,omitempty"`
	ScheduleTick int64    `json:"schedule_tick,omitempty"`
	Paused       bool     `json:"paused,omitempty"`
	// Archived: the task ended longer ago than the hub's retention and
	// is read from the archive.
	Archived bool `json:"archived,omitempty"`
	// Usage sums what agents reported spending on the task.
	Usage *protocol.Usage `json:"usage,omitempty"`
}

// TaskAttempt is one assignment of a task and how it ended: the hub's
// wire type, so the CLI and the hub cannot drift apart.
type TaskAttempt = protocol.TaskAttempt

// DescriptionText returns the description as text: the string itself when
// it is a JSON string, the raw JSON otherwise.
func (t Task) DescriptionText() string {
	var s string
	if json.Unmarshal(t.Description, &s) == nil {
		return s
	}
	return string(t.Description)
}

// Terminal reports whether the task reached a state the hub will not leave
// on its own (completed, dead_letter, cancelled).
func (t Task) Terminal() bool {
	switch t.Status {
	case "completed", "complete", "dead_letter", "cancelled", "canceled", "failed":
		return true
	}
	return false
}

// TaskFilter selects tasks in ListTasks and DeadLetter. Empty fields do
// not filter; Limit 0 means the hub's default (everything).
type TaskFilter struct {
	Status string
	// Priority is a lane name: urgent, high, normal or low.
	Priority   string
	AssignedTo string
	// Archived lists the archive (ended tasks past the hub's retention)
	// instead of the live table; ListTasks only.
	Archived bool
	Offset   int
	Limit    int
}

func (f TaskFilter) query() string {
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Priority != "" {
		q.Set("priority", f.Priority)
	}
	if f.AssignedTo != "" {
		q.Set("assigned_to", f.AssignedTo)
	}
	if f.Archived {
		q.Set("archived", "true")
	}
	if f.Offset > 0 {
		q.Set("offset", strconv.Itoa(f.Offset))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// TaskPage is one page of a task listing. Total counts every task the
// filter matches, across pages.
type TaskPage struct {
	Tasks []Task `json:"tasks"`
	Count int    `json:"count"`
	Total int    `json:"total"`
}

// ListTasks calls GET /api/tasks: the active table (queued, assigned,
// completed, cancelled), in scheduling order.
func (c *Client) ListTasks(ctx context.Context, f TaskFilter) (TaskPage, error) {
	var p TaskPage
	err := c.get(ctx, "/api/tasks"+f.query(), &p)
	return p, err
}

// DeadLetter calls GET /api/tasks/dead-letter (the filter's Status is
// ignored: every task there is dead_letter).
func (c *Client) DeadLetter(ctx context.Context, f TaskFilter) (TaskPage, error) {
	f.Status = ""
	var p TaskPage
	err := c.get(ctx, "/api/tasks/dead-letter"+f.query(), &p)
	return p, err
}

// TaskStats is the answer of GET /api/tasks/stats.
type TaskStats struct {
	ByStatus        map[string]int `json:"by_status"`
	ByPriority      map[string]int `json:"by_priority"`
	DeadLetter      int            `json:"dead_letter"`
	QueuedIndexSize int            `json:"queued_index_size"`
}

// TaskStats calls GET /api/tasks/stats.
func (c *Client) TaskStats(ctx context.Context) (TaskStats, error) {
	var s TaskStats
	err := c.get(ctx, "/api/tasks/stats", &s)
	return s, err
}

// Task calls GET /api/tasks/:id (active table, then dead letter).
func (c *Client) Task(ctx context.Context, id string) (Task, error) {
	var t Task
	err := c.get(ctx, "/api/tasks/"+seg(id), &t)
	return t, err
}

// TaskLogs calls GET /api/tasks/:id/logs: the task's output after offset
// since. wait > 0 long-polls: the hub answers when output arrives, the
// task ends, or wait (at most 30 s) passes.
func (c *Client) TaskLogs(ctx context.Context, id string, since int64, wait time.Duration) (protocol.TaskLogs, error) {
	var r protocol.TaskLogs
	q := url.Values{"since": {strconv.FormatInt(since, 10)}}
	if wait > 0 {
		q.Set("wait_ms", strconv.FormatInt(wait.Milliseconds(), 10))
	}
	err := c.get(ctx, "/api/tasks/"+seg(id)+"/logs?"+q.Encode(), &r)
	return r, err
}

// TaskAction is the answer of the retry and cancel routes.
type TaskAction struct {
	Status   string `json:"status"`
	TaskID   string `json:"task_id"`
	Priority *int   `json:"priority,omitempty"`
	// WasAssignedTo is the agent that held a cancelled task, if any.
	WasAssignedTo *string `json:"was_assigned_to,omitempty"`
	Generation    *int64  `json:"generation,omitempty"`
}

// RetryTask calls POST /api/tasks/:id/retry (dead-letter tasks only).
func (c *Client) RetryTask(ctx context.Context, id string) (TaskAction, error) {
	var r TaskAction
	err := c.post(ctx, "/api/tasks/"+seg(id)+"/retry", nil, &r)
	return r, err
}

// CancelTask calls POST /api/tasks/:id/cancel. A non-empty reason is kept
// in the task's history. A task that already ended answers 409.
func (c *Client) CancelTask(ctx context.Context, id, reason string) (TaskAction, error) {
	var body any // no reason: no body, as before
	if reason != "" {
		body = protocol.PostTaskCancel{Reason: reason}
	}
	var r TaskAction
	err := c.post(ctx, "/api/tasks/"+seg(id)+"/cancel", body, &r)
	return r, err
}

// StateRefusal returns the body of a 409 that refused a retry or cancel
// because of the task's state, when err is one and names that state.
// Hubs before this field, and the original (which answers a retry of a
// task outside the dead letter with 404), do not: callers then fetch the
// task.
func StateRefusal(err error) (protocol.TaskStateRefusal, bool) {
	var e *Error
	var r protocol.TaskStateRefusal
	if !errors.As(err, &e) || e.Status != http.StatusConflict || json.Unmarshal(e.Body, &r) != nil || r.Status == "" {
		return protocol.TaskStateRefusal{}, false
	}
	return r, true
}

// WhoAmI calls GET /api/whoami: the agent and role of the client's token.
func (c *Client) WhoAmI(ctx context.Context) (protocol.WhoAmI, error) {
	var r protocol.WhoAmI
	err := c.get(ctx, "/api/whoami", &r)
	return r, err
}

// NewToken is the answer of POST /admin/tokens.
type NewToken struct {
	AgentID string `json:"agent_id"`
	Token   string `json:"token"`
	Role    string `json:"role,omitempty"`
}

// CreateToken calls POST /admin/tokens. role ("agent" or "admin") is left
// out when empty.
func (c *Client) CreateToken(ctx context.Context, agentID, role string) (NewToken, error) {
	body := protocol.PostToken{AgentID: agentID, Role: role}
	var r NewToken
	err := c.post(ctx, "/admin/tokens", body, &r)
	return r, err
}

// TokenInfo is one entry of GET /admin/tokens.
type TokenInfo struct {
	AgentID     string `json:"agent_id"`
	TokenPrefix string `json:"token_prefix"`
	Role        string `json:"role,omitempty"`
}

// Tokens calls GET /admin/tokens.
func (c *Client) Tokens(ctx context.Context) ([]TokenInfo, error) {
	var r struct {
		Tokens []TokenInfo `json:"tokens"`
	}
	err := c.get(ctx, "/admin/tokens", &r)
	return r.Tokens, err
}

// RevokeTokens calls DELETE /admin/tokens/:agent_id: every token of the
// agent stops working.
func (c *Client) RevokeTokens(ctx context.Context, agentID string) error {
	return c.Do(ctx, http.MethodDelete, "/admin/tokens/"+seg(agentID), nil, nil, nil)
}

// BackupResult is the answer of POST /api/admin/backup.
type BackupResult struct {
	Status        string            `json:"status"`
	TablesTotal   int               `json:"tables_total"`
	TablesSuccess int               `json:"tables_success"`
	Results       []json.RawMessage `json:"results"`
}

// Backup calls POST /api/admin/backup.
func (c *Client) Backup(ctx context.Context) (BackupResult, error) {
	var r BackupResult
	err := c.post(ctx, "/api/admin/backup", nil, &r)
	return r, err
}

// StorageHealth calls GET /api/admin/dets-health. The shape grows with the
// hub, so it is returned raw.
func (c *Client) StorageHealth(ctx context.Context) (json.RawMessage, error) {
	var r json.RawMessage
	err := c.get(ctx, "/api/admin/dets-health", &r)
	return r, err
}

// Compact calls POST /api/admin/compact (every table) when table is empty,
// POST /api/admin/compact/:table otherwise. The answer is returned raw.
func (c *Client) Compact(ctx context.Context, table string) (json.RawMessage, error) {
	path := "/api/admin/compact"
	if table != "" {
		path += "/" + seg(table)
	}
	var r json.RawMessage
	err := c.post(ctx, path, nil, &r)
	return r, err
}

// Restore calls POST /api/admin/restore/:table. The answer is returned raw.
func (c *Client) Restore(ctx context.Context, table string) (json.RawMessage, error) {
	var r json.RawMessage
	err := c.post(ctx, "/api/admin/restore/"+seg(table), nil, &r)
	return r, err
}

// HeartbeatInterval calls GET /api/config/heartbeat-interval.
func (c *Client) HeartbeatInterval(ctx context.Context) (int64, error) {
	var r struct {
		V int64 `json:"heartbeat_interval_ms"`
	}
	err := c.get(ctx, "/api/config/heartbeat-interval", &r)
	return r.V, err
}

// SetHeartbeatInterval calls PUT /api/config/heartbeat-interval.
func (c *Client) SetHeartbeatInterval(ctx context.Context, ms int64) error {
	return c.put(ctx, "/api/config/heartbeat-interval", protocol.PutHeartbeat{HeartbeatIntervalMs: ms}, nil)
}

// MailboxRetention calls GET /api/config/mailbox-retention.
func (c *Client) MailboxRetention(ctx context.Context) (int64, error) {
	var r struct {
		V int64 `json:"mailbox_ttl_ms"`
	}
	err := c.get(ctx, "/api/config/mailbox-retention", &r)
	return r.V, err
}

// SetMailboxRetention calls PUT /api/config/mailbox-retention.
func (c *Client) SetMailboxRetention(ctx context.Context, ms int64) error {
	return c.put(ctx, "/api/config/mailbox-retention", protocol.PutMailboxTTL{MailboxTTLMs: ms}, nil)
}

// DefaultRepo calls GET /api/config/default-repo; "" when none is set.
func (c *Client) DefaultRepo(ctx context.Context) (string, error) {
	var r struct {
		DefaultRepo *string `json:"default_repo"`
	}
	if err := c.get(ctx, "/api/config/default-repo", &r); err != nil {
		return "", err
	}
	if r.DefaultRepo == nil {
		return "", nil
	}
	return *r.DefaultRepo, nil
}

// SetDefaultRepo calls PUT /api/config/default-repo.
func (c *Client) SetDefaultRepo(ctx context.Context, repoURL string) error {
	return c.put(ctx, "/api/config/default-repo", protocol.PutDefaultRepo{URL: repoURL}, nil)
}
