package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A table whose pages are mostly free or empty space is backed up by
// copying its records: the backup is smaller than the table's data, holds exactly
// the live records, and is a verified table file. A table without much
// free space is backed up page by page, over many flushed chunks, and is
// identical to the streamed copy of the same snapshot.
func TestBackupCopiesRecordsWhenMostlyEmpty(t *testing.T) {
	tb := openTemp(t, Options{})
	const n = 30000
	fill(t, tb, 0, n, 100) // several MiB: many backup chunks
	dir := t.TempDir()
	// bbolt splits pages half full: a table filled in key order is half
	// empty pages, which a record copy halves. A compacted table's pages
	// are full, so it is copied page by page.
	if !backupCopiesRecords(t, tb) {
		t.Fatal("a table of half-full pages is backed up page by page")
	}
	if _, _, err := tb.Compact(); err != nil {
		t.Fatal(err)
	}

	full, err := tb.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if full.Records != n {
		t.Fatalf("stats %+v", full)
	}
	if backupCopiesRecords(t, tb) {
		t.Fatalf("a compacted table is backed up by records: %+v", full)
	}
	info, err := tb.BackupVerified(filepath.Join(dir, "full.db"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Records != n || info.Bytes <= backupChunkBytes {
		t.Fatalf("page backup %+v, want %d records over more than one chunk", info, n)
	}
	var stream bytes.Buffer
	if _, err := tb.Backup(&stream); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(info.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, stream.Bytes()) {
		t.Fatalf("chunked file (%d bytes) differs from the streamed snapshot (%d bytes)", len(onDisk), stream.Len())
	}

	// Delete 90%, in whole runs of keys, so pages are freed.
	err = tb.Update(func(tx *Tx) error {
		for i := range n {
			if i%10 != 0 {
				if err := tx.Delete(key(i)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	holey, err := tb.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if !backupCopiesRecords(t, tb) {
		t.Fatalf("a table 90%% deleted is backed up page by page: %+v", holey)
	}
	info, err = tb.BackupVerified(filepath.Join(dir, "holey.db"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Records != n/10 {
		t.Fatalf("record backup holds %d records, want %d", info.Records, n/10)
	}
	copyTbl := openAt(t, info.Path, Options{})
	st, err := copyTbl.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.DataBytes >= holey.UsedBytes+holey.FreeBytes/2 {
		t.Fatalf("record backup's data %d bytes is not smaller than the table's %d (%d free)", st.DataBytes, holey.DataBytes, holey.FreeBytes)
	}
	for i := 0; i < n; i += 10 {
		if got := mustGet(t, copyTbl, key(i)); !bytes.Equal(got, val(i, 100)) {
			t.Fatalf("record %d: %q", i, got)
		}
	}
	err = copyTbl.View(func(tx *Tx) error {
		if v := tx.Get(key(1)); v != nil {
			return fmt.Errorf("deleted record 1 in the backup: %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// backupCopiesRecords reports the choice snapshotFile makes for tb now.
func backupCopiesRecords(t *testing.T, tb *Table) bool {
	t.Helper()
	var yes bool
	err := tb.bolt.View(func(tx *bolt.Tx) error {
		bs := tx.Bucket(bucketName).Stats()
		yes = compactBackup(int64(bs.LeafInuse+bs.BranchInuse), tx.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return yes
}
