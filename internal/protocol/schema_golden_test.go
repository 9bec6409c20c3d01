package protocol

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// addedOptional are the fields the hub always tolerated but no schema
// named; the wire types declare them, so /api/schemas gains them (and
// nothing else) as optional fields of type any.
var addedOptional = map[string][]string{
	FrameIdentify:       {"client_type"},
	FramePing:           {"timestamp"},
	FrameTaskFailed:     {"output"},
	FrameTaskRecovering: {"description", "metadata", "last_status", "generation"},
}

// TestSchemaGolden compares Discovery() with the document served before
// the schemas were derived from the wire types: it may only gain the
// optional fields named in addedOptional.
func TestSchemaGolden(t *testing.T) {
	path := filepath.Join("testdata", "schemas.golden.json")
	if updateGolden() {
		writeGolden(t, path, Discovery())
	}
	var want DiscoveryDoc
	readGolden(t, path, &want)
	got := Discovery()
	for i, e := range got.WebSocket {
		added := append([]string{"protocol_version"}, addedOptional[e.Type]...)
		var kept []DiscoveryField
		for _, f := range e.Optional {
			if slices.Contains(added, f.Name) {
				if f.Type != "any" || f.MaxLength != 0 || f.Format != "" {
					t.Errorf("%s: added field %s is %+v, want plain any", e.Type, f.Name, f)
				}
				added = slices.DeleteFunc(added, func(n string) bool { return n == f.Name })
				continue
			}
			kept = append(kept, f)
		}
		if len(added) > 0 {
			t.Errorf("%s: lacks the tolerated fields %v", e.Type, added)
		}
		if kept == nil {
			kept = []DiscoveryField{}
		}
		got.WebSocket[i].Optional = kept
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !reflect.DeepEqual(gb, wb) {
		t.Errorf("discovery differs:\n got %s\nwant %s", gb, wb)
	}
}
