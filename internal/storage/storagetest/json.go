package storagetest

import (
	"encoding/json"
	"reflect"
	"testing"
)

// sameJSON reports whether a and b are the same JSON document: drivers may
// store JSON in a normal form (PostgreSQL's jsonb reorders keys and drops
// spaces), so bodies are compared as documents, not as bytes.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("stored body %q is not JSON: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("body %q is not JSON: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
