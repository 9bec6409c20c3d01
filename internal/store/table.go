package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// bucketName is the single bucket every table file holds.
var bucketName = []byte("records")

// maxGroup caps how many Update calls share one transaction.
const maxGroup = 512

// Table is one persistent key/value table in its own file.
//
// Concurrency: reads run in parallel; writes are serialized through the
// group-commit loop. Maintenance (backup, check, compaction, restore) runs
// one operation at a time per table. Compaction copies the table while
// reads and writes go on and pauses this table's readers and writers only
// for the final catch-up and file swap; other tables are never affected.
//
// Damage: bbolt panics or faults on some damaged pages. Every call into
// bbolt runs under a guard that turns such a panic into an error wrapping
// ErrCorrupt; after one, the table is "poisoned" (bbolt's own locks may be
// left held) and every later operation fails fast with ErrCorrupt until a
// restore or reset swaps a new file in. Every stored value carries a
// CRC-32C of its key and value, so a flipped byte in a record is reported
// instead of being handed to the caller.
type Table struct {
	name    string
	path    string
	onError atomic.Pointer[func(table string, err error)]

	maint sync.Mutex // one maintenance operation at a time

	swap     sync.RWMutex // held shared by every transaction, exclusively to swap files
	bolt     *bolt.DB     // nil once closed; guarded by swap
	metaFile *os.File     // second handle on the file for the meta pre-check; guarded by swap
	pageSize int          // guarded by swap
	poisoned atomic.Bool  // bbolt panicked on this file; do not touch it again
	failed   atomic.Bool  // a storage error was met: no clean-close marker
	// epoch counts the files attached (open, restore, reset, reopen):
	// see Epoch.
	epoch atomic.Uint64

	// wmu is held by the commit loop around each write transaction, so a
	// compaction can start tracking writes at the exact point its snapshot
	// is taken. Lock order: wmu before swap.
	wmu   sync.Mutex
	dirty map[string]struct{} // keys written since the compaction snapshot; nil when not compacting

	reqs    chan *writeReq
	stop    chan struct{}
	stopped chan struct{}
	closeMu sync.Mutex
}

type writeReq struct {
	fn   func(*Tx) error
	done chan writeResult
}

type writeResult struct {
	err   error
	panic *userPanic // the caller's fn panicked; re-raised in the caller
}

// userPanic carries a panic of a caller's function across goroutines (the
// commit loop runs fns on behalf of Update callers).
type userPanic struct{ val any }

// errUserPanic is what a transaction function "returns" to bbolt when it
// panicked, so bbolt rolls the transaction back normally.
var errUserPanic = errors.New("transaction function panicked")

// errMemberFailed rolls back a grouped transaction when one member failed.
var errMemberFailed = errors.New("group member failed")

// storagePanic is a panic raised inside bbolt (or a memory fault on the
// mapped file), turned into an error. It always means a damaged file.
type storagePanic struct{ val any }

func (p storagePanic) Error() string { return fmt.Sprintf("%v: bbolt panic: %v", ErrCorrupt, p.val) }
func (p storagePanic) Unwrap() error { return ErrCorrupt }

// leftoverSuffixes are the temp files maintenance operations create next
// to a table; a crash can leave them behind and they are removed at open.
var leftoverSuffixes = []string{".compact", ".restore", ".restore.tmp", ".empty", cleanSuffix + ".tmp"}

// OpenTable opens (or creates) a single table file. An existing file whose
// header is damaged is reported with ErrCorrupt and left untouched; a
// missing file is created empty.
func OpenTable(name, path string, opts Options) (*Table, error) {
	// Before the file can be written: a crash from here on must leave no
	// clean-close marker (cleanmark.go).
	if err := removeCleanMarker(path); err != nil {
		return nil, fmt.Errorf("open table %s: %w", name, err)
	}
	for _, s := range leftoverSuffixes {
		_ = os.Remove(path + s)
	}
	if _, err := os.Stat(path); err == nil {
		if err := checkHeader(path); err != nil {
			return nil, fmt.Errorf("open table %s: %w", name, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open table %s: %w", name, err)
	}
	t := &Table{
		name: name, path: path,
		reqs:    make(chan *writeReq, maxGroup),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	if opts.OnError != nil {
		fn := opts.OnError
		t.onError.Store(&fn)
	}
	if err := t.attach(); err != nil {
		return nil, fmt.Errorf("open table %s: %w", name, err)
	}
	go t.commitLoop()
	return t, nil
}

// attach opens the bbolt file at t.path and the pre-check handle. Caller
// holds t.swap exclusively (or owns t exclusively).
func (t *Table) attach() error {
	b, err := openBolt(t.path)
	if err != nil {
		return err
	}
	f, err := os.Open(t.path)
	if err != nil {
		_ = b.Close()
		return err
	}
	t.bolt, t.metaFile, t.pageSize = b, f, b.Info().PageSize
	t.poisoned.Store(false)
	t.epoch.Add(1)
	return nil
}

// Epoch changes whenever the table's file is replaced by one that may
// hold other records (a restore, a reset, a reopen), not when a
// compaction rewrites the same records. What a caller keeps about the
// table's content in memory is stale once the epoch moved.
func (t *Table) Epoch() uint64 { return t.epoch.Load() }

// detach closes the bbolt file. A poisoned bbolt handle is abandoned
// instead of closed: its internal locks may be held by the goroutine that
// panicked and Close would wait forever. Caller holds t.swap exclusively.
func (t *Table) detach() error {
	var err error
	if t.bolt != nil && !t.poisoned.Load() {
		// A close error on a damaged file is expected; report it anyway.
		err = guard(t.bolt.Close)
	}
	if t.metaFile != nil {
		_ = t.metaFile.Close()
	}
	t.bolt, t.metaFile = nil, nil
	return err
}

// boltOptions are the options of every live table file.
func boltOptions() *bolt.Options {
	return &bolt.Options{
		Timeout:      2 * time.Second,
		FreelistType: bolt.FreelistMapType,
		// Map 1 GiB of address space up front. bbolt must remap when the
		// file outgrows its mapping, and a remap waits for every open read
		// transaction: a writer that needs one during a backup or a
		// compaction copy would stall for the whole copy. Address space is
		// free on 64-bit systems; pages are only touched as they are used.
		InitialMmapSize: 1 << 30,
	}
}

func openBolt(path string) (b *bolt.DB, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	err = guard(func() error {
		b, err = bolt.Open(path, 0o600, boltOptions())
		if err != nil {
			return classifyOpenError(err)
		}
		// Grow the file in 1 MiB steps once it is mapped; with the large
		// initial mapping bbolt would otherwise grow it 16 MiB at a time.
		b.AllocSize = 1 << 20
		exists := false
		if err := b.View(func(tx *bolt.Tx) error {
			exists = tx.Bucket(bucketName) != nil
			return nil
		}); err != nil || exists {
			return err
		}
		return b.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketName)
			return err
		})
	})
	if err != nil {
		if b != nil {
			_ = guard(b.Close)
		}
		return nil, err
	}
	return b, nil
}

// classifyOpenError marks the bbolt open errors that mean a damaged file.
func classifyOpenError(err error) error {
	switch {
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch):
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	case errors.Is(err, berrors.ErrTimeout):
		// Both wrapped: callers test for ErrLocked, older ones for bbolt's.
		return fmt.Errorf("%w: %w", ErrLocked, err)
	}
	return err
}

// guard runs fn with memory faults turned into panics and turns a panic
// into a storagePanic error. Callers' own functions never run directly
// under guard with their panics uncaught: callUser captures those first.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = storagePanic{val: r}
		}
	}()
	return fn()
}

// callUser runs a caller's transaction function and captures its panic.
func callUser(fn func(*Tx) error, tx *Tx) (up *userPanic, err error) {
	defer func() {
		if r := recover(); r != nil {
			up, err = &userPanic{val: r}, errUserPanic
		}
	}()
	return nil, fn(tx)
}

// Name is the table id.
func (t *Table) Name() string { return t.name }

// Path is the table's file.
func (t *Table) Path() string { return t.path }

// SetOnError replaces the storage error hook (see Options.OnError).
func (t *Table) SetOnError(fn func(table string, err error)) {
	if fn == nil {
		t.onError.Store(nil)
		return
	}
	t.onError.Store(&fn)
}

// Update runs fn in a write transaction and returns once the transaction
// is committed and fsynced. fn may be run more than once (when a grouped
// transaction is retried after another caller's fn failed), so it must only
// compute writes from its inputs, never change memory outside the
// transaction. An error returned by fn rolls back fn's writes and is
// returned as is; a panic in fn rolls them back and is re-raised here.
// When a read inside fn meets a damaged record, the transaction is rolled
// back and Update returns an error wrapping ErrCorrupt.
func (t *Table) Update(fn func(*Tx) error) error {
	req := &writeReq{fn: fn, done: make(chan writeResult, 1)}
	select {
	case t.reqs <- req:
	case <-t.stopped:
		return fmt.Errorf("update %s: %w", t.name, ErrClosed)
	}
	var res writeResult
	select {
	case res = <-req.done:
	case <-t.stopped:
		// The loop answers every request it takes before it stops, so an
		// empty done channel here means the request was never taken.
		select {
		case res = <-req.done:
		default:
			return fmt.Errorf("update %s: %w", t.name, ErrClosed)
		}
	}
	if res.panic != nil {
		panic(res.panic.val)
	}
	return res.err
}

// View runs fn in a read-only transaction over a consistent snapshot.
// Slices handed to fn are valid only until fn returns. A damaged record
// met by a read makes View return an error wrapping ErrCorrupt (the read
// itself returns nil or an error).
func (t *Table) View(fn func(*Tx) error) error {
	t.swap.RLock()
	defer t.swap.RUnlock()
	if err := t.usable("view"); err != nil {
		return err
	}
	var fnErr, txErr error
	var up *userPanic
	err := guard(func() error {
		if err := t.checkMetas(); err != nil {
			return err
		}
		return t.bolt.View(func(btx *bolt.Tx) error {
			tx, err := newTx(btx, false, false)
			if err != nil {
				return err
			}
			up, fnErr = callUser(fn, tx)
			if up != nil {
				return fnErr
			}
			if tx.err != nil {
				txErr = tx.err
				return txErr
			}
			return fnErr
		})
	})
	switch {
	case up != nil:
		panic(up.val)
	case err == nil:
		return nil
	case txErr != nil:
		return t.fail("view", txErr)
	case fnErr != nil && err == fnErr: //nolint:errorlint // identity: bbolt returns fn's error as is
		return fnErr
	default:
		return t.fail("view", err)
	}
}

// usable reports why the table cannot be used right now. Caller holds
// t.swap (shared or exclusive).
func (t *Table) usable(op string) error {
	if t.isClosed() {
		return fmt.Errorf("%s %s: %w", op, t.name, ErrClosed)
	}
	if t.bolt == nil {
		return fmt.Errorf("%s %s: %w: the table file could not be reopened after a swap", op, t.name, ErrCorrupt)
	}
	if t.poisoned.Load() {
		return fmt.Errorf("%s %s: %w: an earlier storage panic left the file unusable", op, t.name, ErrCorrupt)
	}
	return nil
}

// lockExclusive holds this table's writers, then its readers, in the
// order every path takes the two locks (wmu, then swap). Taking wmu first
// waits for an in-flight commit while readers still run; readers are held
// only once the commit is done.
func (t *Table) lockExclusive() {
	t.wmu.Lock()
	t.swap.Lock()
}

func (t *Table) unlockExclusive() {
	t.swap.Unlock()
	t.wmu.Unlock()
}

// isClosed reports whether Close was called.
func (t *Table) isClosed() bool {
	select {
	case <-t.stop:
		return true
	default:
		return false
	}
}

// checkMetas reads both meta pages through a second handle before a
// transaction starts. bbolt itself panics with its internal locks held when
// neither meta page is valid (the file header was overwritten under a
// running hub); checking first turns that into an ordinary ErrCorrupt.
// Caller holds t.swap.
func (t *Table) checkMetas() error {
	var buf [pageHeaderSize + metaSize]byte
	for slot := range 2 {
		off := int64(slot * t.pageSize)
		if _, err := t.metaFile.ReadAt(buf[:], off); err != nil {
			continue
		}
		if _, err := parseMeta(buf[:], uint64(slot)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: both meta pages are invalid (file header overwritten?)", ErrCorrupt)
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
		clear(group)
	}
}

// drain fails the requests still queued at close.
func (t *Table) drain() {
	for {
		select {
		case r := <-t.reqs:
			r.done <- writeResult{err: fmt.Errorf("update %s: %w", t.name, ErrClosed)}
		default:
			return
		}
	}
}

// commit writes a group in one transaction. If any fn fails, the whole
// transaction is rolled back and each request runs alone, so one caller's
// error never discards another's writes.
func (t *Table) commit(group []*writeReq) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.swap.RLock()
	defer t.swap.RUnlock()
	if err := t.usable("update"); err != nil {
		for _, r := range group {
			r.done <- writeResult{err: err}
		}
		return
	}
	if len(group) > 1 {
		var touched []string
		memberFailed := false
		err := guard(func() error {
			if err := t.checkMetas(); err != nil {
				return err
			}
			return t.bolt.Update(func(btx *bolt.Tx) error {
				tx, err := newTx(btx, true, t.dirty != nil)
				if err != nil {
					return err
				}
				for _, r := range group {
					up, fnErr := callUser(r.fn, tx)
					if up != nil || fnErr != nil || tx.err != nil {
						memberFailed = true
						return errMemberFailed
					}
				}
				touched = tx.touched
				return nil
			})
		})
		if err == nil {
			t.track(touched)
			for _, r := range group {
				r.done <- writeResult{}
			}
			return
		}
		if !memberFailed {
			err = t.fail("commit", err)
			for _, r := range group {
				r.done <- writeResult{err: err}
			}
			return
		}
	}
	for _, r := range group {
		r.done <- t.commitOne(r)
	}
}

// commitOne runs one request in its own transaction. Caller holds t.swap
// shared and t.wmu.
func (t *Table) commitOne(r *writeReq) writeResult {
	if err := t.usable("update"); err != nil {
		return writeResult{err: err}
	}
	var fnErr, txErr error
	var up *userPanic
	var touched []string
	err := guard(func() error {
		if err := t.checkMetas(); err != nil {
			return err
		}
		return t.bolt.Update(func(btx *bolt.Tx) error {
			tx, err := newTx(btx, true, t.dirty != nil)
			if err != nil {
				return err
			}
			up, fnErr = callUser(r.fn, tx)
			switch {
			case up != nil:
				return fnErr
			case tx.err != nil:
				txErr = tx.err
				return txErr
			case fnErr != nil:
				return fnErr
			}
			touched = tx.touched
			return nil
		})
	})
	switch {
	case up != nil:
		return writeResult{panic: up}
	case err == nil:
		t.track(touched)
		return writeResult{}
	case txErr != nil:
		return writeResult{err: t.fail("update", txErr)}
	case fnErr != nil && err == fnErr: //nolint:errorlint // identity: bbolt returns fn's error as is
		return writeResult{err: fnErr}
	default:
		return writeResult{err: t.fail("commit", err)}
	}
}

// track records keys written by a committed transaction while a
// compaction copies the table. Caller holds t.wmu.
func (t *Table) track(keys []string) {
	if t.dirty == nil {
		return
	}
	for _, k := range keys {
		t.dirty[k] = struct{}{}
	}
}

// fail wraps a storage error, poisons the table after a bbolt panic, and
// reports the error to the hook.
func (t *Table) fail(op string, err error) error {
	var sp storagePanic
	if errors.As(err, &sp) {
		t.poisoned.Store(true)
	}
	t.failed.Store(true)
	err = fmt.Errorf("%s %s: %w", op, t.name, err)
	if fn := t.onError.Load(); fn != nil {
		(*fn)(t.name, err)
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
	t.lockExclusive()
	defer t.unlockExclusive()
	if t.bolt == nil {
		return nil
	}
	clean := !t.poisoned.Load() && !t.failed.Load()
	if err := t.detach(); err != nil {
		return fmt.Errorf("close %s: %w", t.name, err)
	}
	if clean {
		// Best effort: without a marker the next start checks the file in
		// full, as after a crash.
		_ = writeCleanMarker(t.path)
	}
	return nil
}

// Count returns the number of records.
func (t *Table) Count() (int, error) {
	n := 0
	err := t.View(func(tx *Tx) error { n = tx.Count(); return nil })
	return n, err
}
