package hub_test

import (
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/hubtest"
)

// TestMetricsAfterWorkload runs a scripted workload and checks the
// Prometheus and JSON figures it produced.
func TestMetricsAfterWorkload(t *testing.T) {
	h := hubtest.Start(t, "", hubtest.NoBackoff)
	a := h.Agent("m1", "code")
	// Two tasks complete, one fails into the dead letter.
	for i := range 3 {
		mr := 3
		if i == 2 {
			mr = 1
		}
		h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "t", "max_retries": mr})
		as := a.Expect("task_assign")
		if i < 2 {
			a.Send(map[string]any{"type": "task_complete", "task_id": as["task_id"], "generation": as["generation"]})
		} else {
			a.Send(map[string]any{"type": "task_failed", "task_id": as["task_id"], "generation": as["generation"], "error": "boom"})
		}
		a.Expect("task_ack")
	}
	b := h.Agent("m2")
	a.Send(map[string]any{"type": "message", "to": "m2", "payload": map[string]any{}})
	b.Expect("message")
	a.Send(`{"type":"status"}`) // one validation error
	a.Expect("error")
	h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "waits", "needed_capabilities": []string{"gpu"}})

	want := []string{
		`agentcom_task_events_total{event="task_completed"} 2`,
		`agentcom_task_events_total{event="task_dead_letter"} 1`,
		`agentcom_task_events_total{event="task_submitted"} 4`,
		`agentcom_messages_total{kind="direct"} 1`,
		`agentcom_validation_errors_total{schema="status"} 1`,
		`agentcom_connections 2`,
		`agentcom_queue_tasks{lane="normal",status="queued"} 1`,
		`agentcom_queue_tasks{lane="all",status="dead_letter"} 1`,
		`agentcom_agents{state="idle"} 2`,
		`agentcom_task_run_seconds_count 3`,
		`agentcom_table_records{table="task_queue"} 3`,
		`go_goroutines`,
	}
	var text string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, raw := h.DoRaw("GET", "/metrics", "", nil)
		text = string(raw)
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	_, sum := h.Do("GET", "/api/metrics", "", nil)
	if sum["queued_total"].(float64) != 1 || sum["completed_last_hour"].(float64) != 2 || sum["failed_last_hour"].(float64) != 1 ||
		sum["dead_letter"].(float64) != 1 || sum["wait_ms"].(map[string]any)["samples"].(float64) != 3 {
		t.Fatalf("summary = %v", sum)
	}
}
