package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"
)

// crcSize is the length of the CRC-32C that follows every stored value.
// bbolt has no page checksums, so without it a flipped byte inside a record
// would be served as data.
const crcSize = 4

// castagnoli is the CRC-32C table (hardware accelerated on amd64/arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Tx is a transaction on one table. Slices it returns are valid only inside
// the transaction; copy them to keep them.
//
// A read that meets a damaged record (bad checksum, or a bbolt panic on a
// damaged page) marks the transaction failed: that read returns nil or an
// error, every later call returns nil or the same error, and View/Update
// return an error wrapping ErrCorrupt.
type Tx struct {
	b        *bolt.Bucket
	writable bool
	err      error    // first storage error met; fails the transaction
	track    bool     // record written keys (a compaction is copying)
	touched  []string // keys written, when track is set
}

func newTx(btx *bolt.Tx, writable, track bool) (*Tx, error) {
	b := btx.Bucket(bucketName)
	if b == nil {
		return nil, fmt.Errorf("%w: records bucket missing", ErrCorrupt)
	}
	return &Tx{b: b, writable: writable, track: track}, nil
}

// Get returns the value stored under key, or nil.
func (tx *Tx) Get(key []byte) []byte {
	if tx.err != nil {
		return nil
	}
	v, err := tx.get(key)
	if err != nil {
		tx.setErr(err)
		return nil
	}
	return v
}

func (tx *Tx) get(key []byte) (v []byte, err error) {
	defer catch(&err)
	raw := tx.b.Get(key)
	if raw == nil {
		return nil, nil
	}
	return unseal(key, raw)
}

// Put stores value under key. The value is copied: the caller may reuse
// its buffer at once.
func (tx *Tx) Put(key, value []byte) error {
	if tx.err != nil {
		return tx.err
	}
	if err := tx.put(key, seal(key, value)); err != nil {
		return err
	}
	if tx.track {
		tx.touched = append(tx.touched, string(key))
	}
	return nil
}

func (tx *Tx) put(key, sealed []byte) (err error) {
	defer catch(&err)
	err = tx.b.Put(key, sealed)
	if _, ok := err.(storagePanic); ok { //nolint:errorlint // set by catch only
		tx.setErr(err)
	}
	return err
}

// Delete removes key; deleting a missing key is not an error.
func (tx *Tx) Delete(key []byte) error {
	if tx.err != nil {
		return tx.err
	}
	err := func() (err error) {
		defer catch(&err)
		return tx.b.Delete(key)
	}()
	if _, ok := err.(storagePanic); ok { //nolint:errorlint // set by catch only
		tx.setErr(err)
	}
	if err == nil && tx.track {
		tx.touched = append(tx.touched, string(key))
	}
	return err
}

// Count returns the number of records.
func (tx *Tx) Count() int {
	if tx.err != nil {
		return 0
	}
	n := 0
	err := func() (err error) {
		defer catch(&err)
		n = tx.b.Stats().KeyN
		return nil
	}()
	if err != nil {
		tx.setErr(err)
		return 0
	}
	return n
}

// ForEach calls fn for every record in key order; a non-nil error stops it.
func (tx *Tx) ForEach(fn func(k, v []byte) error) error {
	return tx.iterate(nil, nil, fn)
}

// Scan calls fn for every record whose key starts with prefix, in key order.
func (tx *Tx) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return tx.iterate(prefix, prefix, fn)
}

// ScanFrom calls fn for every record with key >= start, in key order, until
// fn returns a non-nil error. errStop-style sentinels are the caller's.
func (tx *Tx) ScanFrom(start []byte, fn func(k, v []byte) error) error {
	return tx.iterate(start, nil, fn)
}

// iterate walks records from seek (the first record when nil) while keys
// carry prefix (all keys when nil). fn runs outside any recover, so its
// panics reach the caller unchanged.
func (tx *Tx) iterate(seek, prefix []byte, fn func(k, v []byte) error) error {
	if tx.err != nil {
		return tx.err
	}
	c := tx.b.Cursor()
	k, raw, err := step(func() ([]byte, []byte) {
		if seek == nil {
			return c.First()
		}
		return c.Seek(seek)
	})
	for ; err == nil && k != nil; k, raw, err = step(c.Next) {
		if prefix != nil && !bytes.HasPrefix(k, prefix) {
			return nil
		}
		v, uerr := unseal(k, raw)
		if uerr != nil {
			err = uerr
			break
		}
		if ferr := fn(k, v); ferr != nil {
			return ferr
		}
	}
	if err != nil {
		tx.setErr(err)
		return tx.err
	}
	return nil
}

// Last returns the greatest record whose key starts with prefix.
func (tx *Tx) Last(prefix []byte) (k, v []byte) {
	if tx.err != nil {
		return nil, nil
	}
	k, raw, err := step(func() ([]byte, []byte) {
		c := tx.b.Cursor()
		// Seek to the first key after every key with this prefix, then step back.
		end := prefixEnd(prefix)
		if end == nil {
			return c.Last()
		}
		if k, _ := c.Seek(end); k != nil {
			return c.Prev()
		}
		return c.Last()
	})
	return tx.found(prefix, k, raw, err)
}

// First returns the smallest record whose key starts with prefix.
func (tx *Tx) First(prefix []byte) (k, v []byte) {
	if tx.err != nil {
		return nil, nil
	}
	k, raw, err := step(func() ([]byte, []byte) { return tx.b.Cursor().Seek(prefix) })
	return tx.found(prefix, k, raw, err)
}

// found finishes First and Last: it filters by prefix and verifies the
// record.
func (tx *Tx) found(prefix, k, raw []byte, err error) ([]byte, []byte) {
	if err != nil {
		tx.setErr(err)
		return nil, nil
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	v, err := unseal(k, raw)
	if err != nil {
		tx.setErr(err)
		return nil, nil
	}
	return k, v
}

func (tx *Tx) setErr(err error) {
	if tx.err == nil {
		tx.err = err
	}
}

// step runs one cursor move under a recover.
func step(move func() ([]byte, []byte)) (k, v []byte, err error) {
	defer catch(&err)
	k, v = move()
	return k, v, nil
}

// catch turns a panic inside bbolt into a storagePanic error. It is
// deferred around single bbolt calls, never around callers' code.
func catch(err *error) {
	if r := recover(); r != nil {
		*err = storagePanic{val: r}
	}
}

// seal returns value followed by the CRC-32C of key and value.
func seal(key, value []byte) []byte {
	out := make([]byte, len(value)+crcSize)
	copy(out, value)
	binary.LittleEndian.PutUint32(out[len(value):], recordCRC(key, value))
	return out
}

// unseal checks a stored value's CRC and returns the value without it. The
// result's capacity is clipped so an append by the caller copies instead of
// writing into the read-only map.
func unseal(key, raw []byte) ([]byte, error) {
	if raw == nil {
		return nil, fmt.Errorf("%w: record %q is a nested bucket", ErrCorrupt, truncKey(key))
	}
	n := len(raw) - crcSize
	if n < 0 {
		return nil, fmt.Errorf("%w: record %q is shorter than its checksum", ErrCorrupt, truncKey(key))
	}
	if binary.LittleEndian.Uint32(raw[n:]) != recordCRC(key, raw[:n]) {
		return nil, fmt.Errorf("%w: record %q fails its checksum", ErrCorrupt, truncKey(key))
	}
	return raw[:n:n], nil
}

func recordCRC(key, value []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, value)
}

// truncKey keeps error messages short and printable.
func truncKey(k []byte) string {
	if len(k) > 64 {
		k = k[:64]
	}
	return string(k)
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
