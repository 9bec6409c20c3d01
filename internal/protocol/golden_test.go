package protocol

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Goldens are captured from the hand-written schemas the derived ones
// replaced (commit 2fbfd57); UPDATE_GOLDEN=1 rewrites them, which only a
// deliberate wire change may do.
func updateGolden() bool { return os.Getenv("UPDATE_GOLDEN") == "1" }

// validationCase is one input and what validation answered.
type validationCase struct {
	// Body is the HTTP body schema name; empty for an agent frame.
	Body  string `json:"body,omitempty"`
	Input string `json:"input"`
	Want  string `json:"want"`
}

// longMarker in a golden input stands for a string of n "é" characters,
// so the file stays small while the length limits are exercised.
const longMarker = "@LONG:"

func expandInput(s string) []byte {
	for {
		i := strings.Index(s, longMarker)
		if i < 0 {
			return []byte(s)
		}
		j := strings.Index(s[i+len(longMarker):], "@")
		n := 0
		for _, c := range s[i+len(longMarker) : i+len(longMarker)+j] {
			n = n*10 + int(c-'0')
		}
		s = s[:i] + strings.Repeat("é", n) + s[i+len(longMarker)+j+1:]
	}
}

// compactLong writes every run of more than 50 "é" back as its marker
// (the 50-character truncation of a too-long value stays literal).
func compactLong(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "é")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		n := 0
		for strings.HasPrefix(s[i+n*len("é"):], "é") {
			n++
		}
		b.WriteString(s[:i])
		if n > 50 {
			fmt.Fprintf(&b, "%s%d@", longMarker, n)
		} else {
			b.WriteString(strings.Repeat("é", n))
		}
		s = s[i+n*len("é"):]
	}
}

// outcome renders what validation answered, as the hub would put it on
// the wire.
func outcome(body string, input []byte) string {
	obj, err := DecodeObject(input)
	typ := ""
	if err == nil {
		if body == "" {
			typ, err = ValidateFrame(obj)
		} else {
			err = ValidateBody(body, obj)
		}
	}
	var ve *ValidationError
	switch {
	case err == nil:
		return "ok " + typ
	case errors.As(err, &ve):
		b, _ := json.Marshal(map[string]any{"type": typ, "message_type": ve.MessageType, "errors": ve.Errors, "legacy": ve.Legacy})
		return string(b)
	}
	return "error " + err.Error()
}

// goldenInputs builds the validation corpus from the schemas: every field
// absent, right, and wrong in every way, alone and all at once.
func goldenInputs() []validationCase {
	wrongs := []string{`1.5`, `"x"`, `[1]`, `["a",2]`, `{}`, `true`, `-1`, `0`, `7`, `99999999999999999999`, `"bad id!"`,
		`"broadcast"`, `"@LONG:17@"`, `"@LONG:65@"`, `"@LONG:129@"`, `"@LONG:257@"`, `"@LONG:2001@"`, `"@LONG:10001@"`, `"@LONG:65537@"`}
	right := func(f Field) string {
		switch f.Kind {
		case KindString:
			return `"agent-1"`
		case KindInteger, KindPositiveInteger:
			return `5`
		case KindObject:
			return `{"k":[1,{"b":null}]}`
		case KindStringArray:
			return `["a","b"]`
		case KindBool:
			return `true`
		}
		return `"any"`
	}
	obj := func(head string, kv []string) string {
		parts := append([]string{}, kv...)
		if head != "" {
			parts = append([]string{head}, parts...)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	var out []validationCase
	add := func(body string, fields []Field, head string) {
		var all []string
		for _, f := range fields {
			all = append(all, `"`+f.Name+`":`+right(f))
		}
		out = append(out, validationCase{Body: body, Input: obj(head, nil)}, validationCase{Body: body, Input: obj(head, all)})
		for _, w := range []string{`1.5`, `[1]`, `null`, `"@LONG:300@"`} {
			var bad []string
			for _, f := range fields {
				bad = append(bad, `"`+f.Name+`":`+w)
			}
			out = append(out, validationCase{Body: body, Input: obj(head, bad)})
		}
		for i, f := range fields {
			for _, w := range wrongs {
				kv := append([]string{}, all...)
				kv[i] = `"` + f.Name + `":` + w
				out = append(out, validationCase{Body: body, Input: obj(head, kv)})
			}
		}
	}
	types := KnownFrameTypes()
	for _, t := range types {
		add("", agentFrames[t].Fields, `"type":"`+t+`"`)
	}
	var bodies []string
	for k := range httpBodies {
		bodies = append(bodies, k)
	}
	sort.Strings(bodies)
	for _, k := range bodies {
		add(k, httpBodies[k].Fields, "")
	}
	for _, in := range []string{`{"type":"channel_publish","payload":[],"reply_to":1,"message_type":2}`,
		`{"type":"identify","agent_id":"a","token":"t","name":null,"capabilities":null}`,
		`{"type":"identify","agent_id":null,"token":"t"}`, `{}`, `{"type":1}`, `{"type":null}`, `{"type":"nope"}`,
		`[]`, `null`, `"x"`, `{`, ``, `{"a":1e309}`, `{"type":"ping"} {}`, `{"type":"ping","protocol_version":"x","timestamp":[1]}`,
		`{"type":"task_failed","task_id":"t","generation":1,"output":{"a":1}}`} {
		out = append(out, validationCase{Input: in})
	}
	return out
}

// TestValidationGolden replays a corpus of frames and bodies and compares
// every answer, byte for byte, with the one captured before the schemas
// were derived from the wire types.
func TestValidationGolden(t *testing.T) {
	path := filepath.Join("testdata", "validation.golden.json.gz")
	if updateGolden() {
		cases := goldenInputs()
		for i := range cases {
			cases[i].Want = compactLong(outcome(cases[i].Body, expandInput(cases[i].Input)))
		}
		writeGolden(t, path, cases)
	}
	var cases []validationCase
	readGolden(t, path, &cases)
	if len(cases) < 1000 {
		t.Fatalf("golden has %d cases", len(cases))
	}
	for _, c := range cases {
		if got := compactLong(outcome(c.Body, expandInput(c.Input))); got != c.Want {
			t.Errorf("%s %s:\n got %s\nwant %s", c.Body, c.Input, got, c.Want)
		}
	}
}

func writeGolden(t *testing.T, path string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if strings.HasSuffix(path, ".gz") {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(data)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		data = z.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readGolden(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
