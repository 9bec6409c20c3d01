package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/api"
	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/protocol/protocoltest"
)

// bodiesWithoutRoute are body schemas no route declares, and why.
var bodiesWithoutRoute = map[string]string{
	// webpush.ParseSubscription checks the push subscription body, with
	// its own field errors (keys.p256dh); the route declares BodyEmpty.
	protocol.BodyPushSubscribe: "checked by webpush.ParseSubscription",
}

// TestEveryBodyRouteDeclaresSchema walks the hub's whole route table:
// every POST and PUT route declares its body schema, every declared name
// is a schema, and every schema is used by a route.
func TestEveryBodyRouteDeclaresSchema(t *testing.T) {
	h := hubtest.Start(t, "")
	used := map[string]bool{}
	for _, rt := range h.API.Routes() {
		if rt.Body != "" {
			if _, ok := protocol.BodySchema(rt.Body); !ok {
				t.Errorf("%s %s: body %q is no schema", rt.Method, rt.Path, rt.Body)
			}
			used[rt.Body] = true
		}
		if rt.Raw == nil && (rt.Method == http.MethodPost || rt.Method == http.MethodPut) && rt.Body == "" {
			t.Errorf("%s %s declares no body schema", rt.Method, rt.Path)
		}
	}
	for _, name := range protocol.BodyNames() {
		if _, excused := bodiesWithoutRoute[name]; !used[name] && !excused {
			t.Errorf("body schema %q is used by no route", name)
		}
	}
}

var pathParam = regexp.MustCompile(`\{[a-z_]+\}`)

// TestRouteRoundTrip sends every protocoltest sample body to every route
// that declares it, through the Server's own decoding: the handler gets
// the sample back, equal field for field. An object missing a required
// field gets the route's original error string.
func TestRouteRoundTrip(t *testing.T) {
	h := hubtest.Start(t, "")
	samples := map[string]protocol.Body{}
	for _, b := range protocoltest.Bodies() {
		samples[b.BodyName()] = b
	}
	tokens := adminToken{}
	walked := 0
	for _, rt := range h.API.Routes() {
		if rt.Body == "" {
			continue
		}
		sample, ok := samples[rt.Body]
		if !ok {
			t.Fatalf("%s %s: no protocoltest sample of %q", rt.Method, rt.Path, rt.Body)
		}
		// The route as declared, on a server of its own, with a handler
		// that reports what it was given.
		var got protocol.Body
		probe := rt
		probe.Access, probe.Guard, probe.Class = api.Admin, nil, ""
		probe.Handler = func(r *api.Request) api.Response {
			got = api.BodyAny(r)
			return api.JSON(http.StatusOK, protocol.StatusReply{Status: "ok"})
		}
		s := api.NewServer(tokens, false, api.NewHosts(true, nil), slog.New(slog.DiscardHandler))
		s.Handle(probe)
		path := pathParam.ReplaceAllString(rt.Path, "x1")

		raw, err := json.Marshal(sample)
		if err != nil {
			t.Fatal(err)
		}
		if st, body := call(t, s, rt.Method, path, raw); st != http.StatusOK {
			t.Errorf("%s %s: sample %s: %d %s", rt.Method, rt.Path, raw, st, body)
			continue
		}
		if !reflect.DeepEqual(got, sample) {
			t.Errorf("%s %s: decoded %#v, sent %#v", rt.Method, rt.Path, got, sample)
		}
		walked++

		schema, _ := protocol.BodySchema(rt.Body)
		if !slices.ContainsFunc(schema.Fields, func(f protocol.Field) bool { return f.Required }) {
			continue
		}
		st, body := call(t, s, rt.Method, path, []byte(`{}`))
		var reply protocol.ValidationReply
		_ = json.Unmarshal(body, &reply)
		want := schema.Legacy
		if want == "" {
			want = protocol.CodeValidationFailed
		}
		if st != http.StatusBadRequest || reply.Error != want || len(reply.Errors) == 0 {
			t.Errorf("%s %s: empty body: %d %s, want 400 %q", rt.Method, rt.Path, st, body, want)
		}
	}
	if walked < 30 {
		t.Fatalf("walked %d routes with a body; the table has more", walked)
	}
}

// adminToken verifies any token as the admin "ops".
type adminToken struct{}

func (adminToken) Verify(string) (auth.Identity, error) {
	return auth.Identity{AgentID: "ops", Role: auth.RoleAdmin}, nil
}

func call(t *testing.T, s *api.Server, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, "http://127.0.0.1"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer admin-tok")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	out, _ := io.ReadAll(w.Result().Body)
	return w.Code, out
}

// TestBoltStorageRefusalsCarryNoErrorText drives the bolt storage admin
// routes (api.Storage over the real coordinator) into refusals whose
// causes name files: the reply holds the code, a fixed detail and an
// error_id, and the log holds the cause under that id.
func TestBoltStorageRefusalsCarryNoErrorText(t *testing.T) {
	var logs lockedLog
	h := hubtest.Start(t, "", hubtest.WithJSONLog(&logs))
	for _, path := range []string{
		"/api/admin/restore/task_queue",                                 // no backup yet
		"/api/admin/restore/task_queue?backup=task_queue_missing.bbolt", // no such file
	} {
		st, raw := h.DoRaw("POST", path, h.AdminToken, nil)
		var body protocol.ErrorReply
		_ = json.Unmarshal(raw, &body)
		if st < 400 || len(body.ErrorID) != 16 || body.Table != "task_queue" || bytes.Contains(raw, []byte(h.Dir)) ||
			bytes.Contains(raw, []byte(".bbolt")) {
			t.Errorf("%s: %d %s", path, st, raw)
			continue
		}
		if !bytes.Contains([]byte(logs.String()), []byte(body.ErrorID)) {
			t.Errorf("%s: error_id %s not in the log", path, body.ErrorID)
		}
	}
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
