package sidecar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/agentcom/agentcom/internal/protocol"
)

// inFrame is a decoded hub frame: only the fields the sidecar reads, of
// protocol.Identified, TaskAssign, TaskAck, TaskContinue, TaskRevoked,
// TaskReassignReply, ErrorFrame and TaskReportError (frames_test.go
// encodes each with the hub's type and decodes it here). It is flat and
// decoded leniently rather than into those types: metadata and
// dependencies stay the hub's exact bytes for the task file, and a
// description may be any JSON, as the original hub allowed.
type inFrame struct {
	Type        string
	TaskID      string
	AgentID     string
	Status      string
	Error       string
	Description string
	Metadata    json.RawMessage
	// Generation is -1 when the frame carried none.
	Generation int64
	AssignedAt int64
	CompleteBy int64
	// Dependencies is task_assign's list of upstream task outcomes (a
	// JSON array), passed on in TASK_FILE.
	Dependencies json.RawMessage
}

// errFrame is a hub frame the sidecar cannot use.
var errFrame = errors.New("invalid hub frame")

// decodeFrame parses one text frame from the hub. Integers are checked
// strictly (1.0 is not an integer), task ids must be safe file names, and
// fields of the wrong type are errors, so a bad frame is logged and
// dropped instead of reaching the task logic.
func decodeFrame(data []byte) (inFrame, error) {
	f := inFrame{Generation: -1}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return f, fmt.Errorf("%w: not a JSON object", errFrame)
	}
	str := func(k string, dst *string) error {
		v, ok := raw[k]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%w: %s is not a string", errFrame, k)
		}
		return nil
	}
	if err := str("type", &f.Type); err != nil {
		return f, err
	}
	if f.Type == "" {
		return f, fmt.Errorf("%w: no type", errFrame)
	}
	for k, dst := range map[string]*string{"task_id": &f.TaskID, "agent_id": &f.AgentID, "status": &f.Status} {
		if err := str(k, dst); err != nil {
			return f, err
		}
	}
	if v, ok := raw["error"]; ok && string(v) != "null" {
		if json.Unmarshal(v, &f.Error) != nil {
			f.Error = string(v) // structured validation errors: keep the JSON text
		}
	}
	if v, ok := raw["description"]; ok && string(v) != "null" {
		if json.Unmarshal(v, &f.Description) != nil {
			f.Description = string(v) // the original allows any JSON
		}
	}
	if v, ok := raw["metadata"]; ok && string(v) != "null" {
		f.Metadata = append(json.RawMessage(nil), v...)
	}
	if v, ok := raw["dependencies"]; ok && string(v) != "null" {
		if b := bytes.TrimSpace(v); len(b) == 0 || b[0] != '[' {
			return f, fmt.Errorf("%w: dependencies is not an array", errFrame)
		}
		f.Dependencies = append(json.RawMessage(nil), v...)
	}
	var err error
	if f.Generation, err = strictInt(raw, "generation", -1); err != nil {
		return f, err
	}
	if f.AssignedAt, err = strictInt(raw, "assigned_at", 0); err != nil {
		return f, err
	}
	if f.CompleteBy, err = strictInt(raw, "complete_by", 0); err != nil {
		return f, err
	}
	if f.TaskID != "" && !ValidTaskID(f.TaskID) {
		return f, fmt.Errorf("%w: task_id %q is not a valid task id", errFrame, f.TaskID)
	}
	return f, nil
}

// strictInt reads an optional integer field; absent or null gives def.
func strictInt(raw map[string]json.RawMessage, k string, def int64) (int64, error) {
	v, ok := raw[k]
	if !ok || string(v) == "null" {
		return def, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return def, fmt.Errorf("%w: %s is not an integer", errFrame, k)
	}
	return n, nil
}

// Outbound frames are the protocol package's agent frame types, whose
// fields are in the original sidecar's order; every one carries
// protocol_version.

// clientVersion is the protocol version the sidecar speaks: the one with
// presence changes batched in presence frames, which keeps the start of
// a large fleet linear in agents (the sidecar reads no presence). A hub
// that speaks only version 1 answers protocol_version_unsupported and
// carries on in version 1, which is all the sidecar needs.
const clientVersion = protocol.VersionPresence

// recoveringFrame announces an unfinished task after a (re)connect, with
// every field the original sidecar sends, null metadata included.
func recoveringFrame(t *Task) protocol.TaskRecovering {
	desc, _ := json.Marshal(t.Description) // a string cannot fail
	meta := t.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage("null")
	}
	return protocol.TaskRecovering{Type: protocol.FrameTaskRecovering, TaskID: t.TaskID, Description: desc, Metadata: meta,
		LastStatus: t.Status, Generation: t.Generation, ProtocolVersion: clientVersion}
}

// reportFrame renders an outbox entry as the frame sent to the hub.
func reportFrame(r Report) protocol.Frame {
	if r.Type == reportComplete {
		var tokens *int64
		if r.Usage != nil && r.Usage.TotalTokens > 0 {
			n := r.Usage.TotalTokens
			tokens = &n
		}
		return protocol.TaskComplete{Type: protocol.FrameTaskComplete, TaskID: r.TaskID, Result: r.Result, Generation: r.Generation,
			TokensUsed: tokens, Usage: r.Usage, ProtocolVersion: clientVersion}
	}
	return protocol.TaskFailed{Type: protocol.FrameTaskFailed, TaskID: r.TaskID, Reason: r.Reason, Generation: r.Generation, Output: r.Output,
		Usage: r.Usage, ProtocolVersion: clientVersion}
}
