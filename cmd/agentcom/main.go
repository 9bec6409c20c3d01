// Command agentcom is the AgentCom hub, its agent-side sidecar and the CLI
// clients of its HTTP API, in one binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

// command is one subcommand. run receives the arguments after the
// subcommand name and returns an error to print; flag.ErrHelp means the
// usage was already printed.
type command struct {
	summary string
	run     func(ctx context.Context, env *cmdEnv, args []string) error
}

// cmdEnv carries what a subcommand may touch of the process, so tests can
// run subcommands in-process with their own streams and environment.
type cmdEnv struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func commands() map[string]command {
	return map[string]command{
		"serve":    {"start the hub (HTTP + WebSocket, embedded storage)", runServe},
		"bench":    {"load-test a hub with simulated agents and print the figures", runBench},
		"version":  {"print the version", runVersion},
		"token":    {"manage auth tokens offline on the data directory", runToken},
		"sidecar":  {"run the agent-side daemon (--config FILE)", runSidecar},
		"onboard":  {"register this machine's agent with a hub and set up its sidecar", runOnboard},
		"offboard": {"revoke an agent's tokens and remove its local setup", runOffboard},
		"task":     {"submit, list, show, retry and cancel tasks", runTask},
		"schedule": {"add, list, pause, resume, remove and run periodic schedules", runSchedule},
		"git":      {"agent git workflow: start-task, submit, status", runGit},
		"admin":    {"storage operations on a running hub: backup, health, compact, restore, drill", runAdmin},
		"store":    {"offline storage maintenance while the hub is stopped: check, compact, restore", runStore},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &cmdEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	code := dispatch(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

// dispatch runs one subcommand and returns the process exit code.
func dispatch(ctx context.Context, env *cmdEnv, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "agentcom: unknown command %q\n\n", args[0])
		usage(env.stderr, cmds)
		return 2
	}
	err := c.run(ctx, env, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(env.stderr, "agentcom %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage reports a command line that could not be parsed; the flag
// package has already printed why.
var errUsage = errors.New("usage error")

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: agentcom <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'agentcom <command> --help' for the flags of one command.")
}

// newFlagSet returns a flag set that writes its usage to env.stderr and
// reports errors instead of exiting.
func newFlagSet(env *cmdEnv, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("agentcom "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: agentcom %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and maps flag errors onto the dispatch codes.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return errUsage
	}
	return nil
}

func runVersion(_ context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "version", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "agentcom %s\n", version)
	return nil
}
