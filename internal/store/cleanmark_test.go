package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A clean close leaves a marker that names the file; opening the table
// removes it before anything is written; a close after a storage error
// leaves none; any change to the file after the close makes it not match.
func TestCleanMarker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t"+FileExt)
	tb := openAt(t, path, Options{})
	fill(t, tb, 0, 50, 64)
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if !CleanMarkerMatches(path) {
		t.Fatal("no matching marker after a clean close")
	}

	tb = openAt(t, path, Options{})
	if _, err := os.Stat(CleanMarkerPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the marker is still there while the table is open: %v", err)
	}
	fill(t, tb, 50, 10, 64)
	tb.failed.Store(true) // as after a storage error reported by fail
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(CleanMarkerPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a table that met a storage error left a marker: %v", err)
	}

	tb = openAt(t, path, Options{})
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if !CleanMarkerMatches(path) {
		t.Fatal("no matching marker after a clean close")
	}
	// The same bytes written back in place: size and content unchanged,
	// but the file was written after the marker.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	patchFile(t, path, int64(len(b)-1), b[len(b)-1:])
	if CleanMarkerMatches(path) {
		t.Fatal("a marker matches a file written after it")
	}
}
