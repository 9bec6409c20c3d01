package protocol_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/protocol/protocoltest"
)

// TestEveryFrameRoundTrips walks every frame type and body through
// encode, validate and decode; it fails when a type has no sample, so a
// new frame or body cannot skip it.
func TestEveryFrameRoundTrips(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range protocoltest.AgentFrames() {
		data, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := protocol.DecodeObject(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if typ, err := protocol.ValidateFrame(obj); err != nil || typ != f.FrameType() {
			t.Errorf("%s: validate: %q, %v", data, typ, err)
			continue
		}
		typ, got, err := protocol.DecodeFrame(data)
		if err != nil || typ != f.FrameType() {
			t.Errorf("%s: decode: %q, %v", data, typ, err)
			continue
		}
		if !reflect.DeepEqual(got, f) {
			t.Errorf("%s round trip:\n got %#v\nwant %#v", f.FrameType(), got, f)
		}
		seen[f.FrameType()] = true
	}
	if missing := missingFrom(protocol.AgentFrameTypes(), seen); len(missing) > 0 {
		t.Errorf("agent frames without a sample: %v", missing)
	}

	seen = map[string]bool{}
	for _, f := range protocoltest.HubFrames() {
		data, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		var head struct{ Type string }
		if err := json.Unmarshal(data, &head); err != nil || head.Type != f.FrameType() {
			t.Errorf("%s: type %q, FrameType %q", data, head.Type, f.FrameType())
		}
		if !slices.Contains(protocol.OutFrameTypes(), f.FrameType()) {
			t.Errorf("%s: %q is not an Out* type", data, f.FrameType())
		}
		p := reflect.New(reflect.TypeOf(f))
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(p.Interface()); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if got := p.Elem().Interface(); !reflect.DeepEqual(got, f) {
			t.Errorf("%s round trip:\n got %#v\nwant %#v", f.FrameType(), got, f)
		}
		seen[f.FrameType()] = true
	}
	if missing := missingFrom(protocol.OutFrameTypes(), seen); len(missing) > 0 {
		t.Errorf("hub frames without a sample: %v", missing)
	}

	seen = map[string]bool{}
	for _, b := range protocoltest.Bodies() {
		name := b.BodyName()
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := protocol.DecodeObject(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if err := protocol.ValidateBody(name, obj); err != nil {
			t.Errorf("%s %s: validate: %v", name, data, err)
			continue
		}
		got, err := protocol.DecodeBodyNamed(name, obj)
		if err != nil {
			t.Errorf("%s %s: decode: %v", name, data, err)
			continue
		}
		if !reflect.DeepEqual(got, b) {
			t.Errorf("%s round trip:\n got %#v\nwant %#v", name, got, b)
		}
		seen[name] = true
	}
	if missing := missingFrom(protocol.BodyNames(), seen); len(missing) > 0 {
		t.Errorf("bodies without a sample: %v", missing)
	}
}

func missingFrom(all []string, seen map[string]bool) []string {
	var out []string
	for _, n := range all {
		if !seen[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
