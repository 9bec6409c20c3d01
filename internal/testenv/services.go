package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv and NATSEnv override where tests find the services.
const (
	PostgresEnv = "AGENTCOM_TEST_POSTGRES"
	NATSEnv     = "AGENTCOM_TEST_NATS"

	defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultNATS     = "nats://127.0.0.1:4222"
)

// Postgres returns the URL of a schema of its own in the test database,
// dropped when t ends, so tests (and hubs started by one test) can run in
// parallel. Without a reachable PostgreSQL it skips, or fails in CI.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		base = defaultPostgres
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		Missing(t, "PostgreSQL", "start it, or set "+PostgresEnv+"; connect: "+err.Error())
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop test schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop test schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// NATS returns the URL of a NATS server. Tests keep apart by using
// subjects of their own. Without a reachable server it skips, or fails in
// CI.
func NATS(t testing.TB) string {
	t.Helper()
	raw := os.Getenv(NATSEnv)
	if raw == "" {
		raw = defaultNATS
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", NATSEnv, err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		Missing(t, "NATS", "start nats-server, or set "+NATSEnv+"; dial: "+err.Error())
	}
	c.Close()
	return raw
}
