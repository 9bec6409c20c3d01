package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agentcom/agentcom/internal/api"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/store"
)

// IsPostgres reports whether a Config.Store value names PostgreSQL.
func IsPostgres(spec string) bool {
	return pgdriver.IsURL(spec)
}

// openStorage opens the configured store. The embedded store is checked
// table by table first (a damaged one is restored from its newest
// verified backup, or started empty in degraded mode) and maintained by
// the resilience coordinator; PostgreSQL is migrated to the schema this
// binary needs and maintained by the database's own tools.
func (h *Hub) openStorage(ctx context.Context) error {
	cfg := h.cfg
	switch {
	case IsPostgres(cfg.Store):
		d, err := pgdriver.Open(ctx, cfg.Store, pgdriver.Config{})
		if err != nil {
			return err
		}
		h.Driver = d
		return nil
	case cfg.Store != "" && cfg.Store != "bolt":
		return fmt.Errorf("store %q: want bolt or a postgres:// URL", strings.SplitN(cfg.Store, ":", 2)[0])
	}
	db, rep, err := resilience.OpenDB(ctx, cfg.DataDir, store.AllTables(), cfg.Resilience, h.log)
	if err != nil {
		return err
	}
	h.DB, h.startup = db, rep
	if h.Driver, err = boltdriver.New(db); err != nil {
		db.Close()
		return err
	}
	h.Storage = resilience.New(db, h.Bus, cfg.Resilience, h.log)
	return nil
}

// closeStorage closes the driver and, for the embedded store, its tables.
func (h *Hub) closeStorage() error {
	var errs []error
	if h.Driver != nil {
		errs = append(errs, h.Driver.Close())
	}
	if h.DB != nil {
		errs = append(errs, h.DB.Close())
	}
	return errors.Join(errs...)
}

// storageRoutes are the storage admin routes: the coordinator's for the
// embedded store, "not applicable" answers (and the database's health)
// for PostgreSQL.
func (h *Hub) storageRoutes() []api.Route {
	if pg, ok := h.Driver.(*pgdriver.Driver); ok {
		return (&api.ExternalStorage{Server: h.API, Driver: pg.Name(), Reason: pgdriver.MaintenanceNote,
			Health: func(ctx context.Context) (any, error) { return pg.Health(ctx) }}).Routes()
	}
	return (&api.Storage{Server: h.API, Coordinator: h.Storage}).Routes()
}

// errNotApplicable is the dashboard's answer to file maintenance on
// PostgreSQL.
var errNotApplicable = errors.New("not applicable: " + pgdriver.MaintenanceNote)

// externalStorage is the dashboard's storage panel on PostgreSQL: the
// database's health, and no file maintenance.
type externalStorage struct{ d *pgdriver.Driver }

func (s externalStorage) Health(ctx context.Context) (any, error) { return s.d.Health(ctx) }
func (externalStorage) Backup(context.Context) (any, error)       { return nil, errNotApplicable }
func (externalStorage) Compact(context.Context, string, bool) (any, error) {
	return nil, errNotApplicable
}
func (externalStorage) Restore(context.Context, string, string, bool) (any, error) {
	return nil, errNotApplicable
}

// storeName says where the hub's state is, for logs: the data directory,
// or the PostgreSQL URL without its password.
func (h *Hub) storeName() string {
	if IsPostgres(h.cfg.Store) {
		return pgdriver.Redact(h.cfg.Store)
	}
	return "bolt:" + h.cfg.DataDir
}
