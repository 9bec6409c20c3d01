// Package boltdriver is the embedded storage driver: the hub's tables as
// bbolt files in the data directory (package store), behind the
// storage.Driver interfaces. It is the zero-config default.
//
// Each table commits on its own group-commit loop, so writers to one table
// share fsyncs. An operation that writes to several tables (a task moving
// to the dead letter, a message with its mailbox copies and thread index)
// goes through the journal (journal.go): the whole set of writes is made
// durable in one record first, then applied table by table; a crash in
// between is finished at the next open, so the operation is atomic.
package boltdriver

import (
	"context"
	"fmt"
	"sync"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/store"
)

// Driver is the bbolt driver over an open store.DB.
type Driver struct {
	db *store.DB

	// journalMu orders journal sequence numbers and guards lingering.
	journalMu   sync.Mutex
	journalNext uint64
	// lingering holds the keys of journal records whose writes are all
	// in their tables but that are not deleted yet (commitLinger).
	lingering [][]byte

	msg messageState // the message store's counters and write batches

	// taskMoves serializes the tasks domain's moves between task_queue
	// and the dead letter or the archive (tasks.go), so a retry's check
	// of the dead letter and its move are one step, and the moved index
	// knows when no move is in flight.
	taskMoves sync.Mutex
	// moved spares Put its reads of the dead letter and the archive
	// (moved.go).
	moved *movedIndex
}

var _ storage.Driver = (*Driver)(nil)

// New returns a driver over db, which must hold every table of
// store.AllTables. It first finishes any multi-table write a crash
// interrupted. The caller keeps ownership of db: Close does not close it
// (the resilience coordinator keeps maintaining it).
func New(db *store.DB) (*Driver, error) {
	for _, name := range store.AllTables() {
		if db.Table(name) == nil {
			return nil, fmt.Errorf("bolt driver: data directory has no table %s", name)
		}
	}
	d := &Driver{db: db}
	d.moved = newMovedIndex(d.table(store.TaskDeadLetter), d.table(store.TaskArchive), &d.taskMoves)
	if err := d.recoverJournal(); err != nil {
		return nil, err
	}
	return d, nil
}

// Name implements storage.Driver.
func (d *Driver) Name() string { return "bolt" }

// DB is the underlying table set, for the maintenance services (backup,
// verification, compaction, restore) that work on the files themselves.
func (d *Driver) DB() *store.DB { return d.db }

// Close implements storage.Driver: it commits the message store's
// deferred writes (DropCopies) and retires the journal records left to
// linger, so a clean stop leaves nothing to replay. The tables stay open:
// they belong to whoever opened db.
func (d *Driver) Close() error {
	d.moved.close()
	if err := (messageStore{d}).settle(context.Background()); err != nil {
		return fmt.Errorf("bolt driver: close: %w", err)
	}
	if err := d.retireJournal(); err != nil {
		return fmt.Errorf("bolt driver: close: %w", err)
	}
	return nil
}

func (d *Driver) table(name string) *store.Table { return d.db.MustTable(name) }
