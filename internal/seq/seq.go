// Package seq hands out sequence numbers that never go backwards, not even
// across restarts or after a table is restored from an older backup.
//
// A Counter reserves numbers in blocks: it durably records the end of the
// current block in the meta table before handing out any number from it.
// After a restart numbering resumes at the recorded end (or above the
// highest number still stored, whichever is greater), so a gap of at most
// one block may appear, but a number is never reused.
package seq

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/agentcom/agentcom/internal/store"
)

// Block is how many numbers one durable reservation covers.
const Block = 1000

// Counter is one named sequence.
type Counter struct {
	meta *store.Table
	key  []byte

	mu       sync.Mutex
	next     uint64 // next number to hand out
	reserved uint64 // numbers below this are durably reserved
}

// Open loads the counter called name from meta. floor is the highest
// number already in use (found by the caller in its own table); numbering
// continues above both it and any earlier reservation.
func Open(meta *store.Table, name string, floor uint64) (*Counter, error) {
	c := &Counter{meta: meta, key: []byte("seq:" + name)}
	var hw uint64
	err := meta.View(func(tx *store.Tx) error {
		if v := tx.Get(c.key); len(v) == 8 {
			hw = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open sequence %s: %w", name, err)
	}
	c.next = max(hw, floor) + 1
	c.reserved = c.next
	return c, nil
}

// Next returns the next number, reserving a new block first when needed.
func (c *Counter) Next() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next >= c.reserved {
		end := c.next + Block
		v := binary.BigEndian.AppendUint64(nil, end-1)
		if err := c.meta.Update(func(tx *store.Tx) error { return tx.Put(c.key, v) }); err != nil {
			return 0, fmt.Errorf("reserve sequence block: %w", err)
		}
		c.reserved = end
	}
	n := c.next
	c.next++
	return n, nil
}

// Reservation is the meta record (Key, Value: the last number of a
// block, 8 bytes big-endian) that durably reserves a block of numbers.
type Reservation struct {
	Key, Value []byte
}

// Claim is Next for a caller that commits the reservation itself: it
// writes nothing, and when n opens a new block it returns the block's
// Reservation (nil otherwise), which the caller must commit to the meta
// table before or in the same transaction as the first durable use of
// any number of the block. The message store puts it in its journal
// record's transaction, so a batch of messages costs no fsync of its own
// for its sequence numbers (Next costs one per block, in series).
//
// When that commit fails, the caller calls Unreserve: the block is not
// reserved, and the next Claim reserves again.
func (c *Counter) Claim() (uint64, *Reservation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var r *Reservation
	if c.next >= c.reserved {
		end := c.next + Block
		r = &Reservation{Key: c.key, Value: binary.BigEndian.AppendUint64(nil, end-1)}
		c.reserved = end
	}
	n := c.next
	c.next++
	return n, r
}

// Unreserve forgets the reservations Claim returned whose commit failed:
// the next Claim returns a new one. Numbers are never handed out twice.
func (c *Counter) Unreserve() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserved = c.next
}

// Peek returns the last number handed out (0 when none).
func (c *Counter) Peek() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next - 1
}

// Key encodes n so byte order equals numeric order.
func Key(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// AppendKey appends the encoding of n to prefix.
func AppendKey(prefix []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), n)
}

// Decode reverses Key on the last 8 bytes of k.
func Decode(k []byte) uint64 {
	if len(k) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k[len(k)-8:])
}
