package sidecar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
)

// Task statuses kept in the state file (the original's values).
const (
	StatusAccepted     = "accepted"
	StatusWaking       = "waking"
	StatusConfirmation = "waking_confirmation"
	StatusWorking      = "working"
	// Run mode: the agent process runs (or is about to start), and the
	// verification commands run after it succeeded.
	StatusRunning   = "running"
	StatusVerifying = "verifying"
)

// ErrCorruptState marks a state file that could not be decoded.
var ErrCorruptState = errors.New("corrupt sidecar state file")

// State is what the sidecar must not forget across a crash: the task it
// holds and the terminal reports the hub has not acknowledged yet.
//
// File format (JSON object, 2-space indent):
//
//	{"version": 2, "active": Task|null, "outbox": [Report]}
//
// A file of the original Node sidecar ({"active", "recovering"}) is read
// too: a "recovering" task with no "active" one becomes the active task.
type State struct {
	Version int      `json:"version"`
	Active  *Task    `json:"active"`
	Outbox  []Report `json:"outbox"`
}

// Task is the task the sidecar holds.
type Task struct {
	TaskID       string          `json:"task_id"`
	Description  string          `json:"description,omitempty"`
	Metadata     json.RawMessage `json:"metadata"`
	Status       string          `json:"status"`
	AssignedAt   int64           `json:"assigned_at"`
	Generation   int64           `json:"generation"`
	WakeAttempts int             `json:"wake_attempts"`
	// Confirmed records a <task_id>.started seen at any time, even before
	// the wake command finished.
	Confirmed  bool   `json:"confirmed,omitempty"`
	Branch     string `json:"branch,omitempty"`
	GitWarning string `json:"git_warning,omitempty"`
	// Dependencies are the upstream tasks' outcomes from task_assign.
	Dependencies json.RawMessage `json:"dependencies,omitempty"`
	// CompleteBy is the task's deadline (Unix ms, 0: none).
	CompleteBy int64 `json:"complete_by,omitempty"`

	// Run is the agent process of run mode, while one was started.
	Run *RunState `json:"run,omitempty"`
	// Attempt is the agent run in progress: 1, then one more per failed
	// verification.
	Attempt int `json:"attempt,omitempty"`
	// Checks are the verification results of every attempt so far.
	Checks []protocol.VerifyCheck `json:"checks,omitempty"`
	// Usage sums what the agent reported over every finished run.
	Usage protocol.Usage `json:"usage,omitzero"`
	// LogSent is the offset in the task log up to which output was read
	// and streamed to the hub.
	LogSent int64 `json:"log_sent,omitempty"`
	// AgentResult is the agent's successful result while it is being
	// verified.
	AgentResult json.RawMessage `json:"agent_result,omitempty"`
}

// RunState is what the sidecar must know to find a run-mode agent process
// again after its own restart: the process group and how far its output
// was streamed.
type RunState struct {
	PGID      int   `json:"pgid"`
	PID       int   `json:"pid"`
	StartedAt int64 `json:"started_at"`
	// LogStart is the task log's size when this run started.
	LogStart int64 `json:"log_start"`
	// Usage sums the usage lines of this run read so far, up to log
	// offset UsageOff (saved together, so a restart never counts a line
	// twice).
	Usage    protocol.Usage `json:"usage,omitzero"`
	UsageOff int64          `json:"usage_off,omitempty"`
}

// Report is a terminal report waiting for the hub's task_ack.
type Report struct {
	Type       string          `json:"type"` // task_complete or task_failed
	TaskID     string          `json:"task_id"`
	Generation int64           `json:"generation"`
	Result     json.RawMessage `json:"result,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	// Output is a failed result object, sent along with the reason.
	Output    json.RawMessage `json:"output,omitempty"`
	CreatedAt int64           `json:"created_at"`
	// Usage is what the agent spent on the task (sent with the report).
	Usage *protocol.Usage `json:"usage,omitempty"`
}

const (
	reportComplete = protocol.FrameTaskComplete
	reportFailed   = protocol.FrameTaskFailed
	stateVersion   = 2
)

// validTaskID guards every use of a hub task id as a file name.
var validTaskID = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// ValidTaskID reports whether id is safe to use as a file name.
func ValidTaskID(id string) bool { return validTaskID.MatchString(id) && id != "." && id != ".." }

// DecodeState parses a state file. Any problem is ErrCorruptState: the
// caller must move the file aside rather than start empty silently.
func DecodeState(data []byte) (State, []string, error) {
	var notes []string
	if len(bytes.TrimSpace(data)) == 0 {
		return State{}, nil, fmt.Errorf("%w: empty file", ErrCorruptState)
	}
	var raw struct {
		Version    int      `json:"version"`
		Active     *Task    `json:"active"`
		Recovering *Task    `json:"recovering"`
		Outbox     []Report `json:"outbox"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return State{}, nil, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	if dec.More() {
		return State{}, nil, fmt.Errorf("%w: trailing data after the JSON object", ErrCorruptState)
	}
	if raw.Version > stateVersion {
		return State{}, nil, fmt.Errorf("%w: version %d is newer than this sidecar understands (%d)", ErrCorruptState, raw.Version, stateVersion)
	}
	st := State{Version: stateVersion, Active: raw.Active, Outbox: raw.Outbox}
	if raw.Recovering != nil {
		if st.Active == nil {
			st.Active = raw.Recovering
			notes = append(notes, "legacy recovering task "+raw.Recovering.TaskID+" taken as the active task")
		} else {
			notes = append(notes, "legacy recovering task "+raw.Recovering.TaskID+" dropped: another task is active; the hub will reclaim it")
		}
	}
	if t := st.Active; t != nil {
		if !ValidTaskID(t.TaskID) {
			return State{}, nil, fmt.Errorf("%w: active task id %q is not a valid task id", ErrCorruptState, t.TaskID)
		}
		switch t.Status {
		case StatusAccepted, StatusWaking, StatusConfirmation, StatusWorking, StatusRunning, StatusVerifying:
		default:
			notes = append(notes, fmt.Sprintf("task %s had status %q; treated as working", t.TaskID, t.Status))
			t.Status = StatusWorking
		}
		if len(t.Metadata) == 0 || !json.Valid(t.Metadata) {
			t.Metadata = json.RawMessage("{}")
		}
	}
	for i, r := range st.Outbox {
		if !ValidTaskID(r.TaskID) || (r.Type != reportComplete && r.Type != reportFailed) {
			return State{}, nil, fmt.Errorf("%w: outbox entry %d (%q, %q) is invalid", ErrCorruptState, i, r.Type, r.TaskID)
		}
		if r.Type == reportComplete && (len(r.Result) == 0 || !json.Valid(r.Result)) {
			return State{}, nil, fmt.Errorf("%w: outbox entry %d has no valid result", ErrCorruptState, i)
		}
		if len(r.Output) > 0 && !json.Valid(r.Output) {
			return State{}, nil, fmt.Errorf("%w: outbox entry %d has an invalid output", ErrCorruptState, i)
		}
	}
	return st, notes, nil
}

// EncodeState renders the state file.
func EncodeState(st State) ([]byte, error) {
	st.Version = stateVersion
	if st.Outbox == nil {
		st.Outbox = []Report{}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// LoadInfo tells what LoadState found besides the state.
type LoadInfo struct {
	// CorruptMovedTo is where an undecodable file was moved ("" if none).
	CorruptMovedTo string
	// CorruptReason is the decode error of that file.
	CorruptReason string
	// Notes are non-fatal findings (legacy fields, odd statuses).
	Notes []string
}

// LoadState reads the state file. A missing file is an empty state. A
// corrupt file is renamed to <path>.corrupt-<unix ms> and reported in
// LoadInfo; the returned state is then empty, and the caller must say so
// loudly.
func LoadState(path string, now time.Time) (State, LoadInfo, error) {
	var info LoadInfo
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{Version: stateVersion}, info, nil
	}
	if err != nil {
		return State{}, info, fmt.Errorf("read state %s: %w", path, err)
	}
	st, notes, err := DecodeState(data)
	info.Notes = notes
	if err == nil {
		return st, info, nil
	}
	aside := fmt.Sprintf("%s.corrupt-%d", path, now.UnixMilli())
	if rerr := os.Rename(path, aside); rerr != nil {
		return State{}, info, fmt.Errorf("state %s is corrupt (%v) and could not be moved aside: %w", path, err, rerr)
	}
	if derr := syncDir(filepath.Dir(path)); derr != nil {
		return State{}, info, derr
	}
	info.CorruptMovedTo, info.CorruptReason = aside, err.Error()
	return State{Version: stateVersion}, info, nil
}

// SaveState writes the state durably: a temp file in the same directory,
// fsync, rename over the old file, fsync the directory.
func SaveState(path string, st State) error {
	data, err := EncodeState(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileDurable(path, data, 0o600)
}

// writeFileDurable replaces path atomically and durably.
func writeFileDurable(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
