package pgdriver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/agentcom/agentcom/internal/storage"
)

// PushSubscriptions implements storage.Driver.
func (d *Driver) PushSubscriptions() storage.PushSubscriptionStore { return pushStore{d} }

type pushStore struct{ d *Driver }

func (s pushStore) Put(ctx context.Context, r storage.PushSubscriptionRow, limit int) (bool, error) {
	if err := storage.CheckPushSubscription(r); err != nil {
		return false, err
	}
	// The common case, an unchanged subscription re-posted, is one read.
	var same bool
	err := s.d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agentcom_push_subscriptions
		WHERE endpoint = $1 AND body = $2::text::jsonb)`, r.Endpoint, string(r.Body)).Scan(&same)
	if err != nil {
		return false, fmt.Errorf("store push subscription: %w", err)
	}
	if same {
		return false, nil
	}
	var changed bool
	err = pgx.BeginFunc(ctx, s.d.pool, func(tx pgx.Tx) error {
		// Writers of the table take turns (readers do not wait), so the
		// count and the insert agree even with several hubs.
		if _, err := tx.Exec(ctx, `LOCK TABLE agentcom_push_subscriptions IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var exists bool
		var n int
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agentcom_push_subscriptions WHERE endpoint = $1),
			(SELECT count(*) FROM agentcom_push_subscriptions)`, r.Endpoint).Scan(&exists, &n); err != nil {
			return err
		}
		if !exists && n >= limit {
			return storage.ErrLimit
		}
		tag, err := tx.Exec(ctx, `INSERT INTO agentcom_push_subscriptions AS p (endpoint, body) VALUES ($1, $2::text::jsonb)
			ON CONFLICT (endpoint) DO UPDATE SET body = EXCLUDED.body WHERE p.body IS DISTINCT FROM EXCLUDED.body`,
			r.Endpoint, string(r.Body))
		changed = err == nil && tag.RowsAffected() > 0
		return err
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
	if _, err := s.d.pool.Exec(ctx, `DELETE FROM agentcom_push_subscriptions WHERE endpoint = $1`, endpoint); err != nil {
		return fmt.Errorf("remove push subscription: %w", err)
	}
	return nil
}

func (s pushStore) DeleteIf(ctx context.Context, r storage.PushSubscriptionRow) (bool, error) {
	if len(r.Body) > storage.MaxPushBody || !json.Valid(r.Body) {
		return false, nil // matches no stored row (and must not fail the cast)
	}
	tag, err := s.d.pool.Exec(ctx, `DELETE FROM agentcom_push_subscriptions
		WHERE endpoint = $1 AND body = $2::text::jsonb`, r.Endpoint, string(r.Body))
	if err != nil {
		return false, fmt.Errorf("remove push subscription: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

func (s pushStore) List(ctx context.Context) ([]storage.PushSubscriptionRow, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT endpoint, body::text FROM agentcom_push_subscriptions ORDER BY endpoint COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list push subscriptions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.PushSubscriptionRow, error) {
		var r storage.PushSubscriptionRow
		var body string
		err := row.Scan(&r.Endpoint, &body)
		r.Body = []byte(body)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list push subscriptions: %w", err)
	}
	return out, nil
}

func (s pushStore) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.d.pool.QueryRow(ctx, `SELECT count(*) FROM agentcom_push_subscriptions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count push subscriptions: %w", err)
	}
	return n, nil
}
