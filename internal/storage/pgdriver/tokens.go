package pgdriver

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/agentcom/agentcom/internal/storage"
)

// Tokens implements storage.Driver.
func (d *Driver) Tokens() storage.TokenStore { return tokenStore{d} }

type tokenStore struct{ d *Driver }

func (s tokenStore) Put(ctx context.Context, r storage.TokenRow) error {
	if err := storage.CheckTokenRow(r); err != nil {
		return err
	}
	_, err := s.d.pool.Exec(ctx, `INSERT INTO agentcom_tokens (hash, agent_id, role, prefix, created_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (hash) DO UPDATE SET agent_id = EXCLUDED.agent_id, role = EXCLUDED.role,
			prefix = EXCLUDED.prefix, created_at = EXCLUDED.created_at`,
		r.Hash, r.AgentID, r.Role, r.Prefix, r.CreatedAt)
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

func (s tokenStore) Get(ctx context.Context, hash string) (storage.TokenRow, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT hash, agent_id, role, prefix, created_at FROM agentcom_tokens WHERE hash = $1`, hash)
	if err != nil {
		return storage.TokenRow{}, fmt.Errorf("read token: %w", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanToken)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.TokenRow{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.TokenRow{}, fmt.Errorf("read token: %w", err)
	}
	return r, nil
}

func (s tokenStore) RevokeAgent(ctx context.Context, agentID string) (int, error) {
	tag, err := s.d.pool.Exec(ctx, `DELETE FROM agentcom_tokens WHERE agent_id = $1`, agentID)
	if err != nil {
		return 0, fmt.Errorf("revoke tokens of %s: %w", agentID, err)
	}
	return int(tag.RowsAffected()), nil
}

func (s tokenStore) All(ctx context.Context) ([]storage.TokenRow, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT hash, agent_id, role, prefix, created_at FROM agentcom_tokens ORDER BY hash COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("load tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanToken)
	if err != nil {
		return nil, fmt.Errorf("load tokens: %w", err)
	}
	return out, nil
}

func scanToken(row pgx.CollectableRow) (storage.TokenRow, error) {
	var r storage.TokenRow
	err := row.Scan(&r.Hash, &r.AgentID, &r.Role, &r.Prefix, &r.CreatedAt)
	return r, err
}
