package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentcom/agentcom/internal/client"
)

// runTask is the task queue client: submit, list, show, retry, cancel.
func runTask(ctx context.Context, env *cmdEnv, args []string) error {
	subs := map[string]func(context.Context, *cmdEnv, []string) error{
		"submit": taskSubmit, "list": taskList, "show": taskShow, "retry": taskRetry,
		"cancel": taskCancel, "dead-letter": taskDeadLetter, "stats": taskStats, "logs": taskLogs,
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.stderr, "usage: agentcom task <command> [flags]\n\n"+
			"  submit \"description\" [--priority P] [--capabilities a,b] [--target AGENT]\n"+
			"         [--max-retries N] [--complete-by T] [--metadata JSON] [--wait]\n"+
			"         [--verify CMD]... [--max-verify-attempts N]\n"+
			"  logs TASK_ID [-f]          the agent's output (-f: follow until the task ends)\n"+
			"  list [--status S] [--priority P] [--assigned-to AGENT]\n"+
			"  show TASK_ID | retry TASK_ID | cancel TASK_ID | dead-letter | stats\n\n"+
			"Every command takes --hub (env AGENTCOM_HUB, default http://localhost:4000),\n"+
			"--token (env AGENTCOM_TOKEN) and --json.")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	f, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "agentcom task: unknown command %q\n", args[0])
		return errUsage
	}
	return f(ctx, env, args[1:])
}

// apiFlags are the flags every HTTP client command shares.
type apiFlags struct {
	hub, token *string
	json       *bool
}

func addAPIFlags(env *cmdEnv, fs *flag.FlagSet) apiFlags {
	return apiFlags{
		hub:   fs.String("hub", envOr(env, "AGENTCOM_HUB", "http://localhost:4000"), "hub HTTP URL (env AGENTCOM_HUB)"),
		token: fs.String("token", env.getenv("AGENTCOM_TOKEN"), "bearer token (env AGENTCOM_TOKEN)"),
		json:  fs.Bool("json", false, "print the hub's JSON"),
	}
}

func (a apiFlags) client() *client.Client {
	return client.New(*a.hub, *a.token, &http.Client{Timeout: 15 * time.Second})
}

// parseWithArgs parses flags placed before or after the positional
// arguments ("submit 'desc' --wait" as well as "submit --wait 'desc'").
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func taskSubmit(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "task submit", `"description" [flags]`)
	api := addAPIFlags(env, fs)
	prio := fs.String("priority", "normal", "urgent, high, normal or low")
	caps := fs.String("capabilities", "", "comma-separated capabilities the agent must all have")
	target := fs.String("target", "", "only this agent may take the task")
	maxRetries := fs.Int("max-retries", -1, "failures before dead-letter (default: the hub's, 3)")
	completeBy := fs.String("complete-by", "", "deadline: RFC 3339 time, a duration from now (30m), or Unix ms")
	meta := fs.String("metadata", "", "metadata JSON object")
	wait := fs.Bool("wait", false, "follow the task until it ends; exit 0 only if it completed")
	waitTimeout := fs.Duration("wait-timeout", 0, "give up waiting after this long (0: no limit)")
	var verify verifyFlag
	fs.Var(&verify, "verify", "command the sidecar runs in the agent's working directory after the agent succeeds; a failure sends the agent back with it as feedback (repeatable)")
	verifyAttempts := fs.String("max-verify-attempts", "", "agent runs allowed for a verified task, 1-10 (default: the sidecar's, 3)")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		fmt.Fprintln(env.stderr, "agentcom task submit: exactly one non-empty description is required")
		return errUsage
	}
	switch *prio {
	case "urgent", "high", "normal", "low":
	default:
		return fmt.Errorf("--priority %q: use urgent, high, normal or low", *prio)
	}
	req := client.TaskSubmit{Description: pos[0], Priority: *prio, NeededCapabilities: splitComma(*caps), TargetAgent: *target, Verify: verify}
	if req.MaxVerifyAttempts, err = parseAttempts(*verifyAttempts); err != nil {
		return err
	}
	if *maxRetries >= 0 {
		req.MaxRetries = maxRetries
	}
	if *completeBy != "" {
		ms, err := parseDeadline(*completeBy, time.Now())
		if err != nil {
			return err
		}
		req.CompleteBy = &ms
	}
	if *meta != "" {
		if err := json.Unmarshal([]byte(*meta), &req.Metadata); err != nil || req.Metadata == nil {
			return fmt.Errorf("--metadata must be a JSON object")
		}
	}
	c := api.client()
	sub, err := c.SubmitTask(ctx, req)
	if err != nil {
		return err
	}
	if *api.json && !*wait {
		return printJSON(env, sub)
	}
	fmt.Fprintf(env.stdout, "task_id:    %s\npriority:   %d\nstatus:     %s\ncreated_at: %s\n",
		sub.TaskID, sub.Priority, sub.Status, time.UnixMilli(sub.CreatedAt).UTC().Format(time.RFC3339))
	if !*wait {
		fmt.Fprintf(env.stdout, "\nfollow it:  agentcom task show %s\n", sub.TaskID)
		return nil
	}
	return followTask(ctx, env, c, sub.TaskID, *waitTimeout, *api.json)
}

// followTask polls the task and prints each change until it ends.
func followTask(ctx context.Context, env *cmdEnv, c *client.Client, id string, timeout time.Duration, asJSON bool) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last := ""
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		t, err := c.Task(ctx, id)
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(env.stderr, "waiting: %v\n", err)
		}
		if err == nil {
			state := t.Status
			if t.AssignedTo != nil && t.Status == "assigned" {
				state += " to " + *t.AssignedTo
			}
			if state != last {
				fmt.Fprintf(env.stdout, "%s  %s (generation %d)\n", time.Now().UTC().Format(time.TimeOnly), state, t.Generation)
				last = state
			}
			if t.Terminal() {
				return reportEnd(env, t, asJSON)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for %s: %w", id, ctx.Err())
		case <-tick.C:
		}
	}
}

func reportEnd(env *cmdEnv, t client.Task, asJSON bool) error {
	if asJSON {
		if err := printJSON(env, t); err != nil {
			return err
		}
	} else if len(t.Result) > 0 && string(t.Result) != "null" {
		fmt.Fprintf(env.stdout, "result: %s\n", t.Result)
	}
	if t.Status == "completed" {
		return nil
	}
	msg := fmt.Sprintf("task %s ended %s", t.ID, t.Status)
	if len(t.LastError) > 0 && string(t.LastError) != "null" {
		msg += ": " + string(t.LastError)
	}
	return errors.New(msg)
}

func taskList(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "task list", "[flags]")
	api := addAPIFlags(env, fs)
	status := fs.String("status", "", "queued, assigned, completed, cancelled")
	prio := fs.String("priority", "", "urgent, high, normal or low")
	assigned := fs.String("assigned-to", "", "agent id")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ts, err := api.client().ListTasks(ctx, client.TaskFilter{Status: *status, Priority: *prio, AssignedTo: *assigned})
	if err != nil {
		return err
	}
	return printTasks(env, ts, *api.json)
}

func taskDeadLetter(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "task dead-letter", "[flags]")
	api := addAPIFlags(env, fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ts, err := api.client().DeadLetter(ctx)
	if err != nil {
		return err
	}
	return printTasks(env, ts, *api.json)
}

func printTasks(env *cmdEnv, ts []client.Task, asJSON bool) error {
	if asJSON {
		return printJSON(env, ts)
	}
	w := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTATUS\tPRIORITY\tASSIGNED TO\tGEN\tDESCRIPTION")
	for _, t := range ts {
		who := "-"
		if t.AssignedTo != nil {
			who = *t.AssignedTo
		}
		d := strings.Join(strings.Fields(t.DescriptionText()), " ")
		if r := []rune(d); len(r) > 50 {
			d = string(r[:47]) + "..."
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", t.ID, t.Status, priorityName(t.Priority), who, t.Generation, d)
	}
	return w.Flush()
}

func taskShow(ctx context.Context, env *cmdEnv, args []string) error {
	return taskByID(ctx, env, "show", args, func(ctx context.Context, c *client.Client, id string) (any, error) {
		var raw json.RawMessage
		err := c.Do(ctx, http.MethodGet, "/api/tasks/"+url.PathEscape(id), nil, &raw, nil)
		return raw, err
	})
}

func taskRetry(ctx context.Context, env *cmdEnv, args []string) error {
	return taskByID(ctx, env, "retry", args, func(ctx context.Context, c *client.Client, id string) (any, error) {
		return c.RetryTask(ctx, id)
	})
}

func taskCancel(ctx context.Context, env *cmdEnv, args []string) error {
	return taskByID(ctx, env, "cancel", args, func(ctx context.Context, c *client.Client, id string) (any, error) {
		return c.CancelTask(ctx, id)
	})
}

// taskByID runs one call on a task id and prints the answer as JSON.
func taskByID(ctx context.Context, env *cmdEnv, name string, args []string, call func(context.Context, *client.Client, string) (any, error)) error {
	fs := newFlagSet(env, "task "+name, "TASK_ID [flags]")
	api := addAPIFlags(env, fs)
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	v, err := call(ctx, api.client(), pos[0])
	if err != nil {
		return err
	}
	return printJSON(env, v)
}

func taskStats(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "task stats", "[flags]")
	api := addAPIFlags(env, fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := api.client().TaskStats(ctx)
	if err != nil {
		return err
	}
	return printJSON(env, s)
}

// parseDeadline reads an RFC 3339 time, a Go duration from now, or Unix
// milliseconds, and returns Unix milliseconds.
func parseDeadline(s string, now time.Time) (int64, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UnixMilli(), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d).UnixMilli(), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
		return ms, nil
	}
	return 0, fmt.Errorf("--complete-by %q: use an RFC 3339 time, a duration such as 30m, or Unix milliseconds", s)
}

func priorityName(p int) string {
	switch p {
	case 0:
		return "urgent"
	case 1:
		return "high"
	case 2:
		return "normal"
	case 3:
		return "low"
	}
	return strconv.Itoa(p)
}

func printJSON(env *cmdEnv, v any) error {
	if raw, ok := v.(json.RawMessage); ok {
		var x any
		if json.Unmarshal(raw, &x) == nil {
			v = x
		}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.stdout, string(b))
	return err
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
