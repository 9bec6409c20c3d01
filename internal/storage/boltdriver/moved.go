package boltdriver

import (
	"errors"
	"hash/maphash"
	"math/bits"
	"sync"

	"github.com/agentcom/agentcom/internal/store"
)

// movedIndex tells Put, without a read, that a task id is in neither the
// dead letter nor the archive.
//
// Put must skip a row the dead letter or the archive holds at its version
// or above: a snapshot older than the task's move, or a new task reusing
// an id. For a row task_queue lacks (every new task: the submission hot
// path) that meant a read transaction on each of the two other files,
// inside task_queue's write. The index is a Bloom filter over the ids of
// both tables: "absent" is certain and spares the reads; "maybe" (an id
// there, or a false positive) reads as before, so the answer is exact.
// At 16 bits per id it holds a million archived ids in 2 MiB, with about
// 0.1% false positives.
//
// It is built from the tables' keys in the background at open (until it
// is ready Put reads, as it always did), and again when either file is
// replaced (a restore: store.Table.Epoch). Every move adds its ids before
// it commits, so an id is in the index no later than in the table. Ids
// leaving the tables (a retry, a delete) stay: a false "maybe" is only a
// read.
//
// A build first waits out the move in flight (it takes moves, the lock
// every move holds from its add to its commit), so every id added before
// is committed and its scan finds it; the ids added from then until the
// build ends are kept in pending, because the scan may pass an id's place
// before its move commits. While no build runs, adds to a missing filter
// are dropped: the next build's scan finds them. pending is bounded
// (maxPending): past it the ids are dropped and the build's filter is
// thrown away, since it could miss them, so the index stays without a
// filter and answers "maybe" (Put reads) until a later build completes
// with fewer moves during its scan.
type movedIndex struct {
	seed          maphash.Seed
	dead, archive *store.Table
	// moves is the driver's lock over moves into either table.
	moves sync.Locker
	// maxPending bounds pending.
	maxPending int

	mu sync.Mutex
	// bits is the filter (nil: not ready), built for the tables at
	// epochs.
	bits   []uint64
	epochs [2]uint64
	n      int // ids added since the build
	// building: a build runs. pending collects the ids added during its
	// scan, for it to take; lost: some were dropped (over maxPending), so
	// its filter may miss them.
	building bool
	pending  []uint64
	lost     bool
	closed   bool
	wg       sync.WaitGroup
}

// maxMovedPending bounds the ids one build keeps from the moves during
// its scan (8 bytes each: 8 MiB), far more than the moves of the few
// seconds a scan of millions of ids takes.
const maxMovedPending = 1 << 20

// newMovedIndex returns an index over dead and archive; moves is held by
// every move into them from its add to its commit.
func newMovedIndex(dead, archive *store.Table, moves sync.Locker) *movedIndex {
	return &movedIndex{seed: maphash.MakeSeed(), dead: dead, archive: archive, moves: moves, maxPending: maxMovedPending}
}

const movedProbes = 6

func (m *movedIndex) hash(id []byte) uint64 { return maphash.Bytes(m.seed, id) }

// probes are the filter positions of h (double hashing).
func probes(h uint64, nbits uint64, fn func(bit uint64)) {
	h1, h2 := h, bits.RotateLeft64(h, 32)|1
	for i := range uint64(movedProbes) {
		fn((h1 + i*h2) & (nbits - 1))
	}
}

func set(f []uint64, h uint64) {
	probes(h, uint64(len(f))*64, func(b uint64) { f[b/64] |= 1 << (b % 64) })
}

// absent reports whether id is surely in neither table. It starts a
// build when there is no usable filter.
func (m *movedIndex) absent(id []byte) bool {
	h := m.hash(id)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bits != nil && m.epochs != m.tableEpochs() {
		m.bits = nil // a file was replaced: its ids are unknown
	}
	if m.bits == nil {
		m.startLocked()
		return false
	}
	all := true
	probes(h, uint64(len(m.bits))*64, func(b uint64) { all = all && m.bits[b/64]&(1<<(b%64)) != 0 })
	return !all
}

// add puts ids in the filter; moves call it before they commit, holding
// m.moves until they have.
func (m *movedIndex) add(ids ...[]byte) {
	hs := make([]uint64, len(ids))
	for i, id := range ids {
		hs[i] = m.hash(id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bits == nil {
		switch {
		case !m.building || m.closed:
			// The next build's scan starts after this move commits.
		case len(m.pending)+len(hs) > m.maxPending:
			m.pending, m.lost = nil, true
		default:
			// The build takes them: its scan may pass an id before
			// the move commits it.
			m.pending = append(m.pending, hs...)
		}
		return
	}
	for _, h := range hs {
		set(m.bits, h)
	}
	// Past twice its sizing the filter answers "maybe" too often: a
	// new one is sized for what the tables hold now.
	if m.n += len(hs); m.n > len(m.bits)*64/16 {
		m.bits = nil
		m.startLocked()
	}
}

func (m *movedIndex) tableEpochs() [2]uint64 { return [2]uint64{m.dead.Epoch(), m.archive.Epoch()} }

// startLocked starts a build unless one runs or the driver closed.
func (m *movedIndex) startLocked() {
	if m.building || m.closed {
		return
	}
	m.building = true
	epochs := m.tableEpochs()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		// The move in flight, if any, commits before the scan starts;
		// the ones after are pending.
		m.moves.Lock()
		m.mu.Lock()
		m.pending, m.lost = nil, false
		m.mu.Unlock()
		m.moves.Unlock()
		hs, err := m.scan()
		m.finish(hs, err, epochs)
	}()
}

// finish ends a build: the filter of the scanned ids hs and the pending
// ones, unless the scan failed, a file was replaced, or pending ids were
// dropped (the filter could miss them).
func (m *movedIndex) finish(hs []uint64, err error, epochs [2]uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.building = false
	pending, lost := m.pending, m.lost
	m.pending, m.lost = nil, false
	if err != nil || lost || m.closed || epochs != m.tableEpochs() {
		// Put keeps reading; its next call tries again.
		return
	}
	hs = append(hs, pending...)
	f := make([]uint64, 1<<bits.Len(uint(max(len(hs), 1024)*16/64)))
	for _, h := range hs {
		set(f, h)
	}
	m.bits, m.epochs, m.n = f, epochs, 0
}

// movedScanChunk bounds the keys one read transaction walks, so a build
// never holds a long read transaction (which would stall the file's
// growth for its writers).
const movedScanChunk = 10_000

// scan hashes every id of both tables.
func (m *movedIndex) scan() ([]uint64, error) {
	var hs []uint64
	errChunk := errors.New("chunk full")
	for _, t := range []*store.Table{m.dead, m.archive} {
		var from []byte
		for {
			n := 0
			var last []byte
			err := t.View(func(tx *store.Tx) error {
				return tx.ScanFrom(from, func(k, _ []byte) error {
					if from != nil && n == 0 && string(k) == string(from) {
						return nil // the previous chunk's last key
					}
					hs = append(hs, m.hash(k))
					last = append(last[:0], k...)
					if n++; n == movedScanChunk {
						return errChunk
					}
					return nil
				})
			})
			if err != nil && !errors.Is(err, errChunk) {
				return nil, err
			}
			if n < movedScanChunk {
				break
			}
			from = last
		}
	}
	return hs, nil
}

// close stops any build and waits for it.
func (m *movedIndex) close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.wg.Wait()
}
