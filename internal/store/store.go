package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// FileExt is the extension of every table file and backup file.
const FileExt = ".db"

// ErrUnknownTable is returned for a table name the DB was not opened with.
var ErrUnknownTable = errors.New("unknown table")

// ErrCorrupt marks damage: a table or backup file that fails its checks,
// a record whose checksum does not match, or a bbolt panic on a damaged
// page. Only errors wrapping ErrCorrupt call for a restore; other storage
// errors (disk full, I/O) do not.
var ErrCorrupt = errors.New("corrupt table file")

// ErrClosed is returned by operations on a closed table.
var ErrClosed = errors.New("table closed")

// ErrLocked means a table file is held by another process (a running hub,
// or an offline command on the same data directory): bbolt's file lock
// did not come free within the open timeout.
var ErrLocked = errors.New("table file locked by another process")

// Options tune how tables are opened.
type Options struct {
	// OnError, when set, is told about every storage error (not errors
	// returned by callers' transaction functions). The resilience
	// coordinator uses it to detect corruption while the hub runs. It is
	// called from inside store operations, possibly with table locks held:
	// it must return quickly and must not call back into the table.
	OnError func(table string, err error)
}

// DB is the set of tables of one data directory.
type DB struct {
	dir    string
	tables map[string]*Table
	names  []string
}

// Open opens (creating when missing) one file per named table under dir.
// A table that fails to open is returned in the error; the other tables are
// closed again so nothing is left locked.
func Open(dir string, names []string, opts Options) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	db := &DB{dir: dir, tables: make(map[string]*Table, len(names)), names: slices.Clone(names)}
	// One fsync of the directory for every table's clean-close marker,
	// rather than one per table in OpenTable (cleanmark.go).
	if err := removeCleanMarkers(dir, names); err != nil {
		return nil, err
	}
	for _, n := range names {
		t, err := OpenTable(n, TablePath(dir, n), opts)
		if err != nil {
			db.Close()
			return nil, err
		}
		db.tables[n] = t
	}
	return db, nil
}

// TablePath is where the table called name lives inside dir.
func TablePath(dir, name string) string {
	return filepath.Join(dir, name+FileExt)
}

// Dir is the data directory.
func (db *DB) Dir() string { return db.dir }

// Names lists the tables in the order they were opened.
func (db *DB) Names() []string { return slices.Clone(db.names) }

// Table returns the named table, or nil when the DB has no such table.
func (db *DB) Table(name string) *Table { return db.tables[name] }

// MustTable returns the named table and panics when it is missing; it is
// for wiring code whose table list is fixed at compile time.
func (db *DB) MustTable(name string) *Table {
	t := db.tables[name]
	if t == nil {
		panic(fmt.Sprintf("store: table %q not opened", name))
	}
	return t
}

// Close flushes and closes every table, returning the first error.
func (db *DB) Close() error {
	names := make([]string, 0, len(db.tables))
	for n := range db.tables {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		if err := db.tables[n].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncDir fsyncs a directory so a rename inside it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SetOnError replaces the storage error hook of every table (see
// Options.OnError). The resilience coordinator, created after the tables
// are open, installs itself here.
func (db *DB) SetOnError(fn func(table string, err error)) {
	for _, t := range db.tables {
		t.SetOnError(fn)
	}
}
