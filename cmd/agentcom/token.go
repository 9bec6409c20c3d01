package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/store"
)

// tokenCommand manages tokens directly in the hub's store. On the data
// directory it works while the hub is stopped (the tables are locked while
// it runs); it is how the first admin token is made. On PostgreSQL it works
// while hubs run: they verify a new token from the database. With a hub
// running, the /admin/tokens routes do the same with an admin token.
func tokenCommand() *command {
	return &command{name: "token", summary: "manage auth tokens offline in the store (data directory: hub stopped)",
		about: "All work on --store (env AGENTCOM_STORE): bolt, the default, is the data directory --data\n" +
			"(env AGENTCOM_DATA_DIR, default ./data): stop the hub first. postgres://... is a PostgreSQL\n" +
			"database, usable while hubs run on it: they accept a new token at once and drop a revoked\n" +
			"one within seconds.\n" +
			"With the hub running, an admin token manages tokens over HTTP (POST/GET/DELETE /admin/tokens).",
		subs: []*command{
			{name: "create", summary: "issue a token and print it once", setup: tokenCreate},
			{name: "list", summary: "list tokens (an 8-character prefix only)", setup: tokenList},
			{name: "revoke", summary: "revoke every token of an agent", setup: tokenRevoke},
			{name: "import", summary: "import the original hub's tokens.json", setup: tokenImport},
		}}
}

// dataFlag declares --data.
func (in *inv) dataFlag() *string {
	return in.fs.String("data", "", "the data `DIR` (env AGENTCOM_DATA_DIR, else ./data)")
}

func dataDir(env *cmdEnv, flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return envOr(env, "AGENTCOM_DATA_DIR", "data")
}

// storeLocation is where a command finds the hub's storage: --store (env
// AGENTCOM_STORE) and, for the bolt store, --data.
type storeLocation struct {
	store func() (storeSpec, error)
	data  *string
}

// storeFlags declares --store and --data.
func (in *inv) storeFlags() storeLocation {
	return storeLocation{store: in.storeFlag(), data: in.dataFlag()}
}

// openStorage opens the storage driver loc names; close releases it. On
// the data directory it holds every table file until close.
func openStorage(ctx context.Context, in *inv, loc storeLocation) (d storage.Driver, closeFn func() error, err error) {
	spec, err := loc.store()
	if err != nil {
		return nil, nil, in.usagef("%v", err)
	}
	if spec.isPostgres() {
		if *loc.data != "" {
			return nil, nil, in.usagef("--data applies to the bolt store only, not to --store %s", spec)
		}
		pd, err := pgdriver.Open(ctx, spec.postgres, pgdriver.Config{MaxConns: 2})
		if err != nil {
			return nil, nil, err
		}
		return pd, pd.Close, nil
	}
	dir := dataDir(in.env, *loc.data)
	bd, db, err := boltdriver.OpenDir(dir, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return nil, nil, heldBy(dir, err, "stop that hub first, or, with the hub running, manage tokens over HTTP with an admin token (POST/GET/DELETE /admin/tokens)")
	}
	if err != nil {
		return nil, nil, err
	}
	return bd, db.Close, nil
}

// openTokens opens the token store at loc and runs fn on it.
func openTokens(ctx context.Context, in *inv, loc storeLocation, fn func(*auth.Tokens) error) error {
	d, closeFn, err := openStorage(ctx, in, loc)
	if err != nil {
		return err
	}
	toks, err := auth.New(d.Tokens())
	if err == nil {
		err = fn(toks)
	}
	if cerr := closeFn(); err == nil {
		err = cerr
	}
	return err
}

// heldBy explains a data directory locked by another process: who holds
// it, and what to do instead.
func heldBy(dir string, err error, fix string) error {
	if abs, aerr := filepath.Abs(dir); aerr == nil {
		dir = abs
	}
	return withHint(fmt.Errorf("another hub holds %s (or an agentcom command working on it): %w", dir, err), "%s", fix)
}

func roleFlags(in *inv) func() (auth.Role, error) {
	admin := in.fs.Bool("admin", false, "issue an admin token (same as --role admin)")
	roleName := in.fs.String("role", "agent", "`ROLE`: agent, admin or viewer")
	in.oneOf("role", string(auth.RoleAgent), string(auth.RoleAdmin), string(auth.RoleViewer))
	return func() (auth.Role, error) {
		if *admin {
			return auth.RoleAdmin, nil
		}
		return auth.ParseRole(*roleName)
	}
}

// createdToken is what token create prints with --json.
type createdToken struct {
	AgentID string    `json:"agent_id"`
	Role    auth.Role `json:"role"`
	Token   string    `json:"token"`
}

func tokenCreate(in *inv) runFunc {
	loc := in.storeFlags()
	agent := in.fs.String("agent", "", "`AGENT` id the token acts as (required)")
	role := roleFlags(in)
	return func(ctx context.Context, _ []string) error {
		if *agent == "" {
			return in.usagef("--agent is required")
		}
		r, err := role()
		if err != nil {
			return in.usagef("%v", err)
		}
		return openTokens(ctx, in, loc, func(toks *auth.Tokens) error {
			tok, err := toks.Create(*agent, r)
			if err != nil {
				return err
			}
			if in.asJSON {
				return writeJSON(in.env.stdout, createdToken{AgentID: *agent, Role: r, Token: tok})
			}
			// The token alone on stdout, so TOKEN=$(agentcom token create ...) works.
			fmt.Fprintln(in.env.stdout, tok)
			fmt.Fprintf(in.env.stderr, "created %s token for %q; it is shown only now, store it safely\n", r, *agent)
			return nil
		})
	}
}

func tokenList(in *inv) runFunc {
	loc := in.storeFlags()
	return func(ctx context.Context, _ []string) error {
		return openTokens(ctx, in, loc, func(toks *auth.Tokens) error {
			list := toks.List()
			if list == nil {
				list = []auth.Listed{}
			}
			return in.emit(list, func(p *printer) {
				if len(list) == 0 {
					p.line("no tokens; create one: agentcom token create --agent ops --admin")
					return
				}
				rows := make([][]cell, 0, len(list))
				for _, l := range list {
					rows = append(rows, []cell{styled(l.AgentID, bold), txt(string(l.Role)), txt(l.TokenPrefix), txt(p.ago(l.CreatedAt))})
				}
				p.table([]string{"AGENT", "ROLE", "PREFIX", "CREATED"}, rows)
			})
		})
	}
}

func tokenRevoke(in *inv) runFunc {
	loc := in.storeFlags()
	agent := in.fs.String("agent", "", "`AGENT` id whose tokens to revoke (required)")
	return func(ctx context.Context, _ []string) error {
		if *agent == "" {
			return in.usagef("--agent is required")
		}
		return openTokens(ctx, in, loc, func(toks *auth.Tokens) error {
			n, err := toks.Revoke(*agent)
			if err != nil {
				return err
			}
			return in.emit(struct {
				AgentID string `json:"agent_id"`
				Revoked int    `json:"revoked"`
			}{*agent, n}, func(p *printer) { p.line("revoked %d token(s) of %q", n, *agent) })
		})
	}
}

func tokenImport(in *inv) runFunc {
	loc := in.storeFlags()
	file := in.fs.String("file", "", "the original hub's tokens.json `FILE`: a JSON object of token -> agent id (required)")
	role := roleFlags(in)
	return func(ctx context.Context, _ []string) error {
		if *file == "" {
			return in.usagef("--file is required")
		}
		r, err := role()
		if err != nil {
			return in.usagef("%v", err)
		}
		raw, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("%s: want a JSON object of token -> agent_id: %w", *file, err)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		// Every agent id is checked before anything is stored: a file with
		// one bad id imports nothing.
		var bad []string
		for _, k := range keys {
			if err := protocol.CheckAgentID(m[k]); err != nil {
				bad = append(bad, fmt.Sprintf("%q", m[k]))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("%s: nothing imported: agent ids break the rule (%s): %s", *file, protocol.AgentIDRule, strings.Join(bad, ", "))
		}
		return openTokens(ctx, in, loc, func(toks *auth.Tokens) error {
			for _, k := range keys {
				if err := toks.Import(k, m[k], r); err != nil {
					return err
				}
			}
			return in.emit(struct {
				Imported int       `json:"imported"`
				Role     auth.Role `json:"role"`
			}{len(keys), r}, func(p *printer) {
				p.line("imported %d token(s) as role %s; the file still holds them in plaintext: delete it", len(keys), r)
			})
		})
	}
}
