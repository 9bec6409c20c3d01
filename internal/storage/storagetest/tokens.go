package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
)

func tokenRow(plain, agent, role string, created int64) storage.TokenRow {
	return storage.TokenRow{Hash: storage.TokenHash(plain), AgentID: agent, Role: role, Prefix: plain[:4], CreatedAt: created}
}

func runTokens(t *testing.T, open Opener) {
	t.Run("PutGetAllRevoke", func(t *testing.T) {
		s := open(t).Tokens()
		ctx := t.Context()
		rows := []storage.TokenRow{
			tokenRow("secret-a1", "a", "agent", 1), tokenRow("secret-a2", "a", "agent", 2),
			tokenRow("secret-ops", "ops", "admin", 3), tokenRow("secret-w", "watcher", "viewer", 4),
		}
		for _, r := range rows {
			if err := s.Put(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Get(ctx, storage.TokenHash("secret-ops"))
		if err != nil || got != rows[2] {
			t.Fatalf("Get = %+v, %v; want %+v", got, err, rows[2])
		}
		if _, err := s.Get(ctx, storage.TokenHash("never issued")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get of an unknown hash: %v", err)
		}
		all, err := s.All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(rows)
		slices.SortFunc(want, func(x, y storage.TokenRow) int { return strings.Compare(x.Hash, y.Hash) })
		if !slices.Equal(all, want) {
			t.Fatalf("All = %+v\nwant %+v", all, want)
		}
		// Put with a known hash replaces the row.
		moved := rows[3]
		moved.Role, moved.CreatedAt = "agent", 9
		if err := s.Put(ctx, moved); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(ctx, moved.Hash); got != moved {
			t.Fatalf("after replace: %+v", got)
		}
		if n, err := s.RevokeAgent(ctx, "a"); err != nil || n != 2 {
			t.Fatalf("RevokeAgent(a) = %d, %v; want 2", n, err)
		}
		if n, err := s.RevokeAgent(ctx, "a"); err != nil || n != 0 {
			t.Fatalf("second RevokeAgent(a) = %d, %v; want 0", n, err)
		}
		if all, _ := s.All(ctx); len(all) != 2 {
			t.Fatalf("after revoke: %+v", all)
		}
		if _, err := s.Get(ctx, rows[0].Hash); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("revoked token still readable: %v", err)
		}
	})

	t.Run("HashFormat", func(t *testing.T) {
		// The hash both drivers key by (and existing bolt data dirs hold):
		// SHA-256 in lowercase hex.
		if h := storage.TokenHash("abc"); h != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
			t.Fatalf("TokenHash(abc) = %s", h)
		}
	})

	t.Run("InvalidRowsRefused", func(t *testing.T) {
		s := open(t).Tokens()
		ctx := t.Context()
		good := tokenRow("secret-x", "x", "agent", 1)
		for name, mut := range map[string]func(*storage.TokenRow){
			"plaintext as hash": func(r *storage.TokenRow) { r.Hash = "secret-x" },
			"upper-case hash":   func(r *storage.TokenRow) { r.Hash = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD" },
			"no agent":          func(r *storage.TokenRow) { r.AgentID = "" },
			"no role":           func(r *storage.TokenRow) { r.Role = "" },
			"huge agent":        func(r *storage.TokenRow) { r.AgentID = string(make([]byte, 10000)) },
		} {
			r := good
			mut(&r)
			if err := s.Put(ctx, r); !errors.Is(err, storage.ErrInvalidRow) {
				t.Errorf("%s: Put = %v, want ErrInvalidRow", name, err)
			}
		}
		if all, _ := s.All(ctx); len(all) != 0 {
			t.Fatalf("refused rows stored: %+v", all)
		}
	})

	t.Run("ConcurrentPutsAndRevoke", func(t *testing.T) {
		s := open(t).Tokens()
		ctx := t.Context()
		const n = 20
		errs := make(chan error, n)
		for i := range n {
			go func() { errs <- s.Put(ctx, tokenRow(fmt.Sprintf("secret-%03d", i), "many", "agent", int64(i))) }()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if k, err := s.RevokeAgent(ctx, "many"); err != nil || k != n {
			t.Fatalf("RevokeAgent = %d, %v; want %d", k, err, n)
		}
	})
}
