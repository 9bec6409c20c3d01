package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
)

func pushRow(endpoint, key string) storage.PushSubscriptionRow {
	return storage.PushSubscriptionRow{Endpoint: endpoint,
		Body: fmt.Appendf(nil, `{"endpoint":%q,"keys":{"p256dh":%q,"auth":"x"}}`, endpoint, key)}
}

func runPushSubscriptions(t *testing.T, open Opener) {
	t.Run("PutListDelete", func(t *testing.T) {
		s := open(t).PushSubscriptions()
		ctx := t.Context()
		a, b := pushRow("https://push.example/a", "k1"), pushRow("https://push.example/b", "k2")
		for _, r := range []storage.PushSubscriptionRow{b, a} {
			if changed, err := s.Put(ctx, r, 10); err != nil || !changed {
				t.Fatalf("Put(%s) = %v, %v", r.Endpoint, changed, err)
			}
		}
		// The same subscription again writes nothing, however its JSON is
		// spelled.
		if changed, err := s.Put(ctx, a, 10); err != nil || changed {
			t.Fatalf("identical Put = %v, %v; want unchanged", changed, err)
		}
		respelled := storage.PushSubscriptionRow{Endpoint: a.Endpoint, Body: []byte(`{ "keys": {"auth":"x","p256dh":"k1"}, "endpoint": "https://push.example/a" }`)}
		if changed, err := s.Put(ctx, respelled, 10); err != nil || changed {
			t.Fatalf("re-spelled identical Put = %v, %v; want unchanged", changed, err)
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 2 || list[0].Endpoint != a.Endpoint || list[1].Endpoint != b.Endpoint ||
			!sameJSON(t, list[0].Body, a.Body) || !sameJSON(t, list[1].Body, b.Body) {
			t.Fatalf("List = %q, %v", list, err)
		}
		// New keys for the same endpoint replace the row.
		a2 := pushRow(a.Endpoint, "k3")
		if changed, err := s.Put(ctx, a2, 10); err != nil || !changed {
			t.Fatalf("replacing Put = %v, %v", changed, err)
		}
		if n, err := s.Count(ctx); err != nil || n != 2 {
			t.Fatalf("Count = %d, %v", n, err)
		}
		// DeleteIf keeps a row that changed since it was read.
		if removed, err := s.DeleteIf(ctx, a); err != nil || removed {
			t.Fatalf("DeleteIf(old) = %v, %v; want kept", removed, err)
		}
		if removed, err := s.DeleteIf(ctx, storage.PushSubscriptionRow{Endpoint: a.Endpoint, Body: []byte("not json")}); err != nil || removed {
			t.Fatalf("DeleteIf(junk) = %v, %v", removed, err)
		}
		if removed, err := s.DeleteIf(ctx, a2); err != nil || !removed {
			t.Fatalf("DeleteIf(current) = %v, %v", removed, err)
		}
		if err := s.Delete(ctx, b.Endpoint); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "https://push.example/never"); err != nil {
			t.Fatalf("Delete of a missing row: %v", err)
		}
		if n, _ := s.Count(ctx); n != 0 {
			t.Fatalf("Count after deletes = %d", n)
		}
	})

	t.Run("Limit", func(t *testing.T) {
		s := open(t).PushSubscriptions()
		ctx := t.Context()
		for i := range 3 {
			if _, err := s.Put(ctx, pushRow(fmt.Sprintf("https://push.example/%d", i), "k"), 3); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Put(ctx, pushRow("https://push.example/new", "k"), 3); !errors.Is(err, storage.ErrLimit) {
			t.Fatalf("Put past the limit = %v, want ErrLimit", err)
		}
		// Replacing a stored endpoint is allowed at the limit.
		if changed, err := s.Put(ctx, pushRow("https://push.example/1", "other"), 3); err != nil || !changed {
			t.Fatalf("replace at the limit = %v, %v", changed, err)
		}
	})

	t.Run("ConcurrentPutsKeepTheLimit", func(t *testing.T) {
		s := open(t).PushSubscriptions()
		ctx := t.Context()
		const limit, writers = 5, 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		var ok, full int
		for i := range writers {
			wg.Go(func() {
				_, err := s.Put(ctx, pushRow(fmt.Sprintf("https://push.example/c%02d", i), "k"), limit)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, storage.ErrLimit):
					full++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n, _ := s.Count(ctx); ok != limit || full != writers-limit || n != limit {
			t.Fatalf("%d stored, %d refused, %d rows; want %d, %d, %d", ok, full, n, limit, writers-limit, limit)
		}
	})

	t.Run("InvalidRefused", func(t *testing.T) {
		s := open(t).PushSubscriptions()
		ctx := t.Context()
		for name, r := range map[string]storage.PushSubscriptionRow{
			"no endpoint": {Endpoint: "", Body: []byte("{}")},
			"not JSON":    {Endpoint: "https://push.example/x", Body: []byte("{")},
			"huge body":   {Endpoint: "https://push.example/x", Body: fmt.Appendf(nil, "%q", make([]byte, storage.MaxPushBody))},
		} {
			if _, err := s.Put(ctx, r, 10); !errors.Is(err, storage.ErrInvalidRow) {
				t.Errorf("%s: Put = %v, want ErrInvalidRow", name, err)
			}
		}
	})
}
