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
// it commits, so an id is in the index no later than in the table; a
// build started meanwhile takes the ids added during the scan too. Ids
// leaving the tables (a retry, a delete) stay: a false "maybe" is only a
// read.
type movedIndex struct {
	seed          maphash.Seed
	dead, archive *store.Table

	mu sync.Mutex
	// bits is the filter (nil: not ready), built for the tables at
	// epochs.
	bits   []uint64
	epochs [2]uint64
	n      int // ids added since the build
	// building: a build runs. pending collects the ids added while there
	// is no filter, for the next build to take.
	building bool
	pending  []uint64
	closed   bool
	wg       sync.WaitGroup
}

func newMovedIndex(dead, archive *store.Table) *movedIndex {
	return &movedIndex{seed: maphash.MakeSeed(), dead: dead, archive: archive}
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

// add puts ids in the filter; moves call it before they commit.
func (m *movedIndex) add(ids ...[]byte) {
	hs := make([]uint64, len(ids))
	for i, id := range ids {
		hs[i] = m.hash(id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bits == nil {
		// The next build takes them: its scan may pass an id before
		// the move commits it.
		if !m.closed {
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
		hs, err := m.scan()
		m.mu.Lock()
		defer m.mu.Unlock()
		m.building = false
		if err != nil || m.closed || epochs != m.tableEpochs() {
			// Put keeps reading; its next call tries again.
			return
		}
		hs = append(hs, m.pending...)
		m.pending = nil
		f := make([]uint64, 1<<bits.Len(uint(max(len(hs), 1024)*16/64)))
		for _, h := range hs {
			set(f, h)
		}
		m.bits, m.epochs, m.n = f, epochs, 0
	}()
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
