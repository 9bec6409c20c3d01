package dashboard

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/tasks"
)

// TestRuleEveryKind walks every task and storage event kind with a typed
// sample, as its producer publishes it, and pins the push it calls for:
// cooldown key, title and body ("" for silent kinds).
func TestRuleEveryKind(t *testing.T) {
	task := func(kind string) tasks.EventData {
		return tasks.EventData{Type: kind, TaskID: "t1", AgentID: "a1", Description: "build it", Reason: tasks.ReasonDisconnect}
	}
	fails := []resilience.Failure{{Table: "task_queue", Reason: "locked"}, {Table: "config", Reason: "disk full"}}
	cases := []struct {
		p                bus.Payload
		key, title, body string
	}{
		{task(tasks.EventSubmitted), "", "", ""},
		{task(tasks.EventAssigned), "", "", ""},
		{task(tasks.EventAccepted), "", "", ""},
		{task(tasks.EventProgress), "", "", ""},
		{task(tasks.EventCompleted), "", "", ""},
		{task(tasks.EventFailed), "", "", ""},
		{task(tasks.EventRetried), "", "", ""},
		{task(tasks.EventReclaimed), "agent_offline:a1", TitleAlert, "Agent offline: a1 (task t1 returned to the queue)"},
		{task(tasks.EventDeadLetter), "dead_letter:t1", TitleAlert, "Task dead-lettered: build it (t1) -- agent_disconnect"},
		{task(tasks.EventCancelled), "", "", ""},
		{task(tasks.EventRejected), "", "", ""},
		{task(tasks.EventRecovering), "", "", ""},
		{task(tasks.EventVerified), "", "", ""},
		{task(tasks.EventReleased), "", "", ""},
		{tasks.PauseEvent{Type: tasks.EventPaused, Kind: tasks.PauseLane, Name: "urgent"}, "", "", ""},
		{tasks.PauseEvent{Type: tasks.EventResumed, Kind: tasks.PauseLane, Name: "urgent"}, "", "", ""},
		{tasks.ScheduleEvent{Name: "nightly", Change: "run"}, "", "", ""},

		{resilience.BackupCompleteEvent{TablesBackedUp: []string{"task_queue"}, Trigger: resilience.TriggerScheduled}, "", "", ""},
		{resilience.BackupFailedEvent{Failures: fails, Reason: "task_queue: locked; config: disk full", Trigger: resilience.TriggerScheduled},
			"backup_failed:task_queue, config", TitleAlert, "Backup failed: task_queue, config -- task_queue: locked; config: disk full"},
		{resilience.CompactionCompleteEvent{Trigger: resilience.TriggerScheduled}, "", "", ""},
		{resilience.CompactionFailedEvent{Failures: fails, Reason: "x", Trigger: resilience.TriggerManual},
			"compaction_failed:task_queue, config", TitleAlert, "Compaction failed: task_queue, config"},
		{resilience.RecoveryCompleteEvent{Table: "config", Trigger: resilience.TriggerAuto},
			"recovery_auto:config", TitleAlert, "Auto-restore: config restored from backup"},
		{resilience.RecoveryCompleteEvent{Table: "config", Trigger: resilience.TriggerManual}, "", "", ""},
		{resilience.RecoveryFailedEvent{Table: "config", Reason: strings.Repeat("r", 200), Trigger: resilience.TriggerAuto},
			"recovery_failed:config", TitleCritical, "Storage recovery FAILED: config -- " + strings.Repeat("r", 160) + "…"},
		{resilience.DegradedModeEvent{Table: "config", Reason: "no backup", Trigger: resilience.TriggerAuto, DataLost: true},
			"degraded:config", TitleCritical, "Storage degraded: config running empty after data loss"},
		{resilience.DrillCompleteEvent{}, "", "", ""},
		{resilience.DrillFailedEvent{Failures: fails[:1], Reason: "task_queue: locked"},
			"drill_failed:task_queue", TitleAlert, "Restore drill failed: task_queue -- task_queue: locked"},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		seen[c.p.EventType()] = true
		key, n, ok := Rule(bus.Event{Time: 1, Data: c.p})
		if ok != (c.title != "") || key != c.key || n.Title != c.title || n.Body != c.body {
			t.Errorf("%s %+v: got %v %q %q %q\nwant %q %q %q", c.p.EventType(), c.p, ok, key, n.Title, n.Body, c.key, c.title, c.body)
		}
	}
	// Every kind of both packages has a sample above.
	for _, kind := range []string{
		tasks.EventSubmitted, tasks.EventAssigned, tasks.EventAccepted, tasks.EventProgress, tasks.EventCompleted,
		tasks.EventFailed, tasks.EventRetried, tasks.EventReclaimed, tasks.EventDeadLetter, tasks.EventCancelled,
		tasks.EventRejected, tasks.EventRecovering, tasks.EventVerified, tasks.EventReleased, tasks.EventPaused,
		tasks.EventResumed, tasks.EventSchedule,
		resilience.EventBackupComplete, resilience.EventBackupFailed, resilience.EventCompactionComplete,
		resilience.EventCompactionFailed, resilience.EventRecoveryComplete, resilience.EventRecoveryFailed,
		resilience.EventDegradedMode, resilience.EventDrillComplete, resilience.EventDrillFailed,
	} {
		if !seen[kind] {
			t.Errorf("no sample of %s", kind)
		}
	}
}

// renamedRecovery is resilience.RecoveryCompleteEvent with every JSON tag
// renamed: a struct differing only in tags converts to it.
type renamedRecovery struct {
	Timestamp    int64    `json:"ts"`
	Table        string   `json:"tbl"`
	BackupUsed   string   `json:"from_backup"`
	BackupTime   int64    `json:"backup_ts"`
	RecordCount  int      `json:"records"`
	Trigger      string   `json:"cause"`
	Startup      bool     `json:"at_start"`
	Reason       string   `json:"why"`
	AsidePath    string   `json:"aside"`
	ReloadErrors []string `json:"reload_errs"`
}

type renamedBackupFailed struct {
	Timestamp int64                `json:"ts"`
	Failures  []resilience.Failure `json:"errors"`
	Reason    string               `json:"why"`
	Trigger   string               `json:"cause"`
}

// TestRuleIgnoresJSONTags: renaming the JSON tags of an event (as a
// producer might) leaves its push as it was, because Rule reads Go
// fields. The JSON no longer has the keys the map-reading rules looked
// up, which is how a rename used to silence the push.
func TestRuleIgnoresJSONTags(t *testing.T) {
	check := func(renamed any, p bus.Payload, oldKeys ...string) (string, string) {
		t.Helper()
		b, err := json.Marshal(renamed)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range oldKeys {
			if _, ok := m[k]; ok {
				t.Fatalf("renamed JSON still has %q: %s", k, b)
			}
		}
		key, n, ok := Rule(bus.Event{Data: p})
		if !ok {
			t.Fatalf("%T no longer pushes once its tags are renamed", p)
		}
		return key, n.Body
	}
	rec := renamedRecovery{Table: "config", Trigger: resilience.TriggerAuto}
	if key, body := check(rec, resilience.RecoveryCompleteEvent(rec), "trigger", "table"); key != "recovery_auto:config" || body != "Auto-restore: config restored from backup" {
		t.Fatalf("recovery push %q %q", key, body)
	}
	bf := renamedBackupFailed{Failures: []resilience.Failure{{Table: "config", Reason: "full"}}, Reason: "disk full"}
	if key, body := check(bf, resilience.BackupFailedEvent(bf), "failures", "reason"); key != "backup_failed:config" || body != "Backup failed: config -- disk full" {
		t.Fatalf("backup push %q %q", key, body)
	}
}

// TestOutgoingKeysSorted: the entries the dashboard sends were encoded
// from maps, whose keys encoding/json sorts, so their structs must keep
// their JSON keys in that order for the frames to stay byte-identical.
func TestOutgoingKeysSorted(t *testing.T) {
	for _, v := range []any{agentJoined{}, agentLeft{}, statusChanged{}, stateChanged{}, alertEntry{}, storageEntry{},
		compactionEntry{}, failureEntry{}, backupResultEntry{}, compactResultEntry{}, drillResultEntry{}} {
		typ := reflect.TypeOf(v)
		var keys []string
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			keys = append(keys, name)
		}
		if !slices.IsSorted(keys) {
			t.Errorf("%s keys out of order: %v", typ.Name(), keys)
		}
	}
}
