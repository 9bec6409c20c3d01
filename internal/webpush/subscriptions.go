package webpush

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentcom/agentcom/internal/store"
)

// MaxSubscriptions caps the stored subscriptions. An operator has a handful
// of browsers; the cap keeps a misbehaving or hostile client from filling
// the table (the dashboard routes are open on a loopback-only hub).
const MaxSubscriptions = 1000

// ErrTooManySubscriptions is returned by Add for a new endpoint when
// MaxSubscriptions are already stored.
var ErrTooManySubscriptions = errors.New("too many push subscriptions")

// Subscriptions is the persistent set of push subscriptions, one record
// per endpoint in a store table (store.PushSubscriptions in the hub). The
// value is the subscription's JSON. It is safe for concurrent use.
type Subscriptions struct {
	t      *store.Table
	policy EndpointPolicy
}

// NewSubscriptions keeps subscriptions in t, which must be open, and
// accepts new ones whose endpoint policy allows.
func NewSubscriptions(t *store.Table, policy EndpointPolicy) *Subscriptions {
	return &Subscriptions{t: t, policy: policy}
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
	key := []byte(sub.Endpoint)

	// Browsers re-post their subscription on every dashboard load; skip
	// the durable write when nothing changed.
	var same bool
	if err := s.t.View(func(tx *store.Tx) error {
		same = bytes.Equal(tx.Get(key), value)
		return nil
	}); err != nil {
		return fmt.Errorf("add push subscription: %w", err)
	}
	if same {
		return nil
	}

	err = s.t.Update(func(tx *store.Tx) error {
		if tx.Get(key) == nil && tx.Count() >= MaxSubscriptions {
			return ErrTooManySubscriptions
		}
		return tx.Put(key, value)
	})
	if errors.Is(err, ErrTooManySubscriptions) {
		return fmt.Errorf("add push subscription: %w (limit %d)", err, MaxSubscriptions)
	}
	if err != nil {
		return fmt.Errorf("add push subscription: %w", err)
	}
	return nil
}

// Remove deletes the subscription with endpoint. Removing an endpoint that
// is not stored is not an error.
func (s *Subscriptions) Remove(endpoint string) error {
	if endpoint == "" {
		return nil // never stored: Add rejects an empty endpoint
	}
	if err := s.t.Update(func(tx *store.Tx) error {
		return tx.Delete([]byte(endpoint))
	}); err != nil {
		return fmt.Errorf("remove push subscription: %w", err)
	}
	return nil
}

// List returns every stored subscription, ordered by endpoint. Records
// that do not decode to a valid subscription (possible only if the file
// was edited by hand, since Add validates) are left out; Broadcast removes
// them.
func (s *Subscriptions) List() ([]Subscription, error) {
	subs, _, err := s.list()
	return subs, err
}

// Count returns the number of stored records.
func (s *Subscriptions) Count() (int, error) {
	var n int
	if err := s.t.View(func(tx *store.Tx) error {
		n = tx.Count()
		return nil
	}); err != nil {
		return 0, fmt.Errorf("count push subscriptions: %w", err)
	}
	return n, nil
}

// list returns the valid subscriptions and the keys of invalid records.
func (s *Subscriptions) list() (subs []Subscription, invalid []string, err error) {
	err = s.t.View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			sub, ok := decodeRecord(k, v)
			if !ok {
				invalid = append(invalid, string(k))
				return nil
			}
			subs = append(subs, sub)
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list push subscriptions: %w", err)
	}
	return subs, invalid, nil
}

// removeIfUnchanged deletes the record of sub only while it still holds
// sub, so a subscription that was replaced after it was read (new keys for
// the same endpoint) is not dropped because the old one was gone. It
// reports whether a record was deleted.
func (s *Subscriptions) removeIfUnchanged(sub Subscription) (bool, error) {
	want, err := json.Marshal(sub)
	if err != nil {
		return false, fmt.Errorf("remove push subscription: %w", err)
	}
	key := []byte(sub.Endpoint)
	var removed bool
	err = s.t.Update(func(tx *store.Tx) error {
		removed = false // fn may run more than once
		if cur := tx.Get(key); cur == nil || !bytes.Equal(cur, want) {
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

// decodeRecord turns a stored record back into a subscription, checking
// that it is valid and filed under its own endpoint.
func decodeRecord(k, v []byte) (Subscription, bool) {
	var sub Subscription
	if err := json.Unmarshal(v, &sub); err != nil {
		return Subscription{}, false
	}
	if sub.Endpoint != string(k) || sub.Validate() != nil {
		return Subscription{}, false
	}
	return sub, true
}
