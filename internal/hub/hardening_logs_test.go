package hub_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hubtest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsAreStructuredAndSecretFree: every line parses as JSON and has
// component and event; agent and task lines carry agent_id and task_id;
// no token ever appears.
func TestLogsAreStructuredAndSecretFree(t *testing.T) {
	var buf syncBuffer
	h := hubtest.Start(t, "", hubtest.WithJSONLog(&buf))
	tok := h.Token("logged", auth.RoleAgent)
	a := h.Connect("logged", tok)
	_, body := h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "log me"})
	as := a.Expect("task_assign")
	a.Send(map[string]any{"type": "task_accepted", "task_id": as["task_id"]})
	a.Expect("task_ack")
	a.Send(map[string]any{"type": "task_complete", "task_id": as["task_id"], "generation": as["generation"]})
	a.Expect("task_ack")
	a.Send(map[string]any{"type": "identify", "agent_id": "logged", "token": "bad-" + tok})
	a.Expect("error")
	a.Close()
	// A dashboard storage action logs through the dashboard's logger.
	d := hubtest.Dial(t, "ws://"+h.Addr()+"/ws/dashboard")
	d.Send(map[string]any{"type": "compact", "table": "hub_meta"})
	d.Expect("compact_result")
	d.Close()
	h.Stop()

	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	lines, withAgent, withTask := 0, 0, 0
	for sc.Scan() {
		line := sc.Text()
		lines++
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if k := repeatedKey(line); k != "" {
			t.Errorf("key %q twice in: %s", k, line)
		}
		if m["component"] == nil || m["event"] == nil {
			t.Errorf("line without component/event: %s", line)
		}
		if m["agent_id"] != nil {
			withAgent++
		}
		if m["task_id"] == body["task_id"] {
			withTask++
		}
		for _, secret := range []string{tok, h.AdminToken} {
			if strings.Contains(line, secret) || strings.Contains(line, secret[:16]) {
				t.Fatalf("secret in log line: %s", line)
			}
		}
	}
	if lines == 0 || withAgent == 0 || withTask == 0 {
		t.Fatalf("lines=%d with agent_id=%d with task_id=%d:\n%s", lines, withAgent, withTask, buf.String())
	}
}

// repeatedKey returns a top-level key that a JSON object line repeats, or
// "" (encoding/json would silently keep the last one).
func repeatedKey(line string) string {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := tok.(string)
		if seen[k] {
			return k
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}
