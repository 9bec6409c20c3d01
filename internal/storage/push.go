package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// PushSubscriptionRow is one web push subscription: its endpoint (the key)
// and the subscription as JSON.
type PushSubscriptionRow struct {
	Endpoint string
	Body     []byte
}

// Bounds of one push subscription row: above what the push domain
// accepts (an endpoint of 2,048 bytes whose JSON escaping may grow it
// sixfold, and two short keys).
const (
	MaxPushEndpoint = 2048
	MaxPushBody     = 32 << 10
)

// ErrLimit is returned by a write that would take a store past the limit
// its caller set.
var ErrLimit = errors.New("storage: limit reached")

// PushSubscriptionStore keeps the dashboard's web push subscriptions.
type PushSubscriptionStore interface {
	// Put stores row (Body valid JSON), replacing the row of the same
	// endpoint. A row identical to the stored one is not written again
	// (browsers re-post their subscription on every page load); changed
	// reports whether anything was written. A new endpoint is refused
	// with ErrLimit when limit rows are stored already.
	Put(ctx context.Context, row PushSubscriptionRow, limit int) (changed bool, err error)
	// Delete removes the row of endpoint; a missing row is not an error.
	Delete(ctx context.Context, endpoint string) error
	// DeleteIf removes the row of row.Endpoint only while it still holds
	// row.Body (as JSON: equal documents match), so a subscription that
	// was replaced after it was read is kept. It reports whether a row
	// was removed.
	DeleteIf(ctx context.Context, row PushSubscriptionRow) (bool, error)
	// List returns every row, ordered by endpoint. Rows are returned as
	// stored: the domain validates them.
	List(ctx context.Context) ([]PushSubscriptionRow, error)
	// Count returns the number of rows.
	Count(ctx context.Context) (int, error)
}

// CheckPushSubscription refuses a row no driver may store.
func CheckPushSubscription(r PushSubscriptionRow) error {
	switch {
	case r.Endpoint == "" || len(r.Endpoint) > MaxPushEndpoint:
		return fmt.Errorf("%w: push endpoint empty or longer than %d", ErrInvalidRow, MaxPushEndpoint)
	case len(r.Body) > MaxPushBody:
		return fmt.Errorf("%w: push subscription longer than %d bytes", ErrInvalidRow, MaxPushBody)
	case !json.Valid(r.Body):
		return fmt.Errorf("%w: push subscription is not valid JSON", ErrInvalidRow)
	}
	return nil
}
