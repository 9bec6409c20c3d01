package main

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"time"

	"github.com/agentcom/agentcom/internal/onboard"
)

func onboardCommand() *command {
	return &command{name: "onboard", summary: "register this machine's agent with a hub, set up its sidecar and verify it end to end",
		about: "Registration needs a hub started with --open-registration, or its join secret (--join-secret).\n" +
			"With --json the steps go to stderr and stdout holds only the result.",
		setup: runOnboard}
}

func offboardCommand() *command {
	return &command{name: "offboard", summary: "revoke an agent's tokens (admin token) and remove its local setup", setup: runOffboard}
}

// onboarded is what onboard prints with --json. The agent's token is in
// its config file, never on stdout.
type onboarded struct {
	AgentID        string   `json:"agent_id"`
	Dir            string   `json:"dir"`
	ConfigPath     string   `json:"config_path"`
	UnitPath       string   `json:"unit_path"`
	ServiceStarted bool     `json:"service_started"`
	StartCommands  []string `json:"start_commands,omitempty"`
	VerifyTaskID   string   `json:"verify_task_id,omitempty"`
}

// runOnboard registers this machine's agent with a hub and sets up its
// sidecar.
func runOnboard(in *inv) runFunc {
	var hubs urlList
	in.fs.Var(&hubs, "hub", "hub HTTP `URL`, e.g. http://hub:4000 (env AGENTCOM_HUB; required); for a cluster, every hub: comma-separated or --hub repeated (the sidecar config gets hub_urls and fails over between them)")
	name := in.fs.String("name", "", "agent id (default: a free Culture ship name, gcu-...)")
	caps := in.fs.String("capabilities", "code", "comma-separated capabilities")
	secret := in.secret("join-secret", "AGENTCOM_JOIN_SECRET", "the hub's join `SECRET`")
	wake := in.fs.String("wake-command", "", "command that wakes the agent and returns (run through /bin/sh; the task arrives in TASK_* variables)")
	run := in.fs.String("run-command", "", "run mode: the command that IS the agent, run for the task's whole life (e.g. 'claude -p \"$TASK_DESCRIPTION\"')")
	repo := in.fs.String("repo", "", "git checkout the agent works in (turns on the git workflow)")
	home := in.fs.String("home", "", "directory holding one folder per agent (default ~/.agentcom)")
	unitDir := in.fs.String("unit-dir", "", "where the systemd user unit goes (default ~/.config/systemd/user)")
	noStart := in.fs.Bool("no-start", false, "write the systemd unit but do not start it")
	start := in.fs.Bool("start", false, "start the sidecar's systemd user unit, and fail if there is no user systemd to start it with (default: start it when possible)")
	noVerify := in.fs.Bool("no-verify", false, "skip the end-to-end test task")
	timeout := in.fs.Duration("verify-timeout", time.Minute, "how long the test task may take")
	return func(ctx context.Context, _ []string) error {
		if len(hubs) == 0 {
			if err := hubs.Set(in.env.getenv("AGENTCOM_HUB")); err != nil {
				return in.usagef("AGENTCOM_HUB: %v", err)
			}
		}
		if len(hubs) == 0 {
			return in.usagef("--hub is required (or AGENTCOM_HUB)")
		}
		if *start && *noStart {
			return in.usagef("--start and --no-start contradict each other")
		}
		progress := in.env.stdout
		if in.asJSON {
			progress = in.env.stderr
		}
		o := onboard.Options{
			HubURLs: hubs, Name: *name, Capabilities: splitComma(*caps), JoinSecret: secret(), WakeCommand: *wake, RunCommand: *run,
			RepoDir: *repo, Home: *home, UnitDir: *unitDir, SkipVerify: *noVerify, VerifyTimeout: *timeout,
			HTTPClient: &http.Client{Timeout: 15 * time.Second}, Out: progress,
		}
		if !*noStart {
			o.Systemctl = userSystemctl(in.env)
		}
		o.RequireStart = *start
		if *start && o.Systemctl == "" {
			return withHint(errors.New("--start: no user systemd instance here (systemctl --user)"),
				"run the sidecar with 'agentcom sidecar --config FILE' under your own supervisor, or onboard without --start")
		}
		res, err := onboard.Onboard(ctx, o)
		if err != nil {
			return err
		}
		out := onboarded{AgentID: res.Name, Dir: res.Dir, ConfigPath: res.ConfigPath, UnitPath: res.UnitPath,
			ServiceStarted: res.ServiceStarted, VerifyTaskID: res.VerifyTaskID}
		if !res.ServiceStarted {
			out.StartCommands = res.StartCommands
		}
		return in.emit(out, func(p *printer) {
			p.line("\nagent %s is ready\n  config: %s\n  unit:   %s", p.paint(bold, res.Name), res.ConfigPath, res.UnitPath)
			if !res.ServiceStarted {
				p.line("  start:  %s", res.StartCommands[0])
			}
		})
	}
}

// runOffboard revokes an agent's tokens and removes its local setup.
func runOffboard(in *inv) runFunc {
	name := in.fs.String("name", "", "agent id (required)")
	hub := in.fs.String("hub", "", "hub HTTP URL (default: the agent's config; env AGENTCOM_HUB)")
	token := in.secret("token", "AGENTCOM_TOKEN", "admin `TOKEN`")
	home := in.fs.String("home", "", "directory holding one folder per agent (default ~/.agentcom)")
	unitDir := in.fs.String("unit-dir", "", "where the systemd user unit is (default ~/.config/systemd/user)")
	return func(ctx context.Context, _ []string) error {
		if *name == "" {
			return in.usagef("--name is required")
		}
		if *hub == "" {
			*hub = in.env.getenv("AGENTCOM_HUB")
		}
		progress := in.env.stdout
		if in.asJSON {
			progress = in.env.stderr
		}
		err := onboard.Offboard(ctx, onboard.OffboardOptions{
			Name: *name, HubURL: *hub, AdminToken: token(), Home: *home, UnitDir: *unitDir, Systemctl: userSystemctl(in.env),
			HTTPClient: &http.Client{Timeout: 15 * time.Second}, Out: progress,
		})
		if err != nil {
			return err
		}
		return in.emit(struct {
			AgentID string `json:"agent_id"`
			Removed bool   `json:"removed"`
		}{*name, true}, func(p *printer) { p.line("agent %s removed", *name) })
	}
}

// userSystemctl returns systemctl when a user systemd instance is
// reachable, "" otherwise.
func userSystemctl(env *cmdEnv) string {
	if env.getenv("XDG_RUNTIME_DIR") == "" && env.getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		return ""
	}
	p, err := exec.LookPath("systemctl")
	if err != nil {
		return ""
	}
	return p
}
