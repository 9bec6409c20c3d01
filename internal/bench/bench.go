// Package bench is AgentCom's load tool. It drives a hub (in-process on a
// temporary data directory, a child "agentcom serve" process, or a running
// hub) through real loopback WebSockets with simulated agents, each its own
// connection speaking the sidecar protocol, and measures throughput,
// latency percentiles, memory and storage stalls.
//
// Scenarios: tasks (submit over HTTP while agents accept and complete),
// messages (direct messages between agents), broadcast (one sender, every
// agent receives), idle (connected agents pinging; hub memory and CPU),
// storage (writer stalls during a backup and a compaction of a large
// table) and restart (time until a hub with many stored records serves).
//
// In-process runs turn the hub's rate limits off, and the hub and the load
// generator share the machine's CPUs; the report says so.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Scenario names.
const (
	ScenarioTasks     = "tasks"
	ScenarioMessages  = "messages"
	ScenarioBroadcast = "broadcast"
	ScenarioIdle      = "idle"
	ScenarioStorage   = "storage"
	ScenarioRestart   = "restart"
	ScenarioAll       = "all"
)

// Scenarios lists the scenarios "all" runs, in order.
func Scenarios() []string {
	return []string{ScenarioTasks, ScenarioMessages, ScenarioBroadcast, ScenarioIdle, ScenarioStorage, ScenarioRestart}
}

// ErrUnknownScenario is returned for a scenario name not in Scenarios.
var ErrUnknownScenario = errors.New("unknown scenario")

// Options configure a run. Zero values take the defaults of
// DefaultOptions.
type Options struct {
	Scenario string
	// Agents is how many simulated agents connect (each its own socket).
	Agents int
	// Tasks is how many tasks the tasks scenario submits at once.
	Tasks int
	// Samples is how many tasks the tasks scenario then submits one at a
	// time, with every agent idle, to measure submit → task_assign alone.
	Samples int
	// Messages is how many direct messages the messages scenario sends.
	Messages int
	// Broadcasts is how many broadcasts the broadcast scenario sends, one
	// after the other.
	Broadcasts int
	// Window is how many messages each sender may have unacknowledged.
	// The hub reads a socket's frames one at a time, so a ping queued
	// behind a long window is read late, and an overloaded hub then
	// closes the socket as stale; 1 (send, wait for message_sent) is what
	// an agent does.
	Window int
	// Submitters is how many HTTP clients submit tasks concurrently.
	Submitters int
	// Batch is how many tasks each request of the tasks scenario's flood
	// submits: 1 (or 0) posts them one by one to /api/tasks, more posts
	// them through /api/tasks/batch (at most MaxBatch).
	Batch int
	// ConnectWorkers is how many agents connect at the same time.
	ConnectWorkers int
	// Duration is how long the idle scenario holds its connections.
	Duration time.Duration
	// PingInterval is how often each idle agent pings (the sidecar's 30 s).
	PingInterval time.Duration
	// StorageRecords is the size of the storage scenario's table.
	StorageRecords int
	// StorageWriters is how many goroutines write during maintenance.
	StorageWriters int
	// StoragePhase is how long the writers run alone before the backup
	// (the baseline); half of it separates the backup from the compaction
	// and follows the compaction.
	StoragePhase time.Duration
	// Records is how many records the restart scenario stores first.
	Records int
	// RecordKind is what the restart scenario stores: "tasks" (queued
	// tasks, loaded into memory at start), "ended-tasks" (submitted then
	// cancelled: history, only summarized at start) or "mailbox" (mailbox
	// messages).
	RecordKind string

	// HubURLs target running hubs instead of starting one: one hub, or
	// the hubs of one cluster, over which the agents are spread
	// round-robin, and so are the task submits. Token is an admin token
	// every one of them accepts.
	HubURLs []string
	Token   string
	// HubCommand starts a hub process; with it the idle scenario measures
	// a hub of its own (not sharing memory with the load generator), and
	// ChildHub makes every hub scenario use one.
	HubCommand HubCommand
	ChildHub   bool

	// HeapProfile, when set, is where the idle scenario writes a heap
	// profile of this process at the end of its hold, connections open:
	// with an in-process hub it shows what each connection holds.
	HeapProfile string

	// TempDir holds the scenarios' data directories (default: the OS temp
	// directory); each is removed afterwards.
	TempDir string
	// Progress receives a progress line, rewritten in place (nil: none).
	Progress io.Writer
	// Timeout caps each scenario.
	Timeout time.Duration
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		Scenario: ScenarioAll, Agents: 100, Tasks: 10000, Samples: 500, Messages: 20000, Broadcasts: 50,
		Window: 1, Submitters: 32, ConnectWorkers: 32, Duration: 30 * time.Second, PingInterval: 30 * time.Second,
		StorageRecords: 100000, StorageWriters: 4, StoragePhase: 2 * time.Second, Records: 1000000, RecordKind: "tasks",
		Timeout: 15 * time.Minute,
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	if o.Scenario == "" {
		o.Scenario = d.Scenario
	}
	set(&o.Agents, d.Agents)
	set(&o.Tasks, d.Tasks)
	set(&o.Samples, d.Samples)
	set(&o.Messages, d.Messages)
	set(&o.Broadcasts, d.Broadcasts)
	set(&o.Window, d.Window)
	set(&o.Submitters, d.Submitters)
	set(&o.ConnectWorkers, d.ConnectWorkers)
	set(&o.StorageRecords, d.StorageRecords)
	set(&o.StorageWriters, d.StorageWriters)
	set(&o.Records, d.Records)
	setD(&o.Duration, d.Duration)
	setD(&o.PingInterval, d.PingInterval)
	setD(&o.Timeout, d.Timeout)
	setD(&o.StoragePhase, d.StoragePhase)
	if o.RecordKind == "" {
		o.RecordKind = d.RecordKind
	}
}

func (o *Options) tempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp(o.TempDir, "agentcom-bench-"+prefix)
	if err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	return dir, nil
}

// Report is the outcome of a run: the machine, how the hub ran, and one
// Result per scenario.
type Report struct {
	Started    time.Time `json:"started"`
	GoVersion  string    `json:"go_version"`
	Platform   string    `json:"platform"`
	NumCPU     int       `json:"num_cpu"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	OpenFiles  uint64    `json:"open_file_limit"`
	LoadAvg    string    `json:"load_avg_start"`
	LoadAvgEnd string    `json:"load_avg_end"`
	HubURL     string    `json:"hub_url,omitempty"`
	// HubURLs and Hubs are set when the run drove several hubs.
	HubURLs     []string  `json:"hub_urls,omitempty"`
	Hubs        int       `json:"hubs,omitempty"`
	Notes       []string  `json:"notes"`
	Scenarios   []*Result `json:"scenarios"`
	ElapsedSecs float64   `json:"elapsed_s"`
}

// Result is one scenario's figures.
type Result struct {
	Scenario string         `json:"scenario"`
	Hub      string         `json:"hub"` // in-process, child-process, remote, or local-store
	Params   map[string]any `json:"params"`
	Figures  []Figure       `json:"figures"`
	Notes    []string       `json:"notes,omitempty"`
	Error    string         `json:"error,omitempty"`
	LoadAvg  string         `json:"load_avg"` // at the scenario's end
	Elapsed  float64        `json:"elapsed_s"`
}

// Figure is one measured value, with the goal it is held against when
// there is one. Met is set only when the run's parameters match the
// goal's (e.g. the agent count it names).
type Figure struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

func (r *Result) add(f ...Figure) { r.Figures = append(r.Figures, f...) }

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// goal attaches a target to the last figure named name. applies says
// whether this run's parameters are the target's; ok whether it was met.
func (r *Result) goal(name, target string, applies, ok bool) {
	for i := len(r.Figures) - 1; i >= 0; i-- {
		if r.Figures[i].Name == name {
			r.Figures[i].Target = target
			if applies {
				r.Figures[i].Met = &ok
			}
			return
		}
	}
}

// runner carries what every scenario shares.
type runner struct {
	o     *Options
	clock time.Time    // stamps are microseconds since this
	api   *http.Client // HTTP API calls, pooled
	post  *poster      // the load's POSTs to plain http hubs
	dial  *http.Client // WebSocket handshakes
	prog  *progress
}

// now returns microseconds since the run's clock started (a stamp).
func (r *runner) now() int64 { return time.Since(r.clock).Microseconds() }

// since turns a stamp into the time elapsed from it to at.
func (r *runner) since(t0 int64, at time.Time) time.Duration {
	return at.Sub(r.clock) - time.Duration(t0)*time.Microsecond
}

type scenarioFunc func(ctx context.Context, r *runner, res *Result) error

func scenarioFuncs() map[string]scenarioFunc {
	return map[string]scenarioFunc{
		ScenarioTasks: runTasks, ScenarioMessages: runMessages, ScenarioBroadcast: runBroadcast,
		ScenarioIdle: runIdle, ScenarioStorage: runStorage, ScenarioRestart: runRestart,
	}
}

// Run runs the scenarios o asks for and reports their figures. A failing
// scenario is recorded in its Result and the others still run; the error
// returned joins every failure.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.fill()
	names := []string{o.Scenario}
	if o.Scenario == ScenarioAll {
		names = Scenarios()
	}
	funcs := scenarioFuncs()
	for _, n := range names {
		if funcs[n] == nil {
			return nil, fmt.Errorf("%w %q (want %s or all)", ErrUnknownScenario, n, strings.Join(Scenarios(), ", "))
		}
	}
	if o.remote() && slices.Contains(names, ScenarioRestart) && o.Scenario != ScenarioAll {
		return nil, errors.New("the restart scenario starts its own hub; it cannot use --hub")
	}
	rep := &Report{Started: time.Now(), GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), LoadAvg: loadAvg()}
	switch n := len(o.HubURLs); {
	case n == 1:
		rep.HubURL = o.HubURLs[0]
	case n > 1:
		rep.HubURLs, rep.Hubs = o.HubURLs, n
	}
	// Every agent holds a socket here, and its peer end too when the hub
	// runs in this process (the idle scenario runs it as a child when it
	// can).
	want := uint64(o.Agents) + 1024
	inProcess := !o.remote() && (o.HubCommand == nil || !o.ChildHub &&
		slices.ContainsFunc(names, func(n string) bool { return n != ScenarioIdle && n != ScenarioStorage && n != ScenarioRestart }))
	if inProcess {
		want += uint64(o.Agents)
	}
	lim, err := raiseFileLimit(want)
	rep.OpenFiles = lim
	if err != nil {
		rep.Notes = append(rep.Notes, "could not raise the open-file limit: "+err.Error())
	}
	if lim < want {
		rep.Notes = append(rep.Notes, fmt.Sprintf("open-file limit %d is below the %d this run needs; connections may fail", lim, want))
	}
	rep.Notes = append(rep.Notes, hubNote(&o))

	r := &runner{o: &o, clock: time.Now(), prog: newProgress(o.Progress),
		api: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: o.Submitters + 8,
			MaxConnsPerHost: o.Submitters + 8, IdleConnTimeout: 30 * time.Second}},
		dial: &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}},
		post: newPoster(o.Submitters + 8),
	}
	defer r.api.CloseIdleConnections()
	defer r.post.closeIdle()

	var errs []error
	for _, n := range names {
		res := &Result{Scenario: n, Params: map[string]any{}}
		if o.remote() && n == ScenarioRestart {
			res.Error = "skipped: the restart scenario starts its own hub and cannot use --hub"
			rep.Scenarios = append(rep.Scenarios, res)
			continue
		}
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, o.Timeout)
		err := funcs[n](sctx, r, res)
		cancel()
		if len(o.HubURLs) > 1 && res.Hub == KindRemote {
			res.Params["hubs"] = len(o.HubURLs)
		}
		r.prog.end()
		res.Elapsed = time.Since(start).Seconds()
		res.LoadAvg = loadAvg()
		if err != nil {
			res.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
		rep.Scenarios = append(rep.Scenarios, res)
		if ctx.Err() != nil {
			break
		}
	}
	rep.LoadAvgEnd = loadAvg()
	rep.ElapsedSecs = time.Since(rep.Started).Seconds()
	return rep, errors.Join(errs...)
}

func hubNote(o *Options) string {
	switch {
	case len(o.HubURLs) > 1:
		return fmt.Sprintf("hub: remote cluster of %d hubs, %s (their rate limits apply; agents identify with the admin token); agents are spread round-robin over the hubs, and so are task submits; storage runs on a local store, restart is skipped",
			len(o.HubURLs), strings.Join(o.HubURLs, ", "))
	case o.remote():
		return "hub: remote " + o.HubURLs[0] + " (its rate limits apply; agents identify with the admin token); storage runs on a local store, restart is skipped"
	case o.ChildHub && o.HubCommand != nil:
		return "hub: child process per scenario on a temp data directory, rate limits off; hub and load generator share the machine's CPUs"
	default:
		s := "hub: in-process on a temp data directory, rate limits off; hub and load generator share the machine's CPUs"
		if o.HubCommand != nil {
			s += "; the idle scenario runs its hub as a child process to measure its memory alone"
		}
		return s
	}
}

// remote reports whether the run drives running hubs.
func (o *Options) remote() bool { return len(o.HubURLs) > 0 }

func selfPID() int { return os.Getpid() }
