// Command agentcom is the AgentCom hub, its agent-side sidecar and the CLI
// clients of its HTTP API, in one binary.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

// cmdEnv carries what a command may touch of the process, so tests can
// run commands in-process with their own streams and environment.
type cmdEnv struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// stdoutTTY says stdout is a terminal (colour is allowed there).
	stdoutTTY bool
}

// colorOK says whether human output may use colour: on a terminal,
// unless NO_COLOR is set (https://no-color.org) or TERM is dumb.
func (e *cmdEnv) colorOK() bool {
	return e.stdoutTTY && e.getenv("NO_COLOR") == "" && e.getenv("TERM") != "dumb"
}

// commands is the whole command tree.
func commands() *command {
	return &command{subs: []*command{
		serveCommand(),
		onboardCommand(),
		offboardCommand(),
		taskCommand(),
		scheduleCommand(),
		messageCommand(),
		channelCommand(),
		agentsCommand(),
		tokenCommand(),
		adminCommand(),
		storeCommand(),
		migrateCommand(),
		sidecarCommand(),
		gitCommand(),
		benchCommand(),
		completionCommand(),
		versionCommand(),
		completeCommand(),
	}}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &cmdEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, stdoutTTY: isTerminal(os.Stdout)}
	code := dispatch(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

func versionCommand() *command {
	return &command{name: "version", summary: "print the version", setup: func(in *inv) runFunc {
		return func(context.Context, []string) error {
			return in.emit(struct {
				Version string `json:"version"`
			}{version}, func(p *printer) { p.line("agentcom %s", version) })
		}
	}}
}
