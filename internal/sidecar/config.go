package sidecar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
)

// ErrConfig marks a configuration that cannot be used.
var ErrConfig = errors.New("invalid sidecar config")

// Config is the sidecar configuration: the fields of the original
// config.json plus the knobs the original hard-coded. Every field can be
// overridden by an environment variable AGENTCOM_SIDECAR_<FIELD IN UPPER CASE>
// (ConfigFields lists them with their meaning and default). Relative paths
// are resolved against the directory of the config file, once.
type Config struct {
	AgentID string
	Token   string
	HubURL  string // WebSocket URL of the hub's /ws (the first hub tried)
	// HubURLs are the agent sockets of the hubs of one cluster, tried in
	// turn: when one is unreachable or goes away, the next. Empty means
	// HubURL alone.
	HubURLs      []string
	HubAPIURL    string // HTTP base URL of the hub
	Capabilities []string

	// WakeCommand is run to wake the agent for a task. A single string
	// runs through /bin/sh -c (the task reaches it only through the
	// environment, never by text substitution); several strings are an
	// argument vector run without a shell. Empty: no wake, the task is
	// "working" at once.
	WakeCommand []string
	WakeShell   bool
	// RunCommand (run mode) is the agent itself: it runs for the task's
	// whole life. Exclusive with WakeCommand.
	RunCommand          []string
	RunShell            bool
	RunTimeout          time.Duration
	KillGrace           time.Duration
	WorkDir             string
	TaskLogDir          string
	OutputInterval      time.Duration
	OutputChunk         int
	VerifyTimeout       time.Duration
	MaxVerifyAttempts   int
	DenyTaskVerify      bool
	WakeTimeout         time.Duration
	WakeRetryDelays     []time.Duration
	ConfirmationTimeout time.Duration

	ResultsDir string
	StateFile  string
	LogFile    string
	LogLevel   string

	RepoDir   string
	Reviewer  string
	GitRemote string
	GitBase   string

	PingInterval     time.Duration
	PongTimeout      time.Duration
	ReconnectMin     time.Duration
	ReconnectMax     time.Duration
	AuthRetry        time.Duration
	ProgressInterval time.Duration
	PollInterval     time.Duration
	ResultSettle     time.Duration
	ShutdownTimeout  time.Duration

	// Path is the file the config was read from ("" when built in code).
	Path string
	// Unknown lists keys of the file that are not config fields (typos).
	Unknown []string
}

// ConfigField documents one config key.
type ConfigField struct {
	Key, Env, Default, Doc string
	set                    func(c *Config, raw json.RawMessage) error
	env                    func(c *Config, s string) error
}

// ConfigFields returns every config key with its environment variable,
// default and meaning, in file order.
func ConfigFields() []ConfigField {
	fs := []ConfigField{
		strF("agent_id", "", "required. The agent's identity, sent in identify and used as its name", func(c *Config) *string { return &c.AgentID }),
		strF("token", "", "required. The agent's hub token (sent in identify; never logged)", func(c *Config) *string { return &c.Token }),
		strF("hub_url", "", "required unless hub_urls is given. The hub's agent socket, e.g. ws://hub:4000/ws (http:// is turned into ws://, a missing path into /ws)", func(c *Config) *string { return &c.HubURL }),
		listF("hub_urls", "[hub_url]", fmt.Sprintf("the agent sockets of several hubs of one cluster (at most %d), written like hub_url: the sidecar moves to the next when one is unreachable or goes away (closed, restarting, shutting down), at once, and backs off only after a full round failed. With hub_url too, hub_url must be one of them and is tried first (env: comma-separated)", MaxHubURLs), func(c *Config) *[]string { return &c.HubURLs }),
		strF("hub_api_url", "derived from hub_url (the first of hub_urls)", "the hub's HTTP base URL, given to the wake command as HUB_URL and used in PR links", func(c *Config) *string { return &c.HubAPIURL }),
		listF("capabilities", "[]", "capabilities sent in identify (env: comma-separated)", func(c *Config) *[]string { return &c.Capabilities }),
		cmdF("wake_command", "command that wakes the agent and returns (the agent then works in the background and writes <task_id>.json): a string runs through /bin/sh -c, an array runs as an argument vector. The task reaches it through TASK_ID, TASK_FILE, TASK_DESCRIPTION, TASK_JSON, TASK_GENERATION, RESULTS_DIR, RESULT_FILE, STARTED_FILE, HUB_URL, HUB_WS_URL, AGENT_ID; never by text substitution",
			func(c *Config) (*[]string, *bool) { return &c.WakeCommand, &c.WakeShell }),
		cmdF("run_command", "run mode (instead of wake_command): the command IS the agent and runs for the task's whole life, in its own process group, with no fixed timeout; its output is kept in the task log and streamed to the hub, and its exit code (or <task_id>.json, when written) decides the outcome. Same environment as wake_command plus TASK_LOG_FILE, RUN_ATTEMPT and, on a verification retry, VERIFY_FEEDBACK / VERIFY_FEEDBACK_FILE",
			func(c *Config) (*[]string, *bool) { return &c.RunCommand, &c.RunShell }),
		msF("run_timeout_ms", 0, "run mode: longest one agent run may take before it is stopped (0: no limit besides the task's own deadline)", func(c *Config) *time.Duration { return &c.RunTimeout }),
		msF("kill_grace_ms", 10*time.Second, "run mode: after SIGTERM to the agent's process group (cancel, reassignment, timeout), how long before SIGKILL", func(c *Config) *time.Duration { return &c.KillGrace }),
		strF("work_dir", "repo_dir, else the state file's directory", "working directory of run_command and of verification commands; when set, of wake_command too (which otherwise runs in the state file's directory, as in the original)", func(c *Config) *string { return &c.WorkDir }),
		strF("task_log_dir", "<state dir>/logs", "run mode: per-task output logs (<task_id>.log, stdout and stderr combined); removed 7 days after the task ends", func(c *Config) *string { return &c.TaskLogDir }),
		msF("output_interval_ms", time.Second, "run mode: at most one output frame per this period (rate limit of live output)", func(c *Config) *time.Duration { return &c.OutputInterval }),
		intF("output_chunk_bytes", 16<<10, "run mode: largest output chunk per frame; output arriving faster is cut, oldest first, with a note of the bytes skipped (max 65536)", func(c *Config) *int { return &c.OutputChunk }),
		msF("verify_timeout_ms", 10*time.Minute, "longest one verification command may run", func(c *Config) *time.Duration { return &c.VerifyTimeout }),
		intF("max_verify_attempts", 3, "agent runs allowed when a task has verify commands but no max_verify_attempts of its own (max 10)", func(c *Config) *int { return &c.MaxVerifyAttempts }),
		boolF("deny_task_verify", false, "true: do not run the verification commands tasks carry (metadata.verify); such tasks fail with verify_not_allowed", func(c *Config) *bool { return &c.DenyTaskVerify }),
		msF("wake_timeout_ms", 60*time.Second, "how long one wake attempt may run before it is killed", func(c *Config) *time.Duration { return &c.WakeTimeout }),
		{Key: "wake_retry_delays_ms", Default: "[5000,15000,30000]", Doc: "pauses between wake attempts; one attempt more than pauses (env: comma-separated)",
			set: func(c *Config, raw json.RawMessage) error {
				var v []json.Number
				if err := json.Unmarshal(raw, &v); err != nil {
					return errors.New("must be an array of integers")
				}
				strs := make([]string, len(v))
				for i, n := range v {
					strs[i] = n.String()
				}
				return setRetryDelays(c, strs)
			},
			env: func(c *Config, s string) error { return setRetryDelays(c, splitList(s)) }},
		msF("confirmation_timeout_ms", 30*time.Second, "after a successful wake, how long to wait for <task_id>.started (0 means the default)", func(c *Config) *time.Duration { return &c.ConfirmationTimeout }),
		strF("results_dir", "./results", "where the agent writes <task_id>.started and <task_id>.json; created at start", func(c *Config) *string { return &c.ResultsDir }),
		strF("state_file", "./queue.json", "the sidecar's durable state (current task and unacknowledged reports); task files go to tasks/ beside it", func(c *Config) *string { return &c.StateFile }),
		strF("log_file", "standard error", "JSON log file, appended to and rotated at 10 MiB (one old file kept)", func(c *Config) *string { return &c.LogFile }),
		strF("log_level", "info", "debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
		strF("repo_dir", "none", "a git checkout: when set, a task branch is started before the wake and pushed with a PR after success", func(c *Config) *string { return &c.RepoDir }),
		strF("reviewer", "none", "GitHub user asked to review the PRs", func(c *Config) *string { return &c.Reviewer }),
		strF("git_remote", "origin", "remote the task branches are fetched from and pushed to", func(c *Config) *string { return &c.GitRemote }),
		strF("git_base", "main", "branch the task branches start from and PRs target", func(c *Config) *string { return &c.GitBase }),
		msF("ping_interval_ms", 30*time.Second, "application ping period", func(c *Config) *time.Duration { return &c.PingInterval }),
		msF("pong_timeout_ms", 10*time.Second, "a ping not answered within this closes the connection", func(c *Config) *time.Duration { return &c.PongTimeout }),
		msF("reconnect_min_ms", time.Second, "first reconnect delay; doubles up to reconnect_max_ms, with jitter, and resets only after identified", func(c *Config) *time.Duration { return &c.ReconnectMin }),
		msF("reconnect_max_ms", 60*time.Second, "longest reconnect delay", func(c *Config) *time.Duration { return &c.ReconnectMax }),
		msF("auth_retry_ms", 5*time.Minute, "delay before trying again after the hub rejected the token", func(c *Config) *time.Duration { return &c.AuthRetry }),
		msF("progress_interval_ms", 30*time.Second, "task_progress period while a task runs (extends the hub's lease)", func(c *Config) *time.Duration { return &c.ProgressInterval }),
		msF("poll_interval_ms", 250*time.Millisecond, "how often results_dir is checked", func(c *Config) *time.Duration { return &c.PollInterval }),
		msF("result_settle_ms", 500*time.Millisecond, "a result file is read once it has not changed for this long", func(c *Config) *time.Duration { return &c.ResultSettle }),
		msF("shutdown_timeout_ms", 5*time.Second, "how long a stop may wait for the hub to acknowledge the close", func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
	}
	for i := range fs {
		fs[i].Env = "AGENTCOM_SIDECAR_" + strings.ToUpper(fs[i].Key)
	}
	return fs
}

// LoadConfig reads a JSON config file, applies environment overrides
// (getenv may be nil), fills defaults, resolves relative paths against the
// file's directory and validates the result.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(data, getenv)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Config{}, err
	}
	c.Path = abs
	c.resolvePaths(filepath.Dir(abs))
	return c, nil
}

// ParseConfig decodes config JSON, applies environment overrides and
// defaults and validates. Relative paths are left relative (LoadConfig
// resolves them).
func ParseConfig(data []byte, getenv func(string) string) (Config, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return Config{}, fmt.Errorf("%w: not a JSON object: %v", ErrConfig, err)
	}
	var c Config
	fields := ConfigFields()
	known := map[string]bool{}
	for _, f := range fields {
		known[f.Key] = true
		v, ok := raw[f.Key]
		if !ok || string(v) == "null" {
			continue
		}
		if err := f.set(&c, v); err != nil {
			return Config{}, fmt.Errorf("%w: %s: %v", ErrConfig, f.Key, err)
		}
	}
	for k := range raw {
		if !known[k] {
			c.Unknown = append(c.Unknown, k)
		}
	}
	sort.Strings(c.Unknown)
	if getenv != nil {
		for _, f := range fields {
			if s := getenv(f.Env); s != "" {
				if err := f.env(&c, s); err != nil {
					return Config{}, fmt.Errorf("%w: %s: %v", ErrConfig, f.Env, err)
				}
			}
		}
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// applyDefaults fills every zero field with its default.
func (c *Config) applyDefaults() {
	setDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	setDur(&c.WakeTimeout, 60*time.Second)
	if c.WakeRetryDelays == nil {
		c.WakeRetryDelays = []time.Duration{5 * time.Second, 15 * time.Second, 30 * time.Second}
	}
	setDur(&c.ConfirmationTimeout, 30*time.Second)
	setDur(&c.PingInterval, 30*time.Second)
	setDur(&c.PongTimeout, 10*time.Second)
	setDur(&c.ReconnectMin, time.Second)
	setDur(&c.ReconnectMax, 60*time.Second)
	setDur(&c.AuthRetry, 5*time.Minute)
	setDur(&c.ProgressInterval, 30*time.Second)
	setDur(&c.PollInterval, 250*time.Millisecond)
	setDur(&c.ResultSettle, 500*time.Millisecond)
	setDur(&c.ShutdownTimeout, 5*time.Second)
	setDur(&c.KillGrace, 10*time.Second)
	setDur(&c.OutputInterval, time.Second)
	setDur(&c.VerifyTimeout, 10*time.Minute)
	if c.OutputChunk <= 0 {
		c.OutputChunk = 16 << 10
	}
	if c.MaxVerifyAttempts <= 0 {
		c.MaxVerifyAttempts = 3
	}
	if c.ResultsDir == "" {
		c.ResultsDir = "./results"
	}
	if c.StateFile == "" {
		c.StateFile = "./queue.json"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.GitRemote == "" {
		c.GitRemote = "origin"
	}
	if c.GitBase == "" {
		c.GitBase = "main"
	}
	if c.Capabilities == nil {
		c.Capabilities = []string{}
	}
	if len(c.HubURLs) > 0 {
		// A new slice: the caller's stays as it gave it.
		hubs := make([]string, len(c.HubURLs))
		for i, h := range c.HubURLs {
			hubs[i] = h
			if u, err := normalizeWSURL(h); err == nil {
				hubs[i] = u
			}
		}
		c.HubURLs = hubs
	}
	if strings.TrimSpace(c.HubURL) == "" && len(c.HubURLs) > 0 {
		c.HubURL = c.HubURLs[0]
	}
	if u, err := normalizeWSURL(c.HubURL); err == nil {
		c.HubURL = u
	}
	if c.HubAPIURL == "" {
		c.HubAPIURL = apiURLFromWS(c.HubURL)
	}
	c.HubAPIURL = strings.TrimRight(c.HubAPIURL, "/")
}

// Validate reports the first problem that makes the config unusable.
func (c *Config) Validate() error {
	for _, r := range []struct{ k, v string }{{"agent_id", c.AgentID}, {"token", c.Token}} {
		if strings.TrimSpace(r.v) == "" {
			return fmt.Errorf("%w: missing required field %s", ErrConfig, r.k)
		}
	}
	if strings.TrimSpace(c.HubURL) == "" && len(c.HubURLs) == 0 {
		return fmt.Errorf("%w: missing required field hub_url (or hub_urls)", ErrConfig)
	}
	if err := protocol.CheckAgentID(c.AgentID); err != nil {
		return fmt.Errorf("%w: agent_id: %v", ErrConfig, err)
	}
	if err := c.validateHubs(); err != nil {
		return err
	}
	if c.ReconnectMax < c.ReconnectMin {
		return fmt.Errorf("%w: reconnect_max_ms is below reconnect_min_ms", ErrConfig)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("%w: log_level %q is not debug, info, warn or error", ErrConfig, c.LogLevel)
	}
	if len(c.WakeCommand) > 0 && strings.TrimSpace(c.WakeCommand[0]) == "" {
		return fmt.Errorf("%w: wake_command has an empty program", ErrConfig)
	}
	if len(c.RunCommand) > 0 && strings.TrimSpace(c.RunCommand[0]) == "" {
		return fmt.Errorf("%w: run_command has an empty program", ErrConfig)
	}
	if len(c.RunCommand) > 0 && len(c.WakeCommand) > 0 {
		return fmt.Errorf("%w: set wake_command (the command wakes the agent and returns) or run_command (the command is the agent), not both", ErrConfig)
	}
	if c.OutputChunk > 64<<10 {
		return fmt.Errorf("%w: output_chunk_bytes is above 65536", ErrConfig)
	}
	if c.MaxVerifyAttempts > 10 {
		return fmt.Errorf("%w: max_verify_attempts is above 10", ErrConfig)
	}
	return nil
}

// MaxHubURLs bounds hub_urls: a cluster is a handful of hubs, and every
// one is tried before the sidecar backs off.
const MaxHubURLs = 32

// NormalizeHubURL turns a hub address as an operator writes it (ws://,
// wss://, http:// or https://, with or without the /ws path) into the
// agent socket URL the sidecar dials.
func NormalizeHubURL(s string) (string, error) { return normalizeWSURL(s) }

// validateHubs checks hub_url and every entry of hub_urls, and that the
// two agree when both are given.
func (c *Config) validateHubs() error {
	if len(c.HubURLs) > MaxHubURLs {
		return fmt.Errorf("%w: hub_urls lists %d hubs, at most %d", ErrConfig, len(c.HubURLs), MaxHubURLs)
	}
	seen := make(map[string]bool, len(c.HubURLs))
	for i, h := range c.HubURLs {
		u, err := normalizeWSURL(h)
		if err != nil {
			return fmt.Errorf("%w: hub_urls[%d]: %v", ErrConfig, i, err)
		}
		if seen[u] {
			return fmt.Errorf("%w: hub_urls lists %s twice", ErrConfig, redactURL(u))
		}
		seen[u] = true
	}
	u, err := normalizeWSURL(c.HubURL)
	if err != nil {
		return fmt.Errorf("%w: hub_url: %v", ErrConfig, err)
	}
	if len(c.HubURLs) > 0 && !seen[u] {
		// Two lists of where the hub is that disagree: guessing which one
		// the operator meant would connect the agent to the wrong place.
		return fmt.Errorf("%w: hub_url %s is not one of hub_urls; give only hub_urls, or a hub_url that is one of them", ErrConfig, redactURL(u))
	}
	return nil
}

// Hubs returns the agent sockets the sidecar connects to, in the order it
// tries them: hub_urls, or hub_url alone.
func (c *Config) Hubs() []string {
	if len(c.HubURLs) == 0 {
		return []string{c.HubURL}
	}
	return c.HubURLs
}

// redactURL hides a password a URL may carry, for logs and errors.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.ResultsDir)
	abs(&c.StateFile)
	abs(&c.LogFile)
	abs(&c.RepoDir)
	abs(&c.WorkDir)
	abs(&c.TaskLogDir)
}

// normalizeWSURL accepts ws(s):// and http(s):// URLs and returns the
// WebSocket form, adding /ws when the path is empty.
func normalizeWSURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("%q is not a ws://, wss://, http:// or https:// URL", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws"
	}
	return u.String(), nil
}

// apiURLFromWS derives the HTTP base URL from the socket URL.
func apiURLFromWS(ws string) string {
	u, err := url.Parse(ws)
	if err != nil || u.Host == "" {
		return ""
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	return scheme + "://" + u.Host
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func strF(key, def, doc string, p func(*Config) *string) ConfigField {
	return ConfigField{Key: key, Default: def, Doc: doc,
		set: func(c *Config, raw json.RawMessage) error {
			if err := json.Unmarshal(raw, p(c)); err != nil {
				return errors.New("must be a string")
			}
			return nil
		},
		env: func(c *Config, s string) error { *p(c) = s; return nil }}
}

// cmdF is a command field: a string runs through the shell, an array of
// strings is an argument vector (env: always a shell string).
func cmdF(key, doc string, p func(*Config) (*[]string, *bool)) ConfigField {
	setShell := func(c *Config, s string) {
		argv, shell := p(c)
		*argv, *shell = nil, false
		if strings.TrimSpace(s) != "" {
			*argv, *shell = []string{s}, true
		}
	}
	return ConfigField{Key: key, Default: "none", Doc: doc,
		set: func(c *Config, raw json.RawMessage) error {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				setShell(c, s)
				return nil
			}
			var v []string
			if err := json.Unmarshal(raw, &v); err != nil {
				return errors.New("must be a string or an array of strings")
			}
			argv, shell := p(c)
			*argv, *shell = v, false
			return nil
		},
		env: func(c *Config, s string) error { setShell(c, s); return nil }}
}

func intF(key string, def int, doc string, p func(*Config) *int) ConfigField {
	parse := func(s string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a non-negative integer", s)
		}
		return n, nil
	}
	return ConfigField{Key: key, Default: strconv.Itoa(def), Doc: doc,
		set: func(c *Config, raw json.RawMessage) error {
			n, err := parse(string(raw))
			if err == nil {
				*p(c) = n
			}
			return err
		},
		env: func(c *Config, s string) error {
			n, err := parse(s)
			if err == nil {
				*p(c) = n
			}
			return err
		}}
}

func boolF(key string, def bool, doc string, p func(*Config) *bool) ConfigField {
	return ConfigField{Key: key, Default: strconv.FormatBool(def), Doc: doc,
		set: func(c *Config, raw json.RawMessage) error {
			if err := json.Unmarshal(raw, p(c)); err != nil {
				return errors.New("must be true or false")
			}
			return nil
		},
		env: func(c *Config, s string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("%q is not true or false", s)
			}
			*p(c) = b
			return nil
		}}
}

func listF(key, def, doc string, p func(*Config) *[]string) ConfigField {
	return ConfigField{Key: key, Default: def, Doc: doc,
		set: func(c *Config, raw json.RawMessage) error {
			if err := json.Unmarshal(raw, p(c)); err != nil {
				return errors.New("must be an array of strings")
			}
			return nil
		},
		env: func(c *Config, s string) error { *p(c) = splitList(s); return nil }}
}

// MaxDurationMs bounds every duration of the config (30 days), so that
// none overflows once turned into a time.Duration.
const MaxDurationMs = 30 * 24 * 3600 * 1000

// maxRetryDelays bounds wake_retry_delays_ms.
const maxRetryDelays = 20

// parseMs reads a duration field: an integer of milliseconds from 0 to
// MaxDurationMs.
func parseMs(s string) (time.Duration, error) {
	ms, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || ms < 0 || ms > MaxDurationMs {
		return 0, fmt.Errorf("%q is not an integer of milliseconds from 0 to %d", s, MaxDurationMs)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func setRetryDelays(c *Config, list []string) error {
	if len(list) > maxRetryDelays {
		return fmt.Errorf("at most %d delays", maxRetryDelays)
	}
	out := make([]time.Duration, 0, len(list))
	for _, s := range list {
		d, err := parseMs(s)
		if err != nil {
			return err
		}
		out = append(out, d)
	}
	c.WakeRetryDelays = out
	return nil
}

func msF(key string, def time.Duration, doc string, p func(*Config) *time.Duration) ConfigField {
	parse := parseMs
	return ConfigField{Key: key, Default: strconv.FormatInt(def.Milliseconds(), 10), Doc: doc,
		set: func(c *Config, raw json.RawMessage) error {
			d, err := parse(string(raw))
			if err == nil {
				*p(c) = d
			}
			return err
		},
		env: func(c *Config, s string) error {
			d, err := parse(s)
			if err == nil {
				*p(c) = d
			}
			return err
		}}
}

// ConfigHelp renders the field table for --help output.
func ConfigHelp() string {
	var b strings.Builder
	for _, f := range ConfigFields() {
		fmt.Fprintf(&b, "  %-24s (env %s, default %s)\n      %s\n", f.Key, f.Env, f.Default, f.Doc)
	}
	return b.String()
}
