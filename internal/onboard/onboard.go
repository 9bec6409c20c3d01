// Package onboard registers a new agent with a hub and sets up its sidecar
// on this machine (config, systemd user unit), verifying the whole path
// with a test task; Offboard undoes it.
package onboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/sidecar"
)

// Sentinel errors callers test with errors.Is.
var (
	ErrInvalidName        = errors.New("invalid agent name")
	ErrNameTaken          = errors.New("agent name already registered on the hub")
	ErrAlreadyOnboarded   = errors.New("agent already set up on this machine")
	ErrRegistrationClosed = errors.New("the hub does not accept registrations without a join secret")
	ErrVerifyFailed       = errors.New("end-to-end verification failed")
	ErrNotOnboarded       = errors.New("no such agent set up on this machine")
)

// ValidName reports whether name follows the hub's agent-id rule
// (protocol.CheckAgentID), which also makes it safe as a directory and a
// systemd unit name.
func ValidName(name string) bool { return protocol.CheckAgentID(name) == nil }

// ErrHostileHub is an answer from the hub that onboarding refuses to act
// on: an agent id, token or URL that breaks its rule.
var ErrHostileHub = errors.New("the hub's answer is not acceptable")

// validToken is the shape of a token the hub issues: 64 lowercase hex.
var validToken = regexp.MustCompile(`^[0-9a-f]{64}$`)

// checkRegistration holds what the hub answered to the rules the user's
// own input follows: the agent id is the one asked for and follows the
// agent-id rule, the token has the hub's token shape, and the socket URL
// is a plain ws:// or wss:// URL.
func checkRegistration(asked string, reg client.Registration) error {
	if reg.AgentID != asked {
		return fmt.Errorf("%w: registered %q but the hub answered agent id %q", ErrHostileHub, asked, reg.AgentID)
	}
	if err := protocol.CheckAgentID(reg.AgentID); err != nil {
		return fmt.Errorf("%w: %v", ErrHostileHub, err)
	}
	if !validToken.MatchString(reg.Token) {
		return fmt.Errorf("%w: the token is not 64 lowercase hex characters", ErrHostileHub)
	}
	if reg.HubWSURL != "" {
		if err := checkURL(reg.HubWSURL, "ws", "wss"); err != nil {
			return fmt.Errorf("%w: hub_ws_url: %v", ErrHostileHub, err)
		}
	}
	return nil
}

// checkURL accepts an absolute URL with one of schemes, a host, no user
// information, and no control characters, at most 2048 bytes.
func checkURL(raw string, schemes ...string) error {
	if len(raw) > 2048 {
		return errors.New("longer than 2048 bytes")
	}
	if strings.IndexFunc(raw, unicode.IsControl) >= 0 {
		return errors.New("contains a control character")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if !slices.Contains(schemes, u.Scheme) || u.Host == "" || u.User != nil || u.Opaque != "" {
		return fmt.Errorf("%q is not a %s URL with a host", raw, strings.Join(schemes, " or "))
	}
	return nil
}

// within returns filepath.Join(root, name) after checking the result is a
// direct child of root.
func within(root, name string) (string, error) {
	p := filepath.Join(root, name)
	if filepath.Dir(p) != filepath.Clean(root) || filepath.Base(p) != name {
		return "", fmt.Errorf("%w: %q would leave %s", ErrInvalidName, name, root)
	}
	return p, nil
}

// Options drive Onboard. Zero values get defaults.
type Options struct {
	// HubURLs are the HTTP base URLs of the hub, or of the hubs of one
	// cluster (at least one). The agent registers with the first that
	// answers; with several, the sidecar config lists them all (hub_urls)
	// so the sidecar fails over between them.
	HubURLs []string
	// Name is the agent id; empty picks a free Culture ship name.
	Name         string
	Capabilities []string
	JoinSecret   string
	// WakeCommand or RunCommand (run mode: the command is the agent) and
	// RepoDir go into the sidecar config when set.
	WakeCommand string
	RunCommand  string
	RepoDir     string

	// Home holds one directory per agent (default ~/.agentcom).
	Home string
	// UnitDir is where the systemd user unit goes (default
	// ~/.config/systemd/user).
	UnitDir string
	// Binary is the agentcom executable the unit runs (default: this
	// process's executable).
	Binary string
	// Systemctl is the systemctl binary used to enable and start the unit;
	// empty means "do not start it, print the commands".
	Systemctl string
	// RequireStart makes a unit that could not be started an error
	// (agentcom onboard --start).
	RequireStart bool

	// SkipVerify skips the test task.
	SkipVerify bool
	// VerifyTimeout bounds the test task (default 60 s).
	VerifyTimeout time.Duration
	// RunSidecar runs the sidecar in-process for the verification when no
	// service was started (default: sidecar.New(cfg).Run).
	RunSidecar func(ctx context.Context, cfg sidecar.Config) error

	HTTPClient *http.Client
	// Out receives progress lines (default io.Discard).
	Out io.Writer
}

// Result is what Onboard set up.
type Result struct {
	Name           string
	Dir            string
	ConfigPath     string
	UnitPath       string
	UnitName       string
	ServiceStarted bool
	// StartCommands are the commands to run the sidecar, printed when the
	// service was not started.
	StartCommands []string
	VerifyTaskID  string
}

// Onboard registers the agent, writes its sidecar config (mode 0600) and
// systemd user unit, starts the unit when it can, and verifies the path
// hub → sidecar → hub with a test task that targets this agent.
func Onboard(ctx context.Context, o Options) (Result, error) {
	var res Result
	o.fill()
	out := o.Out
	if len(o.HubURLs) == 0 {
		return res, errors.New("onboard: --hub is required")
	}
	if len(o.HubURLs) > sidecar.MaxHubURLs {
		return res, fmt.Errorf("onboard: %d hubs given, at most %d", len(o.HubURLs), sidecar.MaxHubURLs)
	}
	if o.WakeCommand != "" && o.RunCommand != "" {
		return res, errors.New("onboard: give --wake-command (it wakes the agent and returns) or --run-command (it is the agent), not both")
	}
	hubWS, err := hubSockets(o.HubURLs)
	if err != nil {
		return res, err
	}
	hub, err := firstHealthy(ctx, o, out)
	if err != nil {
		return res, err
	}

	fmt.Fprint(out, "[2/5] registering the agent... ")
	reg, err := register(ctx, hub, o)
	if err != nil {
		fmt.Fprintln(out, "FAILED")
		return res, err
	}
	res.Name = reg.AgentID
	fmt.Fprintf(out, "ok (%s)\n", res.Name)

	fmt.Fprint(out, "[3/5] writing the sidecar config... ")
	if res.Dir, err = within(o.Home, res.Name); err != nil {
		fmt.Fprintln(out, "FAILED")
		return res, err
	}
	res.ConfigPath = filepath.Join(res.Dir, "config.json")
	cfg, err := writeConfig(res.Dir, res.ConfigPath, hub.BaseURL(), hubWS, reg, o)
	if err != nil {
		fmt.Fprintln(out, "FAILED")
		return res, fmt.Errorf("onboard: %w (the agent is registered; run 'agentcom offboard --name %s' to undo)", err, res.Name)
	}
	fmt.Fprintf(out, "ok (%s)\n", res.ConfigPath)

	fmt.Fprint(out, "[4/5] installing the systemd user unit... ")
	res.UnitName = UnitName(res.Name)
	if res.UnitPath, err = within(o.UnitDir, res.UnitName); err != nil {
		fmt.Fprintln(out, "FAILED")
		return res, err
	}
	if err := writeUnit(res.UnitPath, o.Binary, res.ConfigPath, res.Name); err != nil {
		fmt.Fprintln(out, "FAILED")
		return res, fmt.Errorf("onboard: %w", err)
	}
	res.StartCommands = []string{
		"systemctl --user daemon-reload && systemctl --user enable --now " + res.UnitName,
		shellQuote(o.Binary) + " sidecar --config " + shellQuote(res.ConfigPath),
	}
	if o.Systemctl != "" {
		if err := startUnit(ctx, o.Systemctl, res.UnitName); err != nil {
			fmt.Fprintf(out, "written (%s), but not started: %v\n", res.UnitPath, err)
			if o.RequireStart {
				return res, fmt.Errorf("onboard: start %s: %w", res.UnitName, err)
			}
		} else {
			res.ServiceStarted = true
			fmt.Fprintf(out, "ok (%s, started)\n", res.UnitPath)
		}
	} else {
		fmt.Fprintf(out, "written (%s)\n", res.UnitPath)
	}
	if !res.ServiceStarted {
		fmt.Fprintf(out, "      start it with:  %s\n      or run directly: %s\n", res.StartCommands[0], res.StartCommands[1])
	}

	if o.SkipVerify {
		fmt.Fprintln(out, "[5/5] verification skipped")
		return res, nil
	}
	var notes []string
	switch {
	case len(cfg.RunCommand) > 0:
		notes = append(notes, "the test task goes through run_command")
	case len(cfg.WakeCommand) > 0:
		notes = append(notes, "the test task goes through wake_command")
	default:
		notes = append(notes, "no wake_command or run_command configured: the sidecar answers the test task itself, the agent is not tested")
	}
	if !res.ServiceStarted {
		notes = append(notes, "no sidecar service is running yet: one runs in this process for the test")
	}
	fmt.Fprint(out, "[5/5] verifying with a test task... ")
	defer func() {
		for _, n := range notes {
			fmt.Fprintf(out, "      %s\n", n)
		}
	}()
	id, err := verify(ctx, hub.WithToken(reg.Token), cfg, res.ServiceStarted, o)
	res.VerifyTaskID = id
	if err != nil {
		fmt.Fprintln(out, "FAILED")
		return res, err
	}
	fmt.Fprintf(out, "ok (%s completed)\n", id)
	return res, nil
}

func (o *Options) fill() {
	home, _ := os.UserHomeDir()
	if o.Home == "" {
		o.Home = filepath.Join(home, ".agentcom")
	}
	if o.UnitDir == "" {
		o.UnitDir = filepath.Join(home, ".config", "systemd", "user")
	}
	if o.Binary == "" {
		if exe, err := os.Executable(); err == nil {
			o.Binary = exe
		} else {
			o.Binary = "agentcom"
		}
	}
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = 60 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.RunSidecar == nil {
		o.RunSidecar = func(ctx context.Context, cfg sidecar.Config) error {
			s, err := sidecar.New(cfg, sidecar.Options{})
			if err != nil {
				return err
			}
			return s.Run(ctx)
		}
	}
	if o.Capabilities == nil {
		o.Capabilities = []string{"code"}
	}
}

// hubSockets returns the agent socket of every hub when there are several
// (the sidecar's hub_urls), nil for one hub. A URL the sidecar would refuse
// is refused here, before anything is registered.
func hubSockets(hubs []string) ([]string, error) {
	if len(hubs) < 2 {
		return nil, nil
	}
	out := make([]string, len(hubs))
	seen := make(map[string]bool, len(hubs))
	for i, h := range hubs {
		u, err := sidecar.NormalizeHubURL(h)
		if err != nil {
			return nil, fmt.Errorf("onboard: --hub: %w", err)
		}
		if seen[u] {
			return nil, fmt.Errorf("onboard: --hub lists the hub %s twice", redact(u))
		}
		seen[u] = true
		out[i] = u
	}
	return out, nil
}

// firstHealthy returns a client of the first hub that answers its health
// check: in a cluster the agent can register with any of them, and one
// hub being down must not stop onboarding.
func firstHealthy(ctx context.Context, o Options, out io.Writer) (*client.Client, error) {
	if len(o.HubURLs) == 1 {
		hub := client.New(o.HubURLs[0], "", o.HTTPClient)
		fmt.Fprintf(out, "[1/5] checking the hub at %s... ", redact(hub.BaseURL()))
		if _, err := hub.Health(ctx); err != nil {
			fmt.Fprintln(out, "FAILED")
			return nil, fmt.Errorf("onboard: hub not reachable: %w", err)
		}
		fmt.Fprintln(out, "ok")
		return hub, nil
	}
	fmt.Fprintf(out, "[1/5] checking the %d hubs...\n", len(o.HubURLs))
	var errs []error
	for _, u := range o.HubURLs {
		hub := client.New(u, "", o.HTTPClient)
		fmt.Fprintf(out, "      %s... ", redact(hub.BaseURL()))
		if _, err := hub.Health(ctx); err != nil {
			fmt.Fprintln(out, "not reachable")
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(out, "ok, registering here")
		return hub, nil
	}
	return nil, fmt.Errorf("onboard: no hub reachable: %w", errors.Join(errs...))
}

// redact hides a password a URL may carry.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// register registers o.Name, or the first free generated name.
func register(ctx context.Context, hub *client.Client, o Options) (client.Registration, error) {
	try := func(name string) (client.Registration, error) {
		reg, err := hub.Register(ctx, name, o.JoinSecret)
		var ce *client.Error
		switch {
		case err == nil:
			if reg.AgentID == "" {
				reg.AgentID = name
			}
			if reg.Token == "" {
				return reg, errors.New("onboard: the hub answered without a token")
			}
			if err := checkRegistration(name, reg); err != nil {
				return client.Registration{}, fmt.Errorf("onboard: %w (nothing was written)", err)
			}
			return reg, nil
		case client.IsConflict(err):
			return reg, fmt.Errorf("%w: %s", ErrNameTaken, name)
		case errors.As(err, &ce) && (ce.Status == http.StatusForbidden || ce.Status == http.StatusUnauthorized):
			if o.JoinSecret != "" {
				return reg, fmt.Errorf("%w: the join secret was refused (%s)", ErrRegistrationClosed, ce.Code)
			}
			return reg, fmt.Errorf("%w: pass --join-secret (the operator sets it with 'agentcom serve --join-secret') or ask for open registration (%s)", ErrRegistrationClosed, ce.Code)
		default:
			return reg, fmt.Errorf("onboard: register %s: %w", name, err)
		}
	}
	if o.Name != "" {
		if err := protocol.CheckAgentID(o.Name); err != nil {
			return client.Registration{}, fmt.Errorf("%w: %v", ErrInvalidName, err)
		}
		if exists(filepath.Join(o.Home, o.Name)) {
			return client.Registration{}, fmt.Errorf("%w: %s exists", ErrAlreadyOnboarded, filepath.Join(o.Home, o.Name))
		}
		return try(o.Name)
	}
	// Skip names of connected agents and of agents set up here, then let
	// the hub's 409 catch the rest.
	connected := map[string]bool{}
	if agents, err := hub.Agents(ctx); err == nil {
		for _, a := range agents {
			connected[a.AgentID] = true
		}
	}
	for i := 0; i < 20; i++ {
		name := GenerateName()
		if connected[name] || exists(filepath.Join(o.Home, name)) {
			continue
		}
		reg, err := try(name)
		if errors.Is(err, ErrNameTaken) {
			continue
		}
		return reg, err
	}
	return client.Registration{}, fmt.Errorf("%w: no free ship name after 20 tries; pass --name", ErrNameTaken)
}

// configFile is the sidecar config onboarding writes.
type configFile struct {
	AgentID      string   `json:"agent_id"`
	Token        string   `json:"token"`
	HubURL       string   `json:"hub_url"`
	HubURLs      []string `json:"hub_urls,omitempty"`
	HubAPIURL    string   `json:"hub_api_url"`
	Capabilities []string `json:"capabilities"`
	WakeCommand  string   `json:"wake_command,omitempty"`
	RunCommand   string   `json:"run_command,omitempty"`
	RepoDir      string   `json:"repo_dir,omitempty"`
	ResultsDir   string   `json:"results_dir"`
	StateFile    string   `json:"state_file"`
}

// writeConfig writes the sidecar config. With one hub it has the shape the
// original sidecar reads (hub_url). With several, hub_urls lists them all
// and hub_url is the first, so the original sidecar, which ignores keys it
// does not know, still runs on that one.
func writeConfig(dir, path, apiURL string, hubWS []string, reg client.Registration, o Options) (sidecar.Config, error) {
	ws := reg.HubWSURL
	if ws == "" {
		ws = apiURL
	}
	if len(hubWS) > 1 {
		ws = hubWS[0]
	}
	cf := configFile{AgentID: reg.AgentID, Token: reg.Token, HubURL: ws, HubURLs: hubWS, HubAPIURL: apiURL, Capabilities: o.Capabilities,
		WakeCommand: o.WakeCommand, RunCommand: o.RunCommand, ResultsDir: "./results", StateFile: "./queue.json"}
	if o.RepoDir != "" {
		abs, err := filepath.Abs(o.RepoDir)
		if err != nil {
			return sidecar.Config{}, err
		}
		cf.RepoDir = abs
	}
	b, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return sidecar.Config{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return sidecar.Config{}, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return sidecar.Config{}, err
	}
	if err := writeFile0600(path, append(b, '\n')); err != nil {
		return sidecar.Config{}, err
	}
	// Read it back the way the sidecar will, so a config it would refuse
	// fails here and not in the service.
	return sidecar.LoadConfig(path, nil)
}

// UnitName is the systemd user unit of an agent's sidecar.
func UnitName(agent string) string { return "agentcom-sidecar-" + agent + ".service" }

func writeUnit(path, binary, config, agent string) error {
	if err := protocol.CheckAgentID(agent); err != nil {
		return fmt.Errorf("unit for %q: %w", agent, err)
	}
	qb, err := systemdQuote(binary)
	if err != nil {
		return fmt.Errorf("unit: binary path: %w", err)
	}
	qc, err := systemdQuote(config)
	if err != nil {
		return fmt.Errorf("unit: config path: %w", err)
	}
	unit := fmt.Sprintf(`[Unit]
Description=AgentCom sidecar for agent %s
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=%s sidecar --config %s
Restart=always
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=20

[Install]
WantedBy=default.target
`, agent, qb, qc)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		return fmt.Errorf("write unit: %w", err)
	}
	return nil
}

func startUnit(ctx context.Context, systemctl, unit string) error {
	for _, args := range [][]string{{"--user", "daemon-reload"}, {"--user", "enable", "--now", unit}} {
		if out, err := exec.CommandContext(ctx, systemctl, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// verify submits a test task targeted at the new agent and waits for it
// to complete. When no service runs, the sidecar runs in-process for the
// duration. A task that does not complete is cancelled.
func verify(ctx context.Context, hub *client.Client, cfg sidecar.Config, serviceRunning bool, o Options) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, o.VerifyTimeout)
	defer cancel()
	if !serviceRunning {
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- o.RunSidecar(sctx, cfg) }()
		defer func() {
			stop()
			<-done
		}()
	}
	one := int64(1)
	sub, err := hub.SubmitTask(ctx, client.TaskSubmit{
		Description: "Onboarding test: agent " + cfg.AgentID + " online",
		Priority:    "urgent",
		Metadata:    map[string]any{"onboarding_test": true, "target_agent": cfg.AgentID},
		TargetAgent: cfg.AgentID,
		MaxRetries:  &one,
	})
	if err != nil {
		return "", fmt.Errorf("%w: submit the test task: %v", ErrVerifyFailed, err)
	}
	id := sub.TaskID
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		t, err := hub.Task(ctx, id)
		if err == nil && t.Terminal() {
			if t.Status == "completed" || t.Status == "complete" {
				return id, nil
			}
			return id, fmt.Errorf("%w: test task %s ended %s", ErrVerifyFailed, id, t.Status)
		}
		select {
		case <-ctx.Done():
			// Clean up: the test task must not linger in the queue.
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = hub.CancelTask(cctx, id, "onboarding verification timed out")
			ccancel()
			return id, fmt.Errorf("%w: test task %s not completed within %s (cancelled); check the sidecar's log", ErrVerifyFailed, id, o.VerifyTimeout)
		case <-tick.C:
		}
	}
}

// OffboardOptions drive Offboard.
type OffboardOptions struct {
	Name string
	// HubURL defaults to hub_api_url of the agent's config.
	HubURL string
	// AdminToken revokes the agent's tokens.
	AdminToken string
	Home       string
	UnitDir    string
	Systemctl  string
	HTTPClient *http.Client
	Out        io.Writer
}

// Offboard stops the agent's service, revokes its tokens on the hub and
// removes its local files. Local files are kept when the revoke fails, so
// the command can be run again.
func Offboard(ctx context.Context, o OffboardOptions) error {
	home, _ := os.UserHomeDir()
	if o.Home == "" {
		o.Home = filepath.Join(home, ".agentcom")
	}
	if o.UnitDir == "" {
		o.UnitDir = filepath.Join(home, ".config", "systemd", "user")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if err := protocol.CheckAgentID(o.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	dir, err := within(o.Home, o.Name)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "config.json")
	haveLocal := exists(cfgPath)
	if o.HubURL == "" && haveLocal {
		if c, err := sidecar.LoadConfig(cfgPath, nil); err == nil {
			o.HubURL = c.HubAPIURL
		}
	}
	if o.HubURL == "" {
		return fmt.Errorf("offboard: --hub is required (no local config for %s)", o.Name)
	}
	if o.AdminToken == "" {
		return errors.New("offboard: an admin token is required (--token or AGENTCOM_TOKEN)")
	}
	unit := filepath.Join(o.UnitDir, UnitName(o.Name))
	if o.Systemctl != "" && exists(unit) {
		fmt.Fprint(o.Out, "[1/3] stopping the service... ")
		if out, err := exec.CommandContext(ctx, o.Systemctl, "--user", "disable", "--now", UnitName(o.Name)).CombinedOutput(); err != nil {
			fmt.Fprintf(o.Out, "warning: %v: %s\n", err, strings.TrimSpace(string(out)))
		} else {
			fmt.Fprintln(o.Out, "ok")
		}
	} else {
		fmt.Fprintln(o.Out, "[1/3] stopping the service... skipped (stop any sidecar for it by hand)")
	}
	fmt.Fprint(o.Out, "[2/3] revoking the agent's tokens... ")
	if err := client.New(o.HubURL, o.AdminToken, o.HTTPClient).RevokeTokens(ctx, o.Name); err != nil {
		fmt.Fprintln(o.Out, "FAILED")
		return fmt.Errorf("offboard: revoke %s: %w (local files kept)", o.Name, err)
	}
	fmt.Fprintln(o.Out, "ok")
	fmt.Fprint(o.Out, "[3/3] removing local files... ")
	if exists(unit) {
		if err := os.Remove(unit); err != nil {
			return fmt.Errorf("offboard: %w", err)
		}
		if o.Systemctl != "" {
			_ = exec.CommandContext(ctx, o.Systemctl, "--user", "daemon-reload").Run()
		}
	}
	if !haveLocal {
		fmt.Fprintln(o.Out, "nothing here")
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("offboard: remove %s: %w", dir, err)
	}
	fmt.Fprintln(o.Out, "ok")
	return nil
}

func writeFile0600(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// systemdQuote quotes a path for an ExecStart= line: backslash and double
// quote are escaped, specifiers (%) and variables ($) doubled. A line break
// or any other control character cannot be carried safely on one unit
// line and is refused.
func systemdQuote(s string) (string, error) {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("%q contains a control character", s)
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`)
	return `"` + r.Replace(s) + `"`, nil
}

// shellQuote quotes a word for a POSIX shell, for printed commands.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
