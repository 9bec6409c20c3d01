package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestBackupFailingVerificationIsRejected: a backup copied from a table
// with a damaged record fails its verification, and nothing is left
// behind under the backup's name (nor its temp file); the damage is
// reported to the error hook so recovery can start; an earlier good
// backup is untouched.
func TestBackupFailingVerificationIsRejected(t *testing.T) {
	var log errorLog
	dir := t.TempDir()
	tb := openAt(t, filepath.Join(dir, "t.db"), Options{OnError: log.hook})
	fill(t, tb, 0, 2000, 100)
	good := filepath.Join(dir, "good.db")
	if _, err := tb.BackupVerified(good); err != nil {
		t.Fatal(err)
	}
	flipAt(t, tb.Path(), offsetOf(t, tb.Path(), []byte("value-00001234-")), 2)

	bad := filepath.Join(dir, "bad.db")
	info, err := tb.BackupVerified(bad)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("backup of a damaged table: %+v, %v; want ErrCorrupt", info, err)
	}
	for _, p := range []string{bad, bad + ".tmp"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left behind by a rejected backup: %v", filepath.Base(p), err)
		}
	}
	if log.corruptReports() == 0 {
		t.Fatal("the failed verification was not reported")
	}
	if n, err := CheckFile(good); err != nil || n != 2000 {
		t.Fatalf("the earlier backup: %d records, %v", n, err)
	}
}
