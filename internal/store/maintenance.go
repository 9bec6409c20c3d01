package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Stats describes a table's file and how much of it is wasted.
type Stats struct {
	Table     string `json:"table"`
	FileBytes int64  `json:"file_bytes"` // size of the file on disk
	DataBytes int64  `json:"data_bytes"` // high-water mark of pages in use or free
	FreeBytes int64  `json:"free_bytes"` // bytes in free pages inside DataBytes, plus preallocated tail
	UsedBytes int64  `json:"used_bytes"` // FileBytes - FreeBytes
	Records   int    `json:"records"`
	// Fragmentation is FreeBytes / FileBytes: the share of the file a
	// compaction would give back.
	Fragmentation float64 `json:"fragmentation"`
}

// Stats reads the table's space statistics.
func (t *Table) Stats() (Stats, error) {
	t.swap.RLock()
	defer t.swap.RUnlock()
	if t.bolt == nil {
		return Stats{}, fmt.Errorf("stats %s: %w", t.name, ErrClosed)
	}
	st := Stats{Table: t.name}
	fi, err := os.Stat(t.path)
	if err != nil {
		return st, t.storageError("stats", err)
	}
	st.FileBytes = fi.Size()
	bs := t.bolt.Stats()
	err = t.bolt.View(func(tx *bolt.Tx) error {
		st.DataBytes = tx.Size()
		st.Records = tx.Bucket(bucketName).Stats().KeyN
		return nil
	})
	if err != nil {
		return st, t.storageError("stats", err)
	}
	free := int64(bs.FreeAlloc)
	if tail := st.FileBytes - st.DataBytes; tail > 0 {
		free += tail
	}
	st.FreeBytes = min(free, st.FileBytes)
	st.UsedBytes = st.FileBytes - st.FreeBytes
	if st.FileBytes > 0 {
		st.Fragmentation = float64(st.FreeBytes) / float64(st.FileBytes)
	}
	return st, nil
}

// Backup writes a consistent snapshot of the table to w while writes go
// on (a bbolt read transaction sees one point in time). It returns the
// number of bytes written.
func (t *Table) Backup(w io.Writer) (int64, error) {
	t.swap.RLock()
	defer t.swap.RUnlock()
	if t.bolt == nil {
		return 0, fmt.Errorf("backup %s: %w", t.name, ErrClosed)
	}
	var n int64
	err := t.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, t.storageError("backup", err)
	}
	return n, nil
}

// BackupFile writes a snapshot to path through a temp file that is fsynced
// and renamed into place, so a crash never leaves a half backup under the
// final name.
func (t *Table) BackupFile(path string) (int64, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup %s: %w", t.name, err)
	}
	n, err := t.Backup(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("backup %s: %w", t.name, err)
	}
	return n, nil
}

// Check runs bbolt's consistency check on the live table.
func (t *Table) Check() error {
	t.swap.RLock()
	defer t.swap.RUnlock()
	if t.bolt == nil {
		return fmt.Errorf("check %s: %w", t.name, ErrClosed)
	}
	err := t.bolt.View(func(tx *bolt.Tx) error { return collectCheck(tx) })
	if err != nil {
		return t.storageError("check", err)
	}
	return nil
}

// CheckFile opens a table file read-only (a backup, or a table of a stopped
// hub), checks it and returns its record count.
func CheckFile(path string) (records int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check %s: corrupt file: %v", filepath.Base(path), r)
		}
	}()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2e9})
	if err != nil {
		return 0, fmt.Errorf("check %s: %w", filepath.Base(path), err)
	}
	defer b.Close()
	err = b.View(func(tx *bolt.Tx) error {
		if err := collectCheck(tx); err != nil {
			return err
		}
		bk := tx.Bucket(bucketName)
		if bk == nil {
			return errors.New("records bucket missing")
		}
		records = bk.Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("check %s: %w", filepath.Base(path), err)
	}
	return records, nil
}

func collectCheck(tx *bolt.Tx) error {
	var msgs []string
	for err := range tx.Check() {
		if len(msgs) < 5 {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("integrity check failed: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// Compact rewrites the table into a fresh file and swaps it in atomically.
// Writers to this table wait for the copy; readers and other tables do
// not. A crash at any point leaves either the old or the new file complete
// under the table's name. It returns the file sizes before and after.
func (t *Table) Compact() (before, after int64, err error) {
	t.swap.Lock()
	defer t.swap.Unlock()
	if t.bolt == nil {
		return 0, 0, fmt.Errorf("compact %s: %w", t.name, ErrClosed)
	}
	if fi, err := os.Stat(t.path); err == nil {
		before = fi.Size()
	}
	tmp := t.path + ".compact"
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 2e9, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return before, 0, fmt.Errorf("compact %s: %w", t.name, err)
	}
	if err := bolt.Compact(dst, t.bolt, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return before, 0, t.storageError("compact", err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(tmp)
		return before, 0, fmt.Errorf("compact %s: %w", t.name, err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return before, 0, fmt.Errorf("compact %s: %w", t.name, err)
	}
	if err := t.swapIn(tmp, ""); err != nil {
		return before, 0, fmt.Errorf("compact %s: %w", t.name, err)
	}
	if fi, err := os.Stat(t.path); err == nil {
		after = fi.Size()
	}
	return before, after, nil
}

// Restore replaces the table with the backup file at src. The current file
// is moved to aside (kept, never deleted) when aside is not empty. The
// backup is copied (the backup itself stays as it was), checked, and opened.
// It returns the record count of the restored table.
func (t *Table) Restore(src, aside string) (int, error) {
	if _, err := CheckFile(src); err != nil {
		return 0, fmt.Errorf("restore %s: backup unusable: %w", t.name, err)
	}
	t.swap.Lock()
	defer t.swap.Unlock()
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
	if err := t.swapIn(tmp, aside); err != nil {
		return 0, fmt.Errorf("restore %s: %w", t.name, err)
	}
	n := 0
	err = t.bolt.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketName).Stats().KeyN
		return collectCheck(tx)
	})
	if err != nil {
		return n, fmt.Errorf("restore %s: restored file fails check: %w", t.name, err)
	}
	return n, nil
}

// Reset replaces the table with an empty one, moving the current file to
// aside (kept). It is the degraded-mode path when no usable backup exists.
func (t *Table) Reset(aside string) error {
	t.swap.Lock()
	defer t.swap.Unlock()
	tmp := t.path + ".empty"
	os.Remove(tmp)
	b, err := openBolt(tmp)
	if err != nil {
		return fmt.Errorf("reset %s: %w", t.name, err)
	}
	if err := b.Close(); err != nil {
		return fmt.Errorf("reset %s: %w", t.name, err)
	}
	if err := t.swapIn(tmp, aside); err != nil {
		return fmt.Errorf("reset %s: %w", t.name, err)
	}
	return nil
}

// swapIn closes the live file, optionally moves it to aside, renames
// newFile over the table path and reopens. Caller holds t.swap exclusively.
func (t *Table) swapIn(newFile, aside string) error {
	if t.bolt != nil {
		// A close error on a corrupt file is expected; the file is replaced.
		_ = t.bolt.Close()
		t.bolt = nil
	}
	if aside != "" {
		if err := os.Rename(t.path, aside); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := os.Rename(newFile, t.path); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(t.path)); err != nil {
		return err
	}
	b, err := openBolt(t.path)
	if err != nil {
		return err
	}
	t.bolt = b
	return nil
}

// Reopen closes and reopens the live file; after an external repair.
func (t *Table) Reopen() error {
	t.swap.Lock()
	defer t.swap.Unlock()
	if t.bolt != nil {
		_ = t.bolt.Close()
		t.bolt = nil
	}
	b, err := openBolt(t.path)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", t.name, err)
	}
	t.bolt = b
	return nil
}
