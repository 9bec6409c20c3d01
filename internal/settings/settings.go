// Package settings is the hub's runtime configuration: values an operator
// changes through the API while the hub runs, kept in the config table so
// they survive restarts (and, on a shared store, every hub agrees).
package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/storage"
)

// Keys and their defaults.
const (
	KeyHeartbeatInterval = "heartbeat_interval_ms"
	KeyMailboxTTL        = "mailbox_ttl_ms"
	KeyDefaultRepo       = "default_repo"

	DefaultHeartbeatIntervalMs = 900_000
	DefaultMailboxTTLMs        = 604_800_000
)

// Range is the inclusive range an integer setting may take.
type Range struct{ Min, Max int64 }

// Bounds are the documented limits of the integer settings. A value
// outside them is refused (ErrOutOfRange) and nothing changes; a stored
// value outside them (written by an older version) reads as the nearest
// bound. The upper bounds keep every derived duration far from overflow.
var bounds = map[string]Range{
	// 1 second to 1 day.
	KeyHeartbeatInterval: {Min: 1_000, Max: 86_400_000},
	// 1 second to 365 days.
	KeyMailboxTTL: {Min: 1_000, Max: 365 * 86_400_000},
}

// Bounds returns the range of an integer setting.
func Bounds(key string) (Range, bool) {
	r, ok := bounds[key]
	return r, ok
}

// ErrOutOfRange is a value outside its setting's bounds.
var ErrOutOfRange = errors.New("out_of_range")

// RangeError says which setting and which bounds.
type RangeError struct {
	Key   string
	Value int64
	Range Range
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("%s must be between %d and %d, got %d", e.Key, e.Range.Min, e.Range.Max, e.Value)
}

// Unwrap makes errors.Is(err, ErrOutOfRange) hold.
func (e *RangeError) Unwrap() error { return ErrOutOfRange }

// CheckInt refuses a value outside key's bounds (keys without bounds
// accept anything).
func CheckInt(key string, v int64) error {
	if r, ok := bounds[key]; ok && (v < r.Min || v > r.Max) {
		return &RangeError{Key: key, Value: v, Range: r}
	}
	return nil
}

// Store reads and writes settings. Reads are served from memory.
type Store struct {
	store storage.SettingsStore

	mu    sync.RWMutex
	cache map[string]json.RawMessage
	// gen counts this store's own writes, so Reload does not install a
	// snapshot read before a write it would undo.
	gen uint64
}

// New loads every setting from s.
func New(s storage.SettingsStore) (*Store, error) {
	st := &Store{store: s}
	if err := st.Reload(); err != nil {
		return nil, err
	}
	return st, nil
}

// Reload re-reads the store (after a restore, or to pick up what other
// hubs sharing the store changed).
func (s *Store) Reload() error {
	for range reloadAttempts {
		s.mu.RLock()
		gen := s.gen
		s.mu.RUnlock()
		all, err := s.store.All(context.Background())
		if err != nil {
			return fmt.Errorf("load settings: %w", err)
		}
		m := make(map[string]json.RawMessage, len(all))
		for k, v := range all {
			m[k] = v
		}
		if s.install(m, gen) {
			return nil
		}
		// A write here raced the read: read again.
	}
	return errors.New("load settings: settings kept changing while they were read; try again")
}

// reloadAttempts bounds how often Reload reads again when writes race it.
const reloadAttempts = 5

// install replaces the cache by m, read when the store was at gen, unless
// a write has happened since.
func (s *Store) install(m map[string]json.RawMessage, gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return false
	}
	s.cache = m
	return true
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

// PutInt stores a bounded integer setting durably; out of range it is
// refused with a *RangeError and nothing changes.
func (s *Store) PutInt(key string, v int64) error {
	if err := CheckInt(key, v); err != nil {
		return err
	}
	return s.Put(key, v)
}

// Put stores a setting durably.
func (s *Store) Put(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	if err := s.store.Put(context.Background(), key, raw); err != nil {
		return fmt.Errorf("save setting %s: %w", key, err)
	}
	s.mu.Lock()
	s.cache[key] = raw
	s.gen++
	s.mu.Unlock()
	return nil
}

// Int returns an integer setting or def, clamped to its bounds.
func (s *Store) Int(key string, def int64) int64 {
	var v int64
	if ok, err := s.Get(key, &v); !ok || err != nil {
		return def
	}
	if r, ok := bounds[key]; ok {
		v = min(max(v, r.Min), r.Max)
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
