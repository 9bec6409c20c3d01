package pgdriver_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/testenv"
)

func pool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Hubs starting together all migrate: one applies every version, the
// others wait on the lock and find nothing left.
func TestMigrateConcurrent(t *testing.T) {
	url := testenv.Postgres(t)
	all, err := pgdriver.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	applied := make([]int, 4)
	errs := make([]error, 4)
	for i := range applied {
		wg.Go(func() {
			ms, err := pgdriver.Migrate(ctx, pool(t, url))
			applied[i], errs[i] = len(ms), err
		})
	}
	wg.Wait()
	total := 0
	for i := range applied {
		if errs[i] != nil {
			t.Fatalf("migrate %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	if total != len(all) {
		t.Fatalf("applied %d migrations in all, want each of the %d once", total, len(all))
	}
	cur, latest, err := pgdriver.SchemaVersion(ctx, pool(t, url))
	if err != nil || cur != latest || latest != all[len(all)-1].Version {
		t.Fatalf("version %d of %d (%v), want %d", cur, latest, err, all[len(all)-1].Version)
	}
}

// A database migrated by a newer agentcom is refused, not written to.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	url := testenv.Postgres(t)
	ctx := context.Background()
	p := pool(t, url)
	if _, err := pgdriver.Migrate(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, "INSERT INTO agentcom_migrations (version, name) VALUES (9999, 'future')"); err != nil {
		t.Fatal(err)
	}
	if _, err := pgdriver.Migrate(ctx, p); err == nil || !strings.Contains(err.Error(), "newer than this agentcom") {
		t.Fatalf("migrate over a newer schema: %v", err)
	}
	if _, err := pgdriver.Open(ctx, url, pgdriver.Config{}); err == nil {
		t.Fatal("Open over a newer schema succeeded")
	}
}

// With SkipMigrate, an unmigrated database is refused with the command
// that fixes it.
func TestOpenSkipMigrateNeedsCurrentSchema(t *testing.T) {
	url := testenv.Postgres(t)
	_, err := pgdriver.Open(context.Background(), url, pgdriver.Config{SkipMigrate: true})
	if err == nil || !strings.Contains(err.Error(), "agentcom migrate") {
		t.Fatalf("open unmigrated: %v", err)
	}
	d, err := pgdriver.Open(context.Background(), url, pgdriver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = pgdriver.Open(context.Background(), url, pgdriver.Config{SkipMigrate: true})
	if err != nil {
		t.Fatalf("open migrated with SkipMigrate: %v", err)
	}
	d.Close()
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db":              "postgres://u:xxxxx@h:5432/db",
		"postgres://h/db?password=secret&sslmode=no": "postgres://h/db?password=xxxxx&sslmode=no",
		"postgres://u@h/db":                          "postgres://u@h/db",
		"::not a url":                                "postgres://(unparsable URL)",
	} {
		if got := pgdriver.Redact(in); got != want || strings.Contains(got, "secret") {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHealth(t *testing.T) {
	d, err := pgdriver.Open(context.Background(), testenv.Postgres(t), pgdriver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	h, err := d.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.Driver != "postgres" || h.SchemaVersion != h.LatestSchema || h.Server == "" || h.DatabaseBytes <= 0 {
		t.Fatalf("health: %+v", h)
	}
	found := false
	for _, tb := range h.Tables {
		found = found || tb.Table == "agentcom_migrations"
	}
	if !found {
		t.Fatalf("health lists no agentcom_migrations table: %+v", h.Tables)
	}
}

// A version missing below the highest applied one (a database that got a
// later version first) is applied, and only it.
func TestMigrateAppliesMissingVersions(t *testing.T) {
	url := testenv.Postgres(t)
	ctx := context.Background()
	p := pool(t, url)
	if _, err := pgdriver.Migrate(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, "DELETE FROM agentcom_migrations WHERE version = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pgdriver.Open(ctx, url, pgdriver.Config{SkipMigrate: true}); err == nil || !strings.Contains(err.Error(), "lacks version 1") {
		t.Fatalf("open with a missing version: %v", err)
	}
	ms, err := pgdriver.Migrate(ctx, p)
	if err != nil || len(ms) != 1 || ms[0].Version != 1 {
		t.Fatalf("migrate applied %+v (%v), want version 1 only", ms, err)
	}
}
