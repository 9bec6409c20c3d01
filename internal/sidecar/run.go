package sidecar

// Run mode: run_command is the agent process for the task's whole life.
//
// The process is started detached, in its own process group, through a
// small /bin/sh wrapper that writes the command's exit code to
// tasks/<task_id>.exit when it ends; its stdout and stderr go straight to
// the task log file. The sidecar never holds a pipe or a wait on it, so a
// sidecar restart finds the process again from the state file (process
// group id) and keeps streaming the log from where it stopped: the agent is
// never run a second time while the first one lives.

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agentcom/agentcom/internal/protocol"
)

const (
	// outputTailBytes is how much of the agent's output becomes the result
	// output when it writes no result file.
	outputTailBytes = 4096
	// maxUsageLine bounds a line examined for a usage report.
	maxUsageLine = 64 << 10
	// maxReadPerTick bounds the log bytes read in one poll.
	maxReadPerTick = 1 << 20
	// frameOutputMax keeps an output chunk plus its note under the hub's
	// limit on task_progress output.
	frameOutputMax = protocol.MaxProgressOutput - 256
	// logRetention is how long a finished task's log file is kept.
	logRetention = 7 * 24 * time.Hour
	// maxChecksKept bounds the verification history kept for a task.
	maxChecksKept = 50
)

// runMode reports whether the sidecar runs the agent itself.
func (s *Sidecar) runMode() bool { return len(s.cfg.RunCommand) > 0 }

// workDir is where run_command and the verification commands run.
func (s *Sidecar) workDir() string {
	return cmp.Or(s.cfg.WorkDir, s.cfg.RepoDir, filepath.Dir(s.cfg.StateFile))
}

func (s *Sidecar) logDir() string {
	return cmp.Or(s.cfg.TaskLogDir, filepath.Join(filepath.Dir(s.cfg.StateFile), "logs"))
}

// TaskLogPath is the file holding a task's output (run mode and
// verification).
func (s *Sidecar) TaskLogPath(id string) string { return filepath.Join(s.logDir(), id+".log") }

func (s *Sidecar) exitPath(id string) string {
	return filepath.Join(filepath.Dir(s.cfg.StateFile), "tasks", id+".exit")
}

func (s *Sidecar) feedbackPath(id string) string {
	return filepath.Join(filepath.Dir(s.cfg.StateFile), "tasks", id+".feedback")
}

// startAgent starts (or restarts, after a failed verification) the agent
// process of the active task. While an earlier process group of this
// sidecar is still being stopped, the start waits for it: one agent at a
// time.
func (s *Sidecar) startAgent() {
	t, run := s.st.Active, s.run
	t.Attempt = max(t.Attempt, 1)
	t.Status, t.Run = StatusRunning, nil
	s.save()
	if len(s.stopping) > 0 {
		run.launchPending = true
		s.log.Info("waiting for the previous agent process group to exit before starting", "event", "run_waiting", "task_id", t.TaskID)
		return
	}
	s.launch()
}

// launch starts the agent process.
func (s *Sidecar) launch() {
	t, run := s.st.Active, s.run
	run.launchPending = false
	taskFile, err := s.writeTaskFile(*t)
	if err != nil {
		s.log.Error("cannot write the task file", "event", "run_error", "task_id", t.TaskID, "error", err)
		s.finish(Report{Type: reportFailed, Reason: "task_file_write_failed: " + err.Error()})
		return
	}
	logPath := s.TaskLogPath(t.TaskID)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		s.finish(Report{Type: reportFailed, Reason: "task_log_failed: " + err.Error()})
		return
	}
	// Files of an earlier run (a verification retry) must not decide this one.
	for _, p := range []string{s.exitPath(t.TaskID), s.resultPath(t.TaskID), s.startedPath(t.TaskID)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.finish(Report{Type: reportFailed, Reason: cut("run_start_failed: " + err.Error())})
			return
		}
	}
	start := fileSize(logPath)
	run.readOff = max(run.readOff, t.LogSent)
	if err := appendFile(logPath, fmt.Sprintf("== agentcom: attempt %d started %s\n", t.Attempt, time.Now().UTC().Format(time.RFC3339))); err != nil {
		s.finish(Report{Type: reportFailed, Reason: "task_log_failed: " + err.Error()})
		return
	}
	argv := s.cfg.RunCommand
	if s.cfg.RunShell {
		argv = shellCommand(argv[0])
	}
	pgid, pid, err := startDetached(argv, s.runEnv(*t, taskFile, logPath), s.workDir(), logPath, s.exitPath(t.TaskID))
	if err != nil {
		s.log.Error("cannot start the agent", "event", "run_error", "task_id", t.TaskID, "error", err)
		s.finish(Report{Type: reportFailed, Reason: cut("run_start_failed: " + err.Error())})
		return
	}
	t.Run = &RunState{PGID: pgid, PID: pid, StartedAt: time.Now().UnixMilli(), LogStart: start, UsageOff: start}
	run.started = true
	s.save()
	s.log.Info("agent started", "event", "run_started", "task_id", t.TaskID, "attempt", t.Attempt, "pgid", pgid, "pid", pid)
}

// runEnv is the wake environment plus what run mode adds.
func (s *Sidecar) runEnv(t Task, taskFile, logPath string) []string {
	env := s.wakeEnv(t, taskFile)
	return append(env, "TASK_LOG_FILE="+logPath, "RUN_ATTEMPT="+strconv.Itoa(max(t.Attempt, 1)), "WORK_DIR="+s.workDir())
}

// pollRun watches the running agent: its output, its exit, its time
// limits. Called from tick.
func (s *Sidecar) pollRun(now time.Time) {
	t, run := s.st.Active, s.run
	if code, ok := readExitFile(s.exitPath(t.TaskID)); ok {
		s.onRunExit(now, code)
		return
	}
	if !groupAlive(t.Run.PGID) {
		// The wrapper writes the exit file before it exits: look again
		// in case the process ended between the two checks.
		if code, ok := readExitFile(s.exitPath(t.TaskID)); ok {
			s.onRunExit(now, code)
			return
		}
		s.onRunExit(now, -1)
		return
	}
	if run.stopReason != "" {
		return
	}
	switch {
	case s.cfg.RunTimeout > 0 && now.Sub(time.UnixMilli(t.Run.StartedAt)) > s.cfg.RunTimeout:
		run.stopReason = fmt.Sprintf("run_timeout_after_%dms", s.cfg.RunTimeout.Milliseconds())
	case t.CompleteBy > 0 && now.UnixMilli() > t.CompleteBy:
		run.stopReason = "deadline_exceeded"
	default:
		return
	}
	s.log.Warn("agent ran out of time; stopping it", "event", "run_timeout", "task_id", t.TaskID, "reason", run.stopReason)
	s.terminate(t.Run.PGID, t.TaskID, run.stopReason)
}

// onRunExit ends an agent run: code is its exit code, -1 when the process
// vanished without one (killed, or lost while the sidecar was down).
func (s *Sidecar) onRunExit(now time.Time, code int) {
	t, run := s.st.Active, s.run
	s.streamOutput(now, true)
	if groupAlive(t.Run.PGID) {
		// The agent's own command ended; what it left behind in its
		// process group goes with it.
		s.terminate(t.Run.PGID, t.TaskID, "leftover processes of a finished agent")
	}
	usage := t.Run.Usage
	logStart := t.Run.LogStart
	var out Outcome
	switch {
	case run.stopReason != "":
		out = Outcome{Reason: run.stopReason, Output: s.tailOutput(t.TaskID, logStart, code)}
	case code < 0:
		out = Outcome{Reason: "agent_process_lost", Output: s.tailOutput(t.TaskID, logStart, code)}
	default:
		out = s.runOutcome(t.TaskID, logStart, code)
	}
	if out.Usage != nil {
		usage = *out.Usage // the result file's figures are the run's total
	}
	t.Usage = t.Usage.Add(usage.Normalize())
	t.Run = nil
	run.stopReason = ""
	s.save()
	_ = appendFile(s.TaskLogPath(t.TaskID), fmt.Sprintf("== agentcom: attempt %d ended with exit code %d\n", t.Attempt, code))
	s.log.Info("agent exited", "event", "run_exited", "task_id", t.TaskID, "attempt", t.Attempt, "exit_code", code, "success", out.Success)
	s.afterAgent(out)
}

// runResult is the result sent for an agent that wrote no result file.
type runResult struct {
	Status   string `json:"status"`
	Output   string `json:"output"`
	ExitCode int    `json:"exit_code"`
}

// runOutcome decides a finished run: the result file when the agent wrote
// one, else the exit code (0 is a success whose output is the tail of the
// agent's output).
func (s *Sidecar) runOutcome(id string, logStart int64, code int) Outcome {
	path := s.resultPath(id)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		if fi.Size() > maxResultFile {
			return Outcome{Reason: "result_parse_error: result file larger than 8 MiB"}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return Outcome{Reason: cut("result_read_error: " + err.Error())}
		}
		return ParseResult(data)
	}
	if code == 0 {
		res, _ := json.Marshal(runResult{Status: "success", Output: s.logTail(id, logStart), ExitCode: 0})
		return Outcome{Success: true, Result: res}
	}
	return Outcome{Reason: fmt.Sprintf("exit_code_%d", code), Output: s.tailOutput(id, logStart, code)}
}

func (s *Sidecar) tailOutput(id string, logStart int64, code int) json.RawMessage {
	b, _ := json.Marshal(runResult{Status: "failed", Output: s.logTail(id, logStart), ExitCode: code})
	return b
}

// logTail returns the last outputTailBytes of the task log written since
// offset from, as valid UTF-8, without the sidecar's own marker lines.
func (s *Sidecar) logTail(id string, from int64) string {
	f, err := os.Open(s.TaskLogPath(id))
	if err != nil {
		return ""
	}
	defer f.Close()
	size := fileSize(f.Name())
	off := max(from, size-outputTailBytes)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, size-off))
	var kept []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if !strings.HasPrefix(line, "== agentcom: ") {
			kept = append(kept, line)
		}
	}
	return strings.ToValidUTF8(strings.Join(kept, ""), "\uFFFD")
}

// streamOutput reads what the task log gained since the last call, notes
// usage lines and sends the output to the hub, at most one frame per
// output_interval_ms (force sends at once), each at most
// output_chunk_bytes: output arriving faster is cut, oldest first, and
// the frame says how much was skipped.
func (s *Sidecar) streamOutput(now time.Time, force bool) {
	t, run := s.st.Active, s.run
	path := s.TaskLogPath(t.TaskID)
	run.readOff = max(run.readOff, t.LogSent)
	size := fileSize(path)
	if size > run.readOff {
		f, err := os.Open(path)
		if err == nil {
			n := min(size-run.readOff, maxReadPerTick)
			from := run.readOff
			b, _ := io.ReadAll(io.NewSectionReader(f, from, n))
			f.Close()
			run.readOff += int64(len(b))
			if r := t.Run; r != nil && run.readOff > r.UsageOff {
				s.noteUsage(b[max(r.UsageOff-from, 0):])
				r.UsageOff = run.readOff
			}
			run.pending = append(run.pending, b...)
			if limit := min(s.cfg.OutputChunk, frameOutputMax); len(run.pending) > limit {
				drop := len(run.pending) - limit
				run.skipped += int64(drop)
				run.pending = append(run.pending[:0], run.pending[drop:]...)
			}
		}
	}
	if len(run.pending) == 0 && run.skipped == 0 {
		return
	}
	if !s.identified || s.sess == nil || s.recoverPending == t.TaskID {
		return
	}
	if !force && now.Sub(run.lastOutput) < s.cfg.OutputInterval {
		return
	}
	chunk := run.pending
	if !force {
		chunk = chunk[:completeUTF8(chunk)]
	}
	text := strings.ToValidUTF8(string(chunk), "\uFFFD")
	if run.skipped > 0 {
		text = fmt.Sprintf("[agentcom: %d bytes of output skipped]\n", run.skipped) + text
	}
	if text == "" {
		return
	}
	if !s.sess.send(protocol.TaskProgress{Type: protocol.FrameTaskProgress, TaskID: t.TaskID, Output: text, ProtocolVersion: clientVersion}) {
		return
	}
	run.pending = append(run.pending[:0], run.pending[len(chunk):]...)
	run.skipped = 0
	run.lastOutput, run.lastProgress = now, now
	t.LogSent = run.readOff - int64(len(run.pending))
	s.save()
}

// usageLine is the JSON line an agent prints to report what it spent.
type usageLine struct {
	Usage *protocol.Usage `json:"agentcom_usage"`
}

// noteUsage scans complete lines of output for usage reports; each adds
// to the running agent's usage.
func (s *Sidecar) noteUsage(b []byte) {
	t, run := s.st.Active, s.run
	run.partial = append(run.partial, b...)
	for {
		i := bytes.IndexByte(run.partial, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSpace(run.partial[:i])
		run.partial = run.partial[i+1:]
		if len(line) == 0 || line[0] != '{' || !bytes.Contains(line, []byte(`"agentcom_usage"`)) {
			continue
		}
		var u usageLine
		if json.Unmarshal(line, &u) != nil || u.Usage == nil {
			s.log.Warn("ignoring a malformed usage line", "event", "usage_line_invalid", "task_id", t.TaskID)
			continue
		}
		t.Run.Usage = t.Run.Usage.Add(u.Usage.Normalize())
	}
	if len(run.partial) > maxUsageLine {
		run.partial = run.partial[:0] // a line this long is no usage report
	}
	run.partial = append([]byte(nil), run.partial...)
}

// completeUTF8 returns the length of b without a trailing incomplete UTF-8
// sequence, which waits for the next chunk.
func completeUTF8(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// terminate stops a process group: SIGTERM, then SIGKILL after
// kill_grace_ms. It runs in the background; until the group is gone no
// new agent process starts.
func (s *Sidecar) terminate(pgid int, taskID, why string) {
	if pgid <= 0 || s.stopping[pgid] {
		return
	}
	s.stopping[pgid] = true
	s.log.Info("stopping the agent's process group", "event", "run_stopping", "task_id", taskID, "pgid", pgid, "why", why,
		"grace_ms", s.cfg.KillGrace.Milliseconds())
	grace := s.cfg.KillGrace
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		killed, gone := stopGroup(s.ctx, pgid, grace)
		s.emit(s.ctx, evGroupGone{pgid: pgid, taskID: taskID, killed: killed, gone: gone})
	}()
}

func (s *Sidecar) onGroupGone(ev evGroupGone) {
	delete(s.stopping, ev.pgid)
	if ev.gone {
		s.log.Info("agent process group stopped", "event", "run_stopped", "task_id", ev.taskID, "pgid", ev.pgid, "sigkill", ev.killed)
	} else {
		s.log.Error("agent process group survived SIGKILL", "event", "run_stop_failed", "task_id", ev.taskID, "pgid", ev.pgid)
	}
	if s.run != nil && s.run.launchPending && len(s.stopping) == 0 && s.st.Active != nil {
		s.launch()
	}
}

// resumeRun picks a run-mode task up again after a restart.
func (s *Sidecar) resumeRun() {
	t, run := s.st.Active, s.run
	run.started = true
	switch {
	case t.Status == StatusVerifying:
		s.log.Info("verification was interrupted; running it again", "event", "verify_resumed", "task_id", t.TaskID)
		s.afterAgent(Outcome{Success: true, Result: t.AgentResult})
	case t.Run == nil:
		s.startAgent()
	default:
		run.readOff = t.LogSent
		s.log.Info("agent process found again", "event", "run_adopted", "task_id", t.TaskID, "pgid", t.Run.PGID,
			"alive", groupAlive(t.Run.PGID))
	}
}

// verifySpec reads a task's verification commands and attempt budget from
// its metadata: "verify" (a string or an array of strings) and
// "max_verify_attempts" (1 to 10).
func verifySpec(meta json.RawMessage, def int) ([]string, int, error) {
	var m struct {
		Verify   json.RawMessage `json:"verify"`
		Attempts *json.Number    `json:"max_verify_attempts"`
	}
	if json.Unmarshal(meta, &m) != nil || len(m.Verify) == 0 || string(m.Verify) == "null" {
		return nil, 0, nil
	}
	var cmds []string
	var one string
	if json.Unmarshal(m.Verify, &one) == nil {
		cmds = []string{one}
	} else if err := json.Unmarshal(m.Verify, &cmds); err != nil {
		return nil, 0, errors.New("metadata.verify must be a string or an array of strings")
	}
	if len(cmds) > protocol.MaxVerifyCommands {
		return nil, 0, fmt.Errorf("metadata.verify has more than %d commands", protocol.MaxVerifyCommands)
	}
	for _, c := range cmds {
		if strings.TrimSpace(c) == "" || len(c) > protocol.MaxCheckCommand || strings.ContainsRune(c, 0) {
			return nil, 0, errors.New("metadata.verify has an empty, over-long or NUL-containing command")
		}
	}
	n := def
	if m.Attempts != nil {
		v, err := strconv.Atoi(m.Attempts.String())
		if err != nil || v < 1 || v > protocol.MaxVerifyAttempts {
			return nil, 0, fmt.Errorf("metadata.max_verify_attempts must be an integer from 1 to %d", protocol.MaxVerifyAttempts)
		}
		n = v
	}
	return cmds, n, nil
}

// readExitFile reads the exit code the run wrapper wrote.
func readExitFile(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1, true
	}
	return n, true
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	_, werr := w.WriteString(text)
	if err := w.Flush(); werr == nil {
		werr = err
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	return werr
}

// removeOldLogs deletes task logs older than logRetention, except the
// active task's.
func (s *Sidecar) removeOldLogs(now time.Time) {
	ents, err := os.ReadDir(s.logDir())
	if err != nil {
		return
	}
	for _, e := range ents {
		if s.st.Active != nil && e.Name() == s.st.Active.TaskID+".log" {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > logRetention {
			_ = os.Remove(filepath.Join(s.logDir(), e.Name()))
		}
	}
}
