package pgdriver

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/agentcom/agentcom/internal/storage"
)

// Settings implements storage.Driver.
func (d *Driver) Settings() storage.SettingsStore { return settingsStore{d} }

type settingsStore struct{ d *Driver }

func (s settingsStore) All(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT key, value::text FROM agentcom_settings`)
	if err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	defer rows.Close()
	m := make(map[string][]byte)
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("load settings: %w", err)
		}
		m[k] = []byte(v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	return m, nil
}

func (s settingsStore) PutIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error) {
	if err := storage.CheckSetting(key, value); err != nil {
		return nil, err
	}
	// One statement: the insert, or (on conflict) the row that won. A row
	// committed by another hub after this statement's snapshot is not
	// visible to the SELECT half; the loop reads it with a new statement.
	for range 3 {
		var cur string
		err := s.d.pool.QueryRow(ctx, `WITH ins AS (
				INSERT INTO agentcom_settings (key, value) VALUES ($1, $2::text::jsonb)
				ON CONFLICT (key) DO NOTHING RETURNING value)
			SELECT value::text FROM ins
			UNION ALL SELECT value::text FROM agentcom_settings WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM ins)`,
			key, string(value)).Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("save setting %s: %w", key, err)
		}
		return []byte(cur), nil
	}
	return nil, fmt.Errorf("save setting %s: the row kept changing", key)
}

func (s settingsStore) Put(ctx context.Context, key string, value []byte) error {
	if err := storage.CheckSetting(key, value); err != nil {
		return err
	}
	_, err := s.d.pool.Exec(ctx, `INSERT INTO agentcom_settings (key, value) VALUES ($1, $2::text::jsonb)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, key, string(value))
	if err != nil {
		return fmt.Errorf("save setting %s: %w", key, err)
	}
	return nil
}
