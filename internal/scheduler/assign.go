package scheduler

import (
	"slices"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/tasks"
)

// reservations are the agents reserved for tasks while the queue assigns
// them (in a pass, or in a submission's write), by task id.
type reservations struct {
	byTask map[string]reservation
}

type reservation struct {
	agent string
	conn  uint64
}

func (r *reservations) add(m agents.Match, taskID string) {
	if r.byTask == nil {
		r.byTask = map[string]reservation{}
	}
	r.byTask[taskID] = reservation{agent: m.ID, conn: m.Conn}
}

// picker asks the registry for the longest-idle agent that fits each task
// and records the reservation in res. An agent that declined the task is
// taken only with decliners; without, such a task is skipped and
// *heldBack set (when heldBack is not nil).
func (s *Scheduler) picker(res *reservations, decliners bool, heldBack *bool) tasks.Pick {
	return func(t *tasks.Task) (string, bool) {
		m := s.agents.ReserveFor(t.ID, t.Target(), t.NeededCapabilities, t.RejectedBy, decliners)
		switch {
		case m.ID != "":
			res.add(m, t.ID)
			return m.ID, false
		case m.HeldBack:
			if heldBack != nil {
				*heldBack = true
			}
			return "", false // skip this task only
		}
		return "", !m.Fits
	}
}

// settle pushes the assigned tasks to the agents reserved for them, and
// frees the agents reserved for tasks that were not assigned after all
// (their write failed), kicking a pass for those tasks.
func (s *Scheduler) settle(res *reservations, assigned []*tasks.Task) {
	if len(res.byTask) == 0 {
		return
	}
	freed := false
	if len(assigned) < len(res.byTask) {
		done := make(map[string]bool, len(assigned))
		for _, t := range assigned {
			done[t.ID] = true
		}
		for id, r := range res.byTask {
			if !done[id] {
				s.agents.Release(r.agent, id, "")
				freed = true
			}
		}
	}
	for _, t := range assigned {
		s.deliver(t, res.byTask[t.ID].conn)
	}
	if freed {
		s.Kick()
	}
}

// handover picks the next task for an agent as it completes one, so the
// completion and the next assignment are one write and the agent is
// never idle in between (under load, an agent's cycle is then one commit,
// not a completion's and a pass's). Only when no agent is idle: an idle
// one has waited longer and a pass gives it the work. The task is the
// first ready one in scheduling order the agent fits and has not
// declined. Nil: no handover.
func (s *Scheduler) handover(res *reservations, agentID, from string) tasks.Pick {
	a, ok := s.agents.Get(agentID)
	if !ok || a.CurrentTask != from || s.agents.IdleCount() > 0 {
		return nil
	}
	return func(t *tasks.Task) (string, bool) {
		if tg := t.Target(); (tg != "" && tg != agentID) || !tasks.MatchesCapabilities(t.NeededCapabilities, a.Capabilities) {
			return "", true // it takes none of this group
		}
		if slices.Contains(t.RejectedBy, agentID) {
			return "", false
		}
		conn, ok := s.agents.Handover(agentID, from, t.ID)
		if !ok {
			return "", true
		}
		res.add(agents.Match{ID: agentID, Conn: conn}, t.ID)
		return agentID, false
	}
}

// handback undoes a handover whose write failed: the agent is back on
// the task it was completing (the queue put that task back too).
func (s *Scheduler) handback(res *reservations, agentID, from string) {
	for id := range res.byTask {
		if s.agents.Release(agentID, id, "") {
			s.agents.Continue(agentID, from)
		}
	}
}
