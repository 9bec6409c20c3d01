package protocol

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
)

// addedOptional are the fields the hub always tolerated but no schema
// named; the wire types declare them, so /api/schemas gains them (and
// nothing else) as optional fields of type any.
var addedOptional = map[string][]string{}

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
	_ = addedOptional
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !reflect.DeepEqual(gb, wb) {
		t.Errorf("discovery differs:\n got %s\nwant %s", gb, wb)
	}
}
