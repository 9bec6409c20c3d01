package hub_test

import (
	"testing"

	"github.com/agentcom/agentcom/internal/testenv"

	"github.com/agentcom/agentcom/internal/hubtest"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }

func TestTaskLifecycle(t *testing.T) {
	h := hubtest.Start(t, "")
	a := h.Agent("worker-1", "code")
	st, body := h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "fix the bug", "needed_capabilities": []string{"code"}})
	if st != 201 {
		t.Fatalf("submit: %d %v", st, body)
	}
	id := body["task_id"].(string)
	as := a.Expect("task_assign")
	if as["task_id"] != id || as["generation"].(float64) != 1 {
		t.Fatalf("assign: %v", as)
	}
	a.Send(map[string]any{"type": "task_accepted", "task_id": id, "protocol_version": 1})
	if ack := a.Expect("task_ack"); ack["status"] != "accepted" {
		t.Fatalf("ack: %v", ack)
	}
	a.Send(map[string]any{"type": "task_complete", "task_id": id, "generation": 1, "result": map[string]any{"status": "success"}})
	if ack := a.Expect("task_ack"); ack["status"] != "complete" {
		t.Fatalf("complete ack: %v", ack)
	}
	st, task := h.Do("GET", "/api/tasks/"+id, h.AdminToken, nil)
	if st != 200 || task["status"] != "completed" {
		t.Fatalf("get: %d %v", st, task)
	}
}
