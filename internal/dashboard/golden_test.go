package dashboard

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/alerts"
	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/tasks"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenAt is the fixed clock of the golden frames.
var goldenAt = time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// goldenEvents is one event of every kind the aggregator handles, with the
// payloads their producers publish, including empty lists and zero values.
func goldenEvents() []bus.Event {
	at := goldenAt.UnixMilli()
	ev := func(d bus.Payload) bus.Event { return bus.Event{Time: at, Data: d} }
	task := func(typ string, d tasks.EventData) bus.Event { d.Type = typ; return ev(d) }
	store := func(d bus.Payload) bus.Event { return ev(d) }
	alert := alerts.Alert{Rule: alerts.RuleQueueGrowing, Severity: "warning", Message: "Queue growing <fast> & \"loud\"", RaisedAt: at - 5, Notify: true}
	acked := alert
	acked.AckedAt, acked.AckedBy, acked.AckNote = at, "ops", "seen"
	cleared := alert
	cleared.ClearedAt = at
	return []bus.Event{
		task(tasks.EventSubmitted, tasks.EventData{TaskID: "t1", Priority: 1, Status: tasks.StatusQueued, Description: "build <it>"}),
		task(tasks.EventAssigned, tasks.EventData{TaskID: "t1", AgentID: "a1", Generation: 1, Priority: 1, Status: tasks.StatusAssigned, Description: "build <it>", WaitMs: 1500}),
		task(tasks.EventCompleted, tasks.EventData{TaskID: "t1", AgentID: "a1", Generation: 1, Priority: 1, Status: tasks.StatusCompleted, RunMs: 2500, TokensUsed: ptr(int64(42))}),
		task(tasks.EventFailed, tasks.EventData{TaskID: "t2", AgentID: "a2", Generation: 2, Status: tasks.StatusDeadLetter, Description: "fail", RunMs: 7}),
		task(tasks.EventDeadLetter, tasks.EventData{TaskID: "t3", Status: tasks.StatusDeadLetter, Description: "late", Reason: "deadline exceeded"}),
		task(tasks.EventReclaimed, tasks.EventData{TaskID: "t4", AgentID: "a2", Generation: 3, Status: tasks.StatusQueued, Reason: tasks.ReasonDisconnect}),
		task(tasks.EventRetried, tasks.EventData{TaskID: "t5", Status: tasks.StatusQueued}),
		ev(tasks.PauseEvent{Type: tasks.EventPaused, Kind: tasks.PauseLane, Name: "urgent", By: "ops"}),
		ev(tasks.PauseEvent{Type: tasks.EventResumed, Kind: tasks.PauseLane, Name: "urgent"}),
		ev(tasks.ScheduleEvent{Name: "nightly", Change: "run", TaskID: "t6"}),
		ev(presence.Joined{Entry: presence.Entry{AgentID: "a1", Name: "Agent One", Status: "connected", Capabilities: []string{"code", "go"}}}),
		ev(presence.Joined{Entry: presence.Entry{AgentID: "a3", Name: "a3"}}),
		ev(presence.StatusChanged{Entry: presence.Entry{AgentID: "a1", Status: "busy <now>"}}),
		ev(agents.StateChange{AgentID: "a1", From: agents.Idle, To: agents.Assigned, TaskID: "t1", Flags: []string{agents.FlagBusy}}),
		ev(agents.StateChange{AgentID: "a1", From: agents.Assigned, To: agents.Idle}),
		ev(presence.Left{AgentID: "a3"}),
		ev(messaging.Routed{ID: "m1", From: "a1", To: "a2", Type: "chat", Outcome: messaging.Delivered, Kind: "direct"}),
		ev(messaging.ChannelPublished{ID: "m2", From: "a1", Channel: "dev", Seq: 3, Kind: "channel"}),
		store(resilience.BackupCompleteEvent{Timestamp: at, TablesBackedUp: []string{"task_queue"}, BackupDir: "/b", Trigger: resilience.TriggerManual,
			Results: []resilience.BackupResult{{Table: "task_queue", Status: "ok", Path: "/b/tq", Size: 4096, Records: ptr(3), Verified: true, Pruned: []string{"old"}}, {Table: "agent_mailbox", Status: "error", Reason: "disk full"}}}),
		store(resilience.BackupCompleteEvent{Timestamp: at, Trigger: resilience.TriggerScheduled}),
		store(resilience.BackupFailedEvent{Timestamp: at, Failures: []resilience.Failure{{Table: "agent_mailbox", Reason: "disk full"}}, Reason: "agent_mailbox: disk full", Trigger: resilience.TriggerScheduled}),
		store(resilience.BackupFailedEvent{Timestamp: at, Reason: "no tables", Trigger: resilience.TriggerManual}),
		store(resilience.CompactionCompleteEvent{Timestamp: at, Trigger: resilience.TriggerManual,
			Results: []resilience.CompactResult{{Table: "task_queue", Status: "compacted", DurationMs: ptr(int64(12)), BytesBefore: 10, BytesAfter: 4, BytesSaved: 6, Fragmentation: ptr(0.25), PauseMs: ptr(int64(3)), Retried: true},
				{Table: "config", Status: "skipped", Reason: "below threshold"}}}),
		store(resilience.CompactionCompleteEvent{Timestamp: at}),
		store(resilience.CompactionFailedEvent{Timestamp: at, Failures: []resilience.Failure{{Table: "task_queue", Reason: "locked"}, {Table: "config"}}, Reason: "task_queue: locked", Trigger: resilience.TriggerScheduled}),
		store(resilience.CompactionFailedEvent{Timestamp: at}),
		store(resilience.DrillCompleteEvent{Timestamp: at, Results: []resilience.DrillResult{{Table: "task_queue", Status: "ok", BackupUsed: "tq.bak", Records: 3, DurationMs: 9}, {Table: "config", Status: "error", Reason: "checksum", DurationMs: 1}}}),
		store(resilience.DrillCompleteEvent{Timestamp: at}),
		store(resilience.DrillFailedEvent{Timestamp: at, Failures: []resilience.Failure{{Table: "config", Reason: "checksum"}}, Reason: "config: checksum"}),
		store(resilience.DegradedModeEvent{Timestamp: at - 1000, Table: "agent_mailbox", Reason: "no usable backup", AsidePath: "/d/x.damaged", Trigger: resilience.TriggerAuto, Startup: true, DataLost: true}),
		store(resilience.DegradedModeEvent{Timestamp: at, Table: "thread_messages", Trigger: resilience.TriggerAuto}),
		store(resilience.RecoveryCompleteEvent{Timestamp: at, Table: "thread_messages", BackupUsed: "tm.bak", BackupTime: at - 60000, RecordCount: 12, Trigger: resilience.TriggerAuto,
			Startup: true, Reason: "checksum mismatch", AsidePath: "/d/tm.damaged", ReloadErrors: []string{"x"}}),
		store(resilience.RecoveryCompleteEvent{Timestamp: at, Table: "config", Trigger: resilience.TriggerManual}),
		store(resilience.RecoveryFailedEvent{Timestamp: at, Table: "config", Reason: "no backup", Trigger: resilience.TriggerManual}),
		ev(alerts.Raised{Alert: alert}),
		ev(alerts.Acknowledged{Alert: acked}),
		ev(alerts.Cleared{Alert: cleared}),
	}
}

// TestGoldenFrames pins the bytes of the events and snapshot frames the
// browsers receive for one event of every kind. The files were written
// before the bus was typed (go test -run TestGoldenFrames -update) and
// must not change without a wire change.
func TestGoldenFrames(t *testing.T) {
	a := NewAggregator(Config{}, Deps{Bus: bus.New(), Queue: newBenchQueue(0), Agents: benchAgents{}, Presence: benchPresence{}})
	t.Cleanup(a.sub.Close)
	a.now = func() time.Time { return goldenAt }
	a.started = goldenAt.Add(-time.Hour)
	// A browser is open: without one the aggregator encodes no events.
	a.addClient(newClient(&Dashboard{log: discard()}, auth.Identity{}, 1024, 1<<20))
	for _, e := range goldenEvents() {
		a.Apply(e)
	}
	golden(t, "events.golden.json", a.eventsFrame())
	golden(t, "snapshot.golden.json", a.Build().Frame)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed:\n got %s\nwant %s", name, got, want)
	}
}

// Message events reach both agents' timelines through their Go fields;
// a broadcast only the sender's.
func TestMessageTimelines(t *testing.T) {
	a := NewAggregator(Config{}, Deps{Bus: bus.New(), Queue: newBenchQueue(0), Agents: benchAgents{}, Presence: benchPresence{}})
	t.Cleanup(a.sub.Close)
	a.Apply(bus.Event{Time: 1, Data: messaging.Routed{ID: "m1", From: "a1", To: "a2", Outcome: messaging.Queued, Kind: "direct"}})
	a.Apply(bus.Event{Time: 2, Data: messaging.Routed{ID: "m2", From: "a1", Kind: "broadcast"}})
	a.Apply(bus.Event{Time: 3, Data: messaging.ChannelPublished{ID: "m3", From: "a2", Channel: "dev", Seq: 1, Kind: "channel"}})
	want := map[string][]timelineEntry{
		"a1": {
			{Timestamp: 2, Kind: "message", Event: "broadcast sent", Detail: "m2"},
			{Timestamp: 1, Kind: "message", Event: "sent to a2", Detail: "chat message, queued, id m1"},
		},
		"a2": {
			{Timestamp: 3, Kind: "message", Event: "posted to #dev", Detail: "m3"},
			{Timestamp: 1, Kind: "message", Event: "received from a1", Detail: "chat message, queued, id m1"},
		},
	}
	for agent, w := range want {
		if got := a.Timeline(agent); !slices.Equal(got, w) {
			t.Errorf("%s timeline %+v, want %+v", agent, got, w)
		}
	}
	a.Apply(bus.Event{}) // no payload: ignored
	if frame := a.eventsFrame(); frame != nil {
		t.Errorf("message events reached the browsers: %s", frame)
	}
}

// Beyond TimelineAgents agents, the least recently active agent's
// timeline goes (touching one keeps it), and a reused timeline starts
// empty.
func TestTimelineEviction(t *testing.T) {
	a := NewAggregator(Config{}, Deps{Bus: bus.New(), Queue: newBenchQueue(0), Agents: benchAgents{}, Presence: benchPresence{}})
	t.Cleanup(a.sub.Close)
	send := func(at int64, from string) {
		a.Apply(bus.Event{Time: at, Data: messaging.Routed{ID: "m", From: from, Kind: "broadcast"}})
	}
	for i := range TimelineAgents {
		send(int64(i+1), fmt.Sprint("a", i))
	}
	send(TimelineAgents+1, "a0") // a0 is now the most recent, a1 the stalest
	send(TimelineAgents+2, "new")
	if got := a.Timeline("a1"); len(got) != 0 {
		t.Errorf("stalest timeline kept: %+v", got)
	}
	if got := a.Timeline("a0"); len(got) != 2 {
		t.Errorf("touched timeline: %d entries, want 2", len(got))
	}
	want := []timelineEntry{{Timestamp: TimelineAgents + 2, Kind: "message", Event: "broadcast sent", Detail: "m"}}
	if got := a.Timeline("new"); !slices.Equal(got, want) {
		t.Errorf("new timeline %+v, want %+v", got, want)
	}
	if len(a.timelines) != TimelineAgents {
		t.Errorf("%d timelines kept, want %d", len(a.timelines), TimelineAgents)
	}
}
