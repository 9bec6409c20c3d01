package boltdriver

import (
	"context"
	"fmt"
	"slices"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/store"
)

// Settings implements storage.Driver.
func (d *Driver) Settings() storage.SettingsStore { return settingsStore{d} }

// settingsStore keeps settings in store.Config: the key is the setting's
// name, the value its JSON.
type settingsStore struct{ d *Driver }

func (s settingsStore) All(ctx context.Context) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := make(map[string][]byte)
	err := s.d.table(store.Config).View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			m[string(k)] = slices.Clone(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	return m, nil
}

func (s settingsStore) PutIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := storage.CheckSetting(key, value); err != nil {
		return nil, err
	}
	var cur []byte
	err := s.d.table(store.Config).Update(func(tx *store.Tx) error {
		if old := tx.Get([]byte(key)); old != nil {
			cur = slices.Clone(old)
			return nil
		}
		cur = value
		return tx.Put([]byte(key), value)
	})
	if err != nil {
		return nil, fmt.Errorf("save setting %s: %w", key, err)
	}
	return cur, nil
}

func (s settingsStore) Put(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storage.CheckSetting(key, value); err != nil {
		return err
	}
	if err := s.d.table(store.Config).Update(func(tx *store.Tx) error { return tx.Put([]byte(key), value) }); err != nil {
		return fmt.Errorf("save setting %s: %w", key, err)
	}
	return nil
}
