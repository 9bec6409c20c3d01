package hub_test

import (
	"fmt"
	"strconv"
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

	// Exact series and values, parsed from the exposition (a substring
	// match would take "... 2" for "... 20").
	want := map[string]float64{
		`agentcom_task_events_total{event="task_completed"}`:    2,
		`agentcom_task_events_total{event="task_dead_letter"}`:  1,
		`agentcom_task_events_total{event="task_submitted"}`:    4,
		`agentcom_messages_total{kind="direct"}`:                1,
		`agentcom_validation_errors_total{schema="status"}`:     1,
		`agentcom_connections`:                                  2,
		`agentcom_queue_tasks{lane="normal",status="queued"}`:   1,
		`agentcom_queue_tasks{lane="all",status="dead_letter"}`: 1,
		`agentcom_agents{state="idle"}`:                         2,
		`agentcom_task_run_seconds_count`:                       3,
		`agentcom_table_records{table="task_queue"}`:            3,
	}
	var got map[string]float64
	mismatch := func() string {
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				return fmt.Sprintf("%s = %v (present %v), want %v", k, g, ok, v)
			}
		}
		if _, ok := got["go_goroutines"]; !ok {
			return "go_goroutines missing"
		}
		return ""
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, raw := h.DoRaw("GET", "/metrics", "", nil)
		got = parseExposition(t, string(raw))
		if mismatch() == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(mismatch())
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, sum := h.Do("GET", "/api/metrics", "", nil)
	if sum["queued_total"].(float64) != 1 || sum["completed_last_hour"].(float64) != 2 || sum["failed_last_hour"].(float64) != 1 ||
		sum["dead_letter"].(float64) != 1 || sum["wait_ms"].(map[string]any)["samples"].(float64) != 3 {
		t.Fatalf("summary = %v", sum)
	}
}

// parseExposition reads Prometheus text format into series -> value,
// series written as exposed: name{label="v",...} (labels in the order the
// registry writes them, which is sorted).
func parseExposition(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad exposition line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		if _, dup := out[line[:i]]; dup {
			t.Fatalf("series %s exposed twice", line[:i])
		}
		out[line[:i]] = v
	}
	return out
}
