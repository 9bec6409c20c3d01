package tasks

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// summary is what Reload keeps of a task that is not active (completed,
// cancelled, dead-lettered): its counts, the unique key it may still hold
// and the dependencies the Dependents listing names. Such tasks are read
// from storage on demand (Get, List), so their full decode at start (the
// metadata, result and history maps) was the bulk of a restart over a
// long history.
type summary struct {
	ID        string
	Status    Status
	Priority  int
	CreatedAt int64
	// UpdatedAt is an ended task's end, for the archive (archive_due.go).
	UpdatedAt   int64
	UniqueKey   string
	UniqueUntil int64
	DependsOn   []string
	// HasUsage: the body carries a usage report, which start-up hands to
	// the metrics (Queue.StoredUsage); such a task is decoded in full.
	HasUsage bool
}

// summarize reads the summary fields from a task body (the JSON that
// rowOf writes) without decoding the rest: other values are skipped
// byte by byte, with no allocation. ok is false whenever the body is not
// in the plain shape json.Marshal writes (escaped strings in the fields
// read, keys differing from ours only in case, non-integer numbers,
// broken structure); the caller then decodes the body fully, which
// either succeeds with the same answer or reports the error it always
// did.
//
// With stopActive, it gives up (ok false) as soon as it reads an active
// status: the caller decodes such a task in full anyway, and the rest of
// the scan would be wasted.
func summarize(body []byte, stopActive bool) (s summary, ok bool) {
	p := scanner{b: body}
	if !p.byte('{') {
		return s, false
	}
	if p.peek() == '}' {
		return s, false // no id: let the decoder refuse it
	}
	for {
		k, ok := p.plainString()
		if !ok || !p.byte(':') {
			return s, false
		}
		switch {
		case bytes.Equal(k, []byte("id")):
			s.ID, ok = p.stringValue()
		case bytes.Equal(k, []byte("status")):
			var st string
			st, ok = p.stringValue()
			s.Status = Status(st)
			if stopActive && s.Status.Active() {
				return s, false
			}
		case bytes.Equal(k, []byte("priority")):
			var n int64
			n, ok = p.intValue()
			s.Priority = int(n)
		case bytes.Equal(k, []byte("created_at")):
			s.CreatedAt, ok = p.intValue()
		case bytes.Equal(k, []byte("updated_at")):
			s.UpdatedAt, ok = p.intValue()
		case bytes.Equal(k, []byte("unique_key")):
			s.UniqueKey, ok = p.stringValue()
		case bytes.Equal(k, []byte("unique_until")):
			s.UniqueUntil, ok = p.intValue()
		case bytes.Equal(k, []byte("depends_on")):
			s.DependsOn, ok = p.strictStrings()
		case bytes.Equal(k, []byte("usage")):
			s.HasUsage = !p.literal("null")
			if s.HasUsage {
				ok = p.skip()
			}
		case summaryKeyFold(k):
			// encoding/json matches keys case-insensitively: "Status"
			// would set the status. Not our shape; decode fully.
			return s, false
		default:
			ok = p.skip()
		}
		if !ok {
			return s, false
		}
		switch p.next() {
		case ',':
			continue
		case '}':
			return s, p.end() && s.ID != ""
		default:
			return s, false
		}
	}
}

// summaryKeyFold reports a key that encoding/json would take for one of
// the summary's fields although it is spelled differently.
func summaryKeyFold(k []byte) bool {
	// A key of lower-case ASCII letters, digits and '_' folds to nothing
	// but itself, and it already missed every exact match: the common
	// case, decided without EqualFold (which folds Unicode too: "ſ" is
	// an 's' to encoding/json).
	plain := true
	for _, c := range k {
		if c >= 0x80 || c >= 'A' && c <= 'Z' {
			plain = false
			break
		}
	}
	if plain {
		return false
	}
	for _, name := range [...]string{"id", "status", "priority", "created_at", "updated_at", "unique_key", "unique_until", "depends_on", "usage"} {
		if bytes.EqualFold(k, []byte(name)) {
			return true
		}
	}
	return false
}

// scanner walks a JSON text. Every method skips leading white space and
// reports false on anything unexpected.
type scanner struct {
	b []byte
	i int
}

func (p *scanner) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scanner) peek() byte {
	p.ws()
	if p.i >= len(p.b) {
		return 0
	}
	return p.b[p.i]
}

func (p *scanner) next() byte {
	c := p.peek()
	if c != 0 {
		p.i++
	}
	return c
}

func (p *scanner) byte(c byte) bool { return p.next() == c }

// end reports that only white space is left.
func (p *scanner) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// rawString returns a string's content and whether it holds escapes (or
// non-ASCII bytes: either way encoding/json must say what it means).
func (p *scanner) rawString() (s []byte, escaped, ok bool) {
	if !p.byte('"') {
		return nil, false, false
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], escaped, true
		case c == '\\':
			escaped = true
			p.i += 2
		case c < 0x20:
			return nil, false, false
		case c >= 0x80:
			// Non-ASCII: encoding/json replaces invalid UTF-8 with
			// U+FFFD, so such a string goes the decoder's way too.
			escaped = true
			p.i++
		default:
			p.i++
		}
	}
	return nil, false, false
}

// plainString is a string without escapes.
func (p *scanner) plainString() ([]byte, bool) {
	s, escaped, ok := p.rawString()
	return s, ok && !escaped
}

// stringValue reads a string or null (""). A string with escapes is
// unquoted by encoding/json, so it means what it means to the decoder.
func (p *scanner) stringValue() (string, bool) {
	if p.literal("null") {
		return "", true
	}
	start := p.i
	s, escaped, ok := p.rawString()
	if !ok {
		return "", false
	}
	if !escaped {
		return string(s), true
	}
	var out string
	if err := json.Unmarshal(p.b[start:p.i], &out); err != nil {
		return "", false
	}
	return out, true
}

// intValue reads an integer or null (0).
func (p *scanner) intValue() (int64, bool) {
	if p.literal("null") {
		return 0, true
	}
	p.ws()
	start := p.i
	for p.i < len(p.b) && (p.b[p.i] == '-' || p.b[p.i] >= '0' && p.b[p.i] <= '9') {
		p.i++
	}
	n, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	return n, err == nil && p.i > start
}

// literal consumes word when it comes next.
func (p *scanner) literal(word string) bool {
	p.ws()
	if bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		p.i += len(word)
		return true
	}
	return false
}

// skip passes over one value of any kind.
func (p *scanner) skip() bool {
	switch c := p.peek(); {
	case c == '"':
		_, _, ok := p.rawString()
		return ok
	case c == '{' || c == '[':
		return p.skipNested()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return true
			}
			p.i++
		}
		return true
	}
	return false
}

// skipNested passes over an object or array, strings included, by
// counting brackets.
func (p *scanner) skipNested() bool {
	depth := 0
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case '"':
			if _, _, ok := p.rawString(); !ok {
				return false
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				p.i++
				return true
			}
		}
		p.i++
	}
	return false
}
