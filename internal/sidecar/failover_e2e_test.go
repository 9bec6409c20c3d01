package sidecar

import (
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/testenv"
)

// With real hubs: the sidecar works on a task from hub A; A goes away and
// hub B comes up over the same data (what a cluster's shared database
// gives); the sidecar moves to B, announces the task with task_recovering,
// B lets it continue, and the task completes on B, once.
func TestE2EFailoverToAnotherRealHub(t *testing.T) {
	a := hubtest.Start(t, "", hubtest.FastTimers)
	addrB := freeAddr(t) // hub B starts there once A is gone
	urlB := "ws://" + addrB + "/ws"
	tok := a.Token("roamer", auth.RoleAgent)
	cfg := testConfigFor(t, "roamer", tok, a.WSURL(), urlB)
	r := start(t, cfg, Options{})
	admin := client.New(a.URL(), a.AdminToken, nil)
	sub, err := admin.SubmitTask(t.Context(), client.TaskSubmit{Description: "outlive hub A"})
	if err != nil {
		t.Fatal(err)
	}
	id := sub.TaskID
	testenv.Eventually(t, "task held", func() bool {
		st, _, err := LoadState(cfg.StateFile, time.Now())
		return err == nil && st.Active != nil && st.Active.TaskID == id && st.Active.Status == StatusWorking
	}, testenv.Within(wait))

	a.Stop()
	b := hubtest.Start(t, a.Dir, hubtest.FastTimers, func(c *hub.Config) { c.Addr = addrB })
	testenv.Eventually(t, "continued on hub B", func() bool { return r.log.has("recovery_continued") }, testenv.Within(wait))
	log := r.log.String()
	if !strings.Contains(log, `"event":"identified","hub_url":"`+urlB+`"`) || !strings.Contains(log, `"to_hub_url":"`+urlB+`"`) {
		t.Fatalf("the log does not show the move to hub B")
	}
	writeResult(t, cfg, id, map[string]any{"status": "success", "output": "done on B"})
	adminB := client.New(b.URL(), b.AdminToken, nil)
	tk := waitTask(t, adminB, id, "completed on hub B", func(tk client.Task) bool { return tk.Status == "completed" })
	if n := historyCount(tk, "completed"); n != 1 || tk.AssignedTo == nil || *tk.AssignedTo != "roamer" {
		t.Fatalf("task = %+v", tk)
	}
}
