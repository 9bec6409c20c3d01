package auth

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentcom/agentcom/internal/store"
)

func TestTokens(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.db")
	tbl, err := store.OpenTable(store.Tokens, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := New(tbl)
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := toks.Create("a", RoleAgent)
	toks.Create("a", RoleAgent) // a second token of the same agent
	adm, _ := toks.Create("ops", RoleAdmin)
	if len(a1) != 64 {
		t.Fatalf("token %q", a1)
	}
	id, err := toks.Verify(a1)
	if err != nil || id.AgentID != "a" || id.Role != RoleAgent || !id.CanActAs("a") || id.CanActAs("b") {
		t.Fatalf("verify: %+v %v", id, err)
	}
	if id, _ := toks.Verify(adm); !id.IsAdmin() || !id.CanActAs("anyone") {
		t.Fatalf("admin: %+v", id)
	}
	if _, err := toks.Verify("nope"); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("unknown: %v", err)
	}
	if got := toks.Agents(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("agents (once per agent, agent role only): %v", got)
	}
	for _, l := range toks.List() {
		if len(l.TokenPrefix) != PrefixLen+3 {
			t.Fatalf("prefix %q", l.TokenPrefix)
		}
	}
	if n, _ := toks.Revoke("a"); n != 2 {
		t.Fatalf("revoked %d", n)
	}
	if _, err := toks.Verify(a1); err == nil {
		t.Fatal("revoked token still valid")
	}
	tbl.Close()
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte(adm)) {
		t.Fatal("plaintext token in the table file")
	}
	// Tokens survive a reopen.
	tbl, _ = store.OpenTable(store.Tokens, path, store.Options{})
	defer tbl.Close()
	toks, _ = New(tbl)
	if _, err := toks.Verify(adm); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	if _, err := ParseRole("root"); err == nil {
		t.Fatal("unknown role accepted")
	}
}
