package dashboard

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Client frame types of /ws/dashboard.
const (
	FrameRequestSnapshot = "request_snapshot"
	FrameRetryTask       = "retry_task"
	FrameCancelTask      = "cancel_task"
	FrameBackupNow       = "backup_now"
	FrameCompact         = "compact"
	FrameRestore         = "restore"
	FrameAgentTimeline   = "agent_timeline"
	FramePing            = "ping"
	// FramePause and FrameResume take "lane" or "capability";
	// FrameSchedule takes "name" and "action" (pause, resume, run,
	// remove).
	FramePause    = "pause"
	FrameResume   = "resume"
	FrameSchedule = "schedule_action"
)

// frameKind reports whether typ is a client frame type and whether it
// acts (needs an admin).
func frameKind(typ string) (known, acts bool) {
	switch typ {
	case FrameRequestSnapshot, FrameAgentTimeline, FramePing:
		return true, false
	case FrameRetryTask, FrameCancelTask, FrameBackupNow, FrameCompact, FrameRestore, FramePause, FrameResume, FrameSchedule:
		return true, true
	}
	return false, false
}

// Field limits of client frames.
const (
	maxFrameBytes = 64 << 10
	maxIDLen      = 128
	maxReasonLen  = 1000
	maxRefLen     = 64
	maxBackupLen  = 255
)

var tableName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// clientFrame is a validated client frame.
type clientFrame struct {
	Type    string
	Ref     string
	TaskID  string
	Reason  string
	Table   string
	Backup  string
	Force   bool
	DryRun  bool
	AgentID string
	// Pause targets and schedule actions.
	Lane, Capability string
	Name, Action     string
}

// frameError is a rejected client frame: the error frame's code and
// field errors.
type frameError struct {
	Code   string
	Type   string
	Ref    string
	Errors []protocol.FieldError
}

// decodeFrame parses and validates one client frame against the schema
// of its type: required fields, JSON types (no coercion) and lengths.
func decodeFrame(data []byte) (clientFrame, *frameError) {
	if len(data) > maxFrameBytes {
		return clientFrame{}, &frameError{Code: protocol.CodeValidationFailed, Type: "unknown",
			Errors: []protocol.FieldError{{Field: "message", Error: protocol.ErrTooLong, Detail: fmt.Sprintf("frame larger than %d bytes", maxFrameBytes)}}}
	}
	obj, err := protocol.DecodeObject(data)
	if err != nil {
		if ve, ok := err.(*protocol.ValidationError); ok {
			return clientFrame{}, &frameError{Code: protocol.CodeValidationFailed, Type: "unknown", Errors: ve.Errors}
		}
		return clientFrame{}, &frameError{Code: protocol.CodeInvalidJSON, Type: "unknown"}
	}
	v := validator{obj: obj}
	f := clientFrame{}
	f.Ref = v.str("ref", false, maxRefLen)
	typ, ok := obj["type"].(string)
	switch {
	case obj["type"] == nil:
		v.fail("type", protocol.ErrRequired, "type is required", nil)
	case !ok:
		v.fail("type", protocol.ErrWrongType, "expected string", obj["type"])
	default:
		if known, _ := frameKind(typ); !known {
			v.errs = append(v.errs, protocol.FieldError{Field: "type", Error: protocol.ErrUnknownMessageType,
				Detail: "unknown frame type", Value: clip(typ, 64), KnownTypes: frameTypes()})
		}
	}
	f.Type = typ
	if len(v.errs) == 0 {
		switch typ {
		case FrameRetryTask:
			f.TaskID = v.str("task_id", true, maxIDLen)
		case FrameCancelTask:
			f.TaskID = v.str("task_id", true, maxIDLen)
			f.Reason = v.str("reason", false, maxReasonLen)
		case FrameCompact:
			f.Table = v.table(false)
			f.Force = v.boolean("force", false)
		case FrameRestore:
			f.Table = v.table(true)
			f.Backup = v.str("backup", false, maxBackupLen)
			if f.Backup != "" && (strings.ContainsAny(f.Backup, `/\`) || strings.Contains(f.Backup, "..")) {
				v.fail("backup", protocol.ErrInvalidValue, "a backup file name, without a directory", f.Backup)
			}
			f.DryRun = v.boolean("dry_run", true)
		case FrameAgentTimeline:
			f.AgentID = v.str("agent_id", true, maxIDLen)
		case FramePause, FrameResume:
			f.Lane = v.str("lane", false, 16)
			f.Capability = v.str("capability", false, tasks.MaxCapLen)
			if (f.Lane == "") == (f.Capability == "") {
				v.fail("lane", protocol.ErrInvalidValue, "give exactly one of lane or capability", nil)
			} else if _, ok := tasks.LaneByName(f.Lane); f.Lane != "" && !ok {
				v.fail("lane", protocol.ErrInvalidValue, "one of urgent, high, normal, low", f.Lane)
			}
		case FrameSchedule:
			f.Name = v.str("name", true, tasks.MaxScheduleNameLen)
			f.Action = v.str("action", true, 16)
			switch f.Action {
			case "", "pause", "resume", "run", "remove":
			default:
				v.fail("action", protocol.ErrInvalidValue, "pause, resume, run or remove", f.Action)
			}
		}
	}
	if len(v.errs) > 0 {
		t := "unknown"
		if typ != "" {
			t = clip(typ, 64)
		}
		return f, &frameError{Code: protocol.CodeValidationFailed, Type: t, Ref: f.Ref, Errors: v.errs}
	}
	return f, nil
}

func frameTypes() []string {
	return []string{FrameRequestSnapshot, FrameRetryTask, FrameCancelTask, FrameBackupNow, FrameCompact,
		FrameRestore, FrameAgentTimeline, FramePing, FramePause, FrameResume, FrameSchedule}
}

type validator struct {
	obj  protocol.Object
	errs []protocol.FieldError
}

func (v *validator) fail(field, code, detail string, value any) {
	v.errs = append(v.errs, protocol.FieldError{Field: field, Error: code, Detail: detail, Value: value})
}

func (v *validator) str(field string, required bool, maxLen int) string {
	raw, present := v.obj[field]
	if !present || raw == nil {
		if required {
			v.fail(field, protocol.ErrRequired, field+" is required", nil)
		}
		return ""
	}
	s, ok := raw.(string)
	if !ok {
		v.fail(field, protocol.ErrWrongType, "expected string", nil)
		return ""
	}
	if !utf8.ValidString(s) {
		v.fail(field, protocol.ErrInvalidValue, "not valid UTF-8", nil)
		return ""
	}
	if len(s) > maxLen {
		v.fail(field, protocol.ErrTooLong, fmt.Sprintf("at most %d bytes", maxLen), nil)
		return ""
	}
	if required && strings.TrimSpace(s) == "" {
		v.fail(field, protocol.ErrRequired, field+" must not be empty", nil)
		return ""
	}
	return s
}

func (v *validator) boolean(field string, required bool) bool {
	raw, present := v.obj[field]
	if !present || raw == nil {
		if required {
			v.fail(field, protocol.ErrRequired, field+" is required (true or false)", nil)
		}
		return false
	}
	b, ok := raw.(bool)
	if !ok {
		v.fail(field, protocol.ErrWrongType, "expected boolean", nil)
	}
	return b
}

func (v *validator) table(required bool) string {
	t := v.str("table", required, 64)
	if t != "" && !tableName.MatchString(t) {
		v.fail("table", protocol.ErrInvalidValue, "a table id such as task_queue", t)
		return ""
	}
	return t
}
