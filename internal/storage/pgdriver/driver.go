// Package pgdriver is the PostgreSQL storage driver (pgx v5). Any number
// of hubs may share one database: every store operation is one
// transaction, rows that several hubs may change are locked (or skipped
// with SKIP LOCKED) for the time of a change, and the schema is versioned
// by the migrations embedded in the binary (migrate.go).
package pgdriver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agentcom/agentcom/internal/storage"
)

// Config tunes the connection pool. The zero value is usable.
type Config struct {
	// MaxConns bounds the pool; 0 means pgxpool's default
	// (max(4, number of CPUs)).
	MaxConns int32
	// SkipMigrate opens without applying pending migrations; Open then
	// fails if the schema is not current (agentcom migrate applies it).
	SkipMigrate bool
	// AllowStale, with SkipMigrate, opens whatever the schema's version
	// (agentcom migrate, which reports and applies it).
	AllowStale bool
}

// DefaultConnectTimeout bounds each connection attempt when the URL sets
// no connect_timeout.
const DefaultConnectTimeout = 15 * time.Second

// Driver is the PostgreSQL driver.
type Driver struct {
	pool *pgxpool.Pool
	// The hot writes share commits among concurrent callers (group.go).
	taskPuts  *group[taskPut]
	appends   *group[*appendCall]
	publishes *group[*appendCall]
	drops     *group[[]storage.CopyRef]
}

var _ storage.Driver = (*Driver)(nil)

// Open connects to the database at url, applies pending migrations and
// returns the driver. Errors never contain the URL's password.
func Open(ctx context.Context, rawURL string, cfg Config) (*Driver, error) {
	pc, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres store %s: %w", Redact(rawURL), errors.New("invalid connection URL"))
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	// An unreachable server (a dropped route, a firewall that swallows
	// packets) must not hold a hub's start or a command forever; the URL's
	// connect_timeout, when given, wins.
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres store %s: %w", Redact(rawURL), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store %s: cannot connect: %w", Redact(rawURL), err)
	}
	switch {
	case cfg.SkipMigrate && cfg.AllowStale:
	case cfg.SkipMigrate:
		err = checkCurrent(ctx, pool)
	default:
		_, err = Migrate(ctx, pool)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return newDriver(pool), nil
}

func newDriver(pool *pgxpool.Pool) *Driver {
	d := &Driver{pool: pool}
	d.taskPuts = &group[taskPut]{commit: d.putTasks, idempotent: true}
	d.appends = &group[*appendCall]{commit: d.appendMessages}
	d.publishes = &group[*appendCall]{commit: d.publishMessages}
	d.drops = &group[[]storage.CopyRef]{commit: d.dropCopies, idempotent: true}
	return d
}

// Name implements storage.Driver.
func (d *Driver) Name() string { return "postgres" }

// Pool is the driver's connection pool, shared with the cluster services
// (leader election, the LISTEN/NOTIFY bus) that run on the same database.
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// Close implements storage.Driver.
func (d *Driver) Close() error {
	d.pool.Close()
	return nil
}

// IsURL reports whether a store setting names PostgreSQL: a postgres://
// or postgresql:// URL. It is the one test of that, shared by the hub and
// the commands.
func IsURL(spec string) bool {
	return strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://")
}

// Redact returns the URL with its password replaced, for messages and
// logs. A string that does not parse is reduced to its scheme.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return "postgres://(unparsable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
