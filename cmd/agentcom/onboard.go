package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"time"

	"github.com/agentcom/agentcom/internal/onboard"
)

// runOnboard registers this machine's agent with a hub and sets up its
// sidecar.
func runOnboard(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "onboard", "--hub URL [--name NAME] [--capabilities a,b] [--join-secret S]")
	hub := fs.String("hub", envOr(env, "AGENTCOM_HUB", ""), "hub HTTP URL, e.g. http://hub:4000 (env AGENTCOM_HUB)")
	name := fs.String("name", "", "agent id (default: a free Culture ship name, gcu-...)")
	caps := fs.String("capabilities", "code", "comma-separated capabilities")
	secret := fs.String("join-secret", env.getenv("AGENTCOM_JOIN_SECRET"), "the hub's join secret (env AGENTCOM_JOIN_SECRET)")
	wake := fs.String("wake-command", "", "command that wakes the agent and returns (run through /bin/sh; the task arrives in TASK_* variables)")
	run := fs.String("run-command", "", "run mode: the command that IS the agent, run for the task's whole life (e.g. 'claude -p \"$TASK_DESCRIPTION\"')")
	repo := fs.String("repo", "", "git checkout the agent works in (turns on the git workflow)")
	home := fs.String("home", "", "directory holding one folder per agent (default ~/.agentcom)")
	unitDir := fs.String("unit-dir", "", "where the systemd user unit goes (default ~/.config/systemd/user)")
	noStart := fs.Bool("no-start", false, "write the systemd unit but do not start it")
	start := fs.Bool("start", false, "start the sidecar's systemd user unit, and fail if there is no user systemd to start it with (default: start it when possible)")
	noVerify := fs.Bool("no-verify", false, "skip the end-to-end test task")
	timeout := fs.Duration("verify-timeout", time.Minute, "how long the test task may take")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *hub == "" {
		fs.Usage()
		return errUsage
	}
	if *start && *noStart {
		return fmt.Errorf("--start and --no-start contradict each other")
	}
	o := onboard.Options{
		HubURL: *hub, Name: *name, Capabilities: splitComma(*caps), JoinSecret: *secret, WakeCommand: *wake, RunCommand: *run,
		RepoDir: *repo, Home: *home, UnitDir: *unitDir, SkipVerify: *noVerify, VerifyTimeout: *timeout,
		HTTPClient: &http.Client{Timeout: 15 * time.Second}, Out: env.stdout,
	}
	if !*noStart {
		o.Systemctl = userSystemctl(env)
	}
	o.RequireStart = *start
	if *start && o.Systemctl == "" {
		return fmt.Errorf("--start: no user systemd instance here (systemctl --user); run the sidecar with 'agentcom sidecar --config FILE' under your own supervisor")
	}
	res, err := onboard.Onboard(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "\nagent %s is ready\n  config: %s\n  unit:   %s\n", res.Name, res.ConfigPath, res.UnitPath)
	if !res.ServiceStarted {
		fmt.Fprintf(env.stdout, "  start:  %s\n", res.StartCommands[0])
	}
	return nil
}

// runOffboard revokes an agent's tokens and removes its local setup.
func runOffboard(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "offboard", "--name NAME [--hub URL] [--token ADMIN_TOKEN]")
	name := fs.String("name", "", "agent id")
	hub := fs.String("hub", envOr(env, "AGENTCOM_HUB", ""), "hub HTTP URL (default: the agent's config; env AGENTCOM_HUB)")
	token := fs.String("token", env.getenv("AGENTCOM_TOKEN"), "admin token (env AGENTCOM_TOKEN)")
	home := fs.String("home", "", "directory holding one folder per agent (default ~/.agentcom)")
	unitDir := fs.String("unit-dir", "", "where the systemd user unit is (default ~/.config/systemd/user)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" {
		fs.Usage()
		return errUsage
	}
	err := onboard.Offboard(ctx, onboard.OffboardOptions{
		Name: *name, HubURL: *hub, AdminToken: *token, Home: *home, UnitDir: *unitDir, Systemctl: userSystemctl(env),
		HTTPClient: &http.Client{Timeout: 15 * time.Second}, Out: env.stdout,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "agent %s removed\n", *name)
	return nil
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
