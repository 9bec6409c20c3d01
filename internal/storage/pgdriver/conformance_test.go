package pgdriver_test

import (
	"context"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
	"github.com/agentcom/agentcom/internal/testenv"
)

// open returns a PostgreSQL driver on a fresh schema of its own.
func open(t testing.TB) storage.Driver {
	t.Helper()
	d, err := pgdriver.Open(context.Background(), testenv.Postgres(t), pgdriver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Driver { return open(t) })
}
