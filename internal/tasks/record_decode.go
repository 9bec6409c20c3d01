package tasks

import (
	"encoding/json"
	"strconv"

	"github.com/agentcom/agentcom/internal/protocol"
)

// decodeRecord reads a stored body in the exact shape json.Marshal
// writes a record (keys spelled as record's tags, each at most once, no
// unknown keys, strings plain ASCII or unquoted by encoding/json itself,
// numbers in strict JSON grammar) without reflection: a restart decodes
// every active task, and encoding/json was most of its time. ok is false
// on anything else, and the caller then decodes with encoding/json,
// which either gives the same record or reports the error it always
// did. FuzzDecodeRecord holds the two equal.
func decodeRecord(body []byte) (r record, ok bool) {
	p := scanner{b: body}
	if !p.byte('{') {
		return r, false
	}
	if p.peek() == '}' {
		p.i++
		return r, p.end()
	}
	var seen uint64
	for {
		k, ok := p.plainString()
		if !ok || !p.byte(':') {
			return r, false
		}
		bit, ok := p.recordField(&r, k)
		if !ok || seen&bit != 0 {
			// A repeated key would merge into (not replace) a map or
			// pointer already set in encoding/json: not our shape.
			return r, false
		}
		seen |= bit
		switch p.next() {
		case ',':
		case '}':
			return r, p.end()
		default:
			return r, false
		}
	}
}

// recordField reads the value of field k into r and returns the field's
// bit (for the repeated-key check).
func (p *scanner) recordField(r *record, k []byte) (bit uint64, ok bool) {
	switch string(k) {
	case "id":
		r.ID, ok = p.strictString()
		return 1 << 0, ok
	case "description":
		r.Description, ok = p.strictString()
		return 1 << 1, ok
	case "metadata":
		r.Metadata, ok = p.objectValue(1)
		return 1 << 2, ok
	case "priority":
		var n int64
		n, ok = p.strictInt()
		r.Priority = int(n)
		return 1 << 3, ok && strconv.IntSize == 64
	case "status":
		var s string
		s, ok = p.strictString()
		r.Status = Status(s)
		return 1 << 4, ok
	case "assigned_to":
		r.AssignedTo, ok = p.stringPtr()
		return 1 << 5, ok
	case "assigned_at":
		r.AssignedAt, ok = p.intPtr()
		return 1 << 6, ok
	case "generation":
		r.Generation, ok = p.strictInt()
		return 1 << 7, ok
	case "retry_count":
		var n int64
		n, ok = p.strictInt()
		r.RetryCount = int(n)
		return 1 << 8, ok && strconv.IntSize == 64
	case "disconnect_reclaims":
		var n int64
		n, ok = p.strictInt()
		r.DisconnectReclaims = int(n)
		return 1 << 9, ok && strconv.IntSize == 64
	case "max_retries":
		var n int64
		n, ok = p.strictInt()
		r.MaxRetries = int(n)
		return 1 << 10, ok && strconv.IntSize == 64
	case "needed_capabilities":
		r.NeededCapabilities, ok = p.strictStrings()
		return 1 << 11, ok
	case "last_error":
		r.LastError, ok = p.anyValue(1)
		return 1 << 12, ok
	case "complete_by":
		r.CompleteBy, ok = p.intPtr()
		return 1 << 13, ok
	case "result":
		r.Result, ok = p.anyValue(1)
		return 1 << 14, ok
	case "tokens_used":
		r.TokensUsed, ok = p.intPtr()
		return 1 << 15, ok
	case "submitted_by":
		r.SubmittedBy, ok = p.strictString()
		return 1 << 16, ok
	case "created_at":
		r.CreatedAt, ok = p.strictInt()
		return 1 << 17, ok
	case "updated_at":
		r.UpdatedAt, ok = p.strictInt()
		return 1 << 18, ok
	case "history":
		r.History, ok = p.events()
		return 1 << 19, ok
	case "target_agent":
		r.TargetAgent, ok = p.stringPtr()
		return 1 << 20, ok
	case "not_before":
		r.NotBefore, ok = p.strictInt()
		return 1 << 21, ok
	case "last_output":
		r.LastOutput, ok = p.anyValue(1)
		return 1 << 22, ok
	case "attempts":
		r.Attempts, ok = p.attempts()
		return 1 << 23, ok
	case "rejected_by":
		r.RejectedBy, ok = p.strictStrings()
		return 1 << 24, ok
	case "cancelled_by":
		r.CancelledBy, ok = p.strictString()
		return 1 << 25, ok
	case "usage":
		r.Usage, ok = p.usage()
		return 1 << 26, ok
	case "unique_key":
		r.UniqueKey, ok = p.strictString()
		return 1 << 27, ok
	case "unique_until":
		r.UniqueUntil, ok = p.strictInt()
		return 1 << 28, ok
	case "run_at":
		r.RunAt, ok = p.strictInt()
		return 1 << 29, ok
	case "depends_on":
		r.DependsOn, ok = p.strictStrings()
		return 1 << 30, ok
	case "on_dependency_failure":
		r.OnDependencyFailure, ok = p.strictString()
		return 1 << 31, ok
	case "schedule":
		r.Schedule, ok = p.strictString()
		return 1 << 32, ok
	case "schedule_tick":
		r.ScheduleTick, ok = p.strictInt()
		return 1 << 33, ok
	}
	return 0, false
}

// maxDecodeDepth bounds the nesting the fast decoder follows (its
// recursion); deeper values go to encoding/json, which has its own bound.
const maxDecodeDepth = 256

// strictString reads a string or null (""), as encoding/json fills a
// string field.
func (p *scanner) strictString() (string, bool) {
	if c := p.peek(); c != '"' && c != 'n' {
		return "", false
	}
	return p.stringValue()
}

// stringPtr reads a string into a new pointer, or null (nil).
func (p *scanner) stringPtr() (*string, bool) {
	if p.literal("null") {
		return nil, true
	}
	if p.peek() != '"' {
		return nil, false
	}
	s, ok := p.stringValue()
	return &s, ok
}

// number reads a number in strict JSON grammar; integer reports one
// without fraction or exponent.
func (p *scanner) number() (lit []byte, integer, ok bool) {
	p.ws()
	b, i, start := p.b, p.i, p.i
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		return nil, false, false
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return nil, false, false
		}
		integer = false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, false, false
		}
		integer = false
	}
	p.i = i
	return b[start:i], integer, true
}

// strictInt reads an integer that fits int64, or null (0).
func (p *scanner) strictInt() (int64, bool) {
	if p.literal("null") {
		return 0, true
	}
	lit, integer, ok := p.number()
	if !ok || !integer {
		return 0, false
	}
	n, err := strconv.ParseInt(string(lit), 10, 64)
	return n, err == nil
}

// intPtr reads an integer into a new pointer, or null (nil).
func (p *scanner) intPtr() (*int64, bool) {
	if p.literal("null") {
		return nil, true
	}
	n, ok := p.strictInt()
	return &n, ok
}

// strictStrings reads an array of strings (never a null element) or
// null. An empty array is an empty, non-nil slice, as encoding/json
// makes it.
func (p *scanner) strictStrings() ([]string, bool) {
	if p.literal("null") {
		return nil, true
	}
	if !p.byte('[') {
		return nil, false
	}
	out := []string{}
	if p.peek() == ']' {
		p.i++
		return out, true
	}
	for {
		if p.peek() != '"' {
			return nil, false
		}
		s, ok := p.stringValue()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		switch p.next() {
		case ',':
		case ']':
			return out, true
		default:
			return nil, false
		}
	}
}

// anyValue reads any value as encoding/json fills an interface: objects
// as map[string]any, arrays as []any, numbers as float64.
func (p *scanner) anyValue(depth int) (any, bool) {
	switch c := p.peek(); {
	case c == '{':
		m, ok := p.objectValue(depth)
		if m == nil {
			return nil, false
		}
		return m, ok
	case c == '[':
		return p.arrayValue(depth)
	case c == '"':
		return p.stringValue()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		lit, _, ok := p.number()
		if !ok {
			return nil, false
		}
		f, err := strconv.ParseFloat(string(lit), 64)
		return f, err == nil
	}
	return nil, false
}

// objectValue reads an object into a new map, or null (nil map).
func (p *scanner) objectValue(depth int) (map[string]any, bool) {
	if p.literal("null") {
		return nil, true
	}
	if depth > maxDecodeDepth || !p.byte('{') {
		return nil, false
	}
	m := map[string]any{}
	if p.peek() == '}' {
		p.i++
		return m, true
	}
	for {
		if p.peek() != '"' {
			return nil, false
		}
		k, ok := p.stringValue()
		if !ok || !p.byte(':') {
			return nil, false
		}
		v, ok := p.anyValue(depth + 1)
		if !ok {
			return nil, false
		}
		m[k] = v // a repeated key: the last wins, as in encoding/json
		switch p.next() {
		case ',':
		case '}':
			return m, true
		default:
			return nil, false
		}
	}
}

// arrayValue reads an array into a new, non-nil []any.
func (p *scanner) arrayValue(depth int) (any, bool) {
	if depth > maxDecodeDepth || !p.byte('[') {
		return nil, false
	}
	out := []any{}
	if p.peek() == ']' {
		p.i++
		return out, true
	}
	for {
		v, ok := p.anyValue(depth + 1)
		if !ok {
			return nil, false
		}
		out = append(out, v)
		switch p.next() {
		case ',':
		case ']':
			return out, true
		default:
			return nil, false
		}
	}
}

// structs reads an array of objects (or null), calling field for every
// key of element i. Elements must be objects whose keys field knows, each
// once.
func (p *scanner) structs(grow func(), field func(k []byte) (bit uint64, ok bool)) (isNull, ok bool) {
	if p.literal("null") {
		return true, true
	}
	if !p.byte('[') {
		return false, false
	}
	if p.peek() == ']' {
		p.i++
		return false, true
	}
	for {
		if !p.byte('{') {
			return false, false
		}
		grow()
		if p.peek() == '}' {
			p.i++
		} else {
			var seen uint64
			for done := false; !done; {
				k, ok := p.plainString()
				if !ok || !p.byte(':') {
					return false, false
				}
				bit, ok := field(k)
				if !ok || seen&bit != 0 {
					return false, false
				}
				seen |= bit
				switch p.next() {
				case ',':
				case '}':
					done = true
				default:
					return false, false
				}
			}
		}
		switch p.next() {
		case ',':
		case ']':
			return false, true
		default:
			return false, false
		}
	}
}

// structArray reads an array of T (or null), field reading each key
// of an element.
func structArray[T any](p *scanner, field func(e *T, k []byte) (bit uint64, ok bool)) ([]T, bool) {
	out := []T{}
	isNull, ok := p.structs(func() { out = append(out, *new(T)) }, func(k []byte) (uint64, bool) {
		return field(&out[len(out)-1], k)
	})
	if isNull {
		return nil, ok
	}
	return out, ok
}

func (p *scanner) events() ([]recordEvent, bool) {
	return structArray(p, func(e *recordEvent, k []byte) (uint64, bool) {
		var ok bool
		switch string(k) {
		case "event":
			e.Event, ok = p.strictString()
			return 1, ok
		case "timestamp":
			e.Timestamp, ok = p.strictInt()
			return 2, ok
		case "details":
			e.Details, ok = p.anyValue(2)
			return 4, ok
		}
		return 0, false
	})
}

func (p *scanner) attempts() ([]recordAttempt, bool) {
	return structArray(p, func(a *recordAttempt, k []byte) (uint64, bool) {
		var ok bool
		switch string(k) {
		case "generation":
			a.Generation, ok = p.strictInt()
			return 1, ok
		case "agent_id":
			a.AgentID, ok = p.strictString()
			return 2, ok
		case "assigned_at":
			a.AssignedAt, ok = p.strictInt()
			return 4, ok
		case "accepted_at":
			a.AcceptedAt, ok = p.strictInt()
			return 8, ok
		case "ended_at":
			a.EndedAt, ok = p.strictInt()
			return 16, ok
		case "outcome":
			a.Outcome, ok = p.strictString()
			return 32, ok
		case "reason":
			a.Reason, ok = p.strictString()
			return 64, ok
		}
		return 0, false
	})
}

// usage reads a usage report (rare: only finished runs carry one) with
// encoding/json, over the value's bytes.
func (p *scanner) usage() (*protocol.Usage, bool) {
	if p.literal("null") {
		return nil, true
	}
	if p.peek() != '{' {
		return nil, false
	}
	start := p.i
	if _, ok := p.objectValue(2); !ok {
		return nil, false
	}
	u := new(protocol.Usage)
	if err := json.Unmarshal(p.b[start:p.i], u); err != nil {
		return nil, false
	}
	return u, true
}
