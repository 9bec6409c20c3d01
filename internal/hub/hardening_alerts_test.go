package hub_test

import (
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
)

func TestAlertRulesThroughTheAPI(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.AlertInterval = 50 * time.Millisecond })
	st, cfg := h.Do("GET", "/api/config/alerts", h.AdminToken, nil)
	if st != 200 || cfg["rules"].(map[string]any)["no_idle_agent"] == nil {
		t.Fatalf("config: %d %v", st, cfg)
	}
	if st, _ := h.Do("PUT", "/api/config/alerts", h.Token("a", "agent"), cfg); st != 403 {
		t.Fatalf("agent token changed alert rules: %d", st)
	}
	if st, body := h.Do("PUT", "/api/config/alerts", h.AdminToken, map[string]any{"rules": map[string]any{"no_idle_agent": map[string]any{"enabled": true, "severity": "warning", "for_secs": 0}}}); st != 400 {
		t.Fatalf("misspelled field accepted: %d %v", st, body)
	}
	// Fire "no idle agent" at once: a task waits and nobody is connected.
	st, body := h.Do("PUT", "/api/config/alerts", h.AdminToken, map[string]any{"rules": map[string]any{
		"no_idle_agent": map[string]any{"enabled": true, "severity": "critical", "for_seconds": 0}}})
	if st != 200 {
		t.Fatalf("put: %d %v", st, body)
	}
	h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "waits"})
	waitAlert := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			_, al := h.Do("GET", "/api/alerts", "", nil)
			active := al["active"].([]any)
			if want && len(active) == 1 && active[0].(map[string]any)["rule"] == "no_idle_agent" &&
				active[0].(map[string]any)["severity"] == "critical" {
				return
			}
			if !want && len(active) == 0 && len(al["history"].([]any)) == 1 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("alert active=%v not reached", want)
	}
	waitAlert(true)
	a := h.Agent("rescuer")
	a.Expect("task_assign")
	waitAlert(false)
}
