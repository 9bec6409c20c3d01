package storagetest

import (
	"context"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/testenv"
)

// BenchDrivers names the drivers benchmarks run on (OpenDriver opens
// them).
func BenchDrivers() []string { return []string{"bolt", "postgres"} }

// OpenDriver opens an empty driver by name for a test or benchmark
// ("postgres" skips without a database: testenv.Postgres); it is closed
// at the end of tb.
func OpenDriver(tb testing.TB, name string) storage.Driver {
	tb.Helper()
	switch name {
	case "bolt":
		d, db, err := boltdriver.OpenDir(tb.TempDir(), store.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { d.Close(); db.Close() })
		return d
	case "postgres":
		d, err := pgdriver.Open(context.Background(), testenv.Postgres(tb), pgdriver.Config{})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { d.Close() })
		return d
	}
	tb.Fatalf("no driver %q", name)
	return nil
}
