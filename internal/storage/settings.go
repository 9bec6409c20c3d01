package storage

import (
	"context"
	"encoding/json"
	"fmt"
)

// MaxSettingKey and MaxSettingValue bound one setting: the keys are the
// hub's own names, the values JSON documents no larger than the request
// body that may set them (api.DefaultMaxBody).
const (
	MaxSettingKey   = 128
	MaxSettingValue = 1 << 20
)

// SettingsStore keeps the hub's runtime settings: JSON values by key. The
// settings domain loads them all and serves reads from memory.
type SettingsStore interface {
	// All returns every setting: key to its JSON value.
	All(ctx context.Context) (map[string][]byte, error)
	// Put stores value (valid JSON, at most MaxSettingValue bytes) under
	// key (1 to MaxSettingKey bytes), replacing what was there.
	Put(ctx context.Context, key string, value []byte) error
	// PutIfAbsent stores value under key unless key is set, and returns
	// the value key holds afterwards: value, or the one that was there.
	// Hubs starting together on a shared store agree on one value this
	// way (the first writer's).
	PutIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error)
}

// CheckSetting refuses a setting no driver may store.
func CheckSetting(key string, value []byte) error {
	switch {
	case key == "" || len(key) > MaxSettingKey:
		return fmt.Errorf("%w: setting key empty or longer than %d", ErrInvalidRow, MaxSettingKey)
	case len(value) > MaxSettingValue:
		return fmt.Errorf("%w: setting %s longer than %d bytes", ErrInvalidRow, key, MaxSettingValue)
	case !json.Valid(value):
		return fmt.Errorf("%w: setting %s is not valid JSON", ErrInvalidRow, key)
	}
	return nil
}
