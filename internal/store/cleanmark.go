package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Clean-close markers. The start-up check reads every page of every table
// (CheckFile: seconds over a deep store), which only a crash or a damaged
// disk makes necessary. A table closed cleanly leaves a small marker next
// to its file (<table>.db.clean) naming the file as it was closed: device,
// inode, size, modification and change times, and bbolt's transaction id.
// At start a table whose marker still names its file skips the full check
// (CleanMarkerMatches); any difference, or no marker, runs it as before.
//
// Why a stale marker can never vouch for a changed file:
//   - OpenTable removes the marker, and fsyncs the directory, before it
//     opens the file for writing: every write this program makes happens
//     after the removal is durable, so a crash while the table is open
//     leaves no marker at all.
//   - The marker is written only after a Close that succeeded on a table
//     that met no storage error and no bbolt panic, after an fsync of the
//     file, atomically (temp file, fsync, rename, fsync of the directory).
//   - Any other change to the file (another program, a restore or reset
//     that renames a new file into place, an editor, truncation) changes
//     its inode, size, mtime or ctime; ctime cannot be set back by a user,
//     so "touch -d" does not fake a match. The bbolt txid is read from the
//     file's meta pages and must match too.
//
// What it gives up: damage the disk does to a closed file without a write
// through the file system (bit rot) is no longer caught at start but when
// the damaged page is read (Options.OnError, which restores from a backup
// while the hub runs). A platform without inode and ctime (fileIdentity)
// never skips the check.

// cleanSuffix names a table's clean-close marker.
const cleanSuffix = ".clean"

// CleanMarkerPath is where the clean-close marker of the table file at
// path is (tools and tests that play a crash remove it).
func CleanMarkerPath(path string) string { return path + cleanSuffix }

// cleanMarker is a table file as it was when it was closed cleanly.
type cleanMarker struct {
	Version int    `json:"version"`
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
	CtimeNs int64  `json:"ctime_ns"`
	TxID    uint64 `json:"txid"`
}

const cleanMarkerVersion = 1

// maxCleanMarker bounds the marker file read at start.
const maxCleanMarker = 4 << 10

// markFile describes the table file at path, or reports it cannot (then
// no marker is written and none matches).
func markFile(path string) (cleanMarker, error) {
	f, err := os.Open(path)
	if err != nil {
		return cleanMarker{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return cleanMarker{}, err
	}
	id, ok := fileIdentity(fi)
	if !ok {
		return cleanMarker{}, errors.New("no file identity on this platform")
	}
	m, err := newestMeta(f, fi.Size())
	if err != nil {
		return cleanMarker{}, err
	}
	id.Version, id.Size, id.MtimeNs, id.TxID = cleanMarkerVersion, fi.Size(), fi.ModTime().UnixNano(), m.txid
	return id, nil
}

// writeCleanMarker records that the table file at path was closed
// cleanly. The caller has closed the file's bbolt handle without error.
func writeCleanMarker(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("clean marker %s: %w", filepath.Base(path), err)
	}
	// bbolt fsyncs every commit; this makes the marker's claim hold even
	// for writes that did not (a maintenance copy with NoSync).
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("clean marker %s: %w", filepath.Base(path), err)
	}
	m, err := markFile(path)
	if err != nil {
		return fmt.Errorf("clean marker %s: %w", filepath.Base(path), err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := path + cleanSuffix + ".tmp"
	if err := writeSynced(tmp, b); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("clean marker %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path+cleanSuffix); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("clean marker %s: %w", filepath.Base(path), err)
	}
	return syncDir(filepath.Dir(path))
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// removeCleanMarker removes the marker of the table file at path, durably,
// before anything writes the file. An error means the marker may still be
// there: the caller must not open the file for writing.
func removeCleanMarker(path string) error {
	err := os.Remove(path + cleanSuffix)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("remove clean marker of %s: %w", filepath.Base(path), err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("remove clean marker of %s: %w", filepath.Base(path), err)
	}
	return nil
}

// removeCleanMarkers removes the markers of the named tables in dir with
// one fsync of the directory for them all (a start opens every table).
func removeCleanMarkers(dir string, names []string) error {
	removed := false
	for _, n := range names {
		err := os.Remove(CleanMarkerPath(TablePath(dir, n)))
		switch {
		case err == nil:
			removed = true
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("remove clean marker of %s: %w", n, err)
		}
	}
	if !removed {
		return nil
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("remove clean markers: %w", err)
	}
	return nil
}

// CleanMarkerMatches reports whether the table file at path was closed
// cleanly and not changed since: its marker names it exactly. Anything
// unreadable or different is false (the caller runs the full check).
func CleanMarkerMatches(path string) bool {
	f, err := os.Open(path + cleanSuffix)
	if err != nil {
		return false
	}
	defer f.Close()
	var want cleanMarker
	b, err := io.ReadAll(io.LimitReader(f, maxCleanMarker+1))
	if err != nil || len(b) > maxCleanMarker || json.Unmarshal(b, &want) != nil || want.Version != cleanMarkerVersion {
		return false
	}
	got, err := markFile(path)
	return err == nil && got == want
}

// RemoveTableFile removes a table file and its clean-close marker (a
// scratch copy that is done with). Errors are ignored: what is left is
// removed with the scratch directory's next use.
func RemoveTableFile(path string) {
	_ = os.Remove(path)
	_ = os.Remove(path + cleanSuffix)
}
