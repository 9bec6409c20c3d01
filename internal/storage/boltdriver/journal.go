package boltdriver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/agentcom/agentcom/internal/store"
)

// A write is one record change of a multi-table operation.
type write struct {
	table string
	key   []byte
	value []byte // nil with del
	del   bool
	// versioned: the value starts with an 8-byte big-endian version, and
	// the put is skipped when the stored record's version is at or above
	// it (a newer snapshot already landed). Checked at apply and at
	// replay alike, which makes replaying a put harmless. With del, the
	// value is just the version, and the delete is skipped when the
	// stored record is newer (a change committed since the caller read
	// it stays).
	versioned bool
}

// journalPrefix keys the journal's records in the meta table: the prefix
// and an 8-byte sequence number.
var journalPrefix = []byte("journal\x00")

// commitAcross applies writes that may span several tables atomically:
// the set is first made durable as one journal record, then applied to
// each table, then the record is removed. Writes to a single table skip
// the journal (a table's own transaction is atomic already).
//
// The record is removed durably before commitAcross returns, so a replay
// at the next open only ever sees operations whose application may be
// incomplete: no later operation has yet written over their keys.
//
// Tables are applied one after the other, in the order they first appear
// in ws, so a reader that looks at them in the opposite order never misses
// a record in flight: a task moving to the dead letter is put there before
// it leaves task_queue, and Get reads task_queue first. commitLinger is
// for writes no reader follows across tables.
func (d *Driver) commitAcross(ctx context.Context, ws []write) error {
	key, err := d.journalAndApply(ctx, ws, false, false)
	if err != nil || key == nil {
		return err
	}
	if err := d.table(store.Meta).Update(func(tx *store.Tx) error { return tx.Delete(key) }); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// commitLinger is commitAcross for the message store's batches, with the
// tables committed at once (one table commit of latency instead of one per
// table) and one durable write fewer on the path of every batch: the record of
// a batch whose tables are written is not deleted at once (a third fsync,
// in series after the tables') but left to "linger" and deleted in the
// same meta transaction as the next batch's record (or by retireJournal).
// A batch thus costs two fsync rounds: its record, then its tables, in
// parallel.
//
// Replaying a lingering record at the next open writes what its tables
// already hold, which changes nothing as long as no write outside the
// journal has since changed one of its keys. The message tables' writes
// outside the journal (AckMailbox, EvictMailboxes) call retireJournal
// first; every other write to them is a batch, whose own record retires
// the previous ones (a batch writing one table, which needs no record,
// gets one while a record lingers). So at most the last batch lingers,
// and replaying it is harmless.
//
// Considered and not done: making the journal the only fsynced write
// (the tables committed with bbolt's NoSync, synced and the records
// retired at a checkpoint). bbolt's NoSync commit writes the data pages
// and the meta page with no barrier between them, and reuses pages freed
// since the last synced commit, so a power loss that keeps some unsynced
// writes and not others can leave a table whose valid meta page points at
// overwritten pages: a damaged file, not a stale one, which the journal
// cannot repair. The power-loss tracer (package powerloss) models "every
// unsynced write lost" and would not catch it; a disk would.
func (d *Driver) commitLinger(ctx context.Context, ws []write) error {
	key, err := d.journalAndApply(ctx, ws, true, true)
	if err != nil || key == nil {
		return err
	}
	d.journalMu.Lock()
	d.lingering = append(d.lingering, key)
	d.journalMu.Unlock()
	return nil
}

// retireJournal durably deletes the lingering journal records (see
// commitLinger). Callers that write to the message tables outside the
// journal call it first.
func (d *Driver) retireJournal() error {
	d.journalMu.Lock()
	keys := d.lingering
	d.lingering = nil
	d.journalMu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	err := d.table(store.Meta).Update(func(tx *store.Tx) error {
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		d.journalMu.Lock()
		d.lingering = append(keys, d.lingering...)
		d.journalMu.Unlock()
		return fmt.Errorf("journal: retire: %w", err)
	}
	return nil
}

// journalAndApply makes ws durable as one journal record (deleting the
// lingering records of earlier batches in the same transaction), then
// applies it to the tables. It returns the record's key, nil when ws
// went to one table without a record: a single table's transaction is
// atomic already, unless retire asks for a record whenever records linger.
func (d *Driver) journalAndApply(ctx context.Context, ws []write, parallel, retire bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Writes to the meta table (sequence reservations) go in the record's
	// own transaction: durable with it, before any table is written.
	tables := slices.DeleteFunc(tablesOf(ws), func(t string) bool { return t == store.Meta })
	withMeta := len(tables) < len(tablesOf(ws))
	if len(tables) == 0 && !withMeta {
		return nil, nil
	}
	if len(tables) == 1 && !withMeta {
		d.journalMu.Lock()
		lingering := len(d.lingering) > 0
		d.journalMu.Unlock()
		if !retire || !lingering {
			return nil, d.apply(tables[0], ws)
		}
	}
	meta := d.table(store.Meta)
	d.journalMu.Lock()
	d.journalNext++
	key := binary.BigEndian.AppendUint64(slices.Clone(journalPrefix), d.journalNext)
	retired := d.lingering
	d.lingering = nil
	d.journalMu.Unlock()
	rec := encodeWrites(ws)
	err := meta.Update(func(tx *store.Tx) error {
		for _, k := range retired {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		for _, w := range ws {
			if w.table != store.Meta {
				continue
			}
			if err := applyOne(tx, w); err != nil {
				return err
			}
		}
		return tx.Put(key, rec)
	})
	if err != nil {
		d.journalMu.Lock()
		d.lingering = append(retired, d.lingering...)
		d.journalMu.Unlock()
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := d.applyAll(tables, ws, parallel); err != nil {
		// The record stays: the next open finishes the operation.
		return nil, err
	}
	return key, nil
}

// applyAll applies ws to each of tables, in order, or all at once with
// parallel (each table on its own commit loop, its fsync shared with that
// table's other writers): the journal record, not the order, makes the set
// atomic; the order only matters to readers of records in flight.
func (d *Driver) applyAll(tables []string, ws []write, parallel bool) error {
	if !parallel {
		for _, name := range tables {
			if err := d.apply(name, ws); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(tables))
	var wg sync.WaitGroup
	for i, name := range tables {
		wg.Go(func() { errs[i] = d.apply(name, ws) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// apply commits the writes of ws that go to table name, in one
// transaction.
func (d *Driver) apply(name string, ws []write) error {
	err := d.table(name).Update(func(tx *store.Tx) error {
		for _, w := range ws {
			if w.table != name {
				continue
			}
			if err := applyOne(tx, w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func applyOne(tx *store.Tx, w write) error {
	if w.del {
		if w.versioned && len(w.value) >= 8 {
			if old := tx.Get(w.key); len(old) >= 8 && binary.BigEndian.Uint64(old) > binary.BigEndian.Uint64(w.value) {
				return nil
			}
		}
		return tx.Delete(w.key)
	}
	if w.versioned && len(w.value) >= 8 {
		if old := tx.Get(w.key); len(old) >= 8 && binary.BigEndian.Uint64(old) >= binary.BigEndian.Uint64(w.value) {
			return nil
		}
	}
	return tx.Put(w.key, w.value)
}

// recoverJournal finishes the operations a crash interrupted, oldest
// first, and continues the sequence after the last one.
func (d *Driver) recoverJournal() error {
	meta := d.table(store.Meta)
	type entry struct {
		key []byte
		ws  []write
	}
	var pending []entry
	err := meta.View(func(tx *store.Tx) error {
		return tx.Scan(journalPrefix, func(k, v []byte) error {
			ws, err := decodeWrites(v)
			if err != nil {
				return fmt.Errorf("journal record %x: %w", k, err)
			}
			pending = append(pending, entry{slices.Clone(k), ws})
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	for _, e := range pending {
		if err := d.applyAll(tablesOf(e.ws), e.ws, false); err != nil {
			return fmt.Errorf("replay journal: %w", err)
		}
		if err := meta.Update(func(tx *store.Tx) error { return tx.Delete(e.key) }); err != nil {
			return fmt.Errorf("replay journal: %w", err)
		}
		d.journalNext = max(d.journalNext, binary.BigEndian.Uint64(e.key[len(journalPrefix):]))
	}
	return nil
}

func tablesOf(ws []write) []string {
	var out []string
	for _, w := range ws {
		if !slices.Contains(out, w.table) {
			out = append(out, w.table)
		}
	}
	return out
}

// Journal record: uvarint count, then per write a flags byte (1 delete, 2
// versioned) and the table, key and value as uvarint-length-prefixed
// bytes.
func encodeWrites(ws []write) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ws)))
	for _, w := range ws {
		var flags byte
		if w.del {
			flags |= 1
		}
		if w.versioned {
			flags |= 2
		}
		b = append(b, flags)
		for _, f := range [][]byte{[]byte(w.table), w.key, w.value} {
			b = binary.AppendUvarint(b, uint64(len(f)))
			b = append(b, f...)
		}
	}
	return b
}

var errJournalRecord = errors.New("malformed journal record")

func decodeWrites(b []byte) ([]write, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errJournalRecord
	}
	b = b[k:]
	ws := make([]write, 0, n)
	for range n {
		if len(b) < 1 {
			return nil, errJournalRecord
		}
		w := write{del: b[0]&1 != 0, versioned: b[0]&2 != 0}
		b = b[1:]
		var fields [3][]byte
		for i := range fields {
			l, k := binary.Uvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return nil, errJournalRecord
			}
			fields[i] = slices.Clone(b[k : k+int(l)])
			b = b[k+int(l):]
		}
		w.table, w.key, w.value = string(fields[0]), fields[1], fields[2]
		if w.del && !w.versioned {
			w.value = nil
		}
		ws = append(ws, w)
	}
	if len(b) != 0 {
		return nil, errJournalRecord
	}
	return ws, nil
}
