package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Workflow records: the persistent state of pauses and periodic
// schedules, and the unique keys archived tasks still hold
// (archive_keys.go).
//
// They are stored with the tasks (storage.TaskStore's workflow records),
// so that a change that touches a task and a workflow record commits in
// one store operation: a schedule's tick is stored with the task it
// enqueued, and a crash can never keep one without the other. Dependency
// edges, unique keys and run_at times are fields of the task records
// themselves; the in-memory indexes over them are rebuilt from the tasks
// at load (and from the unique key records, for archived tasks).
//
// This file is the only code that knows the record layout: everything
// else goes through wfRecord, loadWorkflowRecord and persistWith.
const (
	wfPauseLane     = "pause:lane:"
	wfPauseCapacity = "pause:cap:"
	wfSchedule      = "schedule:"
	wfUnique        = "unique:"
)

// wfRecord is one workflow record to write (val != nil) or delete.
type wfRecord struct {
	key string
	val []byte
}

// pauseRecord is a paused lane or capability.
type pauseRecord struct {
	By string `json:"by"`
	At int64  `json:"at"`
}

func pauseKey(kind PauseKind, name string) string {
	if kind == PauseLane {
		return wfPauseLane + name
	}
	return wfPauseCapacity + name
}

func putRecord(key string, v any) (wfRecord, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return wfRecord{}, fmt.Errorf("encode %s: %w", key, err)
	}
	return wfRecord{key: key, val: b}, nil
}

func deleteRecord(key string) wfRecord { return wfRecord{key: key} }

// workflowState is what the workflow records hold.
type workflowState struct {
	pauses    map[pauseID]pauseRecord
	schedules map[string]*Schedule
	// uniques are the unique keys kept for archived tasks, by key.
	uniques map[string]uniqEntry
}

// loadWorkflowRecord decodes one workflow record into st.
func loadWorkflowRecord(st *workflowState, key string, v []byte) error {
	switch {
	case strings.HasPrefix(key, wfPauseLane), strings.HasPrefix(key, wfPauseCapacity):
		var p pauseRecord
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("pause record %q: %w", key, err)
		}
		id := pauseID{Kind: PauseCapability, Name: strings.TrimPrefix(key, wfPauseCapacity)}
		if name, ok := strings.CutPrefix(key, wfPauseLane); ok {
			id = pauseID{Kind: PauseLane, Name: name}
		}
		st.pauses[id] = p
	case strings.HasPrefix(key, wfSchedule):
		s := &Schedule{}
		if err := json.Unmarshal(v, s); err != nil {
			return fmt.Errorf("schedule record %q: %w", key, err)
		}
		if s.Name == "" {
			return fmt.Errorf("schedule record %q without a name", key)
		}
		// A schedule that no longer compiles (a time zone removed from
		// the system's database) is kept and shown with its error; it
		// never fires, and the hub still starts.
		if err := s.compile(); err != nil {
			s.Error = err.Error()
		}
		st.schedules[s.Name] = s
	case strings.HasPrefix(key, wfUnique):
		var u uniqueRecord
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("unique key record %q: %w", key, err)
		}
		if u.ID == "" {
			return fmt.Errorf("unique key record %q without a task id", key)
		}
		if st.uniques == nil {
			st.uniques = map[string]uniqEntry{}
		}
		st.uniques[strings.TrimPrefix(key, wfUnique)] = uniqEntry{id: u.ID, until: u.Until, rec: u.ID}
	}
	// Unknown workflow records (from a newer hub) are kept and ignored.
	return nil
}

// persistWith writes task snapshots and workflow records in one store
// operation (see persist for the version rules on tasks).
func (q *Queue) persistWith(recs []wfRecord, ts ...*Task) error {
	return q.write(context.Background(), recs, ts)
}
