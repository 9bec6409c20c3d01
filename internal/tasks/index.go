package tasks

import "container/heap"

// key orders queued tasks: lane, then creation time, then id. A task keeps
// its key across retries and reclaims, so it goes back to its old place.
type key struct {
	pri     int
	created int64
	id      string
}

func (a key) less(b key) bool {
	if a.pri != b.pri {
		return a.pri < b.pri
	}
	if a.created != b.created {
		return a.created < b.created
	}
	return a.id < b.id
}

func keyOf(t *Task) key { return key{t.Priority, t.CreatedAt, t.ID} }

// entry is a task's place in a group. token tells a live entry from a
// stale one: a task that left the ready set and came back has a new token,
// so old entries are skipped and dropped lazily.
type entry struct {
	key
	token uint64
}

// group holds the ready tasks that share a signature (needed capabilities
// and target): any agent either matches all of them or none.
type group struct {
	sig    string
	pri    int
	needed []string
	target string
	items  entryHeap
}

type entryHeap []entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].key.less(h[j].key) }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// groupHeap orders groups by their head entry during a pass.
type groupHeap []*group

func (h groupHeap) Len() int           { return len(h) }
func (h groupHeap) Less(i, j int) bool { return h[i].items[0].key.less(h[j].items[0].key) }
func (h groupHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *groupHeap) Push(x any)        { *h = append(*h, x.(*group)) }
func (h *groupHeap) Pop() any {
	old := *h
	g := old[len(old)-1]
	*h = old[:len(old)-1]
	return g
}

// delayedHeap orders tasks waiting out a retry backoff by due time.
type delayed struct {
	due   int64
	id    string
	token uint64
}

type delayedHeap []delayed

func (h delayedHeap) Len() int           { return len(h) }
func (h delayedHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h delayedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayedHeap) Push(x any)        { *h = append(*h, x.(delayed)) }
func (h *delayedHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}

// index is the in-memory view of the ready and delayed tasks. The queue's
// mutex guards it.
type index struct {
	groups  map[string]*group
	delayed delayedHeap
	tokens  map[string]uint64 // live token per task in the index
	next    uint64
}

// add puts a queued task in the ready set, or the delayed set while its
// backoff runs.
func (ix *index) add(t *Task, now int64) {
	ix.next++
	tok := ix.next
	ix.tokens[t.ID] = tok
	if t.NotBefore > now {
		heap.Push(&ix.delayed, delayed{due: t.NotBefore, id: t.ID, token: tok})
		return
	}
	sig := t.signature()
	g, ok := ix.groups[sig]
	if !ok {
		g = &group{sig: sig, pri: t.Priority, needed: t.NeededCapabilities, target: t.Target()}
		ix.groups[sig] = g
	}
	heap.Push(&g.items, entry{key: keyOf(t), token: tok})
}

// remove takes a task out of both sets (lazily).
func (ix *index) remove(id string) { delete(ix.tokens, id) }

func (ix *index) live(id string, tok uint64) bool {
	t, ok := ix.tokens[id]
	return ok && t == tok
}

// size is the number of tasks in the index (ready and delayed).
func (ix *index) size() int { return len(ix.tokens) }

// due moves delayed tasks whose time has come into the ready set and
// returns their ids.
func (ix *index) due(now int64, get func(string) *Task) []string {
	var out []string
	for len(ix.delayed) > 0 && ix.delayed[0].due <= now {
		d := heap.Pop(&ix.delayed).(delayed)
		if !ix.live(d.id, d.token) {
			continue
		}
		t := get(d.id)
		if t == nil {
			delete(ix.tokens, d.id)
			continue
		}
		ix.add(t, now)
		out = append(out, d.id)
	}
	return out
}

// nextDue returns when the earliest delayed task becomes ready (0: none).
func (ix *index) nextDue() int64 {
	for len(ix.delayed) > 0 {
		d := ix.delayed[0]
		if ix.live(d.id, d.token) {
			return d.due
		}
		heap.Pop(&ix.delayed)
	}
	return 0
}

// head drops stale entries from g and reports whether a live one is left.
func (ix *index) head(g *group) bool {
	for len(g.items) > 0 {
		e := g.items[0]
		if ix.live(e.id, e.token) {
			return true
		}
		heap.Pop(&g.items)
	}
	return false
}
