package storagetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
)

func runSettings(t *testing.T, open Opener) {
	t.Run("PutAll", func(t *testing.T) {
		s := open(t).Settings()
		ctx := t.Context()
		if m, err := s.All(ctx); err != nil || len(m) != 0 {
			t.Fatalf("fresh store: %v, %v", m, err)
		}
		for k, v := range map[string]string{"mailbox_ttl_ms": "3600000", "default_repo": `"git@example.com:r.git"`, "obj": `{"b": [1, 2], "a": null}`} {
			if err := s.Put(ctx, k, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Put(ctx, "mailbox_ttl_ms", []byte("7200000")); err != nil { // replaces
			t.Fatal(err)
		}
		m, err := s.All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"mailbox_ttl_ms": "7200000", "default_repo": `"git@example.com:r.git"`, "obj": `{"a":null,"b":[1,2]}`}
		if len(m) != len(want) {
			t.Fatalf("All = %q", m)
		}
		for k, v := range want {
			if !sameJSON(t, m[k], []byte(v)) {
				t.Errorf("%s = %s, want %s", k, m[k], v)
			}
		}
	})

	t.Run("PutIfAbsentFirstWriterWins", func(t *testing.T) {
		s := open(t).Settings()
		ctx := t.Context()
		const racers = 8
		got := make(chan []byte, racers)
		errs := make(chan error, racers)
		for i := range racers {
			go func() {
				v, err := s.PutIfAbsent(ctx, "shared", fmt.Appendf(nil, `{"writer":%d}`, i))
				got <- v
				errs <- err
			}()
		}
		var first []byte
		for range racers {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			v := <-got
			if first == nil {
				first = v
			} else if !sameJSON(t, v, first) {
				t.Fatalf("racers disagree: %s and %s", v, first)
			}
		}
		m, err := s.All(ctx)
		if err != nil || !sameJSON(t, m["shared"], first) {
			t.Fatalf("stored %s, racers got %s (%v)", m["shared"], first, err)
		}
		if v, err := s.PutIfAbsent(ctx, "shared", []byte(`"later"`)); err != nil || !sameJSON(t, v, first) {
			t.Fatalf("PutIfAbsent over a set key = %s, %v", v, err)
		}
		if _, err := s.PutIfAbsent(ctx, "bad", []byte("{")); !errors.Is(err, storage.ErrInvalidRow) {
			t.Fatalf("PutIfAbsent of junk: %v", err)
		}
	})

	t.Run("InvalidRefused", func(t *testing.T) {
		s := open(t).Settings()
		ctx := t.Context()
		for name, kv := range map[string][2]string{
			"not JSON":   {"k", "soon"},
			"empty":      {"k", ""},
			"no key":     {"", "1"},
			"long key":   {strings.Repeat("k", storage.MaxSettingKey+1), "1"},
			"long value": {"k", `"` + strings.Repeat("v", storage.MaxSettingValue) + `"`},
		} {
			if err := s.Put(ctx, kv[0], []byte(kv[1])); !errors.Is(err, storage.ErrInvalidRow) {
				t.Errorf("%s: Put = %v, want ErrInvalidRow", name, err)
			}
		}
		if m, _ := s.All(ctx); len(m) != 0 {
			t.Fatalf("refused settings stored: %q", m)
		}
	})
}
