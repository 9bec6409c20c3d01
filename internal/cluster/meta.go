package cluster

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ClusterID returns the cluster's id: random, made once by the migration
// that created the cluster tables, the same for every hub on the
// database (and schema). It keeps what the database does not separate
// apart: give it as NATSBusConfig.Namespace.
func ClusterID(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var id string
	if err := pool.QueryRow(ctx, "SELECT cluster_id FROM cluster_meta WHERE id = 1").Scan(&id); err != nil {
		return "", fmt.Errorf("cluster: read the cluster id: %w", err)
	}
	return id, nil
}
