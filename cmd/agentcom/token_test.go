package main

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/testenv"
)

// withPassword returns raw with a password in its user info. The test
// server trusts every local connection, so the password is ignored by the
// server; it is there to prove the commands never print it.
func withPassword(t *testing.T, raw, password string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// TestTokenCommandsPostgres: create, list, revoke and import work on a
// PostgreSQL store given by --store or AGENTCOM_STORE, while what they
// write is what a hub on that database verifies; the URL's password is
// never printed.
func TestTokenCommandsPostgres(t *testing.T) {
	const password = "pw-marker-5e1f"
	pg := withPassword(t, testenv.Postgres(t), password)
	env := map[string]string{"AGENTCOM_STORE": pg, "AGENTCOM_DATA_DIR": t.TempDir()}
	var outputs []string
	run := func(env map[string]string, args ...string) (int, string, string) {
		t.Helper()
		code, out, errs := runCmd(t, env, args...)
		outputs = append(outputs, out, errs)
		return code, out, errs
	}

	code, out, errs := run(nil, "token", "create", "--store", pg, "--agent", "ops", "--admin")
	admin := strings.TrimSpace(out)
	if code != 0 || len(admin) != 64 || !strings.Contains(errs, "shown only now") {
		t.Fatalf("create --store: %d %q %q", code, out, errs)
	}
	var created createdToken
	code, out, _ = run(env, "token", "create", "--agent", "worker-1", "--json")
	mustJSON(t, "create --json", out, &created)
	if code != 0 || created.Role != auth.RoleAgent {
		t.Fatalf("create with AGENTCOM_STORE: %d %q", code, out)
	}

	// A hub on the same database verifies both.
	d, err := pgdriver.Open(t.Context(), pg, pgdriver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	hubTokens, err := auth.New(d.Tokens())
	if err != nil {
		t.Fatal(err)
	}
	if id, err := hubTokens.Verify(admin); err != nil || !id.IsAdmin() {
		t.Fatalf("admin token on the hub: %+v %v", id, err)
	}
	// One the hub issues shows in the command's listing.
	if _, err := hubTokens.Create("viewer-1", auth.RoleViewer); err != nil {
		t.Fatal(err)
	}
	var list []auth.Listed
	code, out, _ = run(env, "token", "list", "--json")
	mustJSON(t, "list --json", out, &list)
	if code != 0 || len(list) != 3 || list[0].AgentID != "ops" || list[2].AgentID != "worker-1" || strings.Contains(out, admin) {
		t.Fatalf("list: %d %q", code, out)
	}

	code, out, _ = run(env, "token", "revoke", "--agent", "worker-1", "--json")
	if code != 0 || !strings.Contains(out, `"revoked": 1`) {
		t.Fatalf("revoke: %d %q", code, out)
	}
	// The revocation is in the database: a hub loading now refuses it.
	fresh, err := auth.New(d.Tokens())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Verify(created.Token); err == nil {
		t.Fatal("revoked token verifies on a hub loading after the revocation")
	}

	legacy := strings.Repeat("b", 64)
	file := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(file, []byte(`{"`+legacy+`":"legacy-1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run(env, "token", "import", "--file", file)
	if code != 0 || !strings.Contains(out, "imported 1 token(s) as role agent") {
		t.Fatalf("import: %d %q", code, out)
	}
	if id, err := fresh.Verify(legacy); err != nil || id.AgentID != "legacy-1" {
		t.Fatalf("imported token on the hub: %+v %v", id, err)
	}

	// --data names a data directory: with a PostgreSQL store it is a
	// mistake, said without the password.
	code, _, errs = run(nil, "token", "list", "--store", pg, "--data", t.TempDir())
	if code != 2 || !strings.Contains(errs, "--data applies to the bolt store only") {
		t.Fatalf("--data with postgres: %d %q", code, errs)
	}
	// An unreachable database and an unknown kind of store fail clearly.
	code, _, errs = run(nil, "token", "list", "--store", "postgres://ops:"+password+"@127.0.0.1:1/none?connect_timeout=5")
	if code != 1 || !strings.Contains(errs, "127.0.0.1:1") {
		t.Fatalf("unreachable store: %d %q", code, errs)
	}
	code, _, errs = run(nil, "token", "list", "--store", "mysql://ops:"+password+"@db/x")
	if code != 2 || !strings.Contains(errs, "want bolt or a postgres:// URL") {
		t.Fatalf("unknown store: %d %q", code, errs)
	}
	for _, o := range outputs {
		if strings.Contains(o, password) {
			t.Fatalf("the store URL's password was printed:\n%s", o)
		}
	}
}

// TestTokenCommandsBoltStore: --store bolt is the data directory, as no
// --store at all.
func TestTokenCommandsBoltStore(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runCmd(t, nil, "token", "create", "--store", "bolt", "--data", dir, "--agent", "ops", "--admin")
	if code != 0 {
		t.Fatalf("create: %d %q %q", code, out, errs)
	}
	code, out, _ = runCmd(t, map[string]string{"AGENTCOM_DATA_DIR": dir}, "token", "list", "--json")
	var list []auth.Listed
	mustJSON(t, "list", out, &list)
	if code != 0 || len(list) != 1 || list[0].AgentID != "ops" {
		t.Fatalf("list: %d %q", code, out)
	}
}
