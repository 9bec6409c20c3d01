package scheduler

import (
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
