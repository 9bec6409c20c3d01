// Package timeid makes ids that sort by the time they were made: 16
// lowercase hex digits holding the Unix time in milliseconds above a
// counter, after a fixed prefix ("task-" for tasks, none for messages).
//
// The order is why it exists: the stores keep tasks and the thread index
// in B-trees keyed by id, and ids made close in time land on the same few
// pages, so a group commit of new records rewrites a handful of pages at
// the right edge of the tree instead of one page per record scattered over
// all of it. (Measured on bbolt: a commit of about 15 task submits and
// completions fell from ~3 ms to ~0.7 ms; a run of 20,000 direct messages
// wrote 40% fewer bytes.) PostgreSQL's primary-key indexes gain the same
// way.
//
// Ids are not secrets (any token lists every task and message), so that
// they reveal when a record was made and are easy to guess gives nothing
// away.
package timeid

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SeqBits is the part of an id below its millisecond: a counter that
// starts at a random point below half its range in each new millisecond
// and counts up within it. The 44 bits above hold the Unix time in
// milliseconds (enough until the year 2527).
const SeqBits = 20

// Gen hands out ids, as numbers, that sort by the time they were made.
//
// Ids are unique within a generator by construction: each is above the
// last one handed out, whatever the clock does. A store's owner raises
// its generator above every id it loads (Followed), so a leader taking
// over, or a hub restarted with its clock set back, starts above every
// stored id it holds. The zero value is ready to use.
type Gen struct {
	mu   sync.Mutex
	last uint64
}

// Next returns a fresh id made at now (Unix milliseconds).
func (g *Gen) Next(now int64) uint64 {
	var r [4]byte
	_, _ = rand.Read(r[:])
	v := uint64(max(now, 0)) << SeqBits
	g.mu.Lock()
	if v <= g.last {
		// The same millisecond as the last id, or a clock that went back:
		// count up from the last one.
		v = g.last + 1
	} else {
		// A random start makes two hubs' ids of one millisecond unlikely
		// to meet even without a stored id to follow.
		v |= uint64(binary.BigEndian.Uint32(r[:])) & (1<<(SeqBits-1) - 1)
	}
	g.last = v
	g.mu.Unlock()
	return v
}

// Raise lifts the generator so that the next id is above v.
func (g *Gen) Raise(v uint64) {
	g.mu.Lock()
	g.last = max(g.last, v)
	g.mu.Unlock()
}

// maxAhead is how far ahead of the clock a stored id may be and still be
// followed.
const maxAhead = uint64(24 * time.Hour / time.Millisecond)

// Followed is what a generator must stay above once id, read from a
// store, exists: its value, or 0 when it need not be followed. Ids not of
// the shape prefix + 16 hex digits are not; nor is one more than a day
// ahead of now (Unix milliseconds): an id of an earlier version, made at
// random, can decode to any time, and following one far ahead would pin
// every later id to counting up from it.
func Followed(prefix, id string, now int64) uint64 {
	v, ok := Parse(prefix, id)
	if !ok || v>>SeqBits > uint64(max(now, 0))+maxAhead {
		return 0
	}
	return v
}

// Format returns v as prefix followed by 16 lowercase hex digits.
func Format(prefix string, v uint64) string {
	b := make([]byte, len(prefix)+16)
	copy(b, prefix)
	const digits = "0123456789abcdef"
	for i := len(b) - 1; i >= len(prefix); i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

// Parse returns the number an id of the shape prefix + 16 hex digits
// holds, and whether id has that shape.
func Parse(prefix, id string) (uint64, bool) {
	hex, ok := strings.CutPrefix(id, prefix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(hex, 16, 64)
	return v, err == nil
}
