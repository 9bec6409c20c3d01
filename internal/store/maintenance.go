package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Stats describes a table's file and how much of it is wasted.
type Stats struct {
	Table     string `json:"table"`
	FileBytes int64  `json:"file_bytes"` // size of the file on disk
	DataBytes int64  `json:"data_bytes"` // high-water mark: pages in use or free
	FreeBytes int64  `json:"free_bytes"` // free pages inside DataBytes: the waste
	UsedBytes int64  `json:"used_bytes"` // DataBytes - FreeBytes: pages holding data
	// PreallocBytes is the file's tail past DataBytes: space bbolt grew the
	// file by ahead of need. It is room for growth, not waste, and a
	// compacted file gets a tail too, so it does not count as fragmentation.
	PreallocBytes int64 `json:"prealloc_bytes"`
	Records       int   `json:"records"`
	// Fragmentation is FreeBytes / FileBytes: the share of the file taken
	// by free pages, which a compaction gives back.
	Fragmentation float64 `json:"fragmentation"`
}

// BackupInfo describes a verified backup file.
type BackupInfo struct {
	Path    string `json:"path"`
	Bytes   int64  `json:"size"`
	Records int    `json:"records"`
}

// Stats reads the table's space statistics.
func (t *Table) Stats() (Stats, error) {
	t.swap.RLock()
	defer t.swap.RUnlock()
	if err := t.usable("stats"); err != nil {
		return Stats{}, err
	}
	st := Stats{Table: t.name}
	fi, err := os.Stat(t.path)
	if err != nil {
		return st, t.fail("stats", err)
	}
	st.FileBytes = fi.Size()
	var free int64
	err = guard(func() error {
		// Free and pending page counts are loaded with the freelist at
		// open and updated by every write transaction.
		bs := t.bolt.Stats()
		free = int64(bs.FreePageN+bs.PendingPageN) * int64(t.pageSize)
		return t.bolt.View(func(tx *bolt.Tx) error {
			st.DataBytes = tx.Size()
			st.Records = tx.Bucket(bucketName).Stats().KeyN
			return nil
		})
	})
	if err != nil {
		return st, t.fail("stats", err)
	}
	st.FreeBytes = min(free, st.DataBytes)
	st.UsedBytes = st.DataBytes - st.FreeBytes
	st.PreallocBytes = max(st.FileBytes-st.DataBytes, 0)
	if st.FileBytes > 0 {
		st.Fragmentation = float64(st.FreeBytes) / float64(st.FileBytes)
	}
	return st, nil
}

// Backup writes a consistent snapshot of the table to w while writes go
// on (a bbolt read transaction sees one point in time). It returns the
// number of bytes written. The snapshot is a complete table file.
func (t *Table) Backup(w io.Writer) (int64, error) {
	t.maint.Lock()
	defer t.maint.Unlock()
	n, _, err := t.snapshot(w)
	return n, err
}

// snapshot writes the current snapshot to w and returns its size and
// record count. Caller holds t.maint.
func (t *Table) snapshot(w io.Writer) (n int64, records int, err error) {
	t.swap.RLock()
	defer t.swap.RUnlock()
	if err := t.usable("backup"); err != nil {
		return 0, 0, err
	}
	var werr error
	err = guard(func() error {
		if err := t.checkMetas(); err != nil {
			return err
		}
		return t.bolt.View(func(tx *bolt.Tx) error {
			records = tx.Bucket(bucketName).Stats().KeyN
			n, werr = tx.WriteTo(w)
			return werr
		})
	})
	switch {
	case err == nil:
		return n, records, nil
	case werr != nil && err == werr: //nolint:errorlint // identity: the writer's own error
		// A failing destination (disk full) says nothing about the table.
		return n, 0, fmt.Errorf("backup %s: %w", t.name, err)
	default:
		return n, 0, t.fail("backup", err)
	}
}

// BackupFile writes a snapshot to path through a temp file that is fsynced
// and renamed into place, so a crash never leaves a half backup under the
// final name. It does not verify the copy; BackupVerified does.
func (t *Table) BackupFile(path string) (int64, error) {
	t.maint.Lock()
	defer t.maint.Unlock()
	tmp, n, _, err := t.snapshotFile(path)
	if err != nil {
		return 0, err
	}
	if err := renameSynced(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("backup %s: %w", t.name, err)
	}
	return n, nil
}

// BackupVerified writes a snapshot to a temp file next to path, fsyncs it,
// verifies it (CheckFile, and the record count against the snapshot's),
// and only then renames it to path. A file under the final name is
// therefore always a verified backup. A copy that fails verification is
// removed and reported as an error wrapping ErrCorrupt: the snapshot is a
// byte copy of the live table, so the table itself is suspect, and the
// error is also passed to the error hook.
func (t *Table) BackupVerified(path string) (BackupInfo, error) {
	t.maint.Lock()
	defer t.maint.Unlock()
	tmp, n, want, err := t.snapshotFile(path)
	if err != nil {
		return BackupInfo{}, err
	}
	got, err := CheckFile(tmp)
	if err == nil && got != want {
		err = fmt.Errorf("%w: copy holds %d records, the snapshot %d", ErrCorrupt, got, want)
	}
	if err != nil {
		_ = os.Remove(tmp)
		if errors.Is(err, ErrCorrupt) {
			return BackupInfo{}, t.fail("backup verify", err)
		}
		return BackupInfo{}, fmt.Errorf("backup %s: verify: %w", t.name, err)
	}
	if err := renameSynced(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return BackupInfo{}, fmt.Errorf("backup %s: %w", t.name, err)
	}
	return BackupInfo{Path: path, Bytes: n, Records: got}, nil
}

// backupChunkBytes bounds what a backup to a file leaves unflushed: each
// chunk is written out and waited for before the next one is dirtied.
// One fsync of a whole table's copy kept the disk busy for as long as the
// copy took to reach it, and every durable commit of the table (and of the
// other tables on the disk) waited behind it; a flush of one chunk costs a
// writer at most one chunk's write time.
const backupChunkBytes = 1 << 20

// chunkedFile writes to f and flushes every backupChunkBytes (flushRange),
// so the dirty data of the copy stays bounded.
type chunkedFile struct {
	f            *os.File
	off, flushed int64
}

func (c *chunkedFile) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	c.off += int64(n)
	if err != nil {
		return n, err
	}
	if c.off-c.flushed >= backupChunkBytes {
		if err := flushRange(c.f, c.flushed, c.off-c.flushed); err != nil {
			return n, err
		}
		c.flushed = c.off
	}
	return n, nil
}

// compactBackup reports whether a snapshot written record by record into
// a fresh file would be smaller than the page copy: when the bytes in use
// in the tree's pages (which a copy in key order packs into full pages)
// are less than half of the data. That covers free pages and pages left
// half empty by splits alike. Copying records costs more CPU per byte than
// copying pages, so it is only chosen where it at least halves the I/O.
func compactBackup(inUse, dataBytes int64) bool {
	return dataBytes > 0 && 2*inUse < dataBytes
}

// snapshotFile writes a snapshot to path+".tmp", flushed in chunks as it is
// written and fsynced at the end. The snapshot is one read transaction,
// written as its page image (tx.WriteTo) or, when that is mostly waste
// (compactBackup), as its records copied into a fresh table file. Either
// way it is a complete, consistent table file. Caller holds t.maint.
func (t *Table) snapshotFile(path string) (tmp string, n int64, records int, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", 0, 0, fmt.Errorf("backup %s: %w", t.name, err)
	}
	tmp = path + ".tmp"
	_ = os.Remove(tmp)
	t.swap.RLock()
	defer t.swap.RUnlock()
	if err := t.usable("backup"); err != nil {
		return "", 0, 0, err
	}
	var werr error // the destination's error: says nothing about the table
	err = guard(func() error {
		if err := t.checkMetas(); err != nil {
			return err
		}
		return t.bolt.View(func(tx *bolt.Tx) error {
			bs := tx.Bucket(bucketName).Stats()
			records = bs.KeyN
			if compactBackup(int64(bs.LeafInuse+bs.BranchInuse), tx.Size()) {
				var copied int
				n, copied, werr = copyToFile(tx, tmp)
				if werr == nil && copied != records {
					werr = fmt.Errorf("copied %d records of %d", copied, records)
				}
			} else {
				n, werr = writeToFile(tx, tmp)
			}
			if errors.Is(werr, ErrCorrupt) {
				err := werr // a record failed its checksum: the table's fault
				werr = nil
				return err
			}
			return werr
		})
	})
	if err != nil {
		_ = os.Remove(tmp)
		if werr != nil && err == werr { //nolint:errorlint // identity: the destination's own error
			return "", 0, 0, fmt.Errorf("backup %s: %w", t.name, err)
		}
		return "", 0, 0, t.fail("backup", err)
	}
	return tmp, n, records, nil
}

// writeToFile writes tx's page image to path in flushed chunks and fsyncs
// it.
func writeToFile(tx *bolt.Tx, path string) (n int64, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	n, err = tx.WriteTo(&chunkedFile{f: f})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// copyToFile copies tx's records into a fresh table file at path, in
// batches of backupChunkBytes each flushed before the next, and fsyncs it.
// Every record's checksum is verified on the way (an error wrapping
// ErrCorrupt).
func copyToFile(tx *bolt.Tx, path string) (n int64, copied int, err error) {
	dst, err := openBolt(path)
	if err != nil {
		return 0, 0, err
	}
	dst.NoSync = true // each batch is flushed below, the whole at the end
	copied, err = copyRecords(tx.Bucket(bucketName).Cursor(), dst, backupChunkBytes, dst.Sync)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	return fi.Size(), copied, nil
}

// copyRecords copies every record from c into dst's bucket, in
// transactions of about batchBytes, calling flush (if not nil) after each
// one. Keys arrive in order, so pages are filled completely. Records are
// re-verified on the way.
func copyRecords(c *bolt.Cursor, dst *bolt.DB, batchBytes int, flush func() error) (copied int, err error) {
	k, v := c.First()
	for k != nil {
		err := dst.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketName)
			b.FillPercent = 1.0
			size := 0
			for ; k != nil && size < batchBytes; k, v = c.Next() {
				if _, err := unseal(k, v); err != nil {
					return err
				}
				if err := b.Put(k, v); err != nil {
					return fmt.Errorf("copy: %w", err)
				}
				size += len(k) + len(v)
				copied++
			}
			return nil
		})
		if err != nil {
			return copied, err
		}
		if flush != nil {
			if err := flush(); err != nil {
				return copied, err
			}
		}
	}
	return copied, nil
}

// Check verifies the live table (structure and every record's checksum)
// against a consistent snapshot, while reads and writes go on. Damage is
// reported as an error wrapping ErrCorrupt and passed to the error hook.
func (t *Table) Check() error {
	_, err := t.CheckCount()
	return err
}

// CheckCount is Check that also returns the record count it verified.
func (t *Table) CheckCount() (int, error) {
	t.maint.Lock()
	defer t.maint.Unlock()
	t.swap.RLock()
	defer t.swap.RUnlock()
	if err := t.usable("check"); err != nil {
		return 0, err
	}
	// The verifier reads the file through its own handle. The pages of
	// the read transaction's snapshot cannot be reused while it is open;
	// its meta page can be overwritten by the second commit after it, so
	// a check that finds the meta gone simply takes a new snapshot.
	var records int
	var lastErr error
	for range 20 {
		var moved bool
		err := guard(func() error {
			if err := t.checkMetas(); err != nil {
				return err
			}
			return t.bolt.View(func(tx *bolt.Tx) error {
				var err error
				records, moved, err = t.verifyLive(uint64(tx.ID()))
				return err
			})
		})
		if !moved {
			if err != nil {
				if errors.Is(err, ErrCorrupt) {
					return 0, t.fail("check", err)
				}
				return 0, fmt.Errorf("check %s: %w", t.name, err)
			}
			return records, nil
		}
		lastErr = err
	}
	return 0, t.fail("check", fmt.Errorf("%w: no meta page matches the open snapshot (%v)", ErrCorrupt, lastErr))
}

// verifyLive verifies the snapshot with transaction id txid. moved reports
// that its meta page was already overwritten.
func (t *Table) verifyLive(txid uint64) (records int, moved bool, err error) {
	f, err := os.Open(t.path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	metas, errs := readMetas(f, fi.Size())
	for _, m := range metas {
		if m != nil && m.txid == txid {
			records, err = verify(f, fi.Size(), *m)
			return records, false, err
		}
	}
	if metas[0] == nil && metas[1] == nil {
		return 0, false, fmt.Errorf("%w: no valid meta page (%v; %v)", ErrCorrupt, errs[0], errs[1])
	}
	return 0, true, fmt.Errorf("snapshot %d not on disk", txid)
}

// compactBatchBytes bounds one transaction of the compaction copy.
const compactBatchBytes = 16 << 20

// CompactReport describes one compaction.
type CompactReport struct {
	BytesBefore int64 `json:"bytes_before"`
	BytesAfter  int64 `json:"bytes_after"`
	Records     int   `json:"records"`
	// CaughtUp is the number of keys written during the copy and re-copied
	// while the table was paused.
	CaughtUp int `json:"caught_up"`
	// Pause is how long the table's readers and writers were held.
	Pause time.Duration `json:"pause_ns"`
}

// Compact rewrites the table into a fresh file and swaps it in atomically.
//
// The copy is taken from a snapshot while reads and writes continue; keys
// written meanwhile are tracked. Then the table's readers and writers are
// paused only for the catch-up (re-copying the tracked keys), an fsync, the
// rename and the reopen, so the pause depends on the writes made during the
// copy, not on the table's size. A crash at any point leaves either the old
// or the new file complete under the table's name. It returns the file
// sizes before and after.
func (t *Table) Compact() (before, after int64, err error) {
	rep, err := t.CompactReport()
	return rep.BytesBefore, rep.BytesAfter, err
}

// CompactReport is Compact returning the full report.
func (t *Table) CompactReport() (CompactReport, error) {
	var rep CompactReport
	before, after, err := t.compact(&rep)
	rep.BytesBefore, rep.BytesAfter = before, after
	return rep, err
}

func (t *Table) compact(rep *CompactReport) (before, after int64, err error) {
	t.maint.Lock()
	defer t.maint.Unlock()
	if fi, err := os.Stat(t.path); err == nil {
		before = fi.Size()
	}
	tmp := t.path + ".compact"
	_ = os.Remove(tmp)
	dst, err := openBolt(tmp)
	if err != nil {
		return before, 0, fmt.Errorf("compact %s: %w", t.name, err)
	}
	dst.NoSync = true // the bulk copy is fsynced once, before the pause
	swapped := false
	defer func() {
		if !swapped {
			_ = guard(dst.Close)
			_ = os.Remove(tmp)
			t.wmu.Lock()
			t.dirty = nil
			t.wmu.Unlock()
		}
	}()

	copied, err := t.compactCopy(dst)
	if err != nil {
		return before, 0, err
	}
	// Flush and check the bulk copy before pausing anyone: in the pause
	// only the catch-up is written and synced.
	if err := guard(dst.Sync); err != nil {
		return before, 0, fmt.Errorf("compact %s: %w", t.name, err)
	}
	if n, err := CheckFile(tmp); err != nil || n != copied {
		return before, 0, fmt.Errorf("compact %s: copy fails verification (%d of %d records): %v", t.name, n, copied, err)
	}
	dst.NoSync = false        // the catch-up commit fsyncs itself
	meta, err := os.Open(tmp) // becomes the pre-check handle; same file after the rename
	if err != nil {
		return before, 0, fmt.Errorf("compact %s: %w", t.name, err)
	}

	old, oldMeta, oldPoisoned, records, err := t.swapCompacted(rep, dst, meta, tmp, copied)
	if err != nil {
		_ = meta.Close()
		return before, 0, err
	}
	swapped = true
	// Readers and writers already use the new file; the old one is closed
	// outside the pause. A poisoned handle is abandoned (see detach).
	if !oldPoisoned {
		_ = guard(old.Close)
	}
	_ = oldMeta.Close()
	rep.Records = records
	if fi, err := os.Stat(t.path); err == nil {
		after = fi.Size()
	}
	return before, after, nil
}

// swapCompacted is the pause of a compaction: with the table's readers and
// writers held, it applies the catch-up to dst (fsynced), renames dst's
// file over the table's and makes dst the live handle. dst stays open
// throughout, so nothing is reopened while the table waits. It returns the
// old handles for the caller to close after the pause.
func (t *Table) swapCompacted(rep *CompactReport, dst *bolt.DB, meta *os.File, tmp string, copied int) (
	old *bolt.DB, oldMeta *os.File, oldPoisoned bool, records int, err error) {
	pausedAt := time.Now() // writers wait from here: the in-flight commit counts
	t.lockExclusive()
	defer func() {
		rep.Pause = time.Since(pausedAt)
		t.unlockExclusive()
	}()
	if err := t.usable("compact"); err != nil {
		return nil, nil, false, 0, err
	}
	rep.CaughtUp = len(t.dirty)
	records, err = t.catchUp(dst, copied)
	if err != nil {
		return nil, nil, false, 0, err
	}
	if err := renameSynced(tmp, t.path); err != nil {
		return nil, nil, false, 0, fmt.Errorf("compact %s: %w", t.name, err)
	}
	old, oldMeta, oldPoisoned = t.bolt, t.metaFile, t.poisoned.Load()
	t.bolt, t.metaFile, t.pageSize = dst, meta, dst.Info().PageSize
	t.poisoned.Store(false)
	t.dirty = nil // writers are paused: nothing reads it concurrently
	return old, oldMeta, oldPoisoned, records, nil
}

// compactCopy copies a snapshot of the table into dst, and starts tracking
// the keys written after that snapshot. Records are re-verified on the way.
func (t *Table) compactCopy(dst *bolt.DB) (copied int, err error) {
	// Start the snapshot and the tracking together, between two commits.
	t.wmu.Lock()
	t.swap.RLock()
	defer t.swap.RUnlock()
	if err := t.usable("compact"); err != nil {
		t.wmu.Unlock()
		return 0, err
	}
	var src *bolt.Tx
	err = guard(func() error {
		var err error
		src, err = t.bolt.Begin(false)
		return err
	})
	if err == nil {
		t.dirty = make(map[string]struct{})
	}
	t.wmu.Unlock()
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return 0, t.fail("compact", err)
		}
		return 0, fmt.Errorf("compact %s: %w", t.name, err)
	}
	defer func() { _ = guard(src.Rollback) }()
	err = guard(func() error {
		var err error
		copied, err = copyRecords(src.Bucket(bucketName).Cursor(), dst, compactBatchBytes, nil)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return 0, t.fail("compact", err)
		}
		return 0, fmt.Errorf("compact %s: %w", t.name, err)
	}
	return copied, nil
}

// catchUp applies to dst the keys written since the copy's snapshot and
// returns dst's record count. Caller holds the table exclusively, so no
// write is in flight. Its cost is proportional to the keys written during the
// copy: nothing here walks the whole table.
func (t *Table) catchUp(dst *bolt.DB, copied int) (int, error) {
	keys := make([]string, 0, len(t.dirty))
	for k := range t.dirty {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	records := copied
	err := guard(func() error {
		return t.bolt.View(func(src *bolt.Tx) error {
			sb := src.Bucket(bucketName)
			return dst.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketName)
				for _, k := range keys {
					kb := []byte(k)
					had := b.Get(kb) != nil
					if v := sb.Get(kb); v != nil {
						if err := b.Put(kb, v); err != nil {
							return fmt.Errorf("catch-up: %w", err)
						}
						if !had {
							records++
						}
					} else if had {
						if err := b.Delete(kb); err != nil {
							return fmt.Errorf("catch-up: %w", err)
						}
						records--
					}
				}
				return nil
			})
		})
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return 0, t.fail("compact", err)
		}
		return 0, fmt.Errorf("compact %s: %w", t.name, err)
	}
	return records, nil
}

// countLocked counts records of the open file. Caller holds t.swap.
func (t *Table) countLocked() (int, error) {
	n := 0
	err := guard(func() error {
		return t.bolt.View(func(tx *bolt.Tx) error {
			n = tx.Bucket(bucketName).Stats().KeyN
			return nil
		})
	})
	return n, err
}

// Restore replaces the table with the backup file at src. The current file
// is kept under aside (never deleted) when aside is not empty. The backup
// itself stays as it was: it is verified, copied next to the table,
// fsynced, the copy verified again (same record count), and only then
// swapped in and opened. Readers and writers of this table wait during the
// swap. It returns the record count of the restored table.
func (t *Table) Restore(src, aside string) (int, error) {
	t.maint.Lock()
	defer t.maint.Unlock()
	want, err := CheckFile(src)
	if err != nil {
		return 0, fmt.Errorf("restore %s: backup unusable: %w", t.name, err)
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, fmt.Errorf("restore %s: %w", t.name, err)
	}
	tmp := t.path + ".restore"
	err = copyFile(tmp, in)
	in.Close()
	if err != nil {
		return 0, fmt.Errorf("restore %s: %w", t.name, err)
	}
	if got, err := CheckFile(tmp); err != nil || got != want {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("restore %s: copy of the backup fails verification (%d of %d records): %v", t.name, got, want, err)
	}
	t.lockExclusive()
	defer t.unlockExclusive()
	if t.isClosed() {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("restore %s: %w", t.name, ErrClosed)
	}
	if err := t.swapIn(tmp, aside); err != nil {
		return 0, fmt.Errorf("restore %s: %w", t.name, err)
	}
	got, err := t.countLocked()
	if err != nil || got != want {
		return got, fmt.Errorf("restore %s: restored table holds %d records, the backup %d (%v)", t.name, got, want, err)
	}
	return got, nil
}

// Reset replaces the table with an empty one, keeping the current file
// under aside. It is the degraded-mode path when no usable backup exists.
func (t *Table) Reset(aside string) error {
	t.maint.Lock()
	defer t.maint.Unlock()
	tmp := t.path + ".empty"
	_ = os.Remove(tmp)
	b, err := openBolt(tmp)
	if err != nil {
		return fmt.Errorf("reset %s: %w", t.name, err)
	}
	if err := b.Close(); err != nil {
		return fmt.Errorf("reset %s: %w", t.name, err)
	}
	t.lockExclusive()
	defer t.unlockExclusive()
	if t.isClosed() {
		_ = os.Remove(tmp)
		return fmt.Errorf("reset %s: %w", t.name, ErrClosed)
	}
	if err := t.swapIn(tmp, aside); err != nil {
		return fmt.Errorf("reset %s: %w", t.name, err)
	}
	return nil
}

// swapIn closes the live file, keeps it under aside (a hard link, so the
// table's name never goes missing), renames newFile over the table path
// and reopens. If the new file cannot be opened the table is left closed
// and the error returned. Caller holds t.swap exclusively.
func (t *Table) swapIn(newFile, aside string) error {
	// A close error on a damaged file is expected: the file is replaced.
	_ = t.detach()
	if aside != "" {
		if err := keepAside(t.path, aside); err != nil {
			_ = os.Remove(newFile)
			_ = t.attach() // best effort: keep serving the old file
			return fmt.Errorf("keep old file: %w", err)
		}
	}
	if err := renameSynced(newFile, t.path); err != nil {
		_ = os.Remove(newFile)
		_ = t.attach()
		return err
	}
	return t.attach()
}

// keepAside makes aside a second name of path (or a copy where hard links
// are not supported). A missing path is not an error.
func keepAside(path, aside string) error {
	if err := os.MkdirAll(filepath.Dir(aside), 0o700); err != nil {
		return err
	}
	err := os.Link(path, aside)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist):
		return nil
	default:
		in, oerr := os.Open(path)
		if oerr != nil {
			if errors.Is(oerr, os.ErrNotExist) {
				return nil
			}
			return oerr
		}
		defer in.Close()
		if err := copyFile(aside, in); err != nil {
			return err
		}
	}
	return syncDir(filepath.Dir(aside))
}

// Reopen closes and reopens the live file; after an external repair.
func (t *Table) Reopen() error {
	t.maint.Lock()
	defer t.maint.Unlock()
	t.lockExclusive()
	defer t.unlockExclusive()
	if t.isClosed() {
		return fmt.Errorf("reopen %s: %w", t.name, ErrClosed)
	}
	_ = t.detach()
	if err := checkHeader(t.path); err != nil {
		return fmt.Errorf("reopen %s: %w", t.name, err)
	}
	if err := t.attach(); err != nil {
		return fmt.Errorf("reopen %s: %w", t.name, err)
	}
	return nil
}

// renameSynced renames tmp to path and fsyncs the directory.
func renameSynced(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// copyFile writes dst through a temp file, fsyncs it and renames it into
// place.
func copyFile(dst string, src io.Reader) error {
	tmp := dst + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := renameSynced(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
