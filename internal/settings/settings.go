// Package settings is the hub's runtime configuration: values an operator
// changes through the API while the hub runs, kept in the config table so
// they survive restarts.
package settings

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/store"
)

// Keys and their defaults.
const (
	KeyHeartbeatInterval = "heartbeat_interval_ms"
	KeyMailboxTTL        = "mailbox_ttl_ms"
	KeyDefaultRepo       = "default_repo"

	DefaultHeartbeatIntervalMs = 900_000
	DefaultMailboxTTLMs        = 604_800_000
)

// Store reads and writes settings. Reads are served from memory.
type Store struct {
	table *store.Table

	mu    sync.RWMutex
	cache map[string]json.RawMessage
}

// New loads every setting from the table.
func New(table *store.Table) (*Store, error) {
	s := &Store{table: table}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the table (after a restore).
func (s *Store) Reload() error {
	m := make(map[string]json.RawMessage)
	err := s.table.View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			m[string(k)] = append(json.RawMessage(nil), v...)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load settings: %w", err)
	}
	s.mu.Lock()
	s.cache = m
	s.mu.Unlock()
	return nil
}

// Get decodes the setting into dst and reports whether it was set.
func (s *Store) Get(key string, dst any) (bool, error) {
	s.mu.RLock()
	raw, ok := s.cache[key]
	s.mu.RUnlock()
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return true, fmt.Errorf("setting %s: %w", key, err)
	}
	return true, nil
}

// Put stores a setting durably.
func (s *Store) Put(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	if err := s.table.Update(func(tx *store.Tx) error { return tx.Put([]byte(key), raw) }); err != nil {
		return fmt.Errorf("save setting %s: %w", key, err)
	}
	s.mu.Lock()
	s.cache[key] = raw
	s.mu.Unlock()
	return nil
}

// Int returns an integer setting or def.
func (s *Store) Int(key string, def int64) int64 {
	var v int64
	if ok, err := s.Get(key, &v); !ok || err != nil {
		return def
	}
	return v
}

// HeartbeatIntervalMs is the informational agent wake cadence.
func (s *Store) HeartbeatIntervalMs() int64 {
	return s.Int(KeyHeartbeatInterval, DefaultHeartbeatIntervalMs)
}

// MailboxTTL is how long mailbox messages are kept.
func (s *Store) MailboxTTL() time.Duration {
	return time.Duration(s.Int(KeyMailboxTTL, DefaultMailboxTTLMs)) * time.Millisecond
}

// DefaultRepo returns the configured repository URL, if any.
func (s *Store) DefaultRepo() (string, bool) {
	var v string
	ok, err := s.Get(KeyDefaultRepo, &v)
	return v, ok && err == nil && v != ""
}
