package webpush

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentcom/agentcom/internal/storage"
)

// MaxSubscriptions caps the stored subscriptions. An operator has a handful
// of browsers; the cap keeps a misbehaving or hostile client from filling
// the table (the dashboard routes are open on a loopback-only hub).
const MaxSubscriptions = 1000

// ErrTooManySubscriptions is returned by Add for a new endpoint when
// MaxSubscriptions are already stored.
var ErrTooManySubscriptions = errors.New("too many push subscriptions")

// Subscriptions is the persistent set of push subscriptions, one row per
// endpoint in a storage.PushSubscriptionStore; the row's body is the
// subscription's JSON. It is safe for concurrent use.
type Subscriptions struct {
	store  storage.PushSubscriptionStore
	policy EndpointPolicy
}

// NewSubscriptions keeps subscriptions in s and accepts new ones whose
// endpoint policy allows.
func NewSubscriptions(s storage.PushSubscriptionStore, policy EndpointPolicy) *Subscriptions {
	return &Subscriptions{store: s, policy: policy}
}

// Add validates sub and stores it, replacing any subscription with the
// same endpoint (a browser that re-subscribes may get new keys for the
// same endpoint). Storing an identical subscription again writes nothing.
// The error is a *SubscriptionError, ErrTooManySubscriptions, or a storage
// error.
func (s *Subscriptions) Add(ctx context.Context, sub Subscription) error {
	ps, err := sub.parse()
	if err != nil {
		return err
	}
	if err := s.policy.check(ctx, ps.endpoint); err != nil {
		return err
	}
	value, err := json.Marshal(sub)
	if err != nil {
		return fmt.Errorf("add push subscription: %w", err)
	}
	_, err = s.store.Put(ctx, storage.PushSubscriptionRow{Endpoint: sub.Endpoint, Body: value}, MaxSubscriptions)
	if errors.Is(err, storage.ErrLimit) {
		return fmt.Errorf("add push subscription: %w (limit %d)", ErrTooManySubscriptions, MaxSubscriptions)
	}
	if err != nil {
		return fmt.Errorf("add push subscription: %w", err)
	}
	return nil
}

// Remove deletes the subscription with endpoint. Removing an endpoint that
// is not stored is not an error.
func (s *Subscriptions) Remove(ctx context.Context, endpoint string) error {
	if endpoint == "" {
		return nil // never stored: Add rejects an empty endpoint
	}
	if err := s.store.Delete(ctx, endpoint); err != nil {
		return fmt.Errorf("remove push subscription: %w", err)
	}
	return nil
}

// List returns every stored subscription, ordered by endpoint. Records
// that do not decode to a valid subscription (possible only if the file
// was edited by hand, since Add validates) are left out; Broadcast removes
// them.
func (s *Subscriptions) List(ctx context.Context) ([]Subscription, error) {
	subs, _, err := s.list(ctx)
	return subs, err
}

// Count returns the number of stored records.
func (s *Subscriptions) Count(ctx context.Context) (int, error) {
	n, err := s.store.Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count push subscriptions: %w", err)
	}
	return n, nil
}

// list returns the valid subscriptions and the endpoints of invalid
// records.
func (s *Subscriptions) list(ctx context.Context) (subs []Subscription, invalid []string, err error) {
	rows, err := s.store.List(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list push subscriptions: %w", err)
	}
	for _, r := range rows {
		sub, ok := decodeRecord(r)
		if !ok {
			invalid = append(invalid, r.Endpoint)
			continue
		}
		subs = append(subs, sub)
	}
	return subs, invalid, nil
}

// removeIfUnchanged deletes the record of sub only while it still holds
// sub, so a subscription that was replaced after it was read (new keys for
// the same endpoint) is not dropped because the old one was gone. It
// reports whether a record was deleted.
func (s *Subscriptions) removeIfUnchanged(ctx context.Context, sub Subscription) (bool, error) {
	want, err := json.Marshal(sub)
	if err != nil {
		return false, fmt.Errorf("remove push subscription: %w", err)
	}
	removed, err := s.store.DeleteIf(ctx, storage.PushSubscriptionRow{Endpoint: sub.Endpoint, Body: want})
	if err != nil {
		return false, fmt.Errorf("remove push subscription: %w", err)
	}
	return removed, nil
}

// decodeRecord turns a stored record back into a subscription, checking
// that it is valid and filed under its own endpoint.
func decodeRecord(r storage.PushSubscriptionRow) (Subscription, bool) {
	var sub Subscription
	if err := json.Unmarshal(r.Body, &sub); err != nil {
		return Subscription{}, false
	}
	if sub.Endpoint != r.Endpoint || sub.Validate() != nil {
		return Subscription{}, false
	}
	return sub, true
}
