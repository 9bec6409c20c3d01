package pgdriver

import (
	"context"
	"fmt"

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
