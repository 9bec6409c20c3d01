package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/agentcom/agentcom/internal/client"
)

// runAdmin drives the storage admin API of a running hub with an admin
// token. For a stopped hub, use `agentcom store`.
func runAdmin(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.stderr, "usage: agentcom admin <command> [flags]\n\n"+
			"  backup                                  back up every table now (verified)\n"+
			"  health                                  storage health per table\n"+
			"  compact [TABLE] [--force]               compact one table or all\n"+
			"  restore TABLE [--backup NAME] [--dry-run]  restore a table from its newest verified backup\n"+
			"  backups TABLE                           list a table's backups\n"+
			"  drill                                   restore every newest backup into a scratch dir and check it\n\n"+
			"Every command takes --hub (env AGENTCOM_HUB), --token (env AGENTCOM_TOKEN, an admin token).\n"+
			"The hub's JSON answer is printed; a refused operation exits 1.")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	fs := newFlagSet(env, "admin "+sub, "[flags]")
	api := addAPIFlags(env, fs)
	force := fs.Bool("force", false, "compact even tables below the fragmentation threshold")
	backup := fs.String("backup", "", "restore this backup file name instead of the newest verified one")
	dry := fs.Bool("dry-run", false, "show what a restore would change without touching anything")
	pos, err := parseWithArgs(fs, rest)
	if err != nil {
		return err
	}
	arg := func(i int, what string) (string, error) {
		if len(pos) <= i {
			return "", fmt.Errorf("%s is required", what)
		}
		return url.PathEscape(pos[i]), nil
	}
	method, path := http.MethodPost, ""
	q := url.Values{}
	switch sub {
	case "backup":
		path = "/api/admin/backup"
	case "health":
		method, path = http.MethodGet, "/api/admin/dets-health"
	case "compact":
		path = "/api/admin/compact"
		if len(pos) > 0 {
			t, _ := arg(0, "TABLE")
			path += "/" + t
		}
		if *force {
			q.Set("force", "true")
		}
	case "restore":
		t, err := arg(0, "TABLE")
		if err != nil {
			return err
		}
		path = "/api/admin/restore/" + t
		if *backup != "" {
			q.Set("backup", *backup)
		}
		if *dry {
			q.Set("dry_run", "true")
		}
	case "backups":
		t, err := arg(0, "TABLE")
		if err != nil {
			return err
		}
		method, path = http.MethodGet, "/api/admin/backups/"+t
	case "drill":
		path = "/api/admin/drill"
	default:
		return fmt.Errorf("unknown admin command %q", sub)
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	// Backups and compactions of big tables take a while.
	c := api.client()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var out json.RawMessage
	err = c.Do(ctx, method, path, nil, &out, nil)
	var ce *client.Error
	if errors.As(err, &ce) && ce.Code == "" && json.Valid(ce.Body) {
		// A report that is not a success (a backup that missed tables):
		// show it whole, and fail.
		out, err = ce.Body, fmt.Errorf("hub answered %d: %s", ce.Status, failedStatus(ce.Body))
	} else if err != nil {
		return err
	}
	var pretty any
	if json.Unmarshal(out, &pretty) != nil {
		return errors.New("hub answered with invalid JSON")
	}
	b, _ := json.MarshalIndent(pretty, "", "  ")
	fmt.Fprintln(env.stdout, string(b))
	return err
}

// failedStatus names the "status" of a report body, for the error line.
func failedStatus(body []byte) string {
	var r struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(body, &r) != nil || r.Status == "" {
		return "see the report above"
	}
	return "status " + r.Status
}
