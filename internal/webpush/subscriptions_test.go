package webpush

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestSubscriptionsAddListRemove(t *testing.T) {
	subs := newSubscriptions(t)
	a := newUserAgent(t).subscription("https://push.example/a")
	b := newUserAgent(t).subscription("https://push.example/b")
	for _, s := range []Subscription{b, a, a} { // a twice: stored once
		if err := subs.Add(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := subs.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []Subscription{a, b}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}

	// Same endpoint, new keys: replaced, not duplicated.
	a2 := newUserAgent(t).subscription(a.Endpoint)
	if err := subs.Add(t.Context(), a2); err != nil {
		t.Fatal(err)
	}
	got, _ = subs.List(t.Context())
	if want := []Subscription{a2, b}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after re-subscribe List = %+v, want %+v", got, want)
	}

	if err := subs.Remove(t.Context(), a.Endpoint); err != nil {
		t.Fatal(err)
	}
	if err := subs.Remove(t.Context(), "https://push.example/never-stored"); err != nil {
		t.Fatalf("removing an unknown endpoint: %v", err)
	}
	if err := subs.Remove(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	got, _ = subs.List(t.Context())
	if want := []Subscription{b}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after Remove List = %+v, want %+v", got, want)
	}
	if n, err := subs.Count(t.Context()); err != nil || n != 1 {
		t.Fatalf("Count = %d, %v", n, err)
	}
}

func TestSubscriptionsRejectInvalid(t *testing.T) {
	subs := newSubscriptions(t)
	bad := newUserAgent(t).subscription("http://push.example/a") // http, not loopback
	err := subs.Add(t.Context(), bad)
	var se *SubscriptionError
	if !errors.As(err, &se) || se.Field != "endpoint" {
		t.Fatalf("err = %v, want a SubscriptionError on endpoint", err)
	}
	if n, _ := subs.Count(t.Context()); n != 0 {
		t.Fatal("invalid subscription stored")
	}
}

// TestSubscriptionsSurviveRestart closes and reopens the store: the
// subscriptions are still there (the original hub lost them).
func TestSubscriptionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	db, d := openStore(t, dir)
	subs := NewSubscriptions(d.PushSubscriptions(), EndpointPolicy{AllowPrivate: true})
	want := []Subscription{
		newUserAgent(t).subscription("https://fcm.googleapis.com/fcm/send/one"),
		newUserAgent(t).subscription("https://updates.push.services.mozilla.com/wpush/v2/two"),
	}
	for _, s := range want {
		if err := subs.Add(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, d = openStore(t, dir)
	defer db.Close()
	got, err := NewSubscriptions(d.PushSubscriptions(), EndpointPolicy{AllowPrivate: true}).List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen List = %+v, want %+v", got, want)
	}
}

func TestSubscriptionsCap(t *testing.T) {
	subs, tbl := newBoltSubscriptions(t)
	ua := newUserAgent(t)
	// Fill the table in one transaction; Add one by one would fsync 1000 times.
	err := tbl.Update(func(tx *store.Tx) error {
		for i := range MaxSubscriptions {
			s := ua.subscription(fmt.Sprintf("https://push.example/%04d", i))
			if err := tx.Put([]byte(s.Endpoint), mustJSON(t, s)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := subs.Add(t.Context(), ua.subscription("https://push.example/one-too-many")); !errors.Is(err, ErrTooManySubscriptions) {
		t.Fatalf("err = %v, want ErrTooManySubscriptions", err)
	}
	// Replacing an existing endpoint is still allowed at the cap.
	if err := subs.Add(t.Context(), newUserAgent(t).subscription("https://push.example/0007")); err != nil {
		t.Fatalf("replace at cap: %v", err)
	}
}

func TestRemoveIfUnchanged(t *testing.T) {
	subs := newSubscriptions(t)
	old := newUserAgent(t).subscription("https://push.example/a")
	if err := subs.Add(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	replaced := newUserAgent(t).subscription(old.Endpoint)
	if err := subs.Add(t.Context(), replaced); err != nil {
		t.Fatal(err)
	}
	if removed, err := subs.removeIfUnchanged(t.Context(), old); err != nil || removed {
		t.Fatalf("removeIfUnchanged(old) = %v, %v; want the newer record kept", removed, err)
	}
	if removed, err := subs.removeIfUnchanged(t.Context(), replaced); err != nil || !removed {
		t.Fatalf("removeIfUnchanged(current) = %v, %v", removed, err)
	}
}

// TestSubscriptionsPostgres: the same behaviour on PostgreSQL, where a
// second hub sharing the database sees the subscriptions (the stored JSON
// comes back in jsonb's normal form, and still decodes and matches).
func TestSubscriptionsPostgres(t *testing.T) {
	d, err := pgdriver.Open(t.Context(), testenv.Postgres(t), pgdriver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	subs := NewSubscriptions(d.PushSubscriptions(), EndpointPolicy{AllowPrivate: true})
	other := NewSubscriptions(d.PushSubscriptions(), EndpointPolicy{AllowPrivate: true})
	a := newUserAgent(t).subscription("https://push.example/a")
	b := newUserAgent(t).subscription("https://push.example/b")
	for _, s := range []Subscription{b, a, a} {
		if err := subs.Add(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := other.List(t.Context())
	if want := []Subscription{a, b}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("other hub List = %+v, %v; want %+v", got, err, want)
	}
	a2 := newUserAgent(t).subscription(a.Endpoint)
	if err := other.Add(t.Context(), a2); err != nil {
		t.Fatal(err)
	}
	if removed, err := subs.removeIfUnchanged(t.Context(), a); err != nil || removed {
		t.Fatalf("removeIfUnchanged(replaced) = %v, %v", removed, err)
	}
	if removed, err := subs.removeIfUnchanged(t.Context(), got[1]); err != nil || !removed {
		t.Fatalf("removeIfUnchanged(read back) = %v, %v", removed, err)
	}
	if err := subs.Remove(t.Context(), a.Endpoint); err != nil {
		t.Fatal(err)
	}
	if n, err := other.Count(t.Context()); err != nil || n != 0 {
		t.Fatalf("Count = %d, %v", n, err)
	}
}
