package main

import (
	"context"
	"fmt"

	"github.com/agentcom/agentcom/internal/sidecar"
)

func sidecarCommand() *command {
	return &command{name: "sidecar", summary: "run the agent-side daemon (--config FILE; --fields lists every config field)",
		noJSON: true, setup: runSidecar}
}

// runSidecar runs the agent-side daemon until SIGINT/SIGTERM.
func runSidecar(in *inv) runFunc {
	path := in.fs.String("config", "", "sidecar config file (env AGENTCOM_SIDECAR_CONFIG, else config.json)")
	fields := in.fs.Bool("fields", false, "print every config field with its environment variable and default, then exit")
	return func(ctx context.Context, _ []string) error {
		if *fields {
			fmt.Fprint(in.env.stdout, sidecar.ConfigHelp())
			return nil
		}
		if *path == "" {
			*path = envOr(in.env, "AGENTCOM_SIDECAR_CONFIG", "config.json")
		}
		cfg, err := sidecar.LoadConfig(*path, in.env.getenv)
		if err != nil {
			return withHint(err, "'agentcom sidecar --fields' lists every config field; 'agentcom onboard' writes a working config")
		}
		log, closer, err := sidecar.NewLogger(cfg, in.env.stderr)
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
}
