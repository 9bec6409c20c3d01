package protocol

import (
	"encoding/json"
	"testing"
)

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		in     any
		v      int
		tooNew bool
	}{
		{nil, 1, false},
		{json.Number("1"), 1, false},
		{json.Number("2"), 2, false},
		{json.Number("3"), Version, true},
		{json.Number("99999999999999999999"), 1, false},
		{json.Number("1.0"), 1, false},
		{json.Number("0"), 1, false},
		{json.Number("-3"), 1, false},
		{"x", 1, false},
		{"2", 1, false},
		{true, 1, false},
		{map[string]any{}, 1, false},
		{1, 1, false},
		{int64(7), Version, true},
		{float64(1), 1, false},
		{float64(2), 2, false},
		{float64(3), Version, true},
		{1.5, 1, false},
	} {
		v, tooNew := Negotiate(tc.in)
		if v != tc.v || tooNew != tc.tooNew {
			t.Errorf("Negotiate(%#v) = %d, %v; want %d, %v", tc.in, v, tooNew, tc.v, tc.tooNew)
		}
	}
}

// A version read from a real identify frame goes through DecodeFrame.
func TestNegotiateFromFrame(t *testing.T) {
	_, f, err := DecodeFrame([]byte(`{"type":"identify","agent_id":"a","token":"t","protocol_version":3}`))
	if err != nil {
		t.Fatal(err)
	}
	if v, tooNew := Negotiate(f.(Identify).ProtocolVersion); v != Version || !tooNew {
		t.Fatalf("got %d, %v", v, tooNew)
	}
}

func TestVersionUnsupportedFrame(t *testing.T) {
	b, err := json.Marshal(NewVersionUnsupportedError(Version))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"type":"error","error":"protocol_version_unsupported","supported":[1,2],"using":2}` {
		t.Fatalf("got %s", b)
	}
}
