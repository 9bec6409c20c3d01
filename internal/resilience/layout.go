package resilience

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/store"
)

// On-disk layout under the data directory (see docs/operations.md):
//
//	<data>/<table>.db                                   live tables
//	<backups>/<table>/<table>_2006-01-02T15-04-05.000.db verified backups (UTC)
//	<data>/corrupt/<table>_2006-01-02T15-04-05.000.db    damaged files kept aside
//	<data>/replaced/<table>_2006-01-02T15-04-05.000.db   files replaced by a manual restore
//	<data>/degraded/<table>.json                         degraded-mode markers
//	<data>/drill/                                        restore-drill scratch space
//
// <backups> is Config.BackupDir, <data>/backups by default. A file under a
// backup's final name was verified before it was renamed there; names sort
// in time order.

// stampLayout is the UTC time format of backup and aside file names:
// fixed width, so names sort in time order, and no colons.
const stampLayout = "2006-01-02T15-04-05.000"

type layout struct {
	data    string
	backups string
	scratch string
}

func newLayout(dataDir string, cfg Config) layout {
	l := layout{data: dataDir, backups: cfg.BackupDir, scratch: cfg.ScratchDir}
	if l.backups == "" {
		l.backups = filepath.Join(dataDir, "backups")
	}
	if l.scratch == "" {
		l.scratch = filepath.Join(dataDir, "drill")
	}
	return l
}

func (l layout) tablePath(table string) string { return store.TablePath(l.data, table) }
func (l layout) backupDir(table string) string { return filepath.Join(l.backups, table) }
func (l layout) markerPath(table string) string {
	return filepath.Join(l.data, "degraded", table+".json")
}

// asidePath is where a replaced file of table is kept, named by time:
// under corrupt/ when it was damaged (automatic recovery), replaced/ when
// an operator restored over it.
func (l layout) asidePath(table string, at time.Time, damaged bool) string {
	dir := "replaced"
	if damaged {
		dir = "corrupt"
	}
	return filepath.Join(l.data, dir, table+"_"+at.UTC().Format(stampLayout)+store.FileExt)
}

// newBackupPath returns an unused backup name for table at time at.
func (l layout) newBackupPath(table string, at time.Time) string {
	at = at.UTC().Truncate(time.Millisecond)
	for {
		p := filepath.Join(l.backupDir(table), table+"_"+at.Format(stampLayout)+store.FileExt)
		if _, err := os.Lstat(p); err != nil {
			return p // free, or unusable: the write reports why
		}
		at = at.Add(time.Millisecond)
	}
}

// backupFile is one backup on disk.
type backupFile struct {
	Name string
	Path string
	Time time.Time
	Size int64
}

// listBackups returns the table's backups, newest first. Temp files and
// names that do not parse are ignored.
func (l layout) listBackups(table string) ([]backupFile, error) {
	entries, err := os.ReadDir(l.backupDir(table))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups of %s: %w", table, err)
	}
	var out []backupFile
	for _, e := range entries {
		at, ok := parseBackupName(table, e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		var size int64
		if fi, err := e.Info(); err == nil {
			size = fi.Size()
		}
		out = append(out, backupFile{Name: e.Name(), Path: filepath.Join(l.backupDir(table), e.Name()), Time: at, Size: size})
	}
	slices.SortFunc(out, func(a, b backupFile) int { return strings.Compare(b.Name, a.Name) })
	return out, nil
}

// parseBackupName reports the time of a backup file name of table.
func parseBackupName(table, name string) (time.Time, bool) {
	stamp, ok := strings.CutPrefix(name, table+"_")
	if !ok {
		return time.Time{}, false
	}
	stamp, ok = strings.CutSuffix(stamp, store.FileExt)
	if !ok {
		return time.Time{}, false
	}
	at, err := time.ParseInLocation(stampLayout, stamp, time.UTC)
	// Only names this package writes: the parser accepts variants
	// ("T7-…", "," for ".") that would sort out of time order.
	if err != nil || at.Format(stampLayout) != stamp {
		return time.Time{}, false
	}
	return at, true
}

// prune deletes all but the newest keep backups of table, and leftover
// temp files of interrupted backups. It returns the names removed.
func (l layout) prune(table string, keep int) ([]string, error) {
	files, err := l.listBackups(table)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for i, f := range files {
		if i < keep {
			continue
		}
		if err := os.Remove(f.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, f.Name)
	}
	entries, _ := os.ReadDir(l.backupDir(table))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), store.FileExt+".tmp") {
			_ = os.Remove(filepath.Join(l.backupDir(table), e.Name()))
		}
	}
	return removed, errors.Join(errs...)
}

// marker is the degraded-mode record kept on disk until the operator
// acknowledges it or restores the table, so the condition survives a
// restart.
type marker struct {
	Table     string `json:"table"`
	Since     int64  `json:"since"`
	Reason    string `json:"reason"`
	AsidePath string `json:"aside_path,omitempty"`
	Trigger   string `json:"trigger"`
	Startup   bool   `json:"startup,omitempty"`
}

func (l layout) writeMarker(m marker) error {
	p := l.markerPath(m.Table)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func (l layout) readMarker(table string) (*marker, error) {
	b, err := os.ReadFile(l.markerPath(table))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseMarker(table, b), nil
}

// parseMarker decodes a marker file. A marker that does not parse still
// means degraded: its presence is what counts.
func parseMarker(table string, b []byte) *marker {
	var m marker
	if err := json.Unmarshal(b, &m); err != nil {
		return &marker{Table: table, Reason: "degraded marker unreadable: " + err.Error()}
	}
	m.Table = table
	return &m
}

func (l layout) removeMarker(table string) error {
	err := os.Remove(l.markerPath(table))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
