package boltdriver_test

import (
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
	"github.com/agentcom/agentcom/internal/store"
)

// open returns a bolt driver over a fresh data directory.
func open(t *testing.T) storage.Driver {
	t.Helper()
	db, err := store.Open(t.TempDir(), store.AllTables(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d, err := boltdriver.New(db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConformance(t *testing.T) { storagetest.Run(t, open) }
