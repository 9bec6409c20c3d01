package sidecar

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxEnvValue keeps one environment variable under Linux's 128 KiB limit
// per string; larger task content is only in TASK_FILE.
const maxEnvValue = 100_000

// TaskFile is the JSON document at TASK_FILE: everything the agent needs
// to work on the task and report it.
type TaskFile struct {
	TaskID      string          `json:"task_id"`
	Description string          `json:"description"`
	Metadata    json.RawMessage `json:"metadata"`
	Generation  int64           `json:"generation"`
	AssignedAt  int64           `json:"assigned_at"`
	AgentID     string          `json:"agent_id"`
	Branch      string          `json:"branch,omitempty"`
	RepoDir     string          `json:"repo_dir,omitempty"`
	ResultsDir  string          `json:"results_dir"`
	ResultFile  string          `json:"result_file"`
	StartedFile string          `json:"started_file"`
	HubURL      string          `json:"hub_url"`
	// Dependencies lists the outcomes of the tasks this one depends on:
	// [{"task_id", "description", "status", "result", "result_truncated"}].
	Dependencies json.RawMessage `json:"dependencies,omitempty"`
}

func (s *Sidecar) resultPath(id string) string { return filepath.Join(s.cfg.ResultsDir, id+".json") }
func (s *Sidecar) startedPath(id string) string {
	return filepath.Join(s.cfg.ResultsDir, id+".started")
}
func (s *Sidecar) taskFilePath(id string) string {
	return filepath.Join(filepath.Dir(s.cfg.StateFile), "tasks", id+".json")
}

// writeTaskFile writes TASK_FILE for t (mode 0600, durably).
func (s *Sidecar) writeTaskFile(t Task) (string, error) {
	tf := TaskFile{
		TaskID: t.TaskID, Description: t.Description, Metadata: t.Metadata, Generation: t.Generation,
		AssignedAt: t.AssignedAt, AgentID: s.cfg.AgentID, Branch: t.Branch, RepoDir: s.cfg.RepoDir,
		ResultsDir: s.cfg.ResultsDir, ResultFile: s.resultPath(t.TaskID), StartedFile: s.startedPath(t.TaskID),
		HubURL: s.cfg.HubAPIURL, Dependencies: t.Dependencies,
	}
	b, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return "", err
	}
	p := s.taskFilePath(t.TaskID)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	return p, writeFileDurable(p, append(b, '\n'), 0o600)
}

// wakeEnv is the environment of the wake command: the sidecar's own plus
// the task. The token is deliberately not passed on.
func (s *Sidecar) wakeEnv(t Task, taskFile string) []string {
	// The sidecar's own secrets stay with it.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "AGENTCOM_SIDECAR_TOKEN=") || strings.HasPrefix(kv, "AGENTCOM_TOKEN=")
	})
	add := func(k, v string) { env = append(env, k+"="+v) }
	add("TASK_ID", t.TaskID)
	add("TASK_FILE", taskFile)
	add("TASK_GENERATION", strconv.FormatInt(t.Generation, 10))
	if len(t.Description) <= maxEnvValue {
		add("TASK_DESCRIPTION", t.Description)
	} else {
		add("TASK_DESCRIPTION", "")
		add("TASK_DESCRIPTION_TRUNCATED", "1")
	}
	if js, err := json.Marshal(t); err == nil && len(js) <= maxEnvValue {
		add("TASK_JSON", string(js))
	}
	add("RESULTS_DIR", s.cfg.ResultsDir)
	add("RESULT_FILE", s.resultPath(t.TaskID))
	add("STARTED_FILE", s.startedPath(t.TaskID))
	add("HUB_URL", s.cfg.HubAPIURL)
	add("HUB_WS_URL", s.cfg.HubURL)
	add("AGENT_ID", s.cfg.AgentID)
	if s.cfg.RepoDir != "" {
		add("REPO_DIR", s.cfg.RepoDir)
	}
	if t.Branch != "" {
		add("TASK_BRANCH", t.Branch)
	}
	if t.Attempt > 1 {
		// A retry after a failed verification: what failed, as a file
		// and (when small enough) as text.
		if b, err := os.ReadFile(s.feedbackPath(t.TaskID)); err == nil {
			add("VERIFY_FEEDBACK_FILE", s.feedbackPath(t.TaskID))
			if len(b) <= maxEnvValue {
				add("VERIFY_FEEDBACK", string(b))
			}
		}
	}
	return env
}

// wakeLoop runs the wake command up to 1+len(WakeRetryDelays) times and
// reports each attempt and the outcome to the event loop. It stops
// silently when ctx is cancelled (task reassigned or sidecar stopping).
func (s *Sidecar) wakeLoop(ctx context.Context, run *taskRun, t Task, taskFile string) {
	attempts := 1 + len(s.cfg.WakeRetryDelays)
	var err error
	for i := 1; i <= attempts; i++ {
		if !s.emit(ctx, evWakeAttempt{run: run, attempt: i}) {
			return
		}
		err = s.runWake(ctx, t, taskFile)
		if err == nil {
			s.emit(ctx, evWakeDone{run: run, attempts: i})
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("wake command failed", "event", "wake_error", "task_id", t.TaskID, "attempt", i, "error", err)
		if i < attempts {
			d := s.cfg.WakeRetryDelays[i-1]
			s.log.Info("retrying wake", "event", "wake_retry", "task_id", t.TaskID, "delay_ms", d.Milliseconds())
			tm := time.NewTimer(d)
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
			}
		}
	}
	s.emit(ctx, evWakeDone{run: run, attempts: attempts, err: err})
}

// runWake runs the wake command once, with the task in its environment.
func (s *Sidecar) runWake(ctx context.Context, t Task, taskFile string) error {
	argv := s.cfg.WakeCommand
	if s.cfg.WakeShell {
		argv = shellCommand(argv[0])
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WakeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = s.wakeEnv(t, taskFile)
	// The original's setups keep the state directory; an explicit work_dir
	// (where verification runs) applies to the wake command too.
	cmd.Dir = cmp.Or(s.cfg.WorkDir, filepath.Dir(s.cfg.StateFile))
	out := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	ownProcessGroup(cmd)
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		// The command exited 0 but left a background child (typically
		// the agent it launched) holding its output: that is a successful
		// wake.
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s", s.cfg.WakeTimeout)
	}
	if tail := out.String(); tail != "" {
		return fmt.Errorf("%w; output: %s", err, tail)
	}
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string { return string(b.buf) }
