package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/hubtest"
)

func TestWorkflowCommands(t *testing.T) {
	h := hubtest.Start(t, "")
	env := map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken}
	submitJSON := func(args ...string) map[string]any {
		t.Helper()
		code, out, errs := runCmd(t, env, append(append([]string{"task", "submit"}, args...), "--json")...)
		var m map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
			t.Fatalf("submit %v: %d\n%s\n%s", args, code, out, errs)
		}
		return m
	}

	// A chain: the dependent waits and task show prints its upstream.
	first := submitJSON("write the migration")["task_id"].(string)
	code, out, errs := runCmd(t, env, "task", "submit", "update the API", "--depends-on", first)
	if code != 0 || !strings.Contains(out, "waiting") {
		t.Fatalf("dependent submit: %d\n%s\n%s", code, out, errs)
	}
	second := submitJSON("update the docs", "--depends-on", first)["task_id"].(string)
	code, out, _ = runCmd(t, env, "task", "show", second)
	if code != 0 || !strings.Contains(out, "upstream (runs after):") || !strings.Contains(out, first) {
		t.Fatalf("show chain: %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, env, "task", "list", "--status", "waiting")
	if code != 0 || !strings.Contains(out, second) || strings.Contains(out, first) {
		t.Fatalf("list waiting: %d\n%s", code, out)
	}
	code, _, errs = runCmd(t, env, "task", "submit", "x", "--depends-on", "task-missing")
	if code == 0 || !strings.Contains(errs, `depends_on[0]: unknown task id "task-missing"`) {
		t.Fatalf("unknown dependency: %d %s", code, errs)
	}

	// Unique keys and scheduled tasks.
	one := submitJSON("ci", "--unique-key", "pr-1")
	two := submitJSON("ci", "--unique-key", "pr-1")
	if two["task_id"] != one["task_id"] || two["duplicate"] != true {
		t.Fatalf("duplicate: %v %v", one, two)
	}
	code, out, _ = runCmd(t, env, "task", "submit", "ci", "--unique-key", "pr-1")
	if code != 0 || !strings.Contains(out, "duplicate") {
		t.Fatalf("duplicate, human: %d\n%s", code, out)
	}
	if later := submitJSON("later", "--run-in", "1h"); later["status"] != "scheduled" {
		t.Fatalf("run-in: %v", later)
	}

	// Batches from a file.
	file := filepath.Join(t.TempDir(), "batch.json")
	if err := os.WriteFile(file, []byte(`[{"key":"a","description":"A"},{"key":"b","description":"B","depends_on":["a"]}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd(t, env, "task", "batch", file)
	if code != 0 || !strings.Contains(out, "waiting") {
		t.Fatalf("batch: %d\n%s\n%s", code, out, errs)
	}

	// Pauses.
	code, out, _ = runCmd(t, env, "task", "pause", "--lane", "low")
	if code != 0 || !strings.Contains(out, "paused lanes:        low") {
		t.Fatalf("pause: %d\n%s", code, out)
	}
	if code, _, _ = runCmd(t, env, "task", "pause", "--lane", "low", "--capability", "gpu"); code == 0 {
		t.Fatal("pause with both --lane and --capability")
	}
	code, out, _ = runCmd(t, env, "task", "resume", "--lane", "low")
	if code != 0 || !strings.Contains(out, "paused lanes:        none") {
		t.Fatalf("resume: %d\n%s", code, out)
	}

	// Schedules.
	code, out, errs = runCmd(t, env, "schedule", "add", "nightly", "--cron", "0 3 * * *", "--timezone", "Europe/Paris",
		"--description", "update dependencies", "--priority", "low")
	if code != 0 || !strings.Contains(out, "schedule nightly added") {
		t.Fatalf("schedule add: %d\n%s\n%s", code, out, errs)
	}
	code, _, errs = runCmd(t, env, "schedule", "add", "bad", "--cron", "61 * * * *", "--description", "x")
	if code == 0 || !strings.Contains(errs, "cron: minute field") {
		t.Fatalf("bad cron: %d %s", code, errs)
	}
	code, out, _ = runCmd(t, env, "schedule", "list")
	if code != 0 || !strings.Contains(out, "nightly") || !strings.Contains(out, "Europe/Paris") {
		t.Fatalf("schedule list: %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, env, "schedule", "run-now", "nightly", "--json")
	var sub map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &sub) != nil || sub["status"] != "queued" {
		t.Fatalf("run-now: %d\n%s", code, out)
	}
	_, task := h.Do("GET", "/api/tasks/"+sub["task_id"].(string), h.AdminToken, nil)
	if task["schedule"] != "nightly" || task["description"] != "update dependencies" || task["priority"] != float64(3) {
		t.Fatalf("scheduled task: %v", task)
	}
	for _, args := range [][]string{{"pause", "nightly"}, {"resume", "nightly"}, {"remove", "nightly"}} {
		if code, out, errs := runCmd(t, env, append([]string{"schedule"}, args...)...); code != 0 {
			t.Fatalf("schedule %v: %d\n%s\n%s", args, code, out, errs)
		}
	}
	if code, _, errs := runCmd(t, env, "schedule", "pause", "nightly"); code == 0 || !strings.Contains(errs, "schedule_not_found") {
		t.Fatalf("pause removed schedule: %d %s", code, errs)
	}
}
