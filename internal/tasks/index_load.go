package tasks

import "container/heap"

// loadIndex builds the index of a load's queued tasks in one go: what add
// does per task, but every entry appended and each heap ordered once at
// the end (O(n)) rather than pushed one at a time (O(n log n), plus an
// allocation per push through heap.Push's interface), into maps sized for
// the count. Over a deep queue this was a third of the reload's own time.
// The order it serves is the same: entries are ordered by key alone.
func loadIndex(queued []*Task, now int64) *index {
	ix := &index{groups: map[string]*group{}, tokens: make(map[string]uint64, len(queued))}
	for _, t := range queued {
		ix.next++
		tok := ix.next
		ix.tokens[t.ID] = tok
		if t.NotBefore > now {
			ix.delayed = append(ix.delayed, delayed{due: t.NotBefore, id: t.ID, token: tok})
			continue
		}
		sig := t.signature()
		g, ok := ix.groups[sig]
		if !ok {
			g = &group{sig: sig, pri: t.Priority, needed: t.NeededCapabilities, target: t.Target()}
			ix.groups[sig] = g
		}
		g.items = append(g.items, entry{key: keyOf(t), token: tok})
	}
	heap.Init(&ix.delayed)
	for _, g := range ix.groups {
		heap.Init(&g.items)
	}
	return ix
}
