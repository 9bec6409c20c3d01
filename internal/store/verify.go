package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The verifier reads bbolt's on-disk format itself instead of calling
// bbolt's Tx.Check: Check runs in a goroutine of its own where a memory
// fault on a damaged page kills the process, and it recurses without a
// depth limit, so a page cycle overflows the stack. Here every page is read
// with ReadAt (no mapping, no faults), ids are bounds-checked before use,
// each page is visited once and depth is capped. It checks what Tx.Check
// checks (page types, bounds, single reference, key order, freelist
// coverage) plus the table's own invariants: one "records" bucket with no
// nested buckets, and a valid CRC-32C on every record.

// On-disk layout of bbolt format version 2 (native byte order).
const (
	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	elemSize       = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	metaSize       = 64 // magic, version, pageSize, flags u32; root, sequence, freelist, pgid, txid, checksum u64
	bucketHdrSize  = 16 // root u64, sequence u64

	boltMagic   = 0xED0CDAED
	boltVersion = 2

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10

	leafBucketFlag = 0x01
	noFreelist     = ^uint64(0)

	maxTreeDepth = 64
	maxPageBytes = 256 << 20 // a single page run larger than this is damage
	maxProblems  = 8
)

var nativeEndian = binary.NativeEndian

// fileMeta is the part of a meta page the verifier uses.
type fileMeta struct {
	pageSize int
	root     uint64
	freelist uint64
	hwm      uint64 // high-water mark: number of pages in use or free
	txid     uint64
}

// parseMeta decodes and validates the meta page whose first bytes are b
// (page header followed by the meta). slot is 0 or 1.
func parseMeta(b []byte, slot uint64) (fileMeta, error) {
	if len(b) < pageHeaderSize+metaSize {
		return fileMeta{}, errors.New("short meta page")
	}
	if id := nativeEndian.Uint64(b[0:]); id != slot {
		return fileMeta{}, fmt.Errorf("meta page %d has id %d", slot, id)
	}
	if flags := nativeEndian.Uint16(b[8:]); flags != flagMeta {
		return fileMeta{}, fmt.Errorf("meta page %d has flags %#x", slot, flags)
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	if nativeEndian.Uint32(m[0:]) != boltMagic {
		return fileMeta{}, fmt.Errorf("meta page %d: bad magic", slot)
	}
	if v := nativeEndian.Uint32(m[4:]); v != boltVersion {
		return fileMeta{}, fmt.Errorf("meta page %d: version %d", slot, v)
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:56])
	if nativeEndian.Uint64(m[56:]) != h.Sum64() {
		return fileMeta{}, fmt.Errorf("meta page %d: checksum mismatch", slot)
	}
	fm := fileMeta{
		pageSize: int(nativeEndian.Uint32(m[8:])),
		root:     nativeEndian.Uint64(m[16:]),
		freelist: nativeEndian.Uint64(m[32:]),
		hwm:      nativeEndian.Uint64(m[40:]),
		txid:     nativeEndian.Uint64(m[48:]),
	}
	switch {
	case fm.pageSize < 512 || fm.pageSize > 1<<20 || fm.pageSize&(fm.pageSize-1) != 0:
		return fileMeta{}, fmt.Errorf("meta page %d: page size %d", slot, fm.pageSize)
	case fm.root < 2 || fm.root >= fm.hwm:
		return fileMeta{}, fmt.Errorf("meta page %d: root page %d outside [2,%d)", slot, fm.root, fm.hwm)
	case fm.freelist != noFreelist && (fm.freelist < 2 || fm.freelist >= fm.hwm):
		return fileMeta{}, fmt.Errorf("meta page %d: freelist page %d outside [2,%d)", slot, fm.freelist, fm.hwm)
	}
	return fm, nil
}

// readMetas reads and validates both meta pages of a file.
func readMetas(r io.ReaderAt, size int64) (metas [2]*fileMeta, errs [2]error) {
	buf := make([]byte, pageHeaderSize+metaSize)
	read := func(off int64, slot uint64) (*fileMeta, error) {
		if off+int64(len(buf)) > size {
			return nil, fmt.Errorf("meta page %d beyond end of file", slot)
		}
		if _, err := r.ReadAt(buf, off); err != nil {
			return nil, fmt.Errorf("meta page %d: %w", slot, err)
		}
		m, err := parseMeta(buf, slot)
		if err != nil {
			return nil, err
		}
		return &m, nil
	}
	metas[0], errs[0] = read(0, 0)
	// The second meta page sits one page in. Without a valid first meta
	// the page size is unknown: try the system's, then every size bbolt
	// can create.
	sizes := []int{os.Getpagesize()}
	if metas[0] != nil {
		sizes = []int{metas[0].pageSize}
	} else {
		for ps := 1024; ps <= 64<<10; ps *= 2 {
			sizes = append(sizes, ps)
		}
	}
	for _, ps := range sizes {
		metas[1], errs[1] = read(int64(ps), 1)
		if metas[1] != nil {
			break
		}
	}
	return metas, errs
}

// newestMeta picks the valid meta page with the highest transaction id,
// as bbolt does when it opens a file. A single invalid meta page is not
// damage: it is how bbolt survives a write torn by a power loss.
func newestMeta(r io.ReaderAt, size int64) (fileMeta, error) {
	metas, errs := readMetas(r, size)
	switch {
	case metas[0] == nil && metas[1] == nil:
		return fileMeta{}, fmt.Errorf("%w: no valid meta page (%v; %v)", ErrCorrupt, errs[0], errs[1])
	case metas[0] == nil:
		return *metas[1], nil
	case metas[1] == nil || metas[0].txid > metas[1].txid:
		return *metas[0], nil
	default:
		return *metas[1], nil
	}
}

// checkHeader is the cheap check run before bbolt opens an existing file:
// a valid meta page, and a file long enough to hold every page it names.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return fmt.Errorf("%w: file is empty", ErrCorrupt)
	}
	m, err := newestMeta(f, fi.Size())
	if err != nil {
		return err
	}
	return fitsFile(m, fi.Size())
}

// fitsFile checks that a file of size bytes holds every page m names.
func fitsFile(m fileMeta, size int64) error {
	if m.hwm > uint64(size)/uint64(m.pageSize) {
		return fmt.Errorf("%w: file is %d bytes, its %d pages need %d (truncated)",
			ErrCorrupt, size, m.hwm, m.hwm*uint64(m.pageSize))
	}
	return nil
}

// CheckFile opens a table file read-only (a backup, or a table of a stopped
// hub), verifies its structure and every record's checksum, and returns
// its record count. Damage is reported as an error wrapping ErrCorrupt;
// other errors (missing file, I/O) are returned as they are. It never
// panics, whatever the file holds.
func CheckFile(path string) (records int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("check %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("check %s: %w", filepath.Base(path), err)
	}
	if fi.Size() == 0 {
		return 0, fmt.Errorf("check %s: %w: file is empty", filepath.Base(path), ErrCorrupt)
	}
	m, err := newestMeta(f, fi.Size())
	if err != nil {
		return 0, fmt.Errorf("check %s: %w", filepath.Base(path), err)
	}
	n, err := verify(f, fi.Size(), m)
	if err != nil {
		return 0, fmt.Errorf("check %s: %w", filepath.Base(path), err)
	}
	return n, nil
}

// verify walks the tree and freelist of the snapshot described by m.
func verify(r io.ReaderAt, size int64, m fileMeta) (int, error) {
	if err := fitsFile(m, size); err != nil {
		return 0, err
	}
	v := &verifier{
		r: r, ps: m.pageSize, hwm: m.hwm,
		seen: newBitset(m.hwm), free: newBitset(m.hwm),
	}
	v.seen.set(0)
	v.seen.set(1)
	v.walk(m.root, nil, nil, 0, kindRoot)
	if v.ioErr == nil && !v.foundRecords {
		v.problem("records bucket missing")
	}
	if v.ioErr == nil && m.freelist != noFreelist {
		v.checkFreelist(m.freelist)
	}
	if v.ioErr != nil {
		return 0, v.ioErr
	}
	if len(v.problems) > 0 {
		msg := strings.Join(v.problems, "; ")
		if v.nproblems > len(v.problems) {
			msg += fmt.Sprintf("; and %d more", v.nproblems-len(v.problems))
		}
		return 0, fmt.Errorf("%w: %s", ErrCorrupt, msg)
	}
	return v.records, nil
}

type treeKind int

const (
	kindRoot    treeKind = iota // the root bucket: holds the records bucket
	kindRecords                 // the records bucket: holds sealed values
)

type verifier struct {
	r            io.ReaderAt
	ps           int
	hwm          uint64
	seen         bitset // pages reachable from the meta
	free         bitset // pages on the freelist
	records      int
	foundRecords bool
	problems     []string
	nproblems    int
	ioErr        error // a read error that is not damage; stops the walk
}

func (v *verifier) problem(format string, args ...any) {
	v.nproblems++
	if len(v.problems) < maxProblems {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
}

func (v *verifier) stopped() bool { return v.ioErr != nil || v.nproblems >= 1000 }

// readPage reads page id with its overflow pages, after bounds checks.
func (v *verifier) readPage(id uint64) []byte {
	if id < 2 || id >= v.hwm {
		v.problem("page %d: outside [2,%d)", id, v.hwm)
		return nil
	}
	var hdr [pageHeaderSize]byte
	if !v.readAt(hdr[:], int64(id)*int64(v.ps)) {
		return nil
	}
	if got := nativeEndian.Uint64(hdr[0:]); got != id {
		v.problem("page %d: header says page %d", id, got)
		return nil
	}
	overflow := uint64(nativeEndian.Uint32(hdr[12:]))
	if id+overflow >= v.hwm || (overflow+1)*uint64(v.ps) > maxPageBytes {
		v.problem("page %d: overflow %d out of bounds", id, overflow)
		return nil
	}
	b := make([]byte, (overflow+1)*uint64(v.ps))
	if !v.readAt(b, int64(id)*int64(v.ps)) {
		return nil
	}
	return b
}

func (v *verifier) readAt(b []byte, off int64) bool {
	if _, err := v.r.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			v.problem("read past end of file at offset %d (truncated)", off)
		} else {
			v.ioErr = err
		}
		return false
	}
	return true
}

// mark records pages id..id+overflow as reachable; false when one already was.
func (v *verifier) mark(id uint64, b []byte) bool {
	n := uint64(len(b) / v.ps)
	for i := range n {
		if v.seen.has(id + i) {
			v.problem("page %d: referenced twice", id+i)
			return false
		}
	}
	for i := range n {
		v.seen.set(id + i)
	}
	return true
}

// walk verifies the subtree at page id, whose keys must lie in [lo, hi).
func (v *verifier) walk(id uint64, lo, hi []byte, depth int, kind treeKind) {
	if v.stopped() {
		return
	}
	if depth > maxTreeDepth {
		v.problem("page %d: tree deeper than %d", id, maxTreeDepth)
		return
	}
	b := v.readPage(id)
	if b == nil || !v.mark(id, b) {
		return
	}
	switch nativeEndian.Uint16(b[8:]) {
	case flagBranch:
		v.branch(id, b, lo, hi, depth, kind)
	case flagLeaf:
		v.leaf(fmt.Sprintf("page %d", id), b, lo, hi, kind)
	default:
		v.problem("page %d: unexpected page type %#x", id, nativeEndian.Uint16(b[8:]))
	}
}

func (v *verifier) branch(id uint64, b, lo, hi []byte, depth int, kind treeKind) {
	count := int(nativeEndian.Uint16(b[10:]))
	if count == 0 {
		v.problem("page %d: empty branch page", id)
		return
	}
	keys := make([][]byte, count)
	children := make([]uint64, count)
	for i := range count {
		off := pageHeaderSize + i*elemSize
		if off+elemSize > len(b) {
			v.problem("page %d: element %d beyond page", id, i)
			return
		}
		e := b[off:]
		pos, ksize := uint64(nativeEndian.Uint32(e[0:])), uint64(nativeEndian.Uint32(e[4:]))
		start := uint64(off) + pos
		if start+ksize > uint64(len(b)) {
			v.problem("page %d: key %d beyond page", id, i)
			return
		}
		keys[i] = b[start : start+ksize]
		children[i] = nativeEndian.Uint64(e[8:])
		if !v.ordered(fmt.Sprintf("page %d", id), i, keys, lo, hi) {
			return
		}
	}
	for i := range count {
		next := hi
		if i+1 < count {
			next = keys[i+1]
		}
		v.walk(children[i], keys[i], next, depth+1, kind)
	}
}

// ordered checks key i of a page against its predecessor and the bounds.
func (v *verifier) ordered(where string, i int, keys [][]byte, lo, hi []byte) bool {
	k := keys[i]
	switch {
	case i > 0 && bytes.Compare(keys[i-1], k) >= 0:
		v.problem("%s: key %d out of order", where, i)
	case i == 0 && lo != nil && bytes.Compare(k, lo) < 0:
		v.problem("%s: first key below its parent's", where)
	case hi != nil && bytes.Compare(k, hi) >= 0:
		v.problem("%s: key %d not below its parent's next key", where, i)
	default:
		return true
	}
	return false
}

// leaf verifies a leaf page (or an inline bucket page) b.
func (v *verifier) leaf(where string, b, lo, hi []byte, kind treeKind) {
	count := int(nativeEndian.Uint16(b[10:]))
	keys := make([][]byte, count)
	for i := range count {
		off := pageHeaderSize + i*elemSize
		if off+elemSize > len(b) {
			v.problem("%s: element %d beyond page", where, i)
			return
		}
		e := b[off:]
		flags := nativeEndian.Uint32(e[0:])
		pos, ksize, vsize := uint64(nativeEndian.Uint32(e[4:])), uint64(nativeEndian.Uint32(e[8:])), uint64(nativeEndian.Uint32(e[12:]))
		start := uint64(off) + pos
		if start+ksize+vsize > uint64(len(b)) {
			v.problem("%s: record %d beyond page", where, i)
			return
		}
		keys[i] = b[start : start+ksize]
		val := b[start+ksize : start+ksize+vsize]
		if !v.ordered(where, i, keys, lo, hi) {
			return
		}
		isBucket := flags&leafBucketFlag != 0
		switch kind {
		case kindRoot:
			if !isBucket || !bytes.Equal(keys[i], bucketName) {
				v.problem("%s: unexpected entry %q in the root bucket", where, truncKey(keys[i]))
				continue
			}
			v.foundRecords = true
			v.bucket(val)
		case kindRecords:
			if isBucket {
				v.problem("%s: unexpected nested bucket %q", where, truncKey(keys[i]))
				continue
			}
			if _, err := unseal(keys[i], val); err != nil {
				v.problem("%s: %s", where, strings.TrimPrefix(err.Error(), ErrCorrupt.Error()+": "))
				continue
			}
			v.records++
		}
		if v.stopped() {
			return
		}
	}
}

// bucket verifies the records bucket given its header value.
func (v *verifier) bucket(val []byte) {
	if len(val) < bucketHdrSize {
		v.problem("records bucket header too short")
		return
	}
	root := nativeEndian.Uint64(val[0:])
	if root != 0 {
		v.walk(root, nil, nil, 0, kindRecords)
		return
	}
	inline := val[bucketHdrSize:]
	if len(inline) < pageHeaderSize {
		v.problem("inline records bucket too short")
		return
	}
	if flags := nativeEndian.Uint16(inline[8:]); flags != flagLeaf {
		v.problem("inline records bucket has page type %#x", flags)
		return
	}
	v.leaf("inline bucket", inline, nil, nil, kindRecords)
}

// checkFreelist verifies the freelist page and that every page below the
// high-water mark is either reachable or free, never both.
func (v *verifier) checkFreelist(id uint64) {
	b := v.readPage(id)
	if b == nil || !v.mark(id, b) {
		return
	}
	if flags := nativeEndian.Uint16(b[8:]); flags != flagFreelist {
		v.problem("freelist page %d has type %#x", id, flags)
		return
	}
	start, count := uint64(0), uint64(nativeEndian.Uint16(b[10:]))
	if count == 0xFFFF {
		if len(b) < pageHeaderSize+8 {
			v.problem("freelist page %d too short", id)
			return
		}
		start, count = 1, nativeEndian.Uint64(b[pageHeaderSize:])
	}
	if count > uint64(len(b)) || pageHeaderSize+(start+count)*8 > uint64(len(b)) {
		v.problem("freelist page %d: %d ids do not fit", id, count)
		return
	}
	for i := range count {
		fid := nativeEndian.Uint64(b[pageHeaderSize+(start+i)*8:])
		switch {
		case fid < 2 || fid >= v.hwm:
			v.problem("freelist: page %d outside [2,%d)", fid, v.hwm)
		case v.free.has(fid):
			v.problem("freelist: page %d freed twice", fid)
		case v.seen.has(fid):
			v.problem("freelist: page %d is reachable and free", fid)
		default:
			v.free.set(fid)
		}
		if v.stopped() {
			return
		}
	}
	for p := uint64(2); p < v.hwm; p++ {
		if !v.seen.has(p) && !v.free.has(p) {
			v.problem("page %d: neither reachable nor free", p)
			if v.stopped() {
				return
			}
		}
	}
}

type bitset []uint64

func newBitset(n uint64) bitset    { return make(bitset, (n+63)/64) }
func (s bitset) set(i uint64)      { s[i/64] |= 1 << (i % 64) }
func (s bitset) has(i uint64) bool { return s[i/64]&(1<<(i%64)) != 0 }
