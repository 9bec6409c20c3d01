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

// DriverKind is one driver for domain tests that run on every driver.
// Open prepares empty storage for test t and returns a function that
// opens a driver over it; each call after the first is a restart over the
// same data (the caller closes the driver before it calls again).
type DriverKind struct {
	Name string
	Open func(t *testing.T) func() storage.Driver
}

// Drivers returns the bolt and the PostgreSQL driver (the latter skips,
// or fails in CI, without a database: testenv.Postgres).
func Drivers() []DriverKind {
	return []DriverKind{
		{"bolt", func(t *testing.T) func() storage.Driver {
			dir := t.TempDir()
			return func() storage.Driver {
				d, db, err := boltdriver.OpenDir(dir, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return boltAndTables{d, db}
			}
		}},
		{"postgres", func(t *testing.T) func() storage.Driver {
			url := testenv.Postgres(t)
			return func() storage.Driver {
				d, err := pgdriver.Open(context.Background(), url, pgdriver.Config{})
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
		}},
	}
}

// boltAndTables closes the bolt driver and the tables under it.
type boltAndTables struct {
	*boltdriver.Driver
	db *store.DB
}

func (b boltAndTables) Close() error { b.Driver.Close(); return b.db.Close() }
