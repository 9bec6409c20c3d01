package sidecar

// Verification: after the agent succeeded, the task's verify commands run
// in the working directory. A failing one sends the agent back to work
// with the failure as feedback (VERIFY_FEEDBACK), up to the task's budget
// of agent runs; the checks go to the hub as they are decided.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/gitflow"
	"github.com/agentcom/agentcom/internal/protocol"
)

// evVerified reports the verification of one agent run.
type evVerified struct {
	run     *taskRun
	out     Outcome
	checks  []protocol.VerifyCheck
	passed  bool
	budget  int
	attempt int
}

// afterAgent continues a task whose agent finished with out: verification
// when the task asks for it and the agent succeeded, then the git
// workflow, then the report.
func (s *Sidecar) afterAgent(out Outcome) {
	t, run := s.st.Active, s.run
	if out.Success {
		cmds, budget, err := verifySpec(t.Metadata, s.cfg.MaxVerifyAttempts)
		if err != nil {
			s.finish(Report{Type: reportFailed, Reason: cut("verify_invalid: " + err.Error())})
			return
		}
		if len(cmds) > 0 {
			if s.cfg.DenyTaskVerify {
				s.finish(Report{Type: reportFailed, Reason: "verify_not_allowed: this sidecar runs with deny_task_verify"})
				return
			}
			t.Status, t.AgentResult = StatusVerifying, out.Result
			s.save()
			run.verifyBusy = true
			attempt, env, logPath := max(t.Attempt, 1), s.runEnv(*t, s.taskFilePath(t.TaskID), s.TaskLogPath(t.TaskID)), s.TaskLogPath(t.TaskID)
			s.log.Info("verifying the agent's work", "event", "verify_started", "task_id", t.TaskID, "attempt", attempt, "commands", len(cmds))
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				checks, passed := s.runChecks(run.ctx, cmds, attempt, env, logPath)
				s.emit(run.ctx, evVerified{run: run, out: out, checks: checks, passed: passed, budget: budget, attempt: attempt})
			}()
			return
		}
	}
	s.submitOrFinish(out)
}

// runChecks runs the commands in order and stops at the first failure.
func (s *Sidecar) runChecks(ctx context.Context, cmds []string, attempt int, env []string, logPath string) ([]protocol.VerifyCheck, bool) {
	var checks []protocol.VerifyCheck
	for _, c := range cmds {
		if ctx.Err() != nil {
			return checks, false
		}
		ck := s.runCheck(ctx, c, attempt, env, logPath)
		checks = append(checks, ck)
		if !ck.Passed {
			return checks, false
		}
	}
	return checks, true
}

func (s *Sidecar) runCheck(ctx context.Context, command string, attempt int, env []string, logPath string) protocol.VerifyCheck {
	_ = appendFile(logPath, fmt.Sprintf("== agentcom: verify (attempt %d): %s\n", attempt, command))
	ctx, cancel := context.WithTimeout(ctx, s.cfg.VerifyTimeout)
	defer cancel()
	argv := shellCommand(command)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, s.workDir()
	tail := &tailBuffer{max: protocol.MaxCheckOutput}
	var w interface{ Write([]byte) (int, error) } = tail
	if f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		defer f.Close()
		w = multiWriter{tail, f}
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = time.Second
	ownProcessGroup(cmd)
	began := time.Now()
	err := cmd.Run()
	ck := protocol.VerifyCheck{Attempt: attempt, Command: command, DurationMs: time.Since(began).Milliseconds(),
		OutputTail: strings.ToValidUTF8(tail.String(), "\uFFFD")}
	var ee *exec.ExitError
	switch {
	case err == nil:
		ck.Passed = true
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		ck.ExitCode, ck.TimedOut = -1, true
	case errors.As(err, &ee):
		ck.ExitCode = ee.ExitCode()
	default:
		ck.ExitCode = -1
		ck.OutputTail = cut(err.Error())
	}
	_ = appendFile(logPath, fmt.Sprintf("== agentcom: verify exit code %d\n", ck.ExitCode))
	return ck
}

type multiWriter [2]interface{ Write([]byte) (int, error) }

func (m multiWriter) Write(p []byte) (int, error) {
	_, _ = m[0].Write(p)
	_, _ = m[1].Write(p)
	return len(p), nil
}

func (s *Sidecar) onVerified(ev evVerified) {
	if ev.run != s.run || s.st.Active == nil {
		return
	}
	t := s.st.Active
	ev.run.verifyBusy = false
	t.Checks = append(t.Checks, ev.checks...)
	if n := len(t.Checks) - maxChecksKept; n > 0 {
		t.Checks = t.Checks[n:]
	}
	for i := range ev.checks {
		if s.identified && s.sess != nil && s.recoverPending != t.TaskID {
			s.sess.send(protocol.TaskProgress{Type: protocol.FrameTaskProgress, TaskID: t.TaskID, Check: &ev.checks[i], ProtocolVersion: clientVersion})
		}
	}
	if ev.passed {
		s.log.Info("verification passed", "event", "verify_passed", "task_id", t.TaskID, "attempt", ev.attempt)
		t.AgentResult = nil
		s.submitOrFinish(ev.out)
		return
	}
	last := protocol.VerifyCheck{ExitCode: -1, Command: "(interrupted)"}
	if len(ev.checks) > 0 {
		last = ev.checks[len(ev.checks)-1]
	}
	if ev.attempt < ev.budget {
		fb := fmt.Sprintf("Verification failed after attempt %d of %d.\n\n$ %s\nexit code %d\n\n%s\n", ev.attempt, ev.budget, last.Command, last.ExitCode, last.OutputTail)
		if err := writeFileDurable(s.feedbackPath(t.TaskID), []byte(fb), 0o600); err != nil {
			s.finish(Report{Type: reportFailed, Reason: cut("verify_feedback_failed: " + err.Error())})
			return
		}
		t.Attempt = ev.attempt + 1
		t.AgentResult = nil
		s.log.Info("verification failed; the agent tries again with the feedback", "event", "verify_retry", "task_id", t.TaskID,
			"attempt", t.Attempt, "command", last.Command, "exit_code", last.ExitCode)
		s.retryAgent()
		return
	}
	s.log.Warn("verification failed; no attempts left", "event", "verify_failed", "task_id", t.TaskID, "attempts", ev.attempt)
	out, _ := json.Marshal(struct {
		Checks []protocol.VerifyCheck `json:"checks"`
		Result json.RawMessage        `json:"agent_result,omitempty"`
	}{t.Checks, ev.out.Result})
	s.finish(Report{Type: reportFailed, Reason: cut(fmt.Sprintf("verification_failed: %q exited %d after %d attempts", last.Command, last.ExitCode, ev.attempt)), Output: out})
}

// retryAgent sends the agent back to work after a failed verification.
func (s *Sidecar) retryAgent() {
	if s.runMode() {
		s.startAgent()
		return
	}
	t, run := s.st.Active, s.run
	for _, p := range []string{s.resultPath(t.TaskID), s.startedPath(t.TaskID)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.finish(Report{Type: reportFailed, Reason: cut("verify_retry_failed: " + err.Error())})
			return
		}
	}
	t.Confirmed, run.resultSeen = false, false
	s.startWake()
}

// submitOrFinish runs the git workflow for a success when a task branch
// exists, then reports.
func (s *Sidecar) submitOrFinish(out Outcome) {
	t, run := s.st.Active, s.run
	if out.Success && s.git != nil && t.Branch != "" {
		run.submitBusy = true
		req := gitflow.SubmitRequest{AgentID: s.cfg.AgentID, TaskID: t.TaskID, Description: t.Description,
			Priority: metadataString(t.Metadata, "priority"), Reviewer: s.cfg.Reviewer, HubAPIURL: s.cfg.HubAPIURL}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			res, err := s.git.Submit(run.ctx, req)
			s.emit(run.ctx, evSubmitted{run: run, outcome: out, res: res, err: err})
		}()
		return
	}
	s.finishOutcome(out, nil)
}
