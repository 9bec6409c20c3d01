package webpush

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/agentcom/agentcom/internal/store"
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
	got, err := subs.List()
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
	got, _ = subs.List()
	if want := []Subscription{a2, b}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after re-subscribe List = %+v, want %+v", got, want)
	}

	if err := subs.Remove(a.Endpoint); err != nil {
		t.Fatal(err)
	}
	if err := subs.Remove("https://push.example/never-stored"); err != nil {
		t.Fatalf("removing an unknown endpoint: %v", err)
	}
	if err := subs.Remove(""); err != nil {
		t.Fatal(err)
	}
	got, _ = subs.List()
	if want := []Subscription{b}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after Remove List = %+v, want %+v", got, want)
	}
	if n, err := subs.Count(); err != nil || n != 1 {
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
	if n, _ := subs.Count(); n != 0 {
		t.Fatal("invalid subscription stored")
	}
}

// TestSubscriptionsSurviveRestart closes and reopens the store: the
// subscriptions are still there (the original hub lost them).
func TestSubscriptionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	db := openStore(t, dir)
	subs := NewSubscriptions(db.MustTable(store.PushSubscriptions), EndpointPolicy{AllowPrivate: true})
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

	db = openStore(t, dir)
	defer db.Close()
	got, err := NewSubscriptions(db.MustTable(store.PushSubscriptions), EndpointPolicy{AllowPrivate: true}).List()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen List = %+v, want %+v", got, want)
	}
}

func TestSubscriptionsCap(t *testing.T) {
	subs := newSubscriptions(t)
	ua := newUserAgent(t)
	// Fill the table in one transaction; Add one by one would fsync 1000 times.
	err := subs.t.Update(func(tx *store.Tx) error {
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
	if removed, err := subs.removeIfUnchanged(old); err != nil || removed {
		t.Fatalf("removeIfUnchanged(old) = %v, %v; want the newer record kept", removed, err)
	}
	if removed, err := subs.removeIfUnchanged(replaced); err != nil || !removed {
		t.Fatalf("removeIfUnchanged(current) = %v, %v", removed, err)
	}
}
