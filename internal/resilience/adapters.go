package resilience

import (
	"context"
	"time"
)

// AnyResults adapts the coordinator to consumers that take results as
// `any` (the dashboard's Storage interface): Compact with table "" compacts
// every table.
type AnyResults struct{ C *Coordinator }

// Health returns Coordinator.Health.
func (a AnyResults) Health(context.Context) (any, error) { return a.C.Health(), nil }

// Backup runs Coordinator.Backup.
func (a AnyResults) Backup(ctx context.Context) (any, error) {
	r, err := a.C.Backup(ctx)
	return r, err
}

// Compact runs Coordinator.CompactAll (table "") or Coordinator.Compact.
func (a AnyResults) Compact(ctx context.Context, table string, force bool) (any, error) {
	if table == "" {
		r, err := a.C.CompactAll(ctx, force)
		return r, err
	}
	r, err := a.C.Compact(ctx, table, force)
	return r, err
}

// Restore runs Coordinator.Restore.
func (a AnyResults) Restore(ctx context.Context, table, backup string, dryRun bool) (any, error) {
	r, err := a.C.Restore(ctx, table, backup, dryRun)
	return r, err
}

// TableProtection is one table's protection state; zero times mean never.
type TableProtection struct {
	Table          string
	LastBackup     time.Time
	LastVerified   time.Time
	LastDrill      time.Time
	LastDrillOK    bool
	Degraded       bool
	LastCompaction time.Time
}

// Protection reports every table's backup, drill, compaction and
// degraded state without touching the tables.
func (c *Coordinator) Protection() []TableProtection {
	at := func(ms int64) time.Time {
		if ms == 0 {
			return time.Time{}
		}
		return time.UnixMilli(ms)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]TableProtection, 0, len(c.names))
	for _, name := range c.names {
		st := c.state(name)
		out = append(out, TableProtection{
			Table: name, LastBackup: at(st.lastBackupAt), LastVerified: at(st.lastVerifiedAt),
			LastDrill: at(st.lastDrillAt), LastDrillOK: st.lastDrillAt != 0 && st.lastDrillError == "",
			Degraded: st.degraded != nil, LastCompaction: at(st.lastCompactionAt),
		})
	}
	return out
}
