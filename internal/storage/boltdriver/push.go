package boltdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/store"
)

// PushSubscriptions implements storage.Driver.
func (d *Driver) PushSubscriptions() storage.PushSubscriptionStore { return pushStore{d} }

// pushStore keeps subscriptions in store.PushSubscriptions: the key is the
// endpoint, the value the subscription's JSON.
type pushStore struct{ d *Driver }

func (s pushStore) table() *store.Table { return s.d.table(store.PushSubscriptions) }

func (s pushStore) Put(ctx context.Context, r storage.PushSubscriptionRow, limit int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := storage.CheckPushSubscription(r); err != nil {
		return false, err
	}
	key := []byte(r.Endpoint)
	// Most calls re-post an unchanged subscription: a read answers them
	// without a durable write.
	var same bool
	if err := s.table().View(func(tx *store.Tx) error {
		same = sameJSON(tx.Get(key), r.Body)
		return nil
	}); err != nil {
		return false, fmt.Errorf("store push subscription: %w", err)
	}
	if same {
		return false, nil
	}
	var changed bool
	err := s.table().Update(func(tx *store.Tx) error {
		changed = false // fn may run more than once
		old := tx.Get(key)
		if sameJSON(old, r.Body) {
			return nil
		}
		if old == nil {
			// Counted by walking the keys: the table's group commit runs
			// several writers in one bbolt transaction, and bbolt's
			// bucket statistics do not see the others' uncommitted puts.
			n := 0
			if err := tx.ForEach(func(_, _ []byte) error { n++; return nil }); err != nil {
				return err
			}
			if n >= limit {
				return storage.ErrLimit
			}
		}
		changed = true
		return tx.Put(key, r.Body)
	})
	if errors.Is(err, storage.ErrLimit) {
		return false, err
	}
	if err != nil {
		return false, fmt.Errorf("store push subscription: %w", err)
	}
	return changed, nil
}

func (s pushStore) Delete(ctx context.Context, endpoint string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if endpoint == "" {
		return nil
	}
	if err := s.table().Update(func(tx *store.Tx) error { return tx.Delete([]byte(endpoint)) }); err != nil {
		return fmt.Errorf("remove push subscription: %w", err)
	}
	return nil
}

func (s pushStore) DeleteIf(ctx context.Context, r storage.PushSubscriptionRow) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	key := []byte(r.Endpoint)
	var removed bool
	err := s.table().Update(func(tx *store.Tx) error {
		removed = false // fn may run more than once
		if cur := tx.Get(key); cur == nil || !sameJSON(cur, r.Body) {
			return nil
		}
		removed = true
		return tx.Delete(key)
	})
	if err != nil {
		return false, fmt.Errorf("remove push subscription: %w", err)
	}
	return removed, nil
}

func (s pushStore) List(ctx context.Context) ([]storage.PushSubscriptionRow, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rows []storage.PushSubscriptionRow
	err := s.table().View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			rows = append(rows, storage.PushSubscriptionRow{Endpoint: string(k), Body: slices.Clone(v)})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list push subscriptions: %w", err)
	}
	return rows, nil
}

func (s pushStore) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n, err := s.table().Count()
	if err != nil {
		return 0, fmt.Errorf("count push subscriptions: %w", err)
	}
	return n, nil
}

// sameJSON reports whether a stored value and b are the same JSON
// document, as PostgreSQL's jsonb equality does, so both drivers agree on
// what "unchanged" means. A missing value (nil) matches nothing.
func sameJSON(stored, b []byte) bool {
	if stored == nil {
		return false
	}
	if bytes.Equal(stored, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(stored, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
