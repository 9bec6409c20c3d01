package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/gitflow"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/coder/websocket"
)

// Close codes of the hub (see the hub README) the sidecar reacts to.
const (
	closeReplaced = 4001 // another connection identified as this agent
	closeRevoked  = 4004 // the agent's tokens were revoked
)

// GitWorkflow is what the sidecar needs of the git workflow.
type GitWorkflow interface {
	StartTask(ctx context.Context, req gitflow.StartRequest) (gitflow.StartResult, error)
	Submit(ctx context.Context, req gitflow.SubmitRequest) (gitflow.SubmitResult, error)
}

// Options are the collaborators of a Sidecar; zero values get defaults.
type Options struct {
	// Logger receives structured events; nil discards them.
	Logger *slog.Logger
	// Git runs the git workflow when cfg.RepoDir is set; nil means
	// gitflow on cfg.RepoDir.
	Git GitWorkflow
	// HTTPClient is used to dial the hub; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Jitter is the random source of the jitter of the reconnect and
	// retry delays; nil means one of this sidecar's own, seeded from the
	// operating system. Only the sidecar's connection loop draws from it.
	Jitter rand.Source
}

// Sidecar is one agent's daemon. Create it with New and call Run once.
type Sidecar struct {
	cfg    Config
	log    *slog.Logger
	git    GitWorkflow
	hc     *http.Client
	jitter rand.Source // drawn from by connLoop only
	events chan event
	wg     sync.WaitGroup
	// ctx is Run's context: cancelled when the sidecar stops. Task runs
	// derive from it so a stop ends every goroutine.
	ctx context.Context

	// Owned by the event loop goroutine.
	st             State
	sess           *session
	identified     bool
	recoverPending string // task id announced with task_recovering, no answer yet
	inflight       []string
	run            *taskRun
	// stopping holds the agent process groups being stopped; no new
	// agent process starts until it is empty.
	stopping map[int]bool
}

// taskRun is the in-memory side of the active task: what is running for it
// right now. It is rebuilt empty after a restart.
type taskRun struct {
	taskID  string
	ctx     context.Context // cancelled when the hub takes the task away
	cancel  context.CancelFunc
	started bool // git/wake were launched by this process
	// sess is the connection on which the hub last confirmed the task
	// (accept, continue, redelivery); any other identified connection
	// must hear task_recovering.
	sess *session

	gitBusy, wakeBusy, submitBusy, verifyBusy bool

	// Run mode.
	launchPending bool   // start the agent once earlier process groups are gone
	stopReason    string // why the sidecar is stopping the agent (timeout)
	readOff       int64  // task log offset read so far
	partial       []byte // incomplete last output line (usage reports)
	pending       []byte // output read but not sent yet
	skipped       int64  // output bytes dropped by the rate limit
	lastOutput    time.Time

	confirmDeadline time.Time
	lastProgress    time.Time
	resultSize      int64
	resultMod       time.Time
	resultSeen      bool
}

// Events delivered to the loop.
type (
	event        any
	evConnected  struct{ sess *session }
	evDisconnect struct{ sess *session }
	evFrame      struct {
		sess *session
		data []byte
	}
	evGitStarted struct {
		run *taskRun
		res gitflow.StartResult
		err error
	}
	evWakeAttempt struct {
		run     *taskRun
		attempt int
	}
	evWakeDone struct {
		run      *taskRun
		attempts int
		err      error
	}
	evSubmitted struct {
		run     *taskRun
		outcome Outcome
		res     gitflow.SubmitResult
		err     error
	}
	evGroupGone struct {
		pgid         int
		taskID       string
		killed, gone bool
	}
)

// New validates cfg (filling unset fields with their defaults) and
// prepares a sidecar.
func New(cfg Config, opts Options) (*Sidecar, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sidecar{
		cfg:      cfg,
		log:      log.With("component", "sidecar", "agent_id", cfg.AgentID),
		git:      opts.Git,
		hc:       opts.HTTPClient,
		jitter:   opts.Jitter,
		events:   make(chan event, 64),
		stopping: map[int]bool{},
	}
	if s.jitter == nil {
		s.jitter = newJitterSource()
	}
	if s.git == nil && cfg.RepoDir != "" {
		r, err := gitflow.New(cfg.RepoDir)
		if err != nil {
			return nil, err
		}
		r.Remote, r.Base = cfg.GitRemote, cfg.GitBase
		s.git = r
	}
	return s, nil
}

// Run loads the state, connects to the hub and processes tasks until ctx
// is cancelled; then it closes the connection with 1000 "shutdown", stops
// the wake command and returns nil. The state on disk is consistent at
// every moment, so a SIGKILL instead of a cancel loses nothing either.
func (s *Sidecar) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx
	if err := s.prepareDirs(); err != nil {
		return err
	}
	if err := s.loadState(); err != nil {
		return err
	}
	attrs := []any{"event", "startup", "hub_url", redactURL(s.cfg.HubURL), "capabilities", s.cfg.Capabilities}
	if hubs := s.cfg.Hubs(); len(hubs) > 1 {
		redacted := make([]string, len(hubs))
		for i, h := range hubs {
			redacted[i] = redactURL(h)
		}
		attrs = append(attrs, "hub_urls", redacted)
	}
	s.log.Info("sidecar starting", attrs...)

	s.wg.Add(1)
	go s.connLoop(ctx)

	s.log.Info("sidecar ready", "event", "ready")
	s.loop(ctx)

	s.log.Info("sidecar stopping", "event", "shutdown")
	cancel()
	s.wg.Wait()
	return nil
}

func (s *Sidecar) prepareDirs() error {
	for _, d := range []string{s.cfg.ResultsDir, filepath.Dir(s.cfg.StateFile), filepath.Join(filepath.Dir(s.cfg.StateFile), "tasks")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return nil
}

// loadState reads the state file, moving a corrupt one aside loudly.
func (s *Sidecar) loadState() error {
	st, info, err := LoadState(s.cfg.StateFile, time.Now())
	if err != nil {
		return err
	}
	if info.CorruptMovedTo != "" {
		s.log.Error("state file is corrupt: moved aside, starting with no task; the hub will reclaim any task this agent held",
			"event", "state_corrupt", "moved_to", info.CorruptMovedTo, "reason", info.CorruptReason)
	}
	for _, n := range info.Notes {
		s.log.Warn(n, "event", "state_note")
	}
	s.st = st
	if t := s.st.Active; t != nil {
		s.log.Info("unfinished task found; will announce it to the hub", "event", "recovery_found", "task_id", t.TaskID, "last_status", t.Status)
		s.run = s.newRun(t.TaskID)
		s.recoverPending = t.TaskID
	}
	s.removeStaleTaskFiles()
	s.removeOldLogs(time.Now())
	return nil
}

// connLoop dials the hub, hands each session to the event loop and
// reconnects with backoff. With several hubs (hub_urls) it moves to the
// next one when a hub is unreachable or goes away, at once: the backoff
// only runs after a full round of hubs failed. The delay resets only after
// a session was identified; a rejected token waits at least AuthRetry.
func (s *Sidecar) connLoop(ctx context.Context) {
	defer s.wg.Done()
	bo := newBackoff(s.cfg.ReconnectMin, s.cfg.ReconnectMax, rand.New(s.jitter))
	ring := newHubRing(s.cfg)
	var id uint64
	for ctx.Err() == nil {
		id++
		url := ring.url()
		s.log.Debug("connecting", "event", "ws_connecting", "hub_url", redactURL(url))
		sess, err := dial(ctx, id, url, s.hc, s.log)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var d time.Duration
			var busy *hubBusy
			switch {
			case errors.As(err, &busy) && !ring.several():
				// The hub said when to come back (503 + Retry-After: it is
				// loading): then (jittered), not after the growing backoff
				// (a load takes seconds; the backoff may have grown to a
				// minute), and never later than the backoff's maximum.
				// With several hubs the next one is tried at once (after
				// the failover pause), as for any miss.
				d = bo.retryAfter(busy.RetryAfter)
			case ring.miss():
				d = bo.next()
			default:
				d = bo.failover()
			}
			attrs := []any{"event", "ws_connect_error", "hub_url", redactURL(url), "error", err, "retry_in_ms", d.Milliseconds()}
			if ring.several() {
				attrs = append(attrs, "next_hub_url", redactURL(ring.url()))
			}
			s.log.Warn("cannot reach the hub", attrs...)
			sleepCtx(ctx, d)
			continue
		}
		s.log.Info("connected", "event", "ws_open", "conn", id, "hub_url", redactURL(url))
		// The loop adopts the session before its reader runs, so no frame
		// of it can arrive first and be taken for a stale connection's.
		if !s.emit(ctx, evConnected{sess: sess}) {
			sess.closeGraceful(websocket.StatusNormalClosure, "shutdown", s.cfg.ShutdownTimeout)
			sess.wait()
			return
		}
		sess.start(s.deliver, s.cfg.PingInterval, s.cfg.PongTimeout)
		ended := make(chan struct{})
		go func() { sess.wait(); close(ended) }()
		select {
		case <-ended:
		case <-ctx.Done():
			sess.closeGraceful(websocket.StatusNormalClosure, "shutdown", s.cfg.ShutdownTimeout)
			<-ended
			return
		}
		s.emit(ctx, evDisconnect{sess: sess})
		if sess.identified.Load() {
			bo.reset()
			ring.hit()
		}
		code := sess.closeCode.Load()
		var d time.Duration
		if hubGone(code) && !sess.authRejected.Load() {
			// This hub is gone or going: the next one is tried at once
			// (after the failover pause), unless every hub failed in a
			// row.
			if ring.miss() {
				d = bo.next()
			} else {
				d = bo.failover()
			}
			if ring.several() {
				s.log.Warn("moving to the next hub", "event", "hub_failover", "from_hub_url", redactURL(url),
					"to_hub_url", redactURL(ring.url()), "code", code, "delay_ms", d.Milliseconds())
			}
		} else {
			d = bo.next()
		}
		if sess.authRejected.Load() {
			d = max(d, s.cfg.AuthRetry)
		}
		switch code {
		case closeReplaced:
			// Only a second live connection for this agent id does this:
			// fighting over the slot every second helps no one.
			s.log.Error("the hub closed this connection because another connection identified as this agent; is a second sidecar running with the same agent_id?",
				"event", "connection_replaced", "retry_in_ms", s.cfg.ReconnectMax.Milliseconds())
			d = max(d, s.cfg.ReconnectMax)
		case closeRevoked:
			s.log.Error("the hub closed this connection because the agent's tokens were revoked", "event", "token_revoked")
		}
		s.log.Info("reconnecting", "event", "reconnect_scheduled", "delay_ms", d.Milliseconds(), "hub_url", redactURL(ring.url()))
		sleepCtx(ctx, d)
	}
}

// hubGone reports whether a close code says the hub itself is gone or
// going (so another hub of the cluster should be tried): the connection
// was lost without a close frame (-1, 1006), or the hub is shutting down
// (1001), failed (1011), restarting (1012, also sent by a cluster hub when
// the leader changes), overloaded (1013) or behind a failing gateway
// (1014). Other codes are about this agent (replaced, revoked, policy) and
// would be the same on any hub.
func hubGone(code int32) bool {
	switch code {
	case -1, 1001, 1006, 1011, 1012, 1013, 1014:
		return true
	}
	return false
}

// hubRing is the order the sidecar tries its hubs in. It stays on a hub
// while that hub serves, and moves on when it fails.
type hubRing struct {
	urls []string
	cur  int
	// misses counts hubs that failed in a row since the last identified
	// session; every len(urls) of them is a full round.
	misses int
}

// newHubRing starts at hub_url, the first of hub_urls unless it names
// another.
func newHubRing(cfg Config) *hubRing {
	r := &hubRing{urls: cfg.Hubs()}
	if i := slices.Index(r.urls, cfg.HubURL); i >= 0 {
		r.cur = i
	}
	return r
}

func (r *hubRing) url() string   { return r.urls[r.cur] }
func (r *hubRing) several() bool { return len(r.urls) > 1 }
func (r *hubRing) hit()          { r.misses = 0 }

// miss records that the current hub failed and moves to the next. It
// reports whether a full round of hubs has now failed in a row, the point
// where the caller backs off (with one hub: every failure).
func (r *hubRing) miss() bool {
	r.misses++
	r.cur = (r.cur + 1) % len(r.urls)
	return r.misses%len(r.urls) == 0
}

// deliver passes an inbound frame to the loop; false when stopping.
func (s *Sidecar) deliver(sess *session, data []byte) bool {
	select {
	case s.events <- evFrame{sess: sess, data: data}:
		return true
	case <-sess.ctx.Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}

// emit passes an event to the loop; false when ctx ended first.
func (s *Sidecar) emit(ctx context.Context, ev event) bool {
	select {
	case s.events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// loop is the event loop; it returns when ctx is cancelled.
func (s *Sidecar) loop(ctx context.Context) {
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-s.events:
			s.handle(ev)
		case <-tick.C:
			s.tick(time.Now())
		}
	}
}

func (s *Sidecar) handle(ev event) {
	switch ev := ev.(type) {
	case evConnected:
		s.sess, s.identified, s.inflight = ev.sess, false, nil
		ev.sess.send(protocol.Identify{
			Type: protocol.FrameIdentify, AgentID: s.cfg.AgentID, Token: s.cfg.Token, Name: s.cfg.AgentID,
			Status: "idle", Capabilities: s.cfg.Capabilities, ClientType: "sidecar", ProtocolVersion: clientVersion,
		})
		s.log.Debug("identify sent", "event", "identify_sent")
	case evDisconnect:
		if ev.sess == s.sess {
			s.sess, s.identified, s.inflight = nil, false, nil
		}
	case evFrame:
		if ev.sess != s.sess {
			return // a frame from a connection already replaced
		}
		f, err := decodeFrame(ev.data)
		if err != nil {
			s.log.Warn("ignoring hub frame", "event", "ws_message_parse_error", "error", err)
			return
		}
		s.onFrame(f)
	case evGitStarted:
		s.onGitStarted(ev)
	case evWakeAttempt:
		if ev.run == s.run && s.st.Active != nil {
			s.st.Active.WakeAttempts = ev.attempt
			s.save()
			s.log.Info("waking agent", "event", "wake_attempt", "task_id", ev.run.taskID, "attempt", ev.attempt)
		}
	case evWakeDone:
		s.onWakeDone(ev)
	case evSubmitted:
		s.onSubmitted(ev)
	case evVerified:
		s.onVerified(ev)
	case evGroupGone:
		s.onGroupGone(ev)
	}
}

func (s *Sidecar) onFrame(f inFrame) {
	switch f.Type {
	case protocol.OutIdentified:
		s.identified = true
		s.sess.identified.Store(true)
		s.log.Info("identified by the hub", "event", "identified", "hub_url", redactURL(s.sess.url))
		// A report held for a recovery answer that never came is sent as
		// is on the new connection; only an active task is re-announced.
		s.recoverPending = ""
		if t := s.st.Active; t != nil && s.run != nil && s.run.sess != s.sess {
			s.recoverPending = t.TaskID
			s.sess.send(recoveringFrame(t))
			s.log.Info("announcing unfinished task", "event", "recovery_reporting", "task_id", t.TaskID, "last_status", t.Status)
		}
		s.flushOutbox()
	case protocol.OutError:
		s.onHubError(f)
	case protocol.OutTaskAssign:
		s.onAssign(f)
	case protocol.OutTaskAck:
		s.onAck(f)
	case protocol.OutTaskContinue:
		s.onContinue(f)
	case protocol.OutTaskReassign:
		s.onReassign(f)
	case protocol.OutTaskCancelled:
		s.onCancelled(f)
	default:
		s.log.Debug("unhandled hub frame", "event", "unhandled_message", "type", f.Type)
	}
}

func (s *Sidecar) onHubError(f inFrame) {
	code := f.Error
	switch {
	case !s.identified && (code == protocol.CodeInvalidToken || code == protocol.CodeTokenAgentMismatch || code == protocol.CodeUnauthorized):
		s.log.Error("the hub rejected this agent's token: check agent_id and token in the config (or re-run agentcom onboard)",
			"event", "auth_rejected", "error", code, "retry_in_ms", s.cfg.AuthRetry.Milliseconds())
		s.sess.authRejected.Store(true)
		s.sess.closeGraceful(websocket.StatusNormalClosure, "auth rejected", s.cfg.ShutdownTimeout)
	case strings.HasPrefix(code, protocol.CodeTaskCompleteFailed+":") || strings.HasPrefix(code, protocol.CodeTaskFailFailed+":"):
		typ := reportComplete
		if strings.HasPrefix(code, protocol.CodeTaskFailFailed+":") {
			typ = reportFailed
		}
		id := f.TaskID
		if id == "" {
			id = s.popInflight(typ)
		} else {
			s.removeInflight(typ, id)
		}
		if id == "" {
			s.log.Warn("hub rejected a report", "event", "hub_error", "error", code)
			return
		}
		if strings.HasSuffix(code, protocol.CodeInternal) {
			// The hub could not store it: keep it for the next connection.
			s.log.Warn("hub could not record the report; will resend after the next identify", "event", "report_deferred", "task_id", id, "error", code)
			return
		}
		// The hub answered deliberately (stale generation, task gone,
		// not ours): resending can never succeed.
		s.dropReport(typ, id)
		s.log.Error("hub refused the task report; dropped", "event", "report_rejected", "task_id", id, "error", code)
	case code == protocol.CodeVersionUnsupported:
		s.log.Info("the hub speaks an older protocol version; continuing in it", "event", "protocol_version_downgraded")
	default:
		s.log.Warn("hub error", "event", "hub_error", "error", code)
	}
}

func (s *Sidecar) onAssign(f inFrame) {
	if f.TaskID == "" {
		s.log.Warn("task_assign without task_id", "event", "ws_message_parse_error")
		return
	}
	if t := s.st.Active; t != nil {
		if t.TaskID == f.TaskID {
			// The hub delivered our own task again (after a reconnect or a
			// hub restart): it is still ours, at the hub's generation.
			if f.Generation >= 0 {
				t.Generation = f.Generation
			}
			s.save()
			s.sess.send(protocol.TaskAccepted{Type: protocol.FrameTaskAccepted, TaskID: t.TaskID, ProtocolVersion: clientVersion})
			s.run.sess = s.sess
			s.log.Info("task delivered again; still working on it", "event", "task_redelivered", "task_id", t.TaskID, "generation", t.Generation)
			if s.recoverPending == t.TaskID {
				s.recoverPending = ""
				s.resume()
			}
			return
		}
		s.sess.send(protocol.TaskRejected{Type: protocol.FrameTaskRejected, TaskID: f.TaskID, Reason: "busy", Generation: genPtr(f.Generation), ProtocolVersion: clientVersion})
		s.log.Info("busy: task rejected", "event", "task_rejected", "task_id", f.TaskID, "active_task_id", t.TaskID)
		return
	}
	meta := f.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage("{}")
	}
	gen := max(f.Generation, 0)
	assigned := f.AssignedAt
	if assigned == 0 {
		assigned = time.Now().UnixMilli()
	}
	t := &Task{TaskID: f.TaskID, Description: f.Description, Metadata: meta, Status: StatusAccepted, AssignedAt: assigned, Generation: gen,
		CompleteBy: max(f.CompleteBy, 0), LogSent: fileSize(s.TaskLogPath(f.TaskID)), Dependencies: f.Dependencies}
	s.st.Active = t
	if err := SaveState(s.cfg.StateFile, s.st); err != nil {
		// Without a durable record the task must not be accepted.
		s.st.Active = nil
		s.log.Error("cannot save the task; rejecting it", "event", "state_write_error", "task_id", f.TaskID, "error", err)
		s.sess.send(protocol.TaskRejected{Type: protocol.FrameTaskRejected, TaskID: f.TaskID, Reason: "state_write_failed", Generation: genPtr(f.Generation),
			ProtocolVersion: clientVersion})
		return
	}
	s.sess.send(protocol.TaskAccepted{Type: protocol.FrameTaskAccepted, TaskID: t.TaskID, ProtocolVersion: clientVersion})
	s.log.Info("task accepted", "event", "task_received", "task_id", t.TaskID, "generation", gen)
	s.run = s.newRun(t.TaskID)
	s.run.sess = s.sess
	s.run.lastProgress = time.Now()
	if isOnboardingTest(meta) && len(s.cfg.WakeCommand) == 0 && !s.runMode() {
		// With no command to go through, the sidecar answers the
		// onboarding check itself; with one, the check really runs it.
		res, _ := json.Marshal(map[string]any{"status": "success", "output": "agentcom sidecar " + s.cfg.AgentID + " online", "onboarding_test": true})
		s.finish(Report{Type: reportComplete, Result: res})
		return
	}
	s.prepare()
}

// prepare starts the task branch (when a repo is configured) and then the
// wake.
func (s *Sidecar) prepare() {
	run, t := s.run, *s.st.Active
	run.started = true
	if s.git == nil {
		s.startWake()
		return
	}
	run.gitBusy = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		res, err := s.git.StartTask(run.ctx, gitflow.StartRequest{AgentID: s.cfg.AgentID, TaskID: t.TaskID, Description: t.Description})
		s.emit(run.ctx, evGitStarted{run: run, res: res, err: err})
	}()
}

func (s *Sidecar) onGitStarted(ev evGitStarted) {
	if ev.run != s.run || s.st.Active == nil {
		return
	}
	ev.run.gitBusy = false
	t := s.st.Active
	if ev.err != nil {
		t.GitWarning = ev.err.Error()
		s.log.Warn("git start-task failed; waking the agent anyway", "event", "git_start_task_failed", "task_id", t.TaskID, "error", ev.err)
	} else {
		t.Branch, t.GitWarning = ev.res.Branch, ""
		s.log.Info("task branch ready", "event", "git_start_task_ok", "task_id", t.TaskID, "branch", ev.res.Branch, "base", ev.res.BaseCommit)
	}
	s.save()
	s.startWake()
}

// startWake runs the wake command, or marks the task working when there
// is none.
func (s *Sidecar) startWake() {
	t, run := s.st.Active, s.run
	if s.runMode() {
		s.startAgent()
		return
	}
	if len(s.cfg.WakeCommand) == 0 {
		t.Status = StatusWorking
		s.save()
		s.log.Info("no wake_command: waiting for the result", "event", "wake_skipped", "task_id", t.TaskID)
		return
	}
	t.Status = StatusWaking
	s.save()
	taskFile, err := s.writeTaskFile(*t)
	if err != nil {
		s.log.Error("cannot write the task file", "event", "wake_error", "task_id", t.TaskID, "error", err)
		s.finish(Report{Type: reportFailed, Reason: "task_file_write_failed: " + err.Error()})
		return
	}
	run.wakeBusy = true
	snapshot := *t
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.wakeLoop(run.ctx, run, snapshot, taskFile)
	}()
}

func (s *Sidecar) onWakeDone(ev evWakeDone) {
	if ev.run != s.run || s.st.Active == nil {
		return
	}
	ev.run.wakeBusy = false
	t := s.st.Active
	if ev.err != nil {
		// The reason keeps the original's wording: N counts the retries.
		reason := fmt.Sprintf("wake_failed_after_%d_attempts", len(s.cfg.WakeRetryDelays))
		s.log.Error("could not wake the agent", "event", "wake_failed", "task_id", t.TaskID, "attempts", ev.attempts, "error", ev.err)
		s.finish(Report{Type: reportFailed, Reason: reason})
		return
	}
	s.log.Info("agent woken", "event", "wake_success", "task_id", t.TaskID, "attempt", ev.attempts)
	if t.Status != StatusWaking {
		return
	}
	if t.Confirmed {
		t.Status = StatusWorking
	} else {
		t.Status = StatusConfirmation
		ev.run.confirmDeadline = time.Now().Add(s.cfg.ConfirmationTimeout)
		s.log.Info("waiting for confirmation", "event", "confirmation_wait", "task_id", t.TaskID, "timeout_ms", s.cfg.ConfirmationTimeout.Milliseconds())
	}
	s.save()
}

func (s *Sidecar) onAck(f inFrame) {
	switch f.Status {
	case protocol.AckAccepted, protocol.AckRejected, protocol.AckProgress:
		s.log.Debug("hub acknowledged", "event", "task_ack", "task_id", f.TaskID, "status", f.Status)
		return
	}
	if !s.hasReport(f.TaskID) {
		s.log.Debug("ack for no pending report", "event", "task_ack", "task_id", f.TaskID, "status", f.Status)
		return
	}
	// An ack answers one report: the oldest of its kind for the task.
	typ := ""
	switch f.Status {
	case protocol.AckComplete:
		typ = reportComplete
	case protocol.AckRetried, protocol.AckDeadLetter:
		typ = reportFailed
	}
	s.removeInflight(typ, f.TaskID)
	s.dropReport(typ, f.TaskID)
	s.log.Info("hub acknowledged the report", "event", "report_acked", "task_id", f.TaskID, "status", f.Status)
	s.flushOutbox()
}

func (s *Sidecar) onContinue(f inFrame) {
	if s.recoverPending == f.TaskID {
		s.recoverPending = ""
	}
	if t := s.st.Active; t != nil && t.TaskID == f.TaskID {
		if f.Generation >= 0 {
			t.Generation = f.Generation
		}
		s.save()
		s.run.sess = s.sess
		s.log.Info("hub says continue", "event", "recovery_continued", "task_id", t.TaskID, "generation", t.Generation, "status", t.Status)
		s.resume()
		return
	}
	if s.hasReport(f.TaskID) {
		// Finished while waiting for the answer: send it at the
		// generation the hub now holds.
		if f.Generation >= 0 {
			for i := range s.st.Outbox {
				if s.st.Outbox[i].TaskID == f.TaskID {
					s.st.Outbox[i].Generation = f.Generation
				}
			}
			s.save()
		}
		s.log.Info("hub says continue; sending the finished report", "event", "recovery_continued", "task_id", f.TaskID)
		s.flushOutbox()
		return
	}
	s.log.Info("task_continue for a task this agent does not hold", "event", "recovery_continue_ignored", "task_id", f.TaskID)
}

func (s *Sidecar) onReassign(f inFrame) {
	if t := s.st.Active; t != nil && t.TaskID == f.TaskID && f.Generation >= 0 && t.Generation >= f.Generation {
		// An unasked take-back that predates the assignment this sidecar
		// holds now: that assignment stands.
		s.log.Info("stale take-back ignored", "event", "reassign_stale_ignored", "task_id", f.TaskID,
			"generation", t.Generation, "reassign_generation", f.Generation)
		return
	}
	s.takeBack(f.TaskID, "recovery_reassigned", "hub took the task back")
}

// onCancelled drops a task the hub cancelled.
func (s *Sidecar) onCancelled(f inFrame) {
	s.takeBack(f.TaskID, "task_cancelled", "hub cancelled the task")
}

// takeBack forgets a task the hub no longer wants from this agent
// (task_reassign, task_cancelled): whatever runs for it is stopped, its
// files are removed, and a pending report for it is discarded.
func (s *Sidecar) takeBack(id, event, msg string) {
	if s.recoverPending == id {
		s.recoverPending = ""
	}
	if t := s.st.Active; t != nil && t.TaskID == id {
		if t.Run != nil {
			s.terminate(t.Run.PGID, id, event)
		}
		s.run.cancel()
		s.run = nil
		s.st.Active = nil
		s.save()
		s.removeTaskFiles(id)
		s.log.Info(msg+"; stopped it", "event", event, "task_id", id)
		return
	}
	if s.hasReport(id) {
		s.removeInflight("", id)
		s.dropReports(id)
		s.log.Warn(msg+"; its pending report is dropped", "event", event, "task_id", id)
		return
	}
	s.log.Info(msg+", but this agent does not hold it", "event", event+"_ignored", "task_id", id)
}

// resume continues the active task after the hub confirmed it is still
// ours: whatever this process has not launched yet is launched again.
func (s *Sidecar) resume() {
	t, run := s.st.Active, s.run
	if t == nil || run == nil {
		return
	}
	run.lastProgress = time.Now()
	if run.started {
		return // this process is already running it (reconnect, not restart)
	}
	switch t.Status {
	case StatusRunning, StatusVerifying:
		s.resumeRun()
	case StatusAccepted:
		s.prepare()
	case StatusWaking:
		run.started = true
		s.startWake()
	case StatusConfirmation:
		run.started = true
		if !t.Confirmed {
			run.confirmDeadline = time.Now().Add(s.cfg.ConfirmationTimeout)
		}
	default:
		run.started = true
	}
}

// tick checks the results directory, the confirmation deadline and the
// progress heartbeat.
func (s *Sidecar) tick(now time.Time) {
	t, run := s.st.Active, s.run
	if t == nil || run == nil {
		return
	}
	if !t.Confirmed && fileExists(s.startedPath(t.TaskID)) {
		t.Confirmed = true
		if t.Status == StatusConfirmation {
			t.Status = StatusWorking
		}
		s.save()
		s.log.Info("agent confirmed the start", "event", "confirmation_received", "task_id", t.TaskID)
	}
	if run.started {
		s.streamOutput(now, false)
	}
	if s.runMode() {
		if run.started && t.Status == StatusRunning && t.Run != nil && !run.verifyBusy {
			s.pollRun(now)
			if s.st.Active == nil || s.st.Active.Status != StatusRunning {
				return
			}
		}
	} else if !run.gitBusy && !run.submitBusy && !run.verifyBusy && t.Status != StatusVerifying && s.checkResult(now) {
		return
	}
	if t.Status == StatusConfirmation && !t.Confirmed && !run.confirmDeadline.IsZero() && now.After(run.confirmDeadline) {
		s.log.Warn("agent did not confirm in time", "event", "confirmation_timeout", "task_id", t.TaskID)
		s.finish(Report{Type: reportFailed, Reason: "confirmation_timeout"})
		return
	}
	if s.identified && s.recoverPending != t.TaskID && now.Sub(run.lastProgress) >= s.cfg.ProgressInterval {
		run.lastProgress = now
		s.sess.send(protocol.TaskProgress{Type: protocol.FrameTaskProgress, TaskID: t.TaskID, ProtocolVersion: clientVersion})
		s.log.Debug("progress sent", "event", "task_progress", "task_id", t.TaskID)
	}
}

// checkResult reads the result file once it has stopped changing and acts
// on it. It reports whether the task ended or moved on.
func (s *Sidecar) checkResult(now time.Time) bool {
	t, run := s.st.Active, s.run
	path := s.resultPath(t.TaskID)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		run.resultSeen = false
		return false
	}
	// Unchanged since the last tick and quiet for ResultSettle; a modtime
	// in the future (clock skew) only needs to be unchanged.
	quiet := now.Sub(fi.ModTime()) >= s.cfg.ResultSettle || fi.ModTime().After(now)
	stable := run.resultSeen && fi.Size() == run.resultSize && fi.ModTime().Equal(run.resultMod) && quiet
	run.resultSeen, run.resultSize, run.resultMod = true, fi.Size(), fi.ModTime()
	if !stable {
		return false
	}
	var out Outcome
	if fi.Size() > maxResultFile {
		out = Outcome{Reason: "result_parse_error: result file larger than 8 MiB"}
	} else if data, err := os.ReadFile(path); err != nil {
		s.log.Warn("cannot read the result file yet", "event", "result_watcher_error", "task_id", t.TaskID, "error", err)
		return false
	} else {
		out = ParseResult(data)
	}
	s.log.Info("result file found", "event", "result_watcher_result_file", "task_id", t.TaskID, "success", out.Success)
	if out.Usage != nil {
		t.Usage = t.Usage.Add(out.Usage.Normalize())
		s.save()
	}
	s.afterAgent(out)
	return true
}

func (s *Sidecar) onSubmitted(ev evSubmitted) {
	if ev.run != s.run || s.st.Active == nil {
		return
	}
	ev.run.submitBusy = false
	extra := map[string]any{}
	if ev.err != nil {
		s.log.Warn("git submit failed; reporting the task complete without a PR", "event", "git_submit_failed", "task_id", ev.run.taskID, "error", ev.err)
		extra["git_error"] = ev.err.Error()
		if ev.res.Pushed {
			extra["branch"] = ev.res.Branch
		}
	} else {
		s.log.Info("pull request ready", "event", "git_submit_ok", "task_id", ev.run.taskID, "pr_url", ev.res.PRURL)
		if ev.res.PRURL != "" {
			extra["pr_url"] = ev.res.PRURL
		}
		extra["branch"] = ev.res.Branch
	}
	s.finishOutcome(ev.outcome, extra)
}

func (s *Sidecar) finishOutcome(out Outcome, extra map[string]any) {
	if !out.Success {
		s.finish(Report{Type: reportFailed, Reason: out.Reason, Output: out.Output})
		return
	}
	res := out.Result
	if t := s.st.Active; t != nil {
		if extra == nil {
			extra = map[string]any{}
		}
		if len(t.Checks) > 0 {
			extra["verification"] = t.Checks
		}
		if !t.Usage.IsZero() {
			extra["usage"] = t.Usage
		}
	}
	if len(extra) > 0 {
		var m map[string]any
		if json.Unmarshal(res, &m) == nil {
			for k, v := range extra {
				m[k] = v
			}
			if b, err := json.Marshal(m); err == nil {
				res = b
			}
		}
	}
	s.finish(Report{Type: reportComplete, Result: res})
}

// finish ends the active task: the report goes to the outbox in the same
// durable write that clears the task, then the agent's files are removed
// and the report is sent.
func (s *Sidecar) finish(r Report) {
	if s.run != nil && s.run.started {
		// The last output (verification, exit marker) goes before the
		// report: the hub takes output only from the task's holder.
		s.streamOutput(time.Now(), true)
	}
	t := s.st.Active
	r.TaskID, r.Generation, r.CreatedAt = t.TaskID, t.Generation, time.Now().UnixMilli()
	if !t.Usage.IsZero() {
		u := t.Usage
		r.Usage = &u
	}
	if t.Run != nil && groupAlive(t.Run.PGID) {
		s.terminate(t.Run.PGID, t.TaskID, "task ended")
	}
	s.run.cancel()
	s.st.Active = nil
	s.st.Outbox = append(s.st.Outbox, r)
	s.save()
	s.removeTaskFiles(t.TaskID)
	s.removeOldLogs(time.Now())
	s.run = nil
	if r.Type == reportComplete {
		s.log.Info("task complete", "event", "task_complete", "task_id", t.TaskID, "generation", r.Generation)
	} else {
		s.log.Info("task failed", "event", "task_failed", "task_id", t.TaskID, "generation", r.Generation, "reason", r.Reason)
	}
	s.flushOutbox()
}

// flushOutbox sends every unacknowledged report not yet sent on this
// connection (and not waiting for a recovery answer).
func (s *Sidecar) flushOutbox() {
	if !s.identified || s.sess == nil {
		return
	}
	for _, r := range s.st.Outbox {
		if r.TaskID == s.recoverPending || containsStr(s.inflight, r.Type+"\x00"+r.TaskID) {
			continue
		}
		if s.sess.send(reportFrame(r)) {
			s.inflight = append(s.inflight, r.Type+"\x00"+r.TaskID)
		}
	}
}

// popInflight removes and returns the oldest in-flight report of typ.
func (s *Sidecar) popInflight(typ string) string {
	for i, k := range s.inflight {
		if t, id, _ := strings.Cut(k, "\x00"); t == typ {
			s.inflight = append(s.inflight[:i:i], s.inflight[i+1:]...)
			return id
		}
	}
	return ""
}

// removeInflight forgets the in-flight mark of report (typ, id); an empty
// typ matches both kinds.
func (s *Sidecar) removeInflight(typ, id string) {
	out := s.inflight[:0]
	for _, k := range s.inflight {
		if kt, kid, _ := strings.Cut(k, "\x00"); kid != id || (typ != "" && kt != typ) {
			out = append(out, k)
		}
	}
	s.inflight = out
}

func (s *Sidecar) hasReport(id string) bool {
	for _, r := range s.st.Outbox {
		if r.TaskID == id {
			return true
		}
	}
	return false
}

// dropReport removes the oldest report (typ, id) from the outbox; an empty
// typ matches both kinds.
func (s *Sidecar) dropReport(typ, id string) {
	for i, r := range s.st.Outbox {
		if r.TaskID == id && (typ == "" || r.Type == typ) {
			s.st.Outbox = append(s.st.Outbox[:i:i], s.st.Outbox[i+1:]...)
			s.save()
			return
		}
	}
}

// dropReports removes every report for the task.
func (s *Sidecar) dropReports(id string) {
	out := s.st.Outbox[:0]
	for _, r := range s.st.Outbox {
		if r.TaskID != id {
			out = append(out, r)
		}
	}
	s.st.Outbox = out
	s.save()
}

// save writes the state; a failure is logged loudly (the in-memory state
// stays authoritative and the next save retries).
func (s *Sidecar) save() {
	if err := SaveState(s.cfg.StateFile, s.st); err != nil {
		s.log.Error("cannot save the state file", "event", "state_write_error", "error", err)
	}
}

func (s *Sidecar) newRun(id string) *taskRun {
	ctx, cancel := context.WithCancel(s.ctx)
	return &taskRun{taskID: id, ctx: ctx, cancel: cancel}
}

// removeTaskFiles deletes the agent's files of a finished task.
func (s *Sidecar) removeTaskFiles(id string) {
	for _, p := range []string{s.resultPath(id), s.startedPath(id), s.taskFilePath(id), s.exitPath(id), s.feedbackPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("cannot remove a task file", "event", "cleanup_error", "task_id", id, "path", p, "error", err)
		}
	}
}

// removeStaleTaskFiles deletes task files of tasks no longer held.
func (s *Sidecar) removeStaleTaskFiles() {
	dir := filepath.Join(filepath.Dir(s.cfg.StateFile), "tasks")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if s.st.Active != nil && e.Name() == s.st.Active.TaskID+".json" {
			continue
		}
		_ = os.Remove(filepath.Join(dir, e.Name()))
	}
}

func isOnboardingTest(meta json.RawMessage) bool {
	var m struct {
		OnboardingTest bool `json:"onboarding_test"`
	}
	return json.Unmarshal(meta, &m) == nil && m.OnboardingTest
}

func metadataString(meta json.RawMessage, k string) string {
	var m map[string]any
	if json.Unmarshal(meta, &m) != nil {
		return ""
	}
	v, _ := m[k].(string)
	return v
}

func genPtr(g int64) *int64 {
	if g < 0 {
		return nil
	}
	return &g
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
