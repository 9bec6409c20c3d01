package protocol

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

func TestCheckAgentID(t *testing.T) {
	for id, ok := range map[string]bool{
		"a": true, "gcu-x.y_z": true, "Worker-1": true, "0": true, strings.Repeat("a", 128): true,
		"": false, "../x": false, "a/b": false, "-x": false, ".x": false, "_x": false, "a\x00": false,
		"a b": false, "a\n": false, "é": false, "broadcast": false, strings.Repeat("a", 129): false,
		"a:b": false, "a@b": false, "a%b": false,
	} {
		if err := CheckAgentID(id); (err == nil) != ok {
			t.Errorf("CheckAgentID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
	if CheckRecipient("broadcast") != nil || CheckRecipient("a\x00") == nil {
		t.Error("CheckRecipient")
	}
}

// FuzzAgentID checks the agent-id rule's promises on arbitrary pairs of
// strings: an accepted id is a safe file and unit name, the identify
// frame accepts exactly the ids the rule accepts, and no accepted id's
// key prefix (id + NUL) starts another accepted id's key.
func FuzzAgentID(f *testing.F) {
	for _, s := range [][2]string{{"a2", "a2\x00"}, {"a", "ab"}, {"../../escape-dir", "x"}, {"a\nb", "broadcast"},
		{"..", "."}, {strings.Repeat("z", 128), strings.Repeat("z", 129)}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		errA, errB := CheckAgentID(a), CheckAgentID(b)
		for _, c := range []struct {
			id  string
			err error
		}{{a, errA}, {b, errB}} {
			frame, _ := json.Marshal(map[string]any{"type": "identify", "agent_id": c.id, "token": "t"})
			obj, derr := DecodeObject(frame)
			if derr != nil {
				continue // not valid UTF-8 as a JSON string
			}
			if _, verr := ValidateFrame(obj); (verr == nil) != (c.err == nil) && obj.String("agent_id") == c.id {
				t.Fatalf("identify and CheckAgentID disagree on %q: %v / %v", c.id, verr, c.err)
			}
			if c.err != nil {
				continue
			}
			if len(c.id) == 0 || len(c.id) > MaxAgentIDLen || c.id == "." || c.id == ".." ||
				filepath.Base(c.id) != c.id || strings.ContainsAny(c.id, "/\\%$\"' ") ||
				strings.IndexFunc(c.id, func(r rune) bool { return unicode.IsControl(r) || r > unicode.MaxASCII }) >= 0 {
				t.Fatalf("accepted unsafe id %q", c.id)
			}
		}
		if errA == nil && errB == nil && a != b && strings.HasPrefix(b+"\x00", a+"\x00") {
			t.Fatalf("key prefix of %q starts the key of %q", a, b)
		}
	})
}
