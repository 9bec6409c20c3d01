package tasks

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// appendRecord appends t's stored body, byte for byte what
// json.Marshal(recordOf(t)) writes, without reflection or the record copy:
// every submission and completion writes one, and encoding/json's
// reflection and the copy's history and attempt slices were a visible
// share of a task's CPU. Values of type any (metadata, result, history
// details...) are written here when they are of the types the hub itself
// builds (the decoders' types, strings, numbers, *int64); any other value
// goes through json.Marshal, so the bytes stay the same whatever a caller
// stored. FuzzAppendRecord and TestAppendRecordMatchesJSON hold the two
// equal.
func appendRecord(b []byte, t *Task) ([]byte, error) {
	var err error
	b = append(b, `{"id":`...)
	b = appendString(b, t.ID)
	b = append(b, `,"description":`...)
	b = appendString(b, t.Description)
	b = append(b, `,"metadata":`...)
	if b, err = appendMap(b, t.Metadata, 0); err != nil {
		return nil, err
	}
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(t.Priority), 10)
	b = append(b, `,"status":`...)
	b = appendString(b, string(t.Status))
	b = append(b, `,"assigned_to":`...)
	b = appendStringPtr(b, t.AssignedTo)
	b = append(b, `,"assigned_at":`...)
	b = appendIntPtr(b, t.AssignedAt)
	b = append(b, `,"generation":`...)
	b = strconv.AppendInt(b, t.Generation, 10)
	b = append(b, `,"retry_count":`...)
	b = strconv.AppendInt(b, int64(t.RetryCount), 10)
	if t.DisconnectReclaims != 0 {
		b = append(b, `,"disconnect_reclaims":`...)
		b = strconv.AppendInt(b, int64(t.DisconnectReclaims), 10)
	}
	b = append(b, `,"max_retries":`...)
	b = strconv.AppendInt(b, int64(t.MaxRetries), 10)
	b = append(b, `,"needed_capabilities":`...)
	b = appendStrings(b, t.NeededCapabilities)
	b = append(b, `,"last_error":`...)
	if b, err = appendAny(b, t.LastError, 0); err != nil {
		return nil, err
	}
	b = append(b, `,"complete_by":`...)
	b = appendIntPtr(b, t.CompleteBy)
	b = append(b, `,"result":`...)
	if b, err = appendAny(b, t.Result, 0); err != nil {
		return nil, err
	}
	b = append(b, `,"tokens_used":`...)
	b = appendIntPtr(b, t.TokensUsed)
	b = append(b, `,"submitted_by":`...)
	b = appendString(b, t.SubmittedBy)
	b = append(b, `,"created_at":`...)
	b = strconv.AppendInt(b, t.CreatedAt, 10)
	b = append(b, `,"updated_at":`...)
	b = strconv.AppendInt(b, t.UpdatedAt, 10)
	b = append(b, `,"history":`...)
	if t.History == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range t.History {
			e := &t.History[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"event":`...)
			b = appendString(b, e.Event)
			b = append(b, `,"timestamp":`...)
			b = strconv.AppendInt(b, e.Timestamp, 10)
			b = append(b, `,"details":`...)
			if b, err = appendAny(b, e.Details, 0); err != nil {
				return nil, err
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"target_agent":`...)
	b = appendStringPtr(b, t.TargetAgent)
	if t.NotBefore != 0 {
		b = append(b, `,"not_before":`...)
		b = strconv.AppendInt(b, t.NotBefore, 10)
	}
	if t.LastOutput != nil {
		b = append(b, `,"last_output":`...)
		if b, err = appendAny(b, t.LastOutput, 0); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"attempts":`...)
	if t.Attempts == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range t.Attempts {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendAttempt(b, &t.Attempts[i])
		}
		b = append(b, ']')
	}
	if len(t.RejectedBy) > 0 {
		b = append(b, `,"rejected_by":`...)
		b = appendStrings(b, t.RejectedBy)
	}
	b = appendOptString(b, `,"cancelled_by":`, t.CancelledBy)
	if t.Usage != nil {
		b = append(b, `,"usage":`...)
		if b, err = appendMarshal(b, t.Usage); err != nil {
			return nil, err
		}
	}
	b = appendOptString(b, `,"unique_key":`, t.UniqueKey)
	b = appendOptInt(b, `,"unique_until":`, t.UniqueUntil)
	b = appendOptInt(b, `,"run_at":`, t.RunAt)
	if len(t.DependsOn) > 0 {
		b = append(b, `,"depends_on":`...)
		b = appendStrings(b, t.DependsOn)
	}
	b = appendOptString(b, `,"on_dependency_failure":`, t.OnDependencyFailure)
	b = appendOptString(b, `,"schedule":`, t.Schedule)
	b = appendOptInt(b, `,"schedule_tick":`, t.ScheduleTick)
	return append(b, '}'), nil
}

func appendAttempt(b []byte, a *Attempt) []byte {
	b = append(b, `{"generation":`...)
	b = strconv.AppendInt(b, a.Generation, 10)
	b = append(b, `,"agent_id":`...)
	b = appendString(b, a.AgentID)
	b = append(b, `,"assigned_at":`...)
	b = strconv.AppendInt(b, a.AssignedAt, 10)
	b = appendOptInt(b, `,"accepted_at":`, a.AcceptedAt)
	b = appendOptInt(b, `,"ended_at":`, a.EndedAt)
	b = appendOptString(b, `,"outcome":`, a.Outcome)
	b = appendOptString(b, `,"reason":`, a.Reason)
	return append(b, '}')
}

// appendOptString writes an omitempty string field.
func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// appendOptInt writes an omitempty integer field.
func appendOptInt(b []byte, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), n, 10)
}

func appendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

func appendIntPtr(b []byte, n *int64) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *n, 10)
}

func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// maxAppendDepth is how deep appendAny nests before it hands the rest to
// encoding/json, which detects a map or slice that contains itself (a
// cycle would otherwise recurse here until the stack overflowed).
const maxAppendDepth = 64

// appendAny writes v as json.Marshal does. The hub's own values (what
// the JSON decoders produce, plus the integers and *int64 it puts in
// history details) are written here; anything else is marshalled.
func appendAny(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxAppendDepth {
		return appendMarshal(b, v)
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		return appendFloat(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case *int64:
		return appendIntPtr(b, v), nil
	case map[string]any:
		return appendMap(b, v, depth+1)
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendAny(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []string:
		return appendStrings(b, v), nil
	case json.Number:
		// Results and outputs from agents are decoded with UseNumber.
		if plainNumber(string(v)) {
			return append(b, v...), nil
		}
	}
	return appendMarshal(b, v)
}

// plainNumber reports whether s is a number in strict JSON grammar, which
// encoding/json writes as is (it refuses anything else, and writes "" as
// 0: both left to it).
func plainNumber(s string) bool {
	digits := func(s string) string {
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
		return s
	}
	s, _ = strings.CutPrefix(s, "-")
	switch {
	case s == "":
		return false
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = digits(s[1:])
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = digits(s[2:])
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
		}
		if s == "" || s[0] < '0' || s[0] > '9' {
			return false
		}
		s = digits(s)
	}
	return s == ""
}

// appendMap writes m with its keys sorted, as json.Marshal does.
func appendMap(b []byte, m map[string]any, depth int) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	if len(m) == 0 {
		return append(b, "{}"...), nil
	}
	var arr [8]string
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendAny(b, m[k], depth); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendMarshal is the fallback: encoding/json itself (its errors too,
// which name the bad value).
func appendMarshal(b []byte, v any) ([]byte, error) {
	m, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, m...), nil
}

// appendFloat writes f as encoding/json does (ES6 number formatting).
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return appendMarshal(b, f) // encoding/json's error
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendString writes s quoted as encoding/json does with its default
// HTML escaping: <, > and & as \u00XX, control characters escaped,
// invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// encodeRecord is t's stored body, exactly json.Marshal(recordOf(t)),
// in one allocation for most tasks (a submitted task's body is ~500
// bytes, a completed one's ~900).
func encodeRecord(t *Task) ([]byte, error) {
	n := 400 + len(t.Description) + 128*(len(t.History)+len(t.Attempts))
	return appendRecord(make([]byte, 0, n), t)
}
