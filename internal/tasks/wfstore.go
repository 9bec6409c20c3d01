package tasks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/agentcom/agentcom/internal/store"
)

// Workflow records: the persistent state of pauses and periodic schedules.
//
// They live in the task_queue table next to the tasks, under keys that
// start with "wf:" (task ids start with "task-"), so that a change that
// touches a task and a workflow record commits in one transaction: a
// schedule's tick is stored with the task it enqueued, and a crash can
// never keep one without the other. Dependency edges, unique keys and
// run_at times are fields of the task records themselves; the in-memory
// indexes over them are rebuilt from the tasks at load.
//
// This file is the only code that knows the record layout: everything
// else goes through wfRecord, loadWorkflow and persistWith.
const (
	wfPrefix        = "wf:"
	wfPauseLane     = "wf:pause:lane:"
	wfPauseCapacity = "wf:pause:cap:"
	wfSchedule      = "wf:schedule:"
)

// isWorkflowKey tells workflow records from task records.
func isWorkflowKey(k []byte) bool { return bytes.HasPrefix(k, []byte(wfPrefix)) }

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
}

// loadWorkflowRecord decodes one workflow record into st.
func loadWorkflowRecord(st *workflowState, k, v []byte) error {
	key := string(k)
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
	}
	// Unknown workflow records (from a newer hub) are kept and ignored.
	return nil
}

// persistWith writes task snapshots and workflow records in one
// transaction (see persist for the version rules on tasks).
func (q *Queue) persistWith(recs []wfRecord, ts ...*Task) error {
	return q.write(q.active, recs, ts)
}

func putRecords(tx *store.Tx, recs []wfRecord) error {
	for _, r := range recs {
		var err error
		if r.val == nil {
			err = tx.Delete([]byte(r.key))
		} else {
			err = tx.Put([]byte(r.key), r.val)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
