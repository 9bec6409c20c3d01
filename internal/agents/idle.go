package agents

import (
	"container/list"
	"slices"
)

// idleSet keeps the idle agents in the order they became idle (longest
// idle first), once in a list of all of them and once in a list per
// capability they offer. A scheduling pass then finds the agent for a
// task without copying or sorting every idle agent: the longest-idle one
// of the task's least common needed capability that has the others too,
// usually the first one looked at. The registry's mutex guards it; an
// agent is in the set exactly while its state is Idle (moveLocked keeps
// that so).
type idleSet struct {
	all   *list.List            // of *agent
	byCap map[string]*list.List // capability -> idle agents offering it
}

// idleRef is an agent's place in the set.
type idleRef struct {
	all  *list.Element
	caps []capRef
}

type capRef struct {
	name string
	el   *list.Element
}

func newIdleSet() idleSet {
	return idleSet{all: list.New(), byCap: map[string]*list.List{}}
}

// add puts a at the back (newest idle). An agent already in the set
// moves to the back.
func (s *idleSet) add(a *agent) {
	s.remove(a)
	ref := &idleRef{all: s.all.PushBack(a)}
	for i, c := range a.Capabilities {
		if slices.Contains(a.Capabilities[:i], c) {
			continue // listed twice: one place is enough
		}
		l := s.byCap[c]
		if l == nil {
			l = list.New()
			s.byCap[c] = l
		}
		ref.caps = append(ref.caps, capRef{name: c, el: l.PushBack(a)})
	}
	a.idle = ref
}

// remove takes a out of the set, if it is there.
func (s *idleSet) remove(a *agent) {
	ref := a.idle
	if ref == nil {
		return
	}
	s.all.Remove(ref.all)
	for _, c := range ref.caps {
		l := s.byCap[c.name]
		l.Remove(c.el)
		if l.Len() == 0 {
			delete(s.byCap, c.name)
		}
	}
	a.idle = nil
}

// candidates is the list to walk for a task needing needed: the shortest
// list of its capabilities (every fitting agent is on each of them), or
// every idle agent when it needs none. Nil: no idle agent offers one of
// them.
func (s *idleSet) candidates(needed []string) *list.List {
	if len(needed) == 0 {
		return s.all
	}
	var best *list.List
	for _, c := range needed {
		l := s.byCap[c]
		if l == nil {
			return nil
		}
		if best == nil || l.Len() < best.Len() {
			best = l
		}
	}
	return best
}

// Match is the outcome of ReserveFor.
type Match struct {
	// ID and Conn name the agent reserved ("" when none).
	ID   string
	Conn uint64
	// Fits reports that some idle agent fits the task (target and
	// capabilities), reserved or not.
	Fits bool
	// HeldBack reports that only agents the caller asked to avoid fit,
	// and none was reserved because avoided ones were not allowed.
	HeldBack bool
}

// ReserveFor reserves, for taskID, the longest-idle agent that fits: it
// is target when target is set, and offers every needed capability. An
// agent in avoid (one that declined the task) is taken only when no
// other fits and allowAvoided is set. The reservation is Reserve's: the
// agent moves to assigned and its acceptance timer starts.
func (r *Registry) ReserveFor(taskID, target string, needed, avoid []string, allowAvoided bool) Match {
	r.mu.Lock()
	var m Match
	var pick, avoided *agent
	consider := func(a *agent) bool {
		if !fits(a, needed) {
			return false
		}
		m.Fits = true
		if slices.Contains(avoid, a.ID) {
			if avoided == nil {
				avoided = a
			}
			return false
		}
		pick = a
		return true
	}
	if target != "" {
		if a, ok := r.agents[target]; ok && a.State == Idle {
			consider(a)
		}
	} else if l := r.idle.candidates(needed); l != nil {
		for e := l.Front(); e != nil; e = e.Next() {
			if consider(e.Value.(*agent)) {
				break
			}
		}
	}
	if pick == nil && avoided != nil {
		if !allowAvoided {
			r.mu.Unlock()
			m.HeldBack = true
			return m
		}
		pick = avoided
	}
	if pick == nil {
		r.mu.Unlock()
		return m
	}
	ch := r.moveLocked(pick, Assigned, taskID)
	r.startTimerLocked(pick, taskID)
	m.ID, m.Conn = pick.ID, pick.conn
	r.mu.Unlock()
	r.publish(ch)
	return m
}

// fits reports whether a offers every needed capability.
func fits(a *agent, needed []string) bool {
	for _, n := range needed {
		if !slices.Contains(a.Capabilities, n) {
			return false
		}
	}
	return true
}

// IdleCount is the number of idle agents.
func (r *Registry) IdleCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.idle.all.Len()
}

// Handover moves an agent that holds task from (assigned or working) to
// assigned for task to, with a fresh acceptance timer: its next task,
// given in the same write as the end of the last one, so it never goes
// idle in between. It returns the agent's connection.
func (r *Registry) Handover(id, from, to string) (uint64, bool) {
	r.mu.Lock()
	a, ok := r.agents[id]
	if !ok || a.CurrentTask != from || (a.State != Assigned && a.State != Working) {
		r.mu.Unlock()
		return 0, false
	}
	ch := r.moveLocked(a, Assigned, to)
	r.startTimerLocked(a, to)
	conn := a.conn
	r.mu.Unlock()
	r.publish(ch)
	r.mirror(id, Assigned)
	return conn, true
}
