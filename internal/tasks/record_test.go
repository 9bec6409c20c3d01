package tasks

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// notStored are the Task fields the stored record leaves out.
var notStored = map[string]bool{
	"Upstream": true, // filled on the snapshot delivered with an assignment
	"Paused":   true, // filled on listing snapshots
	"Archived": true, // filled when read from the archive
	"Version":  true, // the row's own column
}

// storedSample is populatedTask as it reaches rowOf: stored copies never
// carry Paused (Upstream and Version are json:"-" on Task, so they stay
// set and must be dropped).
func storedSample() *Task {
	t := populatedTask()
	t.Paused, t.Archived = false, false
	return t
}

// TestRecordBytesUnchanged: a stored body is byte for byte what encoding
// Task itself wrote, so data written before the record type existed and
// after it are the same.
func TestRecordBytesUnchanged(t *testing.T) {
	cases := map[string]*Task{
		"populated":    storedSample(),
		"zero":         {},
		"empty slices": emptySlicesTask(),
	}
	sameJSONAsTask(t, cases, func(task *Task) ([]byte, error) {
		row, err := rowOf(task)
		return row.Body, err
	})
}

// TestRecordDecodesOldBodies: a body written by encoding Task (the format
// of every existing data dir) decodes to the task that wrote it, and
// re-encodes to the same bytes.
func TestRecordDecodesOldBodies(t *testing.T) {
	src := storedSample()
	old, err := json.Marshal(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decode(old)
	if err != nil {
		t.Fatal(err)
	}
	// Through JSON, numbers in any-typed fields come back as float64:
	// compare against src round-tripped the old way.
	var want Task
	if err := json.Unmarshal(old, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("decoded\n got: %+v\nwant: %+v", got, &want)
	}
	again, err := rowOf(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Body, old) {
		t.Errorf("re-encoded body differs\n got: %s\nwant: %s", again.Body, old)
	}
}

// TestTaskFieldsStoredDecided: every Task field is either in the record
// (same name and JSON tag) or listed in notStored; a new field fails here
// until someone decides whether it goes to disk.
func TestTaskFieldsStoredDecided(t *testing.T) {
	checkFieldsDecided(t, reflect.TypeFor[record](), notStored)
}
