// Package scheduler moves work: it matches queued tasks to idle agents
// whose capabilities fit, pushes the assignments, and turns what agents
// report (accepted, progress, done, failed, declined, recovering) into
// queue and agent-state changes. It also runs the timers that keep work
// from getting lost: acceptance timeouts, leases, deadlines and retry
// backoffs.
//
// Scheduling is push based: every event that can create a match kicks a
// pass; kicks coalesce, so a burst of submissions costs one pass.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Pusher sends an assignment to an agent's live connection. It reports
// false when the agent has no connection.
type Pusher interface {
	PushAssign(agentID string, t *tasks.Task) bool
}

// Revoker tells a connected agent that a task it holds was taken back
// (lease, deadline, acceptance timeout), so it stops working on it. The
// Pusher may implement it.
type Revoker interface {
	// PushRevoke says the agent's hold on taskID ended below generation
	// gen: an agent already holding gen or later (assigned again) keeps it.
	PushRevoke(agentID, taskID string, gen int64, reason string) bool
}

// Config tunes the scheduler.
type Config struct {
	// LeaseTTL: a task whose holder has not been heard from (ping,
	// progress, accept) for this long is reclaimed. A holder that is not
	// connected is measured from the later of the task's last update and
	// the hub's start, so agents get a full lease to come back after a hub
	// restart.
	// Zero: 5 minutes.
	LeaseTTL time.Duration
	// SweepInterval is how often leases and deadlines are checked (zero:
	// 30 s).
	SweepInterval time.Duration
	// Now is the clock of the leases, the hub's start included (nil:
	// time.Now); tests inject one to check a lease to the millisecond.
	Now func() time.Time
}

// DefaultConfig holds the documented defaults.
func DefaultConfig() Config {
	return Config{LeaseTTL: 5 * time.Minute, SweepInterval: 30 * time.Second}
}

// withDefaults fills the zero (or negative) fields with DefaultConfig's.
func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = def.LeaseTTL
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = def.SweepInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Scheduler coordinates the queue and the agents.
type Scheduler struct {
	q      *tasks.Queue
	agents *agents.Registry
	cfg    Config
	log    *slog.Logger
	start  int64

	pushMu sync.RWMutex
	push   Pusher

	kick   chan struct{}
	passMu sync.Mutex // one pass at a time
}

// New returns a scheduler; SetPusher must be called before Run. Zero
// durations in cfg take the defaults (a zero lease would reclaim every
// task at the first sweep).
func New(q *tasks.Queue, reg *agents.Registry, cfg Config, log *slog.Logger) *Scheduler {
	cfg = cfg.withDefaults()
	return &Scheduler{q: q, agents: reg, cfg: cfg, log: log.With("component", "scheduler"),
		start: cfg.Now().UnixMilli(), kick: make(chan struct{}, 1)}
}

// SetPusher sets where assignments go (the agent socket layer, built after
// the scheduler).
func (s *Scheduler) SetPusher(p Pusher) {
	s.pushMu.Lock()
	s.push = p
	s.pushMu.Unlock()
}

// Kick asks for a scheduling pass soon. It never blocks.
func (s *Scheduler) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	sweep := time.NewTicker(s.cfg.SweepInterval)
	defer sweep.Stop()
	backoff := time.NewTimer(time.Hour)
	defer backoff.Stop()
	s.Kick()
	for {
		s.armBackoff(backoff)
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			s.Pass()
		case <-backoff.C:
			n, err := s.q.PromoteDue()
			if err != nil {
				s.log.Error("promoting due tasks failed", "event", "promote_failed", "err", err)
			}
			if n > 0 {
				s.Pass()
			}
		case <-sweep.C:
			s.Sweep()
		}
	}
}

// maxTimerWait caps the wait for the next due time. Timers run on the
// monotonic clock while run_at times and schedule ticks are wall-clock
// times: waking at least this often bounds how late a wall-clock jump
// forward can make them.
const maxTimerWait = time.Second

func (s *Scheduler) armBackoff(t *time.Timer) {
	next := s.q.NextDue()
	d := time.Hour
	if !next.IsZero() {
		d = min(max(time.Until(next), time.Millisecond), maxTimerWait)
	}
	t.Reset(d)
}

// Pass assigns as many queued tasks as there are idle agents that fit
// them, then pushes the assignments. It returns how many were assigned.
//
// An agent that declined a task is offered other work first: the pass
// runs in two rounds. The first never gives a task to an agent that
// declined it; the second, only when agents are left idle and some task
// was held back for that reason, gives such a task back to a decliner
// (any other idle agent that fits still comes first). So a task whose
// only fitting agent declined it is not stranded.
func (s *Scheduler) Pass() int {
	s.passMu.Lock()
	defer s.passMu.Unlock()
	free := s.agents.IdleCount()
	if free == 0 {
		return 0
	}
	var res reservations
	heldBack := false
	pick := func(decliners bool) tasks.Pick { return s.picker(&res, decliners, &heldBack) }
	assigned, err := s.q.AssignBatch(pick(false), free)
	if err != nil {
		s.log.Error("assignment not persisted", "event", "assign_failed", "err", err)
	}
	if heldBack {
		if free := s.agents.IdleCount(); free > 0 {
			more, err := s.q.AssignBatch(pick(true), free)
			if err != nil {
				s.log.Error("assignment not persisted", "event", "assign_failed", "err", err)
			}
			assigned = append(assigned, more...)
		}
	}
	s.settle(&res, assigned)
	return len(assigned)
}

// deliver pushes an assignment. When the agent's socket vanished
// meanwhile, the agent record of that connection is dropped (so no later
// pass picks it before its socket's cleanup runs) and the task goes
// straight back to the queue.
func (s *Scheduler) deliver(t *tasks.Task, conn uint64) {
	s.pushMu.RLock()
	p := s.push
	s.pushMu.RUnlock()
	agent := t.Holder()
	t.Upstream = s.q.UpstreamOf(t)
	if p != nil && p.PushAssign(agent, t) {
		s.log.Debug("task assigned", "event", "task_assigned", "task_id", t.ID, "agent_id", agent, "generation", t.Generation)
		return
	}
	s.agents.Disconnect(agent, conn)
	s.reclaim(t.ID, agent, t.Generation, tasks.ReasonDisconnect, "")
}

// reclaim returns a task to the queue and frees its holder.
func (s *Scheduler) reclaim(taskID, agent string, gen int64, reason, flag string) {
	t, err := s.q.Reclaim(taskID, agent, gen, reason)
	if errors.Is(err, tasks.ErrStaleGeneration) {
		return // the task was assigned again since: that assignment stands
	}
	if err != nil && !isGone(err) {
		s.log.Error("reclaim failed", "event", "reclaim_failed", "task_id", taskID, "agent_id", agent, "err", err)
	}
	if err == nil && reason != tasks.ReasonDisconnect {
		// Before the agent is free again: the revoke reaches its socket
		// ahead of any new assignment of the same task.
		s.revoke(agent, taskID, t.Generation, reason)
	}
	s.agents.Release(agent, taskID, flag)
	s.Kick()
}

// revoke tells the agent (if still connected) to stop a task taken back;
// gen is the task's generation after the take-back.
func (s *Scheduler) revoke(agent, taskID string, gen int64, reason string) {
	s.pushMu.RLock()
	p := s.push
	s.pushMu.RUnlock()
	if r, ok := p.(Revoker); ok && agent != "" {
		r.PushRevoke(agent, taskID, gen, reason)
	}
}

// Sweep reclaims tasks whose lease ran out and expires tasks whose
// deadline passed.
func (s *Scheduler) Sweep() {
	now := s.cfg.Now().UnixMilli()
	for _, t := range s.q.Overdue() {
		exp, holder, err := s.q.Expire(t.ID)
		if err != nil {
			if !isGone(err) {
				s.log.Error("deadline expiry failed", "event", "expire_failed", "task_id", t.ID, "err", err)
			}
			continue
		}
		s.log.Info("task deadline passed", "event", "task_deadline", "task_id", t.ID, "agent_id", holder)
		if holder != "" {
			s.revoke(holder, t.ID, exp.Generation, tasks.ReasonDeadline)
			s.agents.Release(holder, t.ID, "")
			s.Kick()
		}
	}
	ttl := s.cfg.LeaseTTL.Milliseconds()
	for _, t := range s.q.Assigned() {
		holder := t.Holder()
		base := t.UpdatedAt
		if a, ok := s.agents.Get(holder); ok {
			base = max(base, a.LastHeard)
		} else {
			base = max(base, s.start)
		}
		if now-base > ttl {
			s.log.Warn("lease expired", "event", "lease_expired", "task_id", t.ID, "agent_id", holder)
			s.reclaim(t.ID, holder, t.Generation, tasks.ReasonLeaseExpired, "")
		}
	}
}

// AcceptTimeout is wired as the agent registry's timeout callback.
func (s *Scheduler) AcceptTimeout(agentID, taskID string) {
	s.log.Warn("task not accepted in time", "event", "accept_timeout", "task_id", taskID, "agent_id", agentID)
	s.reclaim(taskID, agentID, -1, tasks.ReasonAcceptTimeout, agents.FlagUnresponsive)
}

// Connect registers an agent's new connection. A task it still holds
// (reconnect, hub restart) stays with it: the agent starts assigned and is
// expected to send task_recovering or task_accepted.
func (s *Scheduler) Connect(agentID, name string, caps []string, conn uint64) {
	held := ""
	if ts := s.q.HeldBy(agentID); len(ts) > 0 {
		held = ts[0].ID
	}
	s.agents.Connect(agentID, name, caps, conn, held)
	s.Kick()
}

// Disconnect ends an agent's connection: every task it holds goes back to
// the queue.
func (s *Scheduler) Disconnect(agentID string, conn uint64) {
	if _, removed := s.agents.Disconnect(agentID, conn); !removed {
		return
	}
	ts, err := s.q.ReclaimAgent(agentID, tasks.ReasonDisconnect)
	if err != nil {
		s.log.Error("reclaim on disconnect failed", "event", "reclaim_failed", "agent_id", agentID, "err", err)
	}
	if len(ts) > 0 {
		s.log.Info("tasks reclaimed from disconnected agent", "event", "reclaimed", "agent_id", agentID, "count", len(ts))
		s.Kick()
	}
}

// Heard extends the leases of what the agent holds.
func (s *Scheduler) Heard(agentID string) { s.agents.Heard(agentID) }

// Accepted handles task_accepted.
func (s *Scheduler) Accepted(agentID, taskID string) error {
	s.agents.Heard(agentID)
	_, err := s.q.Accept(taskID, agentID)
	if err != nil {
		return err
	}
	s.agents.Accepted(agentID, taskID)
	return nil
}

// Progress handles task_progress: it extends the lease.
func (s *Scheduler) Progress(agentID, taskID string) error {
	s.agents.Heard(agentID)
	_, err := s.q.Progress(taskID, agentID)
	return err
}

// RecordCheck handles a verification check in task_progress: it goes to
// the task's history and extends the lease.
func (s *Scheduler) RecordCheck(agentID, taskID string, c protocol.VerifyCheck) error {
	s.agents.Heard(agentID)
	_, err := s.q.RecordCheck(taskID, agentID, c)
	return err
}

// Complete handles task_complete. dup reports a resend of a completion
// already applied.
func (s *Scheduler) Complete(agentID, taskID string, gen int64, result any, tokens *int64, usage *protocol.Usage) (dup bool, err error) {
	s.agents.Heard(agentID)
	var res reservations
	_, next, dup, err := s.q.CompleteAssign(taskID, agentID, gen, result, tokens, usage, s.handover(&res, agentID, taskID))
	if err != nil {
		s.handback(&res, agentID, taskID)
		return false, err
	}
	switch {
	case dup:
	case next != nil:
		s.deliver(next, res.byTask[next.ID].conn)
	default:
		s.agents.Release(agentID, taskID, "")
		s.Kick()
	}
	return dup, nil
}

// Fail handles task_failed and returns the outcome (retried or
// dead_letter). dup reports a resend of a failure already applied; it
// gets the earlier outcome and changes nothing.
func (s *Scheduler) Fail(agentID, taskID string, gen int64, reason string, output any, usage *protocol.Usage) (outcome string, dup bool, err error) {
	s.agents.Heard(agentID)
	_, outcome, dup, err = s.q.FailWithUsage(taskID, agentID, gen, reason, output, usage)
	if err != nil {
		return "", false, err
	}
	if !dup {
		s.agents.Release(agentID, taskID, "")
		s.Kick()
	}
	return outcome, dup, nil
}

// Reject handles task_rejected: the task goes back to the queue for
// someone else. The agent that declined it, busy or unable to take it
// for another reason, is left out of scheduling for the busy hold, so a
// task only it can run is not bounced back and forth.
//
// gen is the declined generation, negative when the agent did not say.
func (s *Scheduler) Reject(agentID, taskID string, gen int64, reason string) error {
	// A decline that names no generation (the original Node sidecar's) of
	// the very task the agent is working on is stale: that sidecar declines
	// only an offer that arrives while it is busy, and it is busy with this
	// task, which it accepted or continued (task_recovering answered
	// task_continue after the scheduler had already offered it the task
	// again). Taking the task away would throw the running work away.
	if gen < 0 {
		if a, ok := s.agents.Get(agentID); ok && a.State == agents.Working && a.CurrentTask == taskID {
			return fmt.Errorf("decline of %s by %s, which is working on it: %w", taskID, agentID, tasks.ErrInvalidState)
		}
	}
	_, err := s.q.Reject(taskID, agentID, gen, reason)
	if err != nil {
		return err
	}
	s.agents.Release(agentID, taskID, "")
	s.agents.Busy(agentID)
	s.Kick()
	return nil
}

// Recover answers task_recovering: the generation to continue with, or
// false when the agent should drop the task.
//
// A task the hub took back when the agent's connection dropped, and gave
// to no one since, is given back to the agent (at a new generation) when
// it is idle: its sidecar is still working on it, and the work is not lost.
func (s *Scheduler) Recover(agentID, taskID string) (int64, bool) {
	s.agents.Heard(agentID)
	gen, ok := s.q.Recover(taskID, agentID)
	if ok {
		s.agents.Continue(agentID, taskID)
		return gen, true
	}
	a, ok := s.agents.Get(agentID)
	if !ok || a.State != agents.Idle || !s.agents.Reserve(agentID, taskID) {
		return 0, false
	}
	t, err := s.q.GiveBack(taskID, agentID, a.Capabilities)
	if err != nil {
		s.agents.Release(agentID, taskID, "")
		if !isGone(err) {
			s.log.Error("give back failed", "event", "give_back_failed", "task_id", taskID, "agent_id", agentID, "err", err)
		}
		return 0, false
	}
	s.agents.Continue(agentID, taskID)
	s.log.Info("task given back to the agent recovering it", "event", "task_given_back", "task_id", taskID, "agent_id", agentID, "generation", t.Generation)
	return t.Generation, true
}

// Cancel cancels a task and frees its holder. It returns the holder ("" if
// it was queued) so the caller can tell the agent.
func (s *Scheduler) Cancel(taskID, by string, canAny bool, reason string) (*tasks.Task, string, error) {
	t, holder, err := s.q.Cancel(taskID, by, canAny, reason)
	if err != nil {
		return nil, "", err
	}
	if holder != "" {
		s.agents.Release(holder, taskID, "")
		s.Kick()
	}
	return t, holder, nil
}

// Submit queues a task and kicks a pass.
func (s *Scheduler) Submit(p tasks.SubmitParams) (*tasks.Task, error) {
	t, _, err := s.SubmitTask(p)
	return t, err
}

// SubmitTask queues a task; dup reports that a task holding the same
// unique key was returned instead. When an idle agent fits the task and
// nothing is ahead of it, it is assigned in the submission's own write
// and pushed at once; otherwise a pass is kicked. The task is returned as
// submitted.
func (s *Scheduler) SubmitTask(p tasks.SubmitParams) (*tasks.Task, bool, error) {
	var res reservations
	t, as, dup, err := s.q.SubmitAssign(p, s.picker(&res, false, nil))
	var assigned []*tasks.Task
	if as != nil {
		assigned = []*tasks.Task{as}
	}
	s.settle(&res, assigned)
	if err != nil {
		return nil, false, err
	}
	if !dup && as == nil {
		s.Kick()
	}
	return t, dup, nil
}

// SubmitBatch queues a batch of tasks, assigning in the batch's write
// what SubmitTask would, and kicks a pass for the rest.
func (s *Scheduler) SubmitBatch(items []tasks.BatchItem) ([]*tasks.Task, error) {
	var res reservations
	ts, assigned, err := s.q.SubmitBatchAssign(items, s.picker(&res, false, nil))
	s.settle(&res, assigned)
	if err != nil {
		return nil, err
	}
	if len(assigned) < len(ts) {
		s.Kick()
	}
	return ts, nil
}

// Pause stops assignment from a lane or capability.
func (s *Scheduler) Pause(kind tasks.PauseKind, name, by string) (bool, error) {
	return s.q.Pause(kind, name, by)
}

// Resume restarts assignment from a lane or capability at once.
func (s *Scheduler) Resume(kind tasks.PauseKind, name, by string) (bool, error) {
	changed, err := s.q.Resume(kind, name, by)
	if changed {
		s.Kick()
	}
	return changed, err
}

// Wake re-arms the timers (a schedule or run_at was added).
func (s *Scheduler) Wake() { s.Kick() }

// RunScheduleNow enqueues a schedule's task at once and kicks a pass.
func (s *Scheduler) RunScheduleNow(name, by string) (*tasks.Task, error) {
	t, err := s.q.RunScheduleNow(name, by)
	if err == nil {
		s.Kick()
	}
	return t, err
}

// RetryDeadLetter requeues a dead-letter task and kicks a pass.
func (s *Scheduler) RetryDeadLetter(id string) (*tasks.Task, error) {
	t, err := s.q.RetryDeadLetter(id)
	if err != nil {
		return nil, err
	}
	s.Kick()
	return t, nil
}

// Reconcile runs after the task tables were restored from a backup: tasks
// that connected agents are working on but that the restored queue does
// not show as theirs are released, and every agent is re-matched with
// what the queue says it holds.
func (s *Scheduler) Reconcile() error {
	if err := s.q.Reload(); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, a := range s.agents.List() {
		held := s.q.HeldBy(a.ID)
		holds := slices.ContainsFunc(held, func(t *tasks.Task) bool { return t.ID == a.CurrentTask })
		if a.CurrentTask != "" && !holds {
			s.agents.Release(a.ID, a.CurrentTask, "")
		}
	}
	s.Kick()
	return nil
}

func isGone(err error) bool {
	return errors.Is(err, tasks.ErrNotFound) || errors.Is(err, tasks.ErrInvalidState) || errors.Is(err, tasks.ErrNotHolder)
}

// SetSchedulePaused pauses or resumes a periodic schedule and re-arms
// the timers.
func (s *Scheduler) SetSchedulePaused(name string, paused bool, by string) (tasks.Schedule, error) {
	sc, err := s.q.SetSchedulePaused(name, paused, by)
	if err == nil {
		s.Kick()
	}
	return sc, err
}

// RemoveSchedule deletes a periodic schedule.
func (s *Scheduler) RemoveSchedule(name, by string) error { return s.q.RemoveSchedule(name, by) }
