package resilience

import (
	"encoding/json"
	"testing"
	"time"
)

// Backup file names are read back from disk, where anything can appear.
func FuzzParseBackupName(f *testing.F) {
	f.Add("task_queue", "task_queue_2026-02-12T07-23-54.123.db")
	f.Add("task_queue", "task_queue_2026-02-12T07-23-54.123.db.tmp")
	f.Add("agent_mailbox", "agent_mailbox_x.db")
	f.Add("a", "a_.db")
	f.Fuzz(func(t *testing.T, table, name string) {
		at, ok := parseBackupName(table, name)
		if !ok {
			return
		}
		// Whatever parses names a time that formats back to the same name.
		if got := table + "_" + at.Format(stampLayout) + ".db"; got != name {
			t.Fatalf("%q parsed as %v, formats as %q", name, at, got)
		}
		if at.Location() != time.UTC {
			t.Fatalf("time not UTC: %v", at)
		}
	})
}

// Degraded markers are files an operator may edit.
func FuzzParseMarker(f *testing.F) {
	good, _ := json.Marshal(marker{Table: "t", Since: 1, Reason: "r", AsidePath: "/x", Trigger: TriggerAuto})
	f.Add(good)
	f.Add([]byte("{"))
	f.Add([]byte(`{"since":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := parseMarker("agent_mailbox", b)
		if m == nil || m.Table != "agent_mailbox" {
			t.Fatalf("marker %+v", m)
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	})
}
