package alerts

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/tasks"
)

type memSettings struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memSettings) Get(k string, dst any) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[k]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(b, dst)
}

func (s *memSettings) Put(k string, v any) error {
	b, err := json.Marshal(v)
	s.mu.Lock()
	s.m[k] = b
	s.mu.Unlock()
	return err
}

type fakeQueue struct {
	depth    int
	assigned []*tasks.Task
}

func (q *fakeQueue) LaneCounts() [tasks.Lanes]int { return [tasks.Lanes]int{0, 0, q.depth, 0} }
func (q *fakeQueue) Assigned() []*tasks.Task      { return q.assigned }

type fakeAgents struct{ idle int }

func (a *fakeAgents) IdleCount() int { return a.idle }

type fakeStorage struct {
	last     time.Time
	degraded []string
}

func (s *fakeStorage) LastBackup() time.Time    { return s.last }
func (s *fakeStorage) DegradedTables() []string { return s.degraded }

type rig struct {
	m   *Manager
	q   *fakeQueue
	a   *fakeAgents
	st  *fakeStorage
	now time.Time
	sub *bus.Sub
}

func newRig(t *testing.T) *rig {
	b := bus.New()
	r := &rig{q: &fakeQueue{}, a: &fakeAgents{idle: 1}, st: &fakeStorage{}, now: time.Unix(1_000_000, 0)}
	r.st.last = r.now
	r.m = New(&memSettings{m: map[string][]byte{}}, r.q, r.a, r.st, b)
	r.m.now = func() time.Time { return r.now }
	r.m.start = r.now
	r.sub = b.Subscribe(100, bus.TopicAlerts)
	t.Cleanup(r.sub.Close)
	return r
}

func (r *rig) step(d time.Duration) { r.now = r.now.Add(d); r.m.Check() }

func (r *rig) active(rule string) bool {
	for _, a := range r.m.Active() {
		if a.Rule == rule {
			return true
		}
	}
	return false
}

func TestEveryRuleFiresAndClears(t *testing.T) {
	cases := []struct {
		rule   string
		fire   func(r *rig)
		clear  func(r *rig)
		expect string
	}{
		{RuleQueueGrowing,
			func(r *rig) {
				for i := range 12 {
					r.q.depth = i + 1
					r.step(time.Minute)
				}
			},
			func(r *rig) { r.q.depth = 0; r.step(time.Minute) }, "Queue growing"},
		{RuleFailureRate,
			func(r *rig) {
				for i := range 6 {
					r.m.outcomes = append(r.m.outcomes, outcome{at: r.now, failed: i < 4})
				}
				r.step(time.Second)
			},
			func(r *rig) { r.step(2 * time.Hour) }, "High failure rate: 4/6"},
		{RuleStuckTask,
			func(r *rig) {
				r.q.assigned = []*tasks.Task{{ID: "task-stuck", UpdatedAt: r.now.UnixMilli()}}
				r.step(31 * time.Minute)
			},
			func(r *rig) { r.q.assigned = nil; r.step(time.Second) }, "task-stuck"},
		{RuleNoIdleAgent,
			func(r *rig) {
				r.q.depth, r.a.idle = 3, 0
				r.step(time.Second)
				r.step(6 * time.Minute)
			},
			func(r *rig) { r.a.idle = 1; r.step(time.Second) }, "3 task(s) waiting"},
		{RuleBackupAge,
			func(r *rig) { r.step(49 * time.Hour) },
			func(r *rig) { r.st.last = r.now; r.step(time.Second) }, "Last successful backup"},
		{RuleDegradedTable,
			func(r *rig) { r.st.degraded = []string{"agent_mailbox"}; r.step(time.Second) },
			func(r *rig) { r.st.degraded = nil; r.step(time.Second) }, "agent_mailbox"},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			r := newRig(t)
			tc.fire(r)
			if !r.active(tc.rule) {
				t.Fatalf("%s did not fire: %v", tc.rule, r.m.Active())
			}
			e := <-r.sub.C
			a := e.Data.(Raised).Alert
			if e.Type() != EventRaised || a.Rule != tc.rule || !strings.Contains(a.Message, tc.expect) || !a.Notify {
				t.Fatalf("raised event = %+v", e)
			}
			tc.clear(r)
			if r.active(tc.rule) {
				t.Fatalf("%s did not clear", tc.rule)
			}
			if h := r.m.History(); len(h) != 1 || h[0].ClearedAt == 0 {
				t.Fatalf("history = %v", h)
			}
		})
	}
}

func TestConfigChangesApplyAtNextCheckAndCooldown(t *testing.T) {
	r := newRig(t)
	r.st.degraded = []string{"x"}
	r.step(time.Second)
	if !r.active(RuleDegradedTable) {
		t.Fatal("not raised")
	}
	cfg := r.m.Config()
	rule := cfg.Rules[RuleDegradedTable]
	rule.Enabled = false
	cfg.Rules[RuleDegradedTable] = rule
	if _, err := r.m.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	r.step(time.Second)
	if r.active(RuleDegradedTable) {
		t.Fatal("disabled rule still active")
	}
	rule.Enabled = true
	cfg.Rules[RuleDegradedTable] = rule
	r.m.SetConfig(cfg)
	r.step(time.Second)
	var last Alert
	for len(r.sub.C) > 0 {
		if raised, ok := (<-r.sub.C).Data.(Raised); ok {
			last = raised.Alert
		}
	}
	if last.Notify {
		t.Fatal("raised again within the cooldown but marked to notify")
	}
	bad := DefaultConfig()
	bad.Rules["nope"] = Rule{Severity: "warning"}
	if _, err := r.m.SetConfig(bad); err == nil {
		t.Fatal("unknown rule accepted")
	}
}
