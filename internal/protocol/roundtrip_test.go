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
		data, obj := encode(t, f)
		if typ, err := protocol.ValidateFrame(obj); err != nil || typ != f.FrameType() {
			t.Errorf("%s: validate: %q, %v", data, typ, err)
			continue
		}
		typ, got, err := protocol.DecodeFrame(data)
		if err != nil || typ != f.FrameType() {
			t.Errorf("%s: decode: %q, %v", data, typ, err)
			continue
		}
		seen[f.FrameType()] = same(t, f.FrameType(), got, f)
	}
	covered(t, "agent frames", protocol.AgentFrameTypes(), seen)

	seen = map[string]bool{}
	for _, f := range protocoltest.HubFrames() {
		data, obj := encode(t, f)
		if obj.String("type") != f.FrameType() || !slices.Contains(protocol.OutFrameTypes(), f.FrameType()) {
			t.Errorf("%s: FrameType %q is not its type or not an Out* type", data, f.FrameType())
		}
		p := reflect.New(reflect.TypeOf(f))
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(p.Interface()); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		seen[f.FrameType()] = same(t, f.FrameType(), p.Elem().Interface(), f)
	}
	covered(t, "hub frames", protocol.OutFrameTypes(), seen)

	seen = map[string]bool{}
	for _, b := range protocoltest.Bodies() {
		name := b.BodyName()
		data, obj := encode(t, b)
		if err := protocol.ValidateBody(name, obj); err != nil {
			t.Errorf("%s %s: validate: %v", name, data, err)
			continue
		}
		got, err := protocol.DecodeBodyNamed(name, obj)
		if err != nil {
			t.Errorf("%s %s: decode: %v", name, data, err)
			continue
		}
		seen[name] = same(t, name, got, b)
	}
	covered(t, "bodies", protocol.BodyNames(), seen)
}

func encode(t *testing.T, v any) ([]byte, protocol.Object) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := protocol.DecodeObject(data)
	if err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return data, obj
}

// same reports (and records a failure unless) got equals want.
func same(t *testing.T, name string, got, want any) bool {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s round trip:\n got %#v\nwant %#v", name, got, want)
		return false
	}
	return true
}

// covered fails for every name in all that no sample went through.
func covered(t *testing.T, what string, all []string, seen map[string]bool) {
	t.Helper()
	var missing []string
	for _, n := range all {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s without a good sample: %v", what, missing)
	}
}
