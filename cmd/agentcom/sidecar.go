package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentcom/agentcom/internal/sidecar"
)

// runSidecar runs the agent-side daemon until SIGINT/SIGTERM.
func runSidecar(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "sidecar", "--config FILE")
	path := fs.String("config", envOr(env, "AGENTCOM_SIDECAR_CONFIG", "config.json"), "sidecar config file (env AGENTCOM_SIDECAR_CONFIG)")
	fields := fs.Bool("fields", false, "print every config field with its environment variable and default, then exit")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, errUsage) || fs.NArg() > 0 {
			return err
		}
		fmt.Fprintf(env.stderr, "\nconfig fields (JSON keys; each can be overridden by its environment variable):\n%s", sidecar.ConfigHelp())
		return err
	}
	if *fields {
		fmt.Fprint(env.stdout, sidecar.ConfigHelp())
		return nil
	}
	cfg, err := sidecar.LoadConfig(*path, env.getenv)
	if err != nil {
		return err
	}
	log, closer, err := sidecar.NewLogger(cfg, env.stderr)
	if err != nil {
		return err
	}
	defer closer.Close()
	for _, k := range cfg.Unknown {
		log.Warn("unknown config field ignored", "component", "sidecar", "event", "config_unknown_field", "field", k, "config", cfg.Path)
	}
	s, err := sidecar.New(cfg, sidecar.Options{Logger: log})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
