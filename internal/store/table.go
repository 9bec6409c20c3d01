package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketName is the single bucket every table file holds.
var bucketName = []byte("records")

// maxGroup caps how many Update calls share one transaction.
const maxGroup = 512

// Table is one persistent key/value table in its own file.
//
// Concurrency: reads run in parallel; writes are serialized through the
// group-commit loop. Compaction and restore take the swap lock exclusively,
// so they wait for running transactions and block new ones on this table
// only; other tables are unaffected.
type Table struct {
	name string
	path string
	opts Options

	swap sync.RWMutex // held shared by every transaction, exclusively to swap files
	bolt *bolt.DB     // nil once closed

	reqs    chan *writeReq
	stop    chan struct{}
	stopped chan struct{}
	closeMu sync.Mutex
}

type writeReq struct {
	fn   func(*Tx) error
	done chan error
}

// OpenTable opens (or creates) a single table file.
func OpenTable(name, path string, opts Options) (*Table, error) {
	b, err := openBolt(path)
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", name, err)
	}
	t := &Table{
		name: name, path: path, opts: opts, bolt: b,
		reqs:    make(chan *writeReq, maxGroup),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go t.commitLoop()
	return t, nil
}

func openBolt(path string) (b *bolt.DB, err error) {
	// bbolt panics on some kinds of damaged files instead of returning an
	// error; a damaged table must be reported, not crash the hub.
	defer func() {
		if r := recover(); r != nil {
			if b != nil {
				b.Close()
			}
			b, err = nil, fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	b, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      2 * time.Second,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, err
	}
	if err := b.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	}); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Name is the table id.
func (t *Table) Name() string { return t.name }

// Path is the table's file.
func (t *Table) Path() string { return t.path }

// Update runs fn in a write transaction and returns once the transaction
// is committed and fsynced. fn may be run more than once (when a grouped
// transaction is retried after another caller's fn failed), so it must only
// compute writes from its inputs, never change memory outside the
// transaction. An error returned by fn rolls back fn's writes and is
// returned as is.
func (t *Table) Update(fn func(*Tx) error) error {
	req := &writeReq{fn: fn, done: make(chan error, 1)}
	select {
	case t.reqs <- req:
	case <-t.stopped:
		return fmt.Errorf("update %s: %w", t.name, ErrClosed)
	}
	return <-req.done
}

// View runs fn in a read-only transaction over a consistent snapshot.
// Slices handed to fn are valid only until fn returns.
func (t *Table) View(fn func(*Tx) error) error {
	t.swap.RLock()
	defer t.swap.RUnlock()
	if t.bolt == nil {
		return fmt.Errorf("view %s: %w", t.name, ErrClosed)
	}
	var fnErr error
	err := t.bolt.View(func(btx *bolt.Tx) error {
		fnErr = fn(&Tx{b: btx.Bucket(bucketName)})
		return fnErr
	})
	if err != nil && !errors.Is(err, fnErr) {
		return t.storageError("view", err)
	}
	return err
}

// commitLoop is the table's only writer. It takes every request waiting at
// the moment it is free and commits them together: while one fsync runs the
// next group forms, so grouping costs no added latency.
func (t *Table) commitLoop() {
	defer close(t.stopped)
	group := make([]*writeReq, 0, maxGroup)
	for {
		select {
		case <-t.stop:
			t.drain()
			return
		case r := <-t.reqs:
			group = append(group[:0], r)
		}
	fill:
		for len(group) < maxGroup {
			select {
			case r := <-t.reqs:
				group = append(group, r)
			default:
				break fill
			}
		}
		t.commit(group)
	}
}

// drain fails the requests still queued at close.
func (t *Table) drain() {
	for {
		select {
		case r := <-t.reqs:
			r.done <- fmt.Errorf("update %s: %w", t.name, ErrClosed)
		default:
			return
		}
	}
}

// commit writes a group in one transaction. If any fn fails, the whole
// transaction is rolled back and each request runs alone, so one caller's
// error never discards another's writes.
func (t *Table) commit(group []*writeReq) {
	t.swap.RLock()
	defer t.swap.RUnlock()
	if t.bolt == nil {
		for _, r := range group {
			r.done <- fmt.Errorf("update %s: %w", t.name, ErrClosed)
		}
		return
	}
	if len(group) > 1 {
		failed := errors.New("member failed")
		err := t.bolt.Update(func(btx *bolt.Tx) error {
			tx := &Tx{b: btx.Bucket(bucketName), writable: true}
			for _, r := range group {
				if err := r.fn(tx); err != nil {
					return failed
				}
			}
			return nil
		})
		if err == nil {
			for _, r := range group {
				r.done <- nil
			}
			return
		}
		if !errors.Is(err, failed) {
			err = t.storageError("commit", err)
			for _, r := range group {
				r.done <- err
			}
			return
		}
	}
	for _, r := range group {
		var fnErr error
		err := t.bolt.Update(func(btx *bolt.Tx) error {
			fnErr = r.fn(&Tx{b: btx.Bucket(bucketName), writable: true})
			return fnErr
		})
		if err != nil && (fnErr == nil || !errors.Is(err, fnErr)) {
			err = t.storageError("commit", err)
		}
		r.done <- err
	}
}

// storageError wraps a bbolt error and reports it to the error hook.
func (t *Table) storageError(op string, err error) error {
	err = fmt.Errorf("%s %s: %w", op, t.name, err)
	if t.opts.OnError != nil {
		t.opts.OnError(t.name, err)
	}
	return err
}

// Close stops the commit loop after the pending writes and closes the file.
// Closing twice is harmless.
func (t *Table) Close() error {
	t.closeMu.Lock()
	defer t.closeMu.Unlock()
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	<-t.stopped
	t.swap.Lock()
	defer t.swap.Unlock()
	if t.bolt == nil {
		return nil
	}
	err := t.bolt.Close()
	t.bolt = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", t.name, err)
	}
	return nil
}

// Count returns the number of records.
func (t *Table) Count() (int, error) {
	n := 0
	err := t.View(func(tx *Tx) error { n = tx.Count(); return nil })
	return n, err
}

// Tx is a transaction on one table. Slices it returns are valid only inside
// the transaction; copy them to keep them.
type Tx struct {
	b        *bolt.Bucket
	writable bool
}

// Get returns the value stored under key, or nil.
func (tx *Tx) Get(key []byte) []byte { return tx.b.Get(key) }

// Put stores value under key.
func (tx *Tx) Put(key, value []byte) error { return tx.b.Put(key, value) }

// Delete removes key; deleting a missing key is not an error.
func (tx *Tx) Delete(key []byte) error { return tx.b.Delete(key) }

// Count returns the number of records.
func (tx *Tx) Count() int { return tx.b.Stats().KeyN }

// ForEach calls fn for every record in key order; a non-nil error stops it.
func (tx *Tx) ForEach(fn func(k, v []byte) error) error { return tx.b.ForEach(fn) }

// Scan calls fn for every record whose key starts with prefix, in key order.
func (tx *Tx) Scan(prefix []byte, fn func(k, v []byte) error) error {
	c := tx.b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// ScanFrom calls fn for every record with key >= start, in key order, until
// fn returns a non-nil error. errStop-style sentinels are the caller's.
func (tx *Tx) ScanFrom(start []byte, fn func(k, v []byte) error) error {
	c := tx.b.Cursor()
	for k, v := c.Seek(start); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Last returns the greatest record whose key starts with prefix.
func (tx *Tx) Last(prefix []byte) (k, v []byte) {
	c := tx.b.Cursor()
	// Seek to the first key after every key with this prefix, then step back.
	end := prefixEnd(prefix)
	if end == nil {
		k, v = c.Last()
	} else if k, v = c.Seek(end); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	return k, v
}

// First returns the smallest record whose key starts with prefix.
func (tx *Tx) First(prefix []byte) (k, v []byte) {
	c := tx.b.Cursor()
	k, v = c.Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	return k, v
}

// prefixEnd returns the smallest key greater than every key with prefix,
// or nil when there is none (empty prefix or all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// copyFile is used by restore; it writes dst through a temp file, fsyncs it
// and renames it into place.
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
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(dst))
}
