package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/store"
)

// runToken manages tokens directly in the data directory. It works while
// the hub is stopped (the tables are locked while it runs); it is how the
// first admin token is made. With the hub running, use the /admin/tokens
// routes with an admin token.
func runToken(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.stderr, "usage: agentcom token <create|list|revoke|import> [flags]\n\n"+
			"  create --agent ID [--admin|--role R]   issue a token and print it once\n"+
			"  list                                  list tokens (prefix only)\n"+
			"  revoke --agent ID                     revoke every token of an agent\n"+
			"  import --file tokens.json             import the original hub's tokens.json\n\n"+
			"All work offline on --data (default ./data); stop the hub first.")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	fs := newFlagSet(env, "token "+sub, "[flags]")
	data := fs.String("data", envOr(env, "AGENTCOM_DATA_DIR", "data"), "data directory")
	agent := fs.String("agent", "", "agent id")
	admin := fs.Bool("admin", false, "issue an admin token (same as --role admin)")
	roleName := fs.String("role", "agent", "role: agent, admin or viewer")
	file := fs.String("file", "", "tokens.json of the original hub (import)")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	role, err := auth.ParseRole(*roleName)
	if err != nil {
		return err
	}
	if *admin {
		role = auth.RoleAdmin
	}
	tbl, err := store.OpenTable(store.Tokens, store.TablePath(*data, store.Tokens), store.Options{})
	if err != nil {
		return fmt.Errorf("%w (is the hub running? stop it, or use the /admin/tokens API)", err)
	}
	defer tbl.Close()
	toks, err := auth.New(tbl)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		if *agent == "" {
			return errors.New("--agent is required")
		}
		tok, err := toks.Create(*agent, role)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, tok)
		fmt.Fprintf(env.stderr, "created %s token for %q; it is shown only now, store it safely\n", role, *agent)
	case "list":
		w := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "AGENT\tROLE\tPREFIX")
		for _, l := range toks.List() {
			fmt.Fprintf(w, "%s\t%s\t%s\n", l.AgentID, l.Role, l.TokenPrefix)
		}
		w.Flush()
	case "revoke":
		if *agent == "" {
			return errors.New("--agent is required")
		}
		n, err := toks.Revoke(*agent)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "revoked %d token(s) of %q\n", n, *agent)
	case "import":
		if *file == "" {
			return errors.New("--file is required")
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
		for _, k := range keys {
			if err := toks.Import(k, m[k], role); err != nil {
				return err
			}
		}
		fmt.Fprintf(env.stdout, "imported %d token(s) as role %s; the file still holds them in plaintext: delete it\n", len(keys), role)
	default:
		return fmt.Errorf("unknown token command %q", sub)
	}
	return nil
}
