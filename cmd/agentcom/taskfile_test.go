package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/ratelimit"
)

func TestTaskSubmitFile(t *testing.T) {
	h := hubtest.Start(t, "")
	env := map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken}
	dir := t.TempDir()
	write := func(name string, lines []string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	queued := func() float64 {
		t.Helper()
		code, body := h.Do(http.MethodGet, "/api/tasks/stats", h.AdminToken, nil)
		if code != http.StatusOK {
			t.Fatalf("stats: %d %v", code, body)
		}
		n, _ := body["by_status"].(map[string]any)["queued"].(float64)
		return n
	}

	// 150 tasks (two chunks), a blank line among them: one id per line,
	// in order, each stored with its line's fields.
	var lines []string
	for i := range 150 {
		lines = append(lines, fmt.Sprintf(`{"description":"task %d","priority":"high","metadata":{"n":%d},"needed_capabilities":["nobody-has-this"]}`, i, i))
		if i == 7 {
			lines = append(lines, "   ")
		}
	}
	code, out, errs := runCmd(t, env, "task", "submit", "--file", write("ok.jsonl", lines))
	ids := strings.Fields(out)
	if code != 0 || len(ids) != 150 {
		t.Fatalf("submit --file: %d, %d ids\n%s", code, len(ids), errs)
	}
	code, body := h.Do(http.MethodGet, "/api/tasks/"+ids[149], h.AdminToken, nil)
	if code != http.StatusOK || body["description"] != "task 149" || body["priority"] != float64(1) {
		t.Fatalf("last task: %d %v", code, body)
	}
	if n := queued(); n != 150 {
		t.Fatalf("queued = %v", n)
	}

	// A line the client can tell is bad: nothing is sent, every bad line
	// is named.
	code, _, errs = runCmd(t, env, "task", "submit", "--file", write("bad.jsonl", []string{
		`{"description":"fine"}`, `{"description":`, `{"description":""}`, `[1]`, `{"description":"x","key":"a"}`}))
	if code == 0 || !strings.Contains(errs, "nothing submitted") || !strings.Contains(errs, "bad.jsonl:2: not a JSON object") ||
		!strings.Contains(errs, "bad.jsonl:3: description") || !strings.Contains(errs, "bad.jsonl:4: not a JSON object") ||
		!strings.Contains(errs, "bad.jsonl:5: key") {
		t.Fatalf("bad lines: %d\n%s", code, errs)
	}
	if n := queued(); n != 150 {
		t.Fatalf("queued after bad lines = %v", n)
	}

	// A line only the hub refuses, in the second chunk: the first chunk
	// is stored, the second not at all, and the error names the line.
	lines = lines[:0]
	for i := range 120 {
		l := fmt.Sprintf(`{"description":"again %d"}`, i)
		if i == 110 {
			l = `{"description":"bad metadata","metadata":"not an object"}`
		}
		lines = append(lines, l)
	}
	code, out, errs = runCmd(t, env, "task", "submit", "--file", write("refused.jsonl", lines))
	if code == 0 || len(strings.Fields(out)) != 100 || !strings.Contains(errs, "lines 101-120 refused") ||
		!strings.Contains(errs, "refused.jsonl:111: metadata") {
		t.Fatalf("refused chunk: %d, %d ids\n%s", code, len(strings.Fields(out)), errs)
	}
	if n := queued(); n != 250 {
		t.Fatalf("queued after a refused chunk = %v", n)
	}

	// Bounds and usage.
	code, _, errs = runCmd(t, env, "task", "submit", "--file", write("long.jsonl", []string{
		`{"description":"` + strings.Repeat("x", maxTaskLine) + `"}`}))
	if code == 0 || !strings.Contains(errs, "long.jsonl:1: line longer than") {
		t.Fatalf("long line: %d\n%s", code, errs)
	}
	code, _, errs = runCmd(t, env, "task", "submit", "desc", "--file", "x.jsonl")
	if code == 0 || !strings.Contains(errs, "--file goes without a description") {
		t.Fatalf("file and description: %d\n%s", code, errs)
	}
	code, _, errs = runCmd(t, env, "task", "submit", "--file", "x.jsonl", "--priority", "high")
	if code == 0 || !strings.Contains(errs, "--file goes without --priority") {
		t.Fatalf("file and a task flag: %d\n%s", code, errs)
	}
	code, _, errs = runCmd(t, env, "task", "submit", "--file", write("empty.jsonl", []string{""}))
	if code == 0 || !strings.Contains(errs, "no tasks") {
		t.Fatalf("empty file: %d\n%s", code, errs)
	}
}

// A file larger than the hub's task-submission burst is stored whole: a
// chunk answered rate_limited is sent again after the wait the hub asks
// for (the limiter refuses before storing anything), not reported as a
// failure part way through the file.
func TestTaskSubmitFileWaitsOutRateLimit(t *testing.T) {
	h := hubtest.Start(t, "", hubtest.WithRateLimits(ratelimit.Limits{
		ratelimit.ClassTasks: {PerSecond: 5, Burst: 1},
	}))
	env := map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken}
	var lines []string
	for i := range 350 { // four chunks against a burst of one
		lines = append(lines, fmt.Sprintf(`{"description":"limited %d","needed_capabilities":["nobody-has-this"]}`, i))
	}
	p := filepath.Join(t.TempDir(), "many.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, env, "task", "submit", "--file", p)
	if ids := strings.Fields(out); code != 0 || len(ids) != 350 {
		t.Fatalf("submit --file under a rate limit: %d, %d ids\n%s", code, len(ids), errs)
	}
	code, body := h.Do(http.MethodGet, "/api/tasks/stats", h.AdminToken, nil)
	if n, _ := body["by_status"].(map[string]any)["queued"].(float64); code != http.StatusOK || n != 350 {
		t.Fatalf("stats: %d %v", code, body)
	}
}
