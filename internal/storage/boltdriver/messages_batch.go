package boltdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/agentcom/agentcom/internal/seq"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/store"
)

// The message store's writes read before they write: an append trims the
// history and mailboxes it grows (which records are the oldest?) and edits
// the reply list of the message's parent. Those reads and the journaled
// commit must not interleave with another append's, or a reply link is
// lost. Rather than holding a lock across each commit (one journal record
// and one fsync per table for every message, one message at a time),
// concurrent writes are gathered: one caller leads, plans every pending
// write in order against the tables plus the batch's own earlier writes,
// and commits the whole batch as one journaled write. The others wait for
// its outcome; then the first caller that arrived meanwhile leads the next
// batch.

// maxBatch and maxBatchBytes bound one commit (and so one journal
// record, held in memory while it is written): at most maxBatch
// operations, and no more operations once their bodies reach
// maxBatchBytes (one operation always goes, whatever its size: a
// broadcast's copies must commit together).
//
// maxBatch is large: a batch's cost is its fsyncs, about the same for 10
// operations as for 1,000, so the more senders share one the better (a
// fleet of 1,000 agents each waiting for its message_sent forms batches
// of hundreds).
const (
	maxBatch      = 2048
	maxBatchBytes = 8 << 20
)

// messageState is the message store's share of the driver.
type messageState struct {
	qmu     sync.Mutex // guards pending, leading and unsettled
	pending []*msgOp
	leading bool
	// unsettled counts the asynchronous ops (DropCopies) submitted and
	// not yet committed; mailbox reads wait for them (settle).
	unsettled int

	// Used by the leader only (one at a time). Counters open on first
	// use: the mailbox one scans the table for its floor.
	mailbox  *seq.Counter
	history  *seq.Counter
	channels map[string]*seq.Counter
}

type opKind int

const (
	opAppend  opKind = iota // global history, thread index, mailbox copies
	opPublish               // channel history, thread index, mailbox copies
	opEnqueue               // mailbox copies only
	opForget                // thread index removals
	opDrop                  // pending mailbox copies removed (asynchronous)
	opSettle                // nothing: a barrier behind the asynchronous ops
)

// msgOp is one caller's write, waiting in a batch.
type msgOp struct {
	kind    opKind
	channel string
	a       storage.Append
	forget  []string
	drops   []storage.CopyRef
	// async: the caller does not wait for the op (opDrop). It rides in
	// the batch of whoever leads; when nobody does, the caller leads.
	async bool

	res  storage.AppendResult
	err  error
	wake chan struct{} // closed when res/err are set, or when lead is
	lead bool
}

// size is about how many bytes op adds to a journal record.
func (op *msgOp) size() int {
	n := len(op.a.Message.Body)
	for _, c := range op.a.Copies {
		n += len(c.Body)
	}
	for _, id := range op.forget {
		n += len(id)
	}
	for _, r := range op.drops {
		n += len(r.Agent) + 8
	}
	return n
}

// submit runs op in a batch and returns its error; op.res holds its
// result. ctx is checked before op joins a batch: once in, op commits or
// fails with its batch. An async op returns at once when a batch leader
// is running (its batch will take the op); else its caller leads.
func (s messageStore) submit(ctx context.Context, op *msgOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st := &s.d.msg
	op.wake = make(chan struct{})
	st.qmu.Lock()
	st.pending = append(st.pending, op)
	if op.async {
		st.unsettled++
	}
	if op.async && (st.leading || st.unsettled < maxBatch) {
		// Rides in the batch of the next write (or the next mailbox
		// read's settle, or Close); when many are waiting, this caller
		// runs them.
		st.qmu.Unlock()
		return nil
	}
	if st.leading {
		st.qmu.Unlock()
		<-op.wake
		if !op.lead {
			return op.err
		}
	} else {
		st.leading = true
		st.qmu.Unlock()
	}
	for {
		st.qmu.Lock()
		n, size := 0, 0
		for n < len(st.pending) && n < maxBatch && (n == 0 || size < maxBatchBytes) {
			size += st.pending[n].size()
			n++
		}
		batch := st.pending[:n:n]
		st.pending = slices.Clone(st.pending[n:])
		st.qmu.Unlock()

		// A panic while the batch runs must not leave its waiters (and
		// every later writer) blocked: they fail, the next leader takes
		// over, and the panic goes on in this caller.
		panicked := s.runBatchGuarded(batch)

		st.qmu.Lock()
		again := false
		for _, o := range batch {
			if o.async {
				st.unsettled--
			}
		}
		// The lead goes to the first op whose caller waits. Async ops
		// alone wait for the next write, unless many are queued: then
		// this caller runs them.
		if i := slices.IndexFunc(st.pending, func(o *msgOp) bool { return !o.async }); i >= 0 {
			st.pending[i].lead = true
			close(st.pending[i].wake)
		} else if len(st.pending) >= maxBatch && panicked == nil {
			again = true
		} else {
			st.leading = false
		}
		st.qmu.Unlock()
		for _, o := range batch {
			if o != op {
				close(o.wake)
			}
		}
		if panicked != nil {
			panic(panicked)
		}
		if !again {
			return op.err
		}
	}
}

// settle returns once every asynchronous op submitted before it is
// committed: a mailbox read calls it so that it never sees a copy
// DropCopies removed, and Close so that a clean stop leaves none behind.
// Without such ops pending it costs one lock.
func (s messageStore) settle(ctx context.Context) error {
	st := &s.d.msg
	st.qmu.Lock()
	n := st.unsettled
	st.qmu.Unlock()
	if n == 0 {
		return nil
	}
	// Batches take ops in order: this one commits after those before it.
	return s.submit(ctx, &msgOp{kind: opSettle})
}

// runBatchGuarded runs the batch and returns what it panicked with, if
// it did, after failing every op of it.
func (s messageStore) runBatchGuarded(batch []*msgOp) (panicked any) {
	defer func() {
		if panicked = recover(); panicked != nil {
			for _, o := range batch {
				o.res, o.err = storage.AppendResult{}, fmt.Errorf("message store: panic: %v", panicked)
			}
		}
	}()
	s.runBatch(batch)
	return nil
}

// runBatch plans and commits batch, setting each op's result. A failure
// to plan or commit fails every op of the batch: nothing of it is written.
func (s messageStore) runBatch(batch []*msgOp) {
	p := newPlanner(s)
	committed := false
	defer func() {
		if !committed {
			// The batch's block reservations may not be durable (a
			// failure or a panic before its journal record): the next
			// batch reserves again.
			for _, c := range p.claimed {
				c.Unreserve()
			}
		}
	}()
	err := p.open(batch)
	for _, op := range batch {
		if err != nil {
			break
		}
		err = p.add(op)
	}
	if err == nil {
		var ws []write
		if ws, err = p.writes(); err == nil {
			// The callers' contexts were checked as they joined; the batch
			// commits for all of them.
			err = s.d.commitLinger(context.Background(), ws)
		}
	}
	committed = err == nil
	for _, op := range batch {
		if err != nil {
			op.res, op.err = storage.AppendResult{}, err
		}
	}
}

// planner computes a batch's writes. Reads see the tables as committed
// plus the batch's own earlier writes.
type planner struct {
	s  messageStore
	st *messageState
	ws []write

	histCount  int         // records in the history, batch included
	histOldest [][2][]byte // oldest history records (key, value), preloaded
	histNext   int         // next of histOldest to trim

	owned   map[string]*ownedList // by table and owner prefix
	threads map[string][]byte     // thread message overlay; nil value: deleted
	replies map[string][]string   // parent -> replies, as of the batch so far
	changed []string              // parents whose replies changed, in order

	// Sequence numbers are claimed without a commit of their own: the
	// block reservations ride in the journal record's transaction
	// (writes). claimed lists the counters used, reserved their newest
	// reservation by key.
	claimed  []*seq.Counter
	reserved map[string][]byte
}

// claim takes c's next number, keeping the block reservation it may need.
func (p *planner) claim(c *seq.Counter) uint64 {
	n, r := c.Claim()
	if !slices.Contains(p.claimed, c) {
		p.claimed = append(p.claimed, c)
	}
	if r != nil {
		if p.reserved == nil {
			p.reserved = map[string][]byte{}
		}
		p.reserved[string(r.Key)] = r.Value
	}
	return n
}

func newPlanner(s messageStore) *planner {
	return &planner{s: s, st: &s.d.msg, owned: map[string]*ownedList{},
		threads: map[string][]byte{}, replies: map[string][]string{}}
}

// ownedList is one owner's records (a mailbox, a channel history) in
// sequence order, batch included.
type ownedList struct {
	keys [][]byte
	vals [][]byte // kept for channel histories only (trimmed ids)
}

// open loads the counters and, when the batch appends to the history,
// the history's size and as many of its oldest records as the batch may
// trim.
func (p *planner) open(batch []*msgOp) error {
	st, d := p.st, p.s.d
	meta := d.table(store.Meta)
	if st.mailbox == nil {
		var floor uint64
		err := d.table(store.AgentMailbox).View(func(tx *store.Tx) error {
			return tx.ForEach(func(k, _ []byte) error {
				floor = max(floor, seq.Decode(k))
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("open mailbox sequence: %w", err)
		}
		if st.mailbox, err = seq.Open(meta, "mailbox", floor); err != nil {
			return err
		}
	}
	if st.history == nil {
		var floor uint64
		err := d.table(store.MessageHistory).View(func(tx *store.Tx) error {
			if k, _ := tx.Last(nil); k != nil {
				floor = seq.Decode(k)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("open history sequence: %w", err)
		}
		if st.history, err = seq.Open(meta, "history", floor); err != nil {
			return err
		}
	}
	if st.channels == nil {
		st.channels = make(map[string]*seq.Counter)
	}
	appends := 0
	for _, op := range batch {
		if op.kind == opAppend {
			appends++
		}
	}
	if appends == 0 {
		return nil
	}
	err := d.table(store.MessageHistory).View(func(tx *store.Tx) error {
		p.histCount = tx.Count()
		excess := p.histCount + appends - storage.HistoryCap
		if excess <= 0 {
			return nil
		}
		return tx.ForEach(func(k, v []byte) error {
			if len(p.histOldest) >= excess {
				return errEnough
			}
			p.histOldest = append(p.histOldest, [2][]byte{slices.Clone(k), slices.Clone(v)})
			return nil
		})
	})
	if err != nil && !errors.Is(err, errEnough) {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

func (p *planner) add(op *msgOp) error {
	res := storage.AppendResult{}
	var trimmed [][]byte
	var err error
	switch op.kind {
	case opAppend:
		res.Seq, trimmed, err = p.addHistory(op.a)
	case opPublish:
		res.Seq, trimmed, err = p.addChannel(op.channel, op.a)
	case opForget:
		op.res = res
		return p.forget(op.forget)
	case opDrop:
		return p.drop(op.drops)
	case opSettle:
		return nil
	}
	if err != nil {
		return err
	}
	if op.kind != opEnqueue {
		res.Trimmed = trimmedIDs(trimmed)
		if err := p.forget(res.Trimmed); err != nil {
			return err
		}
		if err := p.index(op.a.Message); err != nil {
			return err
		}
	}
	if res.MailboxSeqs, err = p.addCopies(op.a); err != nil {
		return err
	}
	op.res = res
	return nil
}

func (p *planner) addHistory(a storage.Append) (uint64, [][]byte, error) {
	n := p.claim(p.st.history)
	v := encodeRecord(n, "", a.Message.Body, a.StoredAt)
	p.ws = append(p.ws, write{table: store.MessageHistory, key: seq.Key(n), value: v})
	p.histCount++
	var trimmed [][]byte
	// The preload covers every trim of the batch: a batch is far smaller
	// than the cap, so only records older than the batch are trimmed.
	for p.histCount > storage.HistoryCap && p.histNext < len(p.histOldest) {
		old := p.histOldest[p.histNext]
		p.histNext++
		p.histCount--
		p.ws = append(p.ws, write{table: store.MessageHistory, key: old[0], del: true})
		trimmed = append(trimmed, old[1])
	}
	return n, trimmed, nil
}

func (p *planner) addChannel(channel string, a storage.Append) (uint64, [][]byte, error) {
	ctr, ok := p.st.channels[channel]
	if !ok {
		var floor uint64
		l, err := p.ownedList(store.ChannelHistory, channel)
		if err != nil {
			return 0, nil, err
		}
		if len(l.keys) > 0 {
			floor = seq.Decode(l.keys[len(l.keys)-1])
		}
		if ctr, err = seq.Open(p.s.d.table(store.Meta), "channel:"+channel, floor); err != nil {
			return 0, nil, err
		}
		p.st.channels[channel] = ctr
	}
	n := p.claim(ctr)
	v := encodeRecord(n, "", a.Message.Body, a.StoredAt)
	trimmed, err := p.putCapped(store.ChannelHistory, channel, n, v, storage.ChannelHistoryCap)
	return n, trimmed, err
}

func (p *planner) addCopies(a storage.Append) ([]uint64, error) {
	seqs := make([]uint64, 0, len(a.Copies))
	for _, c := range a.Copies {
		n := p.claim(p.st.mailbox)
		v := encodeRecord(n, c.Agent, c.Body, a.StoredAt)
		if c.Pending {
			p.putPending(c.Agent, n, v)
		} else if _, err := p.putCapped(store.AgentMailbox, c.Agent, n, v, storage.MailboxCap); err != nil {
			return nil, err
		}
		seqs = append(seqs, n)
	}
	return seqs, nil
}

// ownedID keys planner.owned.
func ownedID(table, owner string) string { return table + "\x00" + owner }

// ownedList returns owner's records in table, loading them on first use.
func (p *planner) ownedList(table, owner string) (*ownedList, error) {
	id := ownedID(table, owner)
	if l, ok := p.owned[id]; ok {
		return l, nil
	}
	l := &ownedList{}
	keepVals := table == store.ChannelHistory
	err := p.s.d.table(table).View(func(tx *store.Tx) error {
		return scanOwned(tx, ownerPrefix(owner), func(k, v []byte) error {
			l.keys = append(l.keys, slices.Clone(k))
			if keepVals {
				l.vals = append(l.vals, slices.Clone(v))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", table, err)
	}
	p.owned[id] = l
	return l, nil
}

// putCapped stores v as owner's record n and trims owner's oldest records
// beyond limit, returning their values (channel histories only).
func (p *planner) putCapped(table, owner string, n uint64, v []byte, limit int) ([][]byte, error) {
	l, err := p.ownedList(table, owner)
	if err != nil {
		return nil, err
	}
	key := seq.AppendKey(ownerPrefix(owner), n)
	p.ws = append(p.ws, write{table: table, key: key, value: v})
	l.keys = append(l.keys, key)
	if table == store.ChannelHistory {
		l.vals = append(l.vals, v)
	}
	var trimmed [][]byte
	for len(l.keys) > limit {
		p.ws = append(p.ws, write{table: table, key: l.keys[0], del: true})
		l.keys = l.keys[1:]
		if len(l.vals) > 0 {
			trimmed = append(trimmed, l.vals[0])
			l.vals = l.vals[1:]
		}
	}
	return trimmed, nil
}

// putPending stores a pending copy. It trims nothing, so the mailbox is
// not read for it (one scan per recipient less in the leader's serial
// planning): the copy joins the owner's list only when the batch has
// loaded it already. A list loaded later in the batch misses the copy,
// which only makes a trim in the same batch count one record fewer; a
// drop of the copy never shares its batch (it follows the push, which
// follows the commit).
func (p *planner) putPending(agent string, n uint64, v []byte) {
	key := seq.AppendKey(ownerPrefix(agent), n)
	p.ws = append(p.ws, write{table: store.AgentMailbox, key: key, value: v})
	if l, ok := p.owned[ownedID(store.AgentMailbox, agent)]; ok {
		l.keys = append(l.keys, key)
	}
}

// drop deletes mailbox copies (an ack or a trim may have taken them
// already: deleting an absent key changes nothing). Like putPending it
// reads no mailbox, and keeps a list the batch loaded in step.
func (p *planner) drop(refs []storage.CopyRef) error {
	for _, r := range refs {
		key := seq.AppendKey(ownerPrefix(r.Agent), r.Seq)
		p.ws = append(p.ws, write{table: store.AgentMailbox, key: key, del: true})
		if l, ok := p.owned[ownedID(store.AgentMailbox, r.Agent)]; ok {
			l.keys = slices.DeleteFunc(l.keys, func(k []byte) bool { return bytes.Equal(k, key) })
		}
	}
	return nil
}

// threadMessage returns an indexed message as of the batch so far.
func (p *planner) threadMessage(id string) ([]byte, error) {
	if b, ok := p.threads[id]; ok {
		return b, nil
	}
	var b []byte
	err := p.s.d.table(store.ThreadMessages).View(func(tx *store.Tx) error {
		b = slices.Clone(tx.Get([]byte(id)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("thread index: %w", err)
	}
	return b, nil
}

// kids returns parent's replies as of the batch so far.
func (p *planner) kids(parent string) ([]string, error) {
	if l, ok := p.replies[parent]; ok {
		return l, nil
	}
	var l []string
	err := p.s.d.table(store.ThreadReplies).View(func(tx *store.Tx) error {
		if raw := tx.Get([]byte(parent)); raw != nil {
			if err := json.Unmarshal(raw, &l); err != nil {
				return fmt.Errorf("decode replies of %s: %w", parent, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("thread replies: %w", err)
	}
	p.replies[parent] = l
	return l, nil
}

func (p *planner) setKids(parent string, l []string) {
	if !slices.Contains(p.changed, parent) {
		p.changed = append(p.changed, parent)
	}
	p.replies[parent] = l
}

// forget removes messages from the thread index and their parents' lists.
func (p *planner) forget(ids []string) error {
	for _, id := range ids {
		b, err := p.threadMessage(id)
		if err != nil {
			return err
		}
		if b == nil {
			continue
		}
		var r struct {
			ReplyTo *string `json:"reply_to"`
		}
		if json.Unmarshal(b, &r) == nil && r.ReplyTo != nil && *r.ReplyTo != "" {
			l, err := p.kids(*r.ReplyTo)
			if err != nil {
				return err
			}
			p.setKids(*r.ReplyTo, slices.DeleteFunc(slices.Clone(l), func(k string) bool { return k == id }))
		}
		p.ws = append(p.ws, write{table: store.ThreadMessages, key: []byte(id), del: true})
		p.threads[id] = nil
	}
	return nil
}

// index records m in the thread index under its parent.
func (p *planner) index(m storage.MessageRow) error {
	p.ws = append(p.ws, write{table: store.ThreadMessages, key: []byte(m.ID), value: m.Body})
	p.threads[m.ID] = m.Body
	if m.ReplyTo == "" || m.ReplyTo == m.ID {
		return nil
	}
	l, err := p.kids(m.ReplyTo)
	if err != nil {
		return err
	}
	if !slices.Contains(l, m.ID) {
		p.setKids(m.ReplyTo, append(slices.Clone(l), m.ID))
	}
	return nil
}

// writes returns the batch's writes, the reply lists last, and the
// sequence reservations: meta writes, which journalAndApply commits in the
// journal record's own transaction, so they are durable before any table
// holds a number of their block. Versioned (the value is the block's last
// number, big-endian), so a replayed record never lowers a reservation.
func (p *planner) writes() ([]write, error) {
	ws := p.ws
	for _, k := range slices.Sorted(maps.Keys(p.reserved)) {
		ws = append(ws, write{table: store.Meta, key: []byte(k), value: p.reserved[k], versioned: true})
	}
	for _, parent := range p.changed {
		w := write{table: store.ThreadReplies, key: []byte(parent)}
		if l := p.replies[parent]; len(l) == 0 {
			w.del = true
		} else {
			var err error
			if w.value, err = json.Marshal(l); err != nil {
				return nil, err
			}
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// trimmedIDs returns the message ids of trimmed history records.
func trimmedIDs(values [][]byte) []string {
	ids := make([]string, 0, len(values))
	for _, v := range values {
		var e struct {
			Message struct {
				ID string `json:"id"`
			} `json:"message"`
		}
		if json.Unmarshal(v, &e) == nil && e.Message.ID != "" {
			ids = append(ids, e.Message.ID)
		}
	}
	return ids
}
