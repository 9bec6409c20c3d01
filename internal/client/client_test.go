package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }

// recorded is one request seen by the fake hub.
type recorded struct {
	method, path, query, auth, joinHeader, contentType string
	body                                               map[string]any
}

// fakeHub answers every request with the status and body chosen per
// "METHOD path" key and records what it saw.
func fakeHub(t *testing.T, answers map[string]struct {
	status int
	body   string
}) (*httptest.Server, *[]recorded) {
	t.Helper()
	var seen []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorded{
			method: r.Method, path: r.URL.Path, query: r.URL.RawQuery,
			auth: r.Header.Get("Authorization"), joinHeader: r.Header.Get("X-Join-Secret"),
			contentType: r.Header.Get("Content-Type"),
		}
		b, _ := io.ReadAll(r.Body)
		if len(b) > 0 {
			if err := json.Unmarshal(b, &rec.body); err != nil {
				t.Errorf("request body is not a JSON object: %q", b)
			}
		}
		seen = append(seen, rec)
		a, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"error":"not_found"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

type answer = struct {
	status int
	body   string
}

func TestRoutes(t *testing.T) {
	srv, seen := fakeHub(t, map[string]answer{
		"GET /health":                        {200, `{"status":"ok","service":"agent_com","agents_connected":2}`},
		"GET /api/agents":                    {200, `{"agents":[{"agent_id":"a1","name":"a1","capabilities":["code"],"fsm_state":"idle"}]}`},
		"POST /api/tasks":                    {201, `{"status":"queued","task_id":"task-0123456789abcdef","priority":0,"created_at":17}`},
		"GET /api/tasks":                     {200, `{"tasks":[{"id":"task-1","description":"d","status":"queued","priority":2}],"count":1}`},
		"GET /api/tasks/task-1":              {200, `{"id":"task-1","description":"hello","status":"completed","generation":3,"history":[{"event":"queued","timestamp":1,"details":"submitted"}]}`},
		"GET /api/tasks/dead-letter":         {200, `{"tasks":[],"count":0}`},
		"GET /api/tasks/stats":               {200, `{"by_status":{"queued":1},"by_priority":{"2":1},"dead_letter":0,"queued_index_size":1}`},
		"POST /api/tasks/task-1/retry":       {200, `{"status":"requeued","task_id":"task-1","priority":2}`},
		"POST /api/tasks/task-1/cancel":      {200, `{"status":"cancelled","task_id":"task-1"}`},
		"POST /api/tasks/task-2/cancel":      {409, `{"error":"task_not_cancellable","task_id":"task-2","status":"cancelled","cancelled_by":"ops","detail":"d"}`},
		"POST /api/tasks/task-3/cancel":      {409, `{"error":"task_not_cancellable","task_id":"task-3","detail":"the task already ended"}`},
		"POST /api/tasks/task-4/retry":       {404, `{"error":"task_not_found","task_id":"task-4"}`},
		"GET /api/whoami":                    {200, `{"agent_id":"a1","role":"agent"}`},
		"POST /admin/tokens":                 {201, `{"agent_id":"a1","token":"abc","role":"agent"}`},
		"GET /admin/tokens":                  {200, `{"tokens":[{"agent_id":"a1","token_prefix":"abcd1234..."}]}`},
		"DELETE /admin/tokens/a b":           {200, `{"status":"revoked","agent_id":"a b"}`},
		"POST /api/admin/backup":             {200, `{"status":"complete","tables_total":9,"tables_success":9,"results":[]}`},
		"GET /api/admin/dets-health":         {200, `{"health_status":"healthy"}`},
		"POST /api/admin/compact":            {200, `{"status":"complete"}`},
		"POST /api/admin/compact/task_queue": {200, `{"table":"task_queue","status":"skipped"}`},
		"POST /api/admin/restore/task_queue": {200, `{"status":"restored"}`},
		"GET /api/config/heartbeat-interval": {200, `{"heartbeat_interval_ms":900000}`},
		"PUT /api/config/heartbeat-interval": {200, `{"heartbeat_interval_ms":5,"status":"updated"}`},
		"GET /api/config/mailbox-retention":  {200, `{"mailbox_ttl_ms":604800000}`},
		"PUT /api/config/mailbox-retention":  {200, `{"mailbox_ttl_ms":6,"status":"updated"}`},
		"GET /api/config/default-repo":       {200, `{"default_repo":null,"configured":false}`},
		"PUT /api/config/default-repo":       {200, `{"status":"ok","default_repo":"x"}`},
	})
	ctx := context.Background()
	c := New(srv.URL+"/", "tok", srv.Client())

	if h, err := c.Health(ctx); err != nil || h.AgentsConnected != 2 {
		t.Fatalf("Health = %+v, %v", h, err)
	}
	if a, err := c.Agents(ctx); err != nil || len(a) != 1 || a[0].AgentID != "a1" {
		t.Fatalf("Agents = %+v, %v", a, err)
	}
	mr := int64(0)
	cb := int64(99)
	sub, err := c.SubmitTask(ctx, TaskSubmit{Description: "x", Priority: "urgent", MaxRetries: &mr, CompleteBy: &cb, TargetAgent: "a1", NeededCapabilities: []string{"code"}})
	if err != nil || sub.TaskID != "task-0123456789abcdef" {
		t.Fatalf("SubmitTask = %+v, %v", sub, err)
	}
	last := (*seen)[len(*seen)-1]
	if last.auth != "Bearer tok" || last.contentType != "application/json" {
		t.Errorf("submit headers: auth %q ctype %q", last.auth, last.contentType)
	}
	if last.body["max_retries"] != float64(0) || last.body["target_agent"] != "a1" || last.body["complete_by"] != float64(99) {
		t.Errorf("submit body = %v", last.body)
	}
	if _, ok := last.body["metadata"]; ok {
		t.Errorf("empty metadata should be omitted: %v", last.body)
	}
	ts, err := c.ListTasks(ctx, TaskFilter{Status: "queued", AssignedTo: "a 1", Priority: "high", Offset: 5, Limit: 10})
	if err != nil || len(ts.Tasks) != 1 || ts.Count != 1 {
		t.Fatalf("ListTasks = %v, %v", ts, err)
	}
	if q := (*seen)[len(*seen)-1].query; q != "assigned_to=a+1&limit=10&offset=5&priority=high&status=queued" {
		t.Errorf("list query = %q", q)
	}
	task, err := c.Task(ctx, "task-1")
	if err != nil || task.DescriptionText() != "hello" || !task.Terminal() || task.Generation != 3 || len(task.History) != 1 {
		t.Fatalf("Task = %+v, %v", task, err)
	}
	if dl, err := c.DeadLetter(ctx, TaskFilter{Status: "queued"}); err != nil || len(dl.Tasks) != 0 || (*seen)[len(*seen)-1].query != "" {
		t.Fatalf("DeadLetter = %v, %v", dl, err)
	}
	if st, err := c.TaskStats(ctx); err != nil || st.ByStatus["queued"] != 1 {
		t.Fatalf("TaskStats = %+v, %v", st, err)
	}
	if r, err := c.RetryTask(ctx, "task-1"); err != nil || r.Status != "requeued" || r.Priority == nil {
		t.Fatalf("RetryTask = %+v, %v", r, err)
	}
	if r, err := c.CancelTask(ctx, "task-1", ""); err != nil || r.Status != "cancelled" {
		t.Fatalf("CancelTask = %+v, %v", r, err)
	}
	// A refusal that names the state; one from an older hub that does not.
	_, err = c.CancelTask(ctx, "task-2", "")
	if r, ok := StateRefusal(err); !ok || r.Status != "cancelled" || r.CancelledBy != "ops" || r.TaskID != "task-2" || r.Error != "task_not_cancellable" {
		t.Fatalf("StateRefusal = %+v, %v (%v)", r, ok, err)
	}
	_, err = c.CancelTask(ctx, "task-3", "")
	if r, ok := StateRefusal(err); ok || !IsConflict(err) {
		t.Fatalf("StateRefusal without a status = %+v, %v", r, ok)
	}
	_, err = c.RetryTask(ctx, "task-4")
	if _, ok := StateRefusal(err); ok || !IsNotFound(err) {
		t.Fatalf("StateRefusal of a 404 = %v", ok)
	}
	if me, err := c.WhoAmI(ctx); err != nil || me.AgentID != "a1" || me.Role != "agent" {
		t.Fatalf("WhoAmI = %+v, %v", me, err)
	}
	if r, err := c.CreateToken(ctx, "a1", "agent"); err != nil || r.Token != "abc" {
		t.Fatalf("CreateToken = %+v, %v", r, err)
	}
	if b := (*seen)[len(*seen)-1].body; b["role"] != "agent" || b["agent_id"] != "a1" {
		t.Errorf("create token body = %v", b)
	}
	if r, err := c.Tokens(ctx); err != nil || len(r) != 1 {
		t.Fatalf("Tokens = %+v, %v", r, err)
	}
	if err := c.RevokeTokens(ctx, "a b"); err != nil {
		t.Fatalf("RevokeTokens: %v", err)
	}
	if r, err := c.Backup(ctx); err != nil || r.TablesTotal != 9 {
		t.Fatalf("Backup = %+v, %v", r, err)
	}
	if r, err := c.StorageHealth(ctx); err != nil || !strings.Contains(string(r), "healthy") {
		t.Fatalf("StorageHealth = %s, %v", r, err)
	}
	if _, err := c.Compact(ctx, ""); err != nil {
		t.Fatalf("Compact all: %v", err)
	}
	if r, err := c.Compact(ctx, "task_queue"); err != nil || !strings.Contains(string(r), "skipped") {
		t.Fatalf("Compact one = %s, %v", r, err)
	}
	if _, err := c.Restore(ctx, "task_queue"); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if v, err := c.HeartbeatInterval(ctx); err != nil || v != 900000 {
		t.Fatalf("HeartbeatInterval = %d, %v", v, err)
	}
	if err := c.SetHeartbeatInterval(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if v, err := c.MailboxRetention(ctx); err != nil || v != 604800000 {
		t.Fatalf("MailboxRetention = %d, %v", v, err)
	}
	if err := c.SetMailboxRetention(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if v, err := c.DefaultRepo(ctx); err != nil || v != "" {
		t.Fatalf("DefaultRepo = %q, %v", v, err)
	}
	if err := c.SetDefaultRepo(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if b := (*seen)[len(*seen)-1].body; b["url"] != "x" {
		t.Errorf("default repo body = %v", b)
	}
}

func TestRegisterSendsJoinSecretTwice(t *testing.T) {
	srv, seen := fakeHub(t, map[string]answer{
		"POST /api/onboard/register": {201, `{"agent_id":"gcu-x","token":"t","hub_ws_url":"ws://h:1/ws","hub_api_url":"http://h:1","default_repo":null}`},
	})
	c := New(srv.URL, "", nil)
	r, err := c.Register(context.Background(), "gcu-x", "s3cret")
	if err != nil || r.Token != "t" || r.HubWSURL != "ws://h:1/ws" {
		t.Fatalf("Register = %+v, %v", r, err)
	}
	got := (*seen)[0]
	if got.joinHeader != "s3cret" || got.body["join_secret"] != "s3cret" || got.auth != "" {
		t.Errorf("register request = %+v", got)
	}
	// Without a secret neither the field nor the header is sent.
	if _, err := c.Register(context.Background(), "gcu-y", ""); err != nil {
		t.Fatal(err)
	}
	got = (*seen)[1]
	if _, ok := got.body["join_secret"]; ok || got.joinHeader != "" {
		t.Errorf("register without secret = %+v", got)
	}
}

func TestErrorCarriesStatusAndBody(t *testing.T) {
	srv, _ := fakeHub(t, map[string]answer{
		"GET /api/tasks/task-x":      {404, `{"error":"task_not_found","task_id":"task-x"}`},
		"POST /api/onboard/register": {409, `{"error":"agent_id already registered"}`},
		"GET /api/tasks":             {401, `{"error":"unauthorized","hint":"provide Authorization: Bearer <token>"}`},
		"GET /health":                {500, `boom`},
		"GET /api/tasks/stats":       {400, `{"error":{"field":"x","error":"required"}}`},
	})
	ctx := context.Background()
	c := New(srv.URL, "bad", nil)

	_, err := c.Task(ctx, "task-x")
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != "task_not_found" || e.Field("task_id") != "task-x" || !IsNotFound(err) {
		t.Fatalf("Task error = %#v", err)
	}
	if !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "task_not_found") {
		t.Errorf("message = %q", err)
	}
	if _, err := c.Register(ctx, "a", ""); !IsConflict(err) {
		t.Errorf("Register error = %v", err)
	}
	_, err = c.ListTasks(ctx, TaskFilter{})
	if !IsUnauthorized(err) || !errors.As(err, &e) || e.Field("hint") == "" {
		t.Errorf("ListTasks error = %v", err)
	}
	_, err = c.Health(ctx)
	if !errors.As(err, &e) || e.Status != 500 || e.Code != "" || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Health error = %v", err)
	}
	_, err = c.TaskStats(ctx)
	if !errors.As(err, &e) || !strings.Contains(e.Code, "required") {
		t.Errorf("structured error = %v", err)
	}
	if StatusOf(errors.New("x")) != 0 {
		t.Error("StatusOf on a plain error")
	}
}

func TestTransportErrorAndBadJSON(t *testing.T) {
	srv, _ := fakeHub(t, map[string]answer{"GET /health": {200, `not json`}})
	c := New(srv.URL, "", nil)
	if _, err := c.Health(context.Background()); err == nil || StatusOf(err) != 0 {
		t.Fatalf("bad JSON: %v", err)
	}
	dead := New("http://127.0.0.1:1", "", nil)
	_, err := dead.Health(context.Background())
	var un *UnreachableError
	if !IsUnreachable(err) || !errors.As(err, &un) || un.URL != "http://127.0.0.1:1" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("expected an UnreachableError wrapping ECONNREFUSED: %v", err)
	}
	// A cancelled request is the caller's doing, not an outage.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := dead.Health(ctx); IsUnreachable(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	var raw json.RawMessage
	if err := c.Do(context.Background(), http.MethodGet, "/health", nil, &raw, nil); err != nil || string(raw) != "not json" {
		t.Fatalf("raw = %q, %v", raw, err)
	}
}

// FuzzErrorBody checks that any hub error body decodes into a *Error
// without panicking and that Error() and Field() are total.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{`{"error":"x"}`, `{"error":{"a":1}}`, `[]`, ``, `{"error":null,"hint":"h"}`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := decodeError("GET", "/x", 418, []byte(body))
		if e.Status != 418 || StatusOf(e) != 418 {
			t.Fatalf("e = %#v", e)
		}
		if e.Error() == "" {
			t.Fatal("empty message")
		}
		_ = e.Field("hint")
	})
}

// FuzzMessages decodes any mailbox or channel history answer into the
// typed structs; the accessors are total.
func FuzzMessages(f *testing.F) {
	for _, s := range []string{`{"messages":[{"id":"a","from":"b","to":null,"type":"chat","payload":{"text":"hi"},"seq":1}]}`,
		`{"messages":[{"to":7,"type":{"x":1},"payload":"str"}]}`, `{"messages":[{"payload":{"text":5}}]}`, `[]`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var mb Mailbox
		if json.Unmarshal([]byte(body), &mb) != nil {
			return
		}
		for _, m := range mb.Messages {
			_, _, _ = m.Text(), m.ToText(), m.TypeText()
		}
	})
}

// Channels follows next_after through every page the hub answers.
func TestChannelsReadsEveryPage(t *testing.T) {
	pages := map[string]string{
		"":   `{"channels":[{"name":"a"},{"name":"b"}],"total":5,"next_after":"b"}`,
		"b":  `{"channels":[{"name":"c"},{"name":"d"}],"total":5,"next_after":"d"}`,
		"d":  `{"channels":[{"name":"e"}],"total":5}`,
		"zz": `{"channels":[],"total":0}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Query().Get("after")]
		if !ok || r.URL.Path != "/api/channels" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	got, err := New(srv.URL, "", srv.Client()).Channels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "a,b,c,d,e" {
		t.Fatalf("channels = %v", names)
	}
}
