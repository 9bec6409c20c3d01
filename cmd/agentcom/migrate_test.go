package main

import (
	"net/url"
	"testing"

	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMigrateCommand(t *testing.T) {
	pg := testenv.Postgres(t)
	r := &cliRun{t: t, env: map[string]string{}}
	var rep migrateReport
	r.json(&rep, "migrate", "--store", pg, "--status")
	if rep.Current != 0 || rep.Latest == 0 || len(rep.Applied) != 0 {
		t.Fatalf("status of an empty database: %+v", rep)
	}
	out := r.ok("migrate", "--store", pg)
	contains(t, "first migrate", out, "applied 0001_init", "schema version")
	r.env[storeEnv] = pg
	r.json(&rep, "migrate")
	if len(rep.Applied) != 0 || rep.Current != rep.Latest {
		t.Fatalf("second migrate: %+v", rep)
	}

	// Refusals: no PostgreSQL store, an unknown scheme; and a password
	// in the URL is never printed.
	delete(r.env, storeEnv)
	contains(t, "bolt", r.fail(2, "migrate"), "needs --store postgres://")
	contains(t, "scheme", r.fail(2, "migrate", "--store", "mysql://x"), "want bolt or a postgres:// URL")
	u, _ := url.Parse(pg)
	u.User = url.UserPassword("nobody", "hunter2-secret")
	u.Host = "127.0.0.1:1"
	r.fail(1, "migrate", "--store", u.String())
	r.noSecret("hunter2-secret")
}
