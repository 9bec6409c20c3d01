package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/testenv"
)

// openBolt opens the bolt driver over dir; closing is the caller's.
func openBolt(t testing.TB, dir string) (*store.DB, storage.Driver) {
	t.Helper()
	d, db, err := boltdriver.OpenDir(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db, d
}

func TestTokensBolt(t *testing.T) {
	dir := t.TempDir()
	db, d := openBolt(t, dir)
	adm := exerciseTokens(t, d.Tokens())
	db.Close()
	raw, _ := os.ReadFile(store.TablePath(dir, store.Tokens))
	if len(raw) == 0 || bytes.Contains(raw, []byte(adm)) {
		t.Fatal("token table file missing, or the plaintext token in it")
	}
	// Tokens survive a reopen.
	db, d = openBolt(t, dir)
	defer db.Close()
	toks, err := New(d.Tokens())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := toks.Verify(adm); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestTokensPostgres(t *testing.T) {
	url := testenv.Postgres(t)
	d, err := pgdriver.Open(t.Context(), url, pgdriver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	adm := exerciseTokens(t, d.Tokens())

	// A second registry over the same database (another hub) knows the
	// tokens the first issued, at load and after it.
	other, err := New(d.Tokens())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(adm); err != nil {
		t.Fatalf("other hub: %v", err)
	}
	first, _ := New(d.Tokens())
	if got := first.Agents(); len(got) != 0 {
		t.Fatalf("agents: %v", got)
	}
	late, err := other.Create("late", RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	id, err := first.Verify(late)
	if err != nil || id.AgentID != "late" {
		t.Fatalf("a token issued by another hub: %+v, %v", id, err)
	}
	if got := first.Agents(); !slices.Equal(got, []string{"late"}) {
		t.Fatalf("agents once another hub's token was verified: %v", got)
	}
	// Revoked by the other hub: gone here at the next refresh, which
	// counts it so the hub closes what it opened.
	if n, err := other.Revoke("late"); err != nil || n != 1 {
		t.Fatalf("revoke: %d, %v", n, err)
	}
	if !first.Live(id) {
		t.Fatal("not live before the refresh: the refresh below proves nothing")
	}
	if n, err := first.Refresh(t.Context()); err != nil || n != 1 {
		t.Fatalf("Refresh = %d, %v; want 1 revoked", n, err)
	}
	if first.Live(id) {
		t.Fatal("a token revoked by another hub is still live after a refresh")
	}
	if got := first.Agents(); len(got) != 0 {
		t.Fatalf("agents after a refresh dropped the other hub's token: %v", got)
	}
	if _, err := first.Verify(late); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("revoked elsewhere, verify: %v", err)
	}
	if n, err := first.Refresh(t.Context()); err != nil || n != 0 {
		t.Fatalf("second Refresh = %d, %v", n, err)
	}
}

// exerciseTokens runs the registry's behaviour on s and returns the admin
// token it created.
func exerciseTokens(t *testing.T, s storage.TokenStore) string {
	t.Helper()
	toks, err := New(s)
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
	if _, err := toks.Create("bad id!", RoleAgent); err == nil {
		t.Fatal("a token for a non-conforming agent id")
	}
	if got := toks.Agents(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("agents (once per agent, agent role only): %v", got)
	} else {
		got[0] = "changed by the caller"
	}
	if got := toks.Agents(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("agents after a caller changed its copy: %v", got)
	}
	b, _ := toks.Create("b", RoleAgent)
	if got := toks.Agents(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("agents after a token for b: %v", got)
	}
	if n, _ := toks.Revoke("b"); n != 1 || b == "" {
		t.Fatalf("revoked %d", n)
	}
	for _, l := range toks.List() {
		if len(l.TokenPrefix) != PrefixLen+3 {
			t.Fatalf("prefix %q", l.TokenPrefix)
		}
	}
	if n, _ := toks.Revoke("a"); n != 2 {
		t.Fatalf("revoked %d", n)
	}
	if got := toks.Agents(); len(got) != 0 {
		t.Fatalf("agents after the revocations: %v", got)
	}
	if _, err := toks.Verify(a1); err == nil || toks.Live(id) {
		t.Fatal("revoked token still valid")
	}
	rows, err := s.All(t.Context())
	if err != nil || len(rows) != 1 || rows[0].Hash != storage.TokenHash(adm) || rows[0].Prefix != adm[:PrefixLen] {
		t.Fatalf("stored rows %+v, %v", rows, err)
	}
	if _, err := ParseRole("root"); err == nil {
		t.Fatal("unknown role accepted")
	}
	return adm
}

// pausingStore is a real token store whose next All, once armed, reads
// its rows and then waits for release before returning them: a refresh
// caught between its read and its install.
type pausingStore struct {
	storage.TokenStore
	armed   chan struct{} // closed by All after the read
	release chan struct{}
	once    sync.Once
}

func (p *pausingStore) All(ctx context.Context) ([]storage.TokenRow, error) {
	rows, err := p.TokenStore.All(ctx)
	paused := false
	p.once.Do(func() { paused = true })
	if paused && p.armed != nil {
		close(p.armed)
		<-p.release
	}
	return rows, err
}

// TestRefreshDoesNotUndoARevocation: a refresh that read the tokens just
// before this registry revoked one does not bring it back.
func TestRefreshDoesNotUndoARevocation(t *testing.T) {
	db, d := openBolt(t, t.TempDir())
	defer db.Close()
	ps := &pausingStore{TokenStore: d.Tokens()}
	toks, err := New(ps) // the first All (the load) passes: not armed
	if err != nil {
		t.Fatal(err)
	}
	tok, err := toks.Create("a", RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	ps.armed, ps.release, ps.once = make(chan struct{}), make(chan struct{}), sync.Once{}
	done := make(chan error, 1)
	go func() {
		_, err := toks.Refresh(t.Context())
		done <- err
	}()
	<-ps.armed // the refresh holds a snapshot with the token
	if n, err := toks.Revoke("a"); err != nil || n != 1 {
		t.Fatalf("revoke: %d, %v", n, err)
	}
	close(ps.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := toks.Verify(tok); !errors.Is(err, ErrUnknownToken) {
		t.Fatalf("a revoked token came back with a refresh that raced the revocation: %v", err)
	}
}

// BenchmarkAgents is the token holders' list a broadcast asks for, with
// 1,000 agents holding tokens and no token changing between calls.
func BenchmarkAgents(b *testing.B) {
	db, d := openBolt(b, b.TempDir())
	b.Cleanup(func() { db.Close() })
	toks, err := New(d.Tokens())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if _, err := toks.Create(fmt.Sprintf("agent-%04d", i), RoleAgent); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(toks.Agents()) != 1000 {
			b.Fatal("agents missing")
		}
	}
}

// TestAgentViewFollowsChanges: Agents and HasAgent answer from a view made
// once per change; each create and revoke shows in the next answer.
func TestAgentViewFollowsChanges(t *testing.T) {
	db, d := openBolt(t, t.TempDir())
	defer db.Close()
	toks, err := New(d.Tokens())
	if err != nil {
		t.Fatal(err)
	}
	check := func(step string, agents []string, holders ...string) {
		t.Helper()
		if got := toks.Agents(); !slices.Equal(got, agents) {
			t.Fatalf("%s: Agents() = %v, want %v", step, got, agents)
		}
		for _, a := range []string{"ops", "w1", "w2"} {
			if got, want := toks.HasAgent(a), slices.Contains(holders, a); got != want {
				t.Fatalf("%s: HasAgent(%s) = %v, want %v", step, a, got, want)
			}
		}
	}
	check("empty", []string{})
	for _, c := range []struct {
		agent string
		role  Role
	}{{"w2", RoleAgent}, {"ops", RoleAdmin}, {"w1", RoleAgent}} {
		if _, err := toks.Create(c.agent, c.role); err != nil {
			t.Fatal(err)
		}
	}
	// An admin token's id holds a token but is no agent of Agents.
	check("created", []string{"w1", "w2"}, "ops", "w1", "w2")
	if _, err := toks.Revoke("w2"); err != nil {
		t.Fatal(err)
	}
	check("revoked", []string{"w1"}, "ops", "w1")
	// A caller's slice is its own.
	got := toks.Agents()
	got[0] = "changed"
	check("after a caller wrote to its slice", []string{"w1"}, "ops", "w1")
}
