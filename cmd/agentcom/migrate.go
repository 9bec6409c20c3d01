package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/agentcom/agentcom/internal/storage/pgdriver"
)

// Store specs name the storage a command works on: "bolt" (the embedded
// store in the data directory, the default) or a PostgreSQL URL.
const storeEnv = "AGENTCOM_STORE"

// storeSpec is a parsed --store value.
type storeSpec struct {
	postgres string // the URL when the store is PostgreSQL; "" for bolt
}

func (s storeSpec) isPostgres() bool { return s.postgres != "" }

// String never shows the URL's password.
func (s storeSpec) String() string {
	if s.isPostgres() {
		return pgdriver.Redact(s.postgres)
	}
	return "bolt"
}

// storeFlag declares --store; the returned function parses the flag (or
// its environment variable).
func (in *inv) storeFlag() func() (storeSpec, error) {
	v := in.fs.String("store", "", "storage: bolt (the --data directory, default) or a postgres://user@host:port/db URL (env "+storeEnv+")")
	return func() (storeSpec, error) {
		raw := *v
		if raw == "" {
			raw = in.env.getenv(storeEnv)
		}
		return parseStore(raw)
	}
}

func parseStore(raw string) (storeSpec, error) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "" || raw == "bolt":
		return storeSpec{}, nil
	case pgdriver.IsURL(raw):
		return storeSpec{postgres: raw}, nil
	}
	scheme, _, _ := strings.Cut(raw, "://")
	if len(scheme) > 20 {
		scheme = scheme[:20]
	}
	return storeSpec{}, fmt.Errorf("--store: want bolt or a postgres:// URL, got a value starting %q", scheme)
}

// migrateCommand applies the PostgreSQL schema. Hubs apply it themselves
// at start; this is for operators who migrate before rolling hubs out, or
// who start hubs with a role that may not change the schema.
func migrateCommand() *command {
	return &command{name: "migrate", summary: "apply the PostgreSQL schema migrations (hubs also apply them at start)",
		about: "Needs --store postgres://... (env " + storeEnv + "). --status only reports the versions.\n" +
			"The embedded store (bolt) has no schema to migrate.",
		setup: runMigrate}
}

// migrateReport is the --json shape.
type migrateReport struct {
	Store   string   `json:"store"`
	Current int      `json:"current_version"`
	Latest  int      `json:"latest_version"`
	Applied []string `json:"applied"`
}

func runMigrate(in *inv) runFunc {
	store := in.storeFlag()
	status := in.fs.Bool("status", false, "report the schema version without applying anything")
	return func(ctx context.Context, _ []string) error {
		spec, err := store()
		if err != nil {
			return in.usagef("%v", err)
		}
		if !spec.isPostgres() {
			return in.usagef("migrate needs --store postgres://... (or %s): the embedded store has no schema migrations", storeEnv)
		}
		d, err := pgdriver.Open(ctx, spec.postgres, pgdriver.Config{SkipMigrate: true, AllowStale: true})
		if err != nil {
			return err
		}
		defer d.Close()
		rep := migrateReport{Store: spec.String(), Applied: []string{}}
		if !*status {
			applied, err := pgdriver.Migrate(ctx, d.Pool())
			for _, m := range applied {
				rep.Applied = append(rep.Applied, fmt.Sprintf("%04d_%s", m.Version, m.Name))
			}
			if err != nil {
				return err
			}
		}
		if rep.Current, rep.Latest, err = pgdriver.SchemaVersion(ctx, d.Pool()); err != nil {
			return err
		}
		return in.emit(rep, func(p *printer) {
			for _, a := range rep.Applied {
				fmt.Fprintf(p.w, "applied %s\n", a)
			}
			if len(rep.Applied) == 0 && !*status {
				fmt.Fprintln(p.w, "nothing to apply")
			}
			fmt.Fprintf(p.w, "%s: schema version %d (this agentcom knows %d)\n", rep.Store, rep.Current, rep.Latest)
		})
	}
}
