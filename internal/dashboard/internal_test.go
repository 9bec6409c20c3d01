package dashboard

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/tasks"
	"github.com/agentcom/agentcom/internal/webpush"
)

type fakePush struct {
	mu    sync.Mutex
	notes []webpush.Notification
}

func (f *fakePush) Notify(_ context.Context, n webpush.Notification) (webpush.BroadcastResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notes = append(f.notes, n)
	return webpush.BroadcastResult{Sent: 1}, nil
}

func TestRules(t *testing.T) {
	task := func(typ, agent, reason string) bus.Event {
		return bus.Event{Data: tasks.EventData{Type: typ, TaskID: "task-1", AgentID: agent,
			Description: "build it", Reason: reason}}
	}
	storage := func(p bus.Payload) bus.Event { return bus.Event{Data: p} }
	fail := func(tables ...string) []resilience.Failure {
		var fs []resilience.Failure
		for _, t := range tables {
			fs = append(fs, resilience.Failure{Table: t})
		}
		return fs
	}
	cases := []struct {
		name  string
		e     bus.Event
		title string
		body  string
	}{
		{"completion is silent", task(tasks.EventCompleted, "a", ""), "", ""},
		{"a retried failure is silent", task(tasks.EventFailed, "a", ""), "", ""},
		{"dead letter", task(tasks.EventDeadLetter, "a", ""), TitleAlert, "Task dead-lettered: build it (task-1)"},
		{"deadline dead letter", task(tasks.EventDeadLetter, "", "deadline exceeded"), TitleAlert, "Task dead-lettered: build it (task-1) -- deadline exceeded"},
		{"offline with a task", task(tasks.EventReclaimed, "a", tasks.ReasonDisconnect), TitleAlert, "Agent offline: a (task task-1 returned to the queue)"},
		{"other reclaims are silent", task(tasks.EventReclaimed, "a", tasks.ReasonLeaseExpired), "", ""},
		{"backup ok", storage(resilience.BackupCompleteEvent{}), "", ""},
		{"backup failed", storage(resilience.BackupFailedEvent{Reason: "disk full"}), TitleAlert, "Backup failed: all tables -- disk full"},
		{"compaction ok", storage(resilience.CompactionCompleteEvent{}), "", ""},
		{"compaction failed", storage(resilience.CompactionFailedEvent{Failures: fail("a", "b")}), TitleAlert, "Compaction failed: a, b"},
		{"drill ok", storage(resilience.DrillCompleteEvent{}), "", ""},
		{"drill failed", storage(resilience.DrillFailedEvent{Failures: fail("t"), Reason: "checksum"}), TitleAlert, "Restore drill failed: t -- checksum"},
		{"manual restore ok", storage(resilience.RecoveryCompleteEvent{Table: "t", Trigger: resilience.TriggerManual}), "", ""},
		{"auto restore", storage(resilience.RecoveryCompleteEvent{Table: "t", Trigger: resilience.TriggerAuto}), TitleAlert, "Auto-restore: t restored from backup"},
		{"restore failed", storage(resilience.RecoveryFailedEvent{Table: "t", Trigger: resilience.TriggerManual, Reason: "no backup"}), TitleCritical, "Storage recovery FAILED: t -- no backup"},
		{"degraded", storage(resilience.DegradedModeEvent{Table: "t"}), TitleCritical, "Storage degraded: t running empty after data loss"},
		{"messages are silent", bus.Event{Data: messaging.Routed{ID: "m1"}}, "", ""},
	}
	for _, c := range cases {
		_, n, ok := Rule(c.e)
		if ok != (c.title != "") || n.Title != c.title || n.Body != c.body {
			t.Errorf("%s: got %v %+v, want %q %q", c.name, ok, n, c.title, c.body)
		}
	}
}

func TestCooldownAndHealthTransitions(t *testing.T) {
	b := bus.New()
	push := &fakePush{}
	health := Health{Status: HealthOK}
	n := NewNotifier(Config{PushCooldown: time.Minute}, b, push, func() Health { return health }, nil)
	defer n.sub.Close()
	now := time.Unix(1_000_000, 0)
	n.now = func() time.Time { return now }
	dl := bus.Event{Data: tasks.EventData{Type: tasks.EventDeadLetter, TaskID: "task-1"}}

	n.Consider(dl)
	n.Consider(dl) // within the cooldown
	now = now.Add(30 * time.Second)
	n.Consider(dl)
	if len(n.queue) != 1 {
		t.Fatalf("queued %d notifications for one alert within the cooldown", len(n.queue))
	}
	now = now.Add(31 * time.Second)
	n.Consider(dl)
	if len(n.queue) != 2 {
		t.Fatalf("the alert did not fire again after the cooldown")
	}

	// Health: only ok → warning/critical notifies.
	health = Health{Status: HealthWarning, Conditions: []string{"Queue growing: 1 -> 2 -> 3"}}
	n.CheckHealth()
	health = Health{Status: HealthCritical, Conditions: []string{"High failure rate: 3/4 tasks failed this hour"}}
	n.CheckHealth()
	health = Health{Status: HealthOK}
	n.CheckHealth()
	now = now.Add(2 * time.Minute)
	health = Health{Status: HealthCritical, Conditions: []string{"x", "y"}}
	n.CheckHealth()
	close(n.queue)
	var got []webpush.Notification
	for note := range n.queue {
		got = append(got, note)
	}
	if len(got) != 4 || got[2].Body != "Health warning: Queue growing: 1 -> 2 -> 3" || got[2].Title != TitleAlert ||
		got[3].Body != "Health critical: x; y" || got[3].Title != TitleCritical {
		t.Fatalf("notifications: %+v", got)
	}
}

func TestNotifierSendsInOrder(t *testing.T) {
	b := bus.New()
	push := &fakePush{}
	n := NewNotifier(Config{}, b, push, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	for _, id := range []string{"a", "b", "c"} {
		bus.Publish(b, tasks.EventData{Type: tasks.EventDeadLetter, TaskID: id, Description: id})
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		push.mu.Lock()
		k := len(push.notes)
		push.mu.Unlock()
		if k == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	push.mu.Lock()
	defer push.mu.Unlock()
	if len(push.notes) != 3 || push.notes[0].Body != "Task dead-lettered: a (a)" || push.notes[2].Body != "Task dead-lettered: c (c)" {
		t.Fatalf("sent: %+v", push.notes)
	}
}

func TestSlowClientIsClosed(t *testing.T) {
	c := newClient(&Dashboard{log: discard()}, auth.Identity{}, 2, 1<<20)
	if !c.enqueue([]byte("1")) || !c.enqueue([]byte("2")) {
		t.Fatal("frames within the buffer refused")
	}
	if c.enqueue([]byte("3")) {
		t.Fatal("a frame beyond the buffer was accepted")
	}
	select {
	case <-c.conn.Closing():
	default:
		t.Fatal("the slow client was not closed")
	}
	if code, _ := c.conn.CloseStatus(); code != closeSlowConsumer {
		t.Fatalf("close code %d", code)
	}
	if c.enqueue([]byte("4")) {
		t.Fatal("a closed client accepted a frame")
	}

	// Bounded in bytes as well: few large frames close it too.
	c = newClient(&Dashboard{log: discard()}, auth.Identity{}, 100, 10)
	if !c.enqueue([]byte("123456789012")) {
		t.Fatal("one frame over the byte cap refused by an empty queue")
	}
	if c.enqueue([]byte("1")) {
		t.Fatal("a frame beyond the byte cap was accepted")
	}
	if code, _ := c.conn.CloseStatus(); code != closeSlowConsumer {
		t.Fatalf("close code %d", code)
	}
}

func TestRing(t *testing.T) {
	r := newRing[int](3)
	if len(r.items()) != 0 {
		t.Fatal("new ring not empty")
	}
	for i := 1; i <= 5; i++ {
		r.push(i)
	}
	if got := r.items(); len(got) != 3 || got[0] != 5 || got[2] != 3 {
		t.Fatalf("items: %v", got)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"request_snapshot"}`,
		`{"type":"retry_task","task_id":"task-0123456789abcdef","ref":"r1"}`,
		`{"type":"cancel_task","task_id":"t","reason":"no longer needed"}`,
		`{"type":"backup_now"}`,
		`{"type":"compact","table":"task_queue","force":true}`,
		`{"type":"compact"}`,
		`{"type":"restore","table":"agent_mailbox","backup":"agent_mailbox_2026.bbolt","dry_run":false}`,
		`{"type":"restore","table":"x","backup":"../etc/passwd","dry_run":true}`,
		`{"type":"agent_timeline","agent_id":"worker-1"}`,
		`{"type":"ping"}`,
		`{"type":1}`, `{}`, `[]`, `null`, `not json`, `{"type":"compact","force":"yes"}`,
		`{"type":"pause","lane":"low"}`, `{"type":"resume","capability":"gpu"}`, `{"type":"schedule_action","name":"n","action":"run"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil {
			if err.Code == "" || err.Type == "" {
				t.Fatalf("error without code or type: %+v", err)
			}
			return
		}
		if known, _ := frameKind(fr.Type); !known {
			t.Fatalf("accepted unknown type %q", fr.Type)
		}
		switch fr.Type {
		case FrameRetryTask, FrameCancelTask:
			if fr.TaskID == "" {
				t.Fatal("task frame without task id")
			}
		case FrameRestore:
			if !tableName.MatchString(fr.Table) {
				t.Fatalf("restore of bad table %q", fr.Table)
			}
		case FramePause, FrameResume:
			if (fr.Lane == "") == (fr.Capability == "") {
				t.Fatalf("pause frame with lane %q and capability %q", fr.Lane, fr.Capability)
			}
		case FrameSchedule:
			if fr.Name == "" || fr.Action == "" {
				t.Fatalf("schedule frame %+v", fr)
			}
		}
	})
}

func TestDecodeFrameErrors(t *testing.T) {
	cases := map[string]string{
		`{"type":"nope"}`:                                              "type",
		`{"type":"retry_task"}`:                                        "task_id",
		`{"type":"retry_task","task_id":5}`:                            "task_id",
		`{"type":"restore","table":"task_queue"}`:                      "dry_run",
		`{"type":"compact","table":"../x"}`:                            "table",
		`{"type":"compact","force":1}`:                                 "force",
		`{"type":"restore","table":"t","backup":"a/b","dry_run":true}`: "backup",
		`{"type":"pause"}`:                                             "lane",
		`{"type":"pause","lane":"slow"}`:                               "lane",
		`{"type":"pause","lane":"low","capability":"gpu"}`:             "lane",
		`{"type":"schedule_action","name":"n","action":"x"}`:           "action",
		`{"type":"schedule_action","action":"run"}`:                    "name",
	}
	for in, field := range cases {
		_, err := decodeFrame([]byte(in))
		if err == nil || len(err.Errors) == 0 || err.Errors[0].Field != field {
			t.Errorf("%s: %+v, want an error on %s", in, err, field)
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Events are encoded only while a browser is open; a change applied with
// none open still reaches the state that the next browser's snapshot is
// built from.
func TestEventsEncodedOnlyForOpenSockets(t *testing.T) {
	a := NewAggregator(Config{}, Deps{Bus: bus.New(), Queue: newBenchQueue(0), Agents: benchAgents{}, Presence: benchPresence{}})
	t.Cleanup(a.sub.Close)
	a.Apply(bus.Event{Data: tasks.EventData{Type: tasks.EventCompleted, TaskID: "t1", AgentID: "a1", Status: tasks.StatusCompleted}})
	if f := a.eventsFrame(); f != nil {
		t.Fatalf("events frame with no socket open: %s", f)
	}
	if _, ok := a.timelines["a1"]; !ok {
		t.Fatal("the change was not applied to the state while no socket was open")
	}
	a.addClient(newClient(&Dashboard{log: discard()}, auth.Identity{}, 1024, 1<<20))
	a.Apply(bus.Event{Data: tasks.EventData{Type: tasks.EventSubmitted, TaskID: "t2", Status: tasks.StatusQueued}})
	if f := a.eventsFrame(); f == nil || !bytes.Contains(f, []byte(`"t2"`)) {
		t.Fatalf("events frame with a socket open = %s, want t2's event", f)
	}
}
