package presence

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/agentcom/agentcom/internal/protocol"
)

// ChangeKind is what happened to an agent's presence.
type ChangeKind uint8

// Change kinds.
const (
	ChangeJoined ChangeKind = iota + 1
	ChangeLeft
	ChangeStatus
)

// Change is one presence change as the agent sockets announce it.
type Change struct {
	Kind ChangeKind
	// Agent is the agent after the change (only AgentID for a left).
	Agent protocol.AgentInfo
	// frame is the version-1 frame (agent_joined, agent_left or
	// status_changed), encoded once for every socket that gets it.
	frame []byte
}

// Feed is the log of presence changes the agent sockets read, each at its
// own position (a Reader): a change is recorded once, whatever the number
// of sockets, and each socket's writer renders what it has not sent when
// it runs, so a burst of joins reaches every socket in a few frames (or,
// for version-1 clients, in their frames written back to back). The log
// keeps the last max changes; a socket further behind than that has lost
// some (see Reader).
type Feed struct {
	max    int
	resync []byte // resyncJSON, the same bytes for every socket; never written

	// head is the sequence number the next change gets, base+len(log),
	// stored under mu and read without it: every socket's writer asks
	// for pending changes each time it runs out of queued frames (1,000
	// of them per broadcast), and nearly always there are none.
	head atomic.Uint64

	mu   sync.Mutex
	base uint64 // sequence number of log[0]
	log  []Change
	// rendered holds presence frames by the sequence number they start
	// at: after a window the version-2 sockets read the same changes (or
	// a few different ranges, when changes come while they read), so one
	// renders a frame and the others send the same bytes. Cleared past
	// maxRendered entries.
	rendered map[uint64]rendered

	scratch sync.Pool // *scratch: a reader's buffers, only while it renders
}

// rendered is a presence frame of the changes [from, to); movers are the
// agents that joined or left in them (a reader among them renders its own
// frame, without its own join or leave).
type rendered struct {
	from, to uint64
	movers   []string
	frame    []byte
}

type scratch struct {
	changes []Change
	keep    []bool
}

// NewFeed returns a feed keeping the last size changes (at least 1).
func NewFeed(size int) *Feed { return &Feed{max: max(size, 1), resync: []byte(resyncJSON)} }

// Append records c and returns its sequence number.
func (f *Feed) Append(c Change) (uint64, error) {
	var frame protocol.Frame
	switch c.Kind {
	case ChangeJoined:
		frame = protocol.NewAgentJoined(c.Agent)
	case ChangeLeft:
		frame = protocol.NewAgentLeft(c.Agent.AgentID)
	case ChangeStatus:
		frame = protocol.NewStatusChanged(c.Agent)
	default:
		return 0, fmt.Errorf("presence: change of unknown kind %d", c.Kind)
	}
	b, err := json.Marshal(frame)
	if err != nil {
		return 0, fmt.Errorf("presence: encode %s: %w", frame.FrameType(), err)
	}
	c.frame = b
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.log) >= f.max {
		// Drop the older half: one copy per max/2 appends.
		drop := len(f.log) - f.max/2
		n := copy(f.log, f.log[drop:])
		clear(f.log[n:])
		f.log = f.log[:n]
		f.base += uint64(drop)
	}
	f.log = append(f.log, c)
	f.head.Store(f.base + uint64(len(f.log)))
	return f.base + uint64(len(f.log)) - 1, nil
}

// Head is the sequence number the next change gets.
func (f *Feed) Head() uint64 { return f.head.Load() }

// read appends to dst up to n changes from sequence number from on, and
// returns the number after the last, and how many changes from from on
// were lost (dropped from the log before they were read).
func (f *Feed) read(from uint64, dst []Change, n int) ([]Change, uint64, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lost uint64
	if from < f.base {
		lost, from = f.base-from, f.base
	}
	i := int(from - f.base)
	end := min(len(f.log), i+n)
	dst = append(dst, f.log[i:end]...)
	return dst, f.base + uint64(end), lost
}

// pending is how many changes from from on are in the log or lost.
func (f *Feed) pending(from uint64) uint64 { return f.head.Load() - from }

// ReaderConfig is how a Reader renders changes.
type ReaderConfig struct {
	// Self is the reading agent: its own joins and leaves are not sent to
	// it (its status changes are).
	Self string
	// Version is the client's protocol version: from VersionPresence on,
	// changes go in presence frames, before it one frame per change.
	Version int
	// Batch is the most changes one presence frame lists (default 64);
	// more pending than that sends a resync frame instead.
	Batch int
	// Lost is called when a version-1 client fell so far behind that
	// changes it must get were dropped from the log (it has no resync
	// frame); the caller closes it as a slow consumer.
	Lost func()
}

// Reader is one socket's position in the feed. Next is called by the
// socket's writer only (wsconn.Source); Pending from anywhere.
type Reader struct {
	feed *Feed
	cfg  ReaderConfig
	next atomic.Uint64
}

// NewReader reads f from sequence number from on.
func (f *Feed) NewReader(from uint64, cfg ReaderConfig) *Reader {
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	r := &Reader{feed: f, cfg: cfg}
	r.next.Store(from)
	return r
}

// Pending reports whether changes wait for this reader.
func (r *Reader) Pending() bool { return r.feed.pending(r.next.Load()) > 0 }

// v1Batch is how many changes a version-1 reader renders per Next: each is
// a frame of its own, so this only bounds the writer's batch.
const v1Batch = 64

// Next appends the frames of the changes not yet sent to dst.
func (r *Reader) Next(dst [][]byte) [][]byte {
	from := r.next.Load()
	if r.feed.pending(from) == 0 {
		return dst
	}
	if r.cfg.Version >= protocol.VersionPresence {
		return r.nextBatched(from, dst)
	}
	sc := r.feed.getScratch()
	defer r.feed.scratch.Put(sc)
	changes, next, lost := r.feed.read(from, sc.changes[:0], v1Batch)
	r.next.Store(next)
	if lost > 0 && r.cfg.Lost != nil {
		r.cfg.Lost()
	}
	sc.keep = coalesce(changes, r.cfg.Self, sc.keep[:0])
	for i, c := range changes {
		if sc.keep[i] {
			dst = append(dst, c.frame)
		}
	}
	sc.changes = clearChanges(changes)
	return dst
}

func (f *Feed) getScratch() *scratch {
	if sc, ok := f.scratch.Get().(*scratch); ok {
		return sc
	}
	return &scratch{}
}

// nextBatched renders every pending change in one presence frame, or a
// resync frame when more are pending than one frame lists.
func (r *Reader) nextBatched(from uint64, dst [][]byte) [][]byte {
	n := r.feed.pending(from)
	if n == 0 {
		return dst
	}
	if n > uint64(r.cfg.Batch) {
		r.next.Add(n)
		return append(dst, r.feed.resync)
	}
	if b, to, ok := r.feed.cached(from, r.cfg.Self); ok {
		r.next.Store(to)
		if b == nil {
			return dst
		}
		return append(dst, b)
	}
	sc := r.feed.getScratch()
	defer r.feed.scratch.Put(sc)
	changes, next, lost := r.feed.read(from, sc.changes[:0], r.cfg.Batch)
	r.next.Store(next)
	defer func() { sc.changes = clearChanges(changes) }()
	if lost > 0 {
		return append(dst, r.feed.resync)
	}
	sc.keep = coalesce(changes, r.cfg.Self, sc.keep[:0])
	var joined, status []protocol.AgentInfo
	var left, movers []string
	for i, c := range changes {
		if c.Kind != ChangeStatus {
			movers = append(movers, c.Agent.AgentID)
		}
		if !sc.keep[i] {
			continue
		}
		switch c.Kind {
		case ChangeJoined:
			joined = append(joined, c.Agent)
		case ChangeLeft:
			left = append(left, c.Agent.AgentID)
		case ChangeStatus:
			status = append(status, c.Agent)
		}
	}
	var b []byte
	if joined != nil || left != nil || status != nil {
		var err error
		if b, err = json.Marshal(protocol.NewPresence(joined, left, status)); err != nil {
			// AgentInfo always encodes; a failure here would lose only
			// this window's changes, so the client is told to list.
			b = r.feed.resync
		}
	}
	if next > from && !slices.Contains(movers, r.cfg.Self) {
		// Everyone else reading this range sends the same bytes.
		r.feed.remember(rendered{from: from, to: next, movers: movers, frame: b})
	}
	if b == nil {
		return dst
	}
	return append(dst, b)
}

// maxRendered bounds Feed.rendered.
const maxRendered = 64

// cached is a frame rendered for the changes from from on (to the number
// it returns, which may be short of the head: the rest comes in the next
// frame), unless self joined or left in them; a nil frame means nothing
// to send.
func (f *Feed) cached(from uint64, self string) ([]byte, uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.rendered[from]
	if !ok || slices.Contains(r.movers, self) {
		return nil, 0, false
	}
	return r.frame, r.to, true
}

func (f *Feed) remember(r rendered) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rendered == nil || len(f.rendered) >= maxRendered {
		f.rendered = make(map[uint64]rendered)
	}
	f.rendered[r.from] = r
}

// resyncJSON is NewPresenceResync encoded.
const resyncJSON = `{"resync":true,"type":"` + protocol.OutPresence + `"}`

func clearChanges(c []Change) []Change {
	clear(c)
	return c[:0]
}

// coalesce reports which of changes a reader sends: not its own joins and
// leaves, and nothing of an agent that joined and left within changes
// (the join, its status changes and the leave cancel out, as far as the
// version-1 protocol allows: the agent was never seen).
func coalesce(changes []Change, self string, keep []bool) []bool {
	keep = append(keep, make([]bool, len(changes))...)
	var joinedAt map[string]int // an agent's last join in changes, not yet cancelled
	for i, c := range changes {
		id := c.Agent.AgentID
		keep[i] = c.Kind == ChangeStatus || id != self
		switch c.Kind {
		case ChangeJoined:
			if joinedAt == nil {
				joinedAt = make(map[string]int)
			}
			joinedAt[id] = i
		case ChangeLeft:
			j, ok := joinedAt[id]
			if !ok {
				continue
			}
			delete(joinedAt, id)
			for k := j; k <= i; k++ {
				if changes[k].Agent.AgentID == id {
					keep[k] = false
				}
			}
		}
	}
	return keep
}
