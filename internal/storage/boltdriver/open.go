package boltdriver

import (
	"github.com/agentcom/agentcom/internal/store"
)

// OpenDir opens every table of the data directory dir (creating what is
// missing) and the driver over them, for the commands and tests that work
// on a stopped hub's data. The caller closes db when done with the driver.
// A directory a running hub holds fails with an error wrapping
// store.ErrLocked.
func OpenDir(dir string, opts store.Options) (d *Driver, db *store.DB, err error) {
	db, err = store.Open(dir, store.AllTables(), opts)
	if err != nil {
		return nil, nil, err
	}
	if d, err = New(db); err != nil {
		db.Close()
		return nil, nil, err
	}
	return d, db, nil
}
