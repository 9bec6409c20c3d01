package sidecar

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/hubtest"
)

// TestE2EDependencyResultsReachTheTaskFile: a task that depends on
// another gets, in its TASK_FILE, the first one's result as the real hub
// sends it in task_assign.
func TestE2EDependencyResultsReachTheTaskFile(t *testing.T) {
	h := hubtest.Start(t, "", hubtest.FastTimers, hubtest.NoBackoff)
	agentTok := h.Token("chain", auth.RoleAgent)
	admin := client.New(h.URL(), h.AdminToken, nil)
	// The agent keeps a copy of every task file and answers with its description.
	control := t.TempDir()
	s := newE2E(t, h.WSURL(), "chain", agentTok, `cp "$TASK_FILE" '`+control+`'/"$TASK_ID.task.json"; : > "$STARTED_FILE"; `+
		`printf '{"status":"success","output":"made %s"}' "$TASK_DESCRIPTION" > "$RESULT_FILE"`)
	start(t, s.cfg, Options{})
	ctx := context.Background()
	first, err := admin.SubmitTask(ctx, client.TaskSubmit{Description: "schema"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := admin.SubmitTask(ctx, client.TaskSubmit{Description: "api", DependsOn: []string{first.TaskID}})
	if err != nil || second.Status != "waiting" {
		t.Fatalf("dependent: %+v %v", second, err)
	}
	waitTask(t, admin, second.TaskID, "completed", func(tk client.Task) bool { return tk.Status == "completed" })
	b, err := os.ReadFile(filepath.Join(control, second.TaskID+".task.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Dependencies []struct {
			TaskID string         `json:"task_id"`
			Status string         `json:"status"`
			Result map[string]any `json:"result"`
		} `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &tf); err != nil || len(tf.Dependencies) != 1 {
		t.Fatalf("task file %s (%v)", b, err)
	}
	d := tf.Dependencies[0]
	if d.TaskID != first.TaskID || d.Status != "completed" || d.Result["output"] != "made schema" {
		t.Fatalf("dependency in the task file: %+v", d)
	}
}
