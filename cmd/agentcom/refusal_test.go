package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hubtest"
)

// hubProxy stands between the CLI and a real hub and records the
// requests. In legacy mode it answers as hubs before GET /api/whoami did
// (and, for a retry, as the original did): a refused retry is 404
// task_not_found, a refused cancel names no state, /api/whoami is 404.
type hubProxy struct {
	srv    *httptest.Server
	mu     sync.Mutex
	seen   []string
	legacy bool
}

func newHubProxy(t *testing.T, h *hubtest.Hub) *hubProxy {
	target, err := url.Parse(h.URL())
	if err != nil {
		t.Fatal(err)
	}
	p := &hubProxy{}
	tr := &http.Transport{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = tr
	rp.ModifyResponse = func(resp *http.Response) error {
		if !p.isLegacy() || resp.StatusCode != http.StatusConflict {
			return nil
		}
		var body map[string]any
		err := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if strings.HasSuffix(resp.Request.URL.Path, "/retry") {
			resp.StatusCode = http.StatusNotFound
			body = map[string]any{"error": "task_not_found", "task_id": body["task_id"]}
		}
		delete(body, "status")
		delete(body, "cancelled_by")
		b, _ := json.Marshal(body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Method+" "+r.URL.Path)
		legacy := p.legacy
		p.mu.Unlock()
		if legacy && r.URL.Path == "/api/whoami" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"not_found"}`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		p.srv.Close()
		tr.CloseIdleConnections()
	})
	return p
}

func (p *hubProxy) isLegacy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.legacy
}

func (p *hubProxy) setLegacy(on bool) {
	p.mu.Lock()
	p.legacy = on
	p.mu.Unlock()
}

// requests returns the requests seen since the last call.
func (p *hubProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.seen
	p.seen = nil
	return out
}

// TestRefusalsUseTheStateTheHubNames: a refused retry or cancel is
// explained from the refusal itself, in one request; against an older
// hub (or the original) the CLI still finds the state by fetching the
// task. The mailbox commands default to the token's agent, and say what
// to pass when the hub cannot tell.
func TestRefusalsUseTheStateTheHubNames(t *testing.T) {
	h := hubtest.Start(t, "")
	p := newHubProxy(t, h)
	env := func(tok string) *cliRun {
		return &cliRun{t: t, env: map[string]string{"AGENTCOM_HUB": p.srv.URL, "AGENTCOM_TOKEN": tok}}
	}
	r := env(h.AdminToken)
	cancelled := strings.TrimSpace(r.ok("task", "submit", "parked", "--capabilities", "nobody", "--quiet"))
	r.ok("task", "cancel", cancelled)
	queued := strings.TrimSpace(r.ok("task", "submit", "parked too", "--capabilities", "nobody", "--quiet"))
	p.requests()

	check := func(what string, args []string, want []string, subs ...string) {
		t.Helper()
		contains(t, what, r.fail(1, args...), subs...)
		if got := p.requests(); !slices.Equal(got, want) {
			t.Fatalf("%s: requests %v, want %v", what, got, want)
		}
	}
	retry := func(id string) []string { return []string{"task", "retry", id} }
	cancel := func(id string) []string { return []string{"task", "cancel", id} }
	post := func(id, action string) string { return "POST /api/tasks/" + id + "/" + action }
	get := func(id string) string { return "GET /api/tasks/" + id }

	check("retry queued", retry(queued), []string{post(queued, "retry")}, "task "+queued+" is queued, not dead-lettered", "hint: it has not ended yet")
	check("retry cancelled", retry(cancelled), []string{post(cancelled, "retry")}, "is cancelled, not dead-lettered", "hint: submit it again")
	check("cancel cancelled", cancel(cancelled), []string{post(cancelled, "cancel")}, "was already cancelled by admin", "nothing to cancel")

	p.setLegacy(true)
	check("legacy retry queued", retry(queued), []string{post(queued, "retry"), get(queued)}, "task "+queued+" is queued, not dead-lettered")
	check("legacy cancel cancelled", cancel(cancelled), []string{post(cancelled, "cancel"), get(cancelled)}, "was already cancelled by admin")
	missing := "task-00000000000000ff"
	check("legacy retry missing", retry(missing), []string{post(missing, "retry"), get(missing)}, "no task "+missing)

	// Mailbox: an older hub cannot name the token's agent.
	bob := env(h.Token("bob", auth.RoleAgent))
	contains(t, "legacy inbox", bob.fail(1, "message", "inbox"), "--agent is missing", "AGENTCOM_AGENT")
	p.setLegacy(false)
	p.requests()
	contains(t, "inbox", bob.ok("message", "inbox"), "no messages for bob")
	if got := p.requests(); !slices.Equal(got, []string{"GET /api/whoami", "GET /api/mailbox/bob"}) {
		t.Fatalf("inbox requests: %v", got)
	}
	// --agent and AGENTCOM_AGENT need no whoami.
	r.env["AGENTCOM_AGENT"] = "bob"
	r.ok("message", "inbox")
	r.ok("message", "ack", "0", "--agent", "bob")
	if got := p.requests(); !slices.Equal(got, []string{"GET /api/mailbox/bob", "POST /api/mailbox/bob/ack"}) {
		t.Fatalf("requests with --agent: %v", got)
	}
	r.noSecret(h.AdminToken)
}
