package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentcom/agentcom/internal/client"
)

// Workflow commands: task pause/resume, task batch, the dependency chain
// of task show, and the schedule command.

// taskWorkflowFlags are the workflow flags of task submit.
type taskWorkflowFlags struct {
	uniqueKey, uniqueFor, runAt, runIn, dependsOn, onDepFailure *string
}

func addTaskWorkflowFlags(fs interface {
	String(name, value, usage string) *string
}) taskWorkflowFlags {
	return taskWorkflowFlags{
		uniqueKey:    fs.String("unique-key", "", "a second submit with this key returns the existing task"),
		uniqueFor:    fs.String("unique-for", "", "how long the key holds from submission (e.g. 1h); default: while the task is active"),
		runAt:        fs.String("run-at", "", "hold the task until then: RFC 3339 time or Unix ms"),
		runIn:        fs.String("run-in", "", "hold the task for this long (e.g. 30m)"),
		dependsOn:    fs.String("depends-on", "", "comma-separated task ids that must complete first"),
		onDepFailure: fs.String("on-dependency-failure", "", "cancel (default) or run: what to do when a dependency fails"),
	}
}

// apply copies the flags into the request.
func (f taskWorkflowFlags) apply(req *client.TaskSubmit) error {
	req.UniqueKey, req.UniqueFor, req.RunIn = *f.uniqueKey, *f.uniqueFor, *f.runIn
	req.DependsOn = splitComma(*f.dependsOn)
	req.OnDependencyFailure = *f.onDepFailure
	if *f.runAt != "" {
		if t, err := time.Parse(time.RFC3339, *f.runAt); err == nil {
			ms := t.UnixMilli()
			req.RunAt = &ms
		} else if ms, err := parseUnixMs(*f.runAt); err == nil {
			req.RunAt = &ms
		} else {
			return fmt.Errorf("--run-at %q: use an RFC 3339 time or Unix milliseconds", *f.runAt)
		}
	}
	return nil
}

func parseUnixMs(s string) (int64, error) {
	var ms int64
	if _, err := fmt.Sscan(s, &ms); err != nil || ms <= 0 {
		return 0, errors.New("not Unix milliseconds")
	}
	return ms, nil
}

// taskPause is "task pause|resume --lane L | --capability C".
func taskPause(pause bool) func(context.Context, *cmdEnv, []string) error {
	name := "resume"
	if pause {
		name = "pause"
	}
	return func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlagSet(env, "task "+name, "--lane LANE | --capability CAP")
		api := addAPIFlags(env, fs)
		lane := fs.String("lane", "", "urgent, high, normal or low")
		capName := fs.String("capability", "", "a capability: tasks needing it are held")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if (*lane == "") == (*capName == "") {
			fmt.Fprintf(env.stderr, "agentcom task %s: give exactly one of --lane or --capability\n", name)
			return errUsage
		}
		kind, target := "lane", *lane
		if *capName != "" {
			kind, target = "capability", *capName
		}
		r, err := api.client().SetPaused(ctx, kind, target, pause)
		if err != nil {
			return err
		}
		if *api.json {
			return printJSON(env, r)
		}
		verb := map[bool]string{true: "paused", false: "resumed"}[pause]
		if !r.Changed {
			verb = map[bool]string{true: "was already paused", false: "was not paused"}[pause]
		}
		fmt.Fprintf(env.stdout, "%s %s %s\n", kind, target, verb)
		printPaused(env, r.State)
		return nil
	}
}

func printPaused(env *cmdEnv, p client.Paused) {
	show := func(xs []string) string {
		if len(xs) == 0 {
			return "none"
		}
		return strings.Join(xs, ", ")
	}
	fmt.Fprintf(env.stdout, "paused lanes:        %s\npaused capabilities: %s\n", show(p.Lanes), show(p.Capabilities))
}

func taskPaused(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "task paused", "[flags]")
	api := addAPIFlags(env, fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	p, err := api.client().Paused(ctx)
	if err != nil {
		return err
	}
	if *api.json {
		return printJSON(env, p)
	}
	printPaused(env, p)
	return nil
}

// taskBatch is "task batch FILE": submits {"tasks": [...]} (or a bare
// array) from a JSON file ("-" for stdin).
func taskBatch(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "task batch", "FILE")
	api := addAPIFlags(env, fs)
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	var data []byte
	if pos[0] == "-" {
		data, err = readAllLimited(os.Stdin)
	} else {
		data, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", pos[0], err)
	}
	data = []byte(strings.TrimSpace(string(data)))
	if strings.HasPrefix(string(data), "[") {
		data = append(append([]byte(`{"tasks":`), data...), '}')
	}
	if !json.Valid(data) {
		return fmt.Errorf("%s is not valid JSON", pos[0])
	}
	ts, err := api.client().SubmitBatchRaw(ctx, data)
	if err != nil {
		return err
	}
	if *api.json {
		return printJSON(env, ts)
	}
	w := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KEY\tTASK ID\tSTATUS")
	for _, t := range ts {
		fmt.Fprintf(w, "%s\t%s\t%s\n", t.Key, t.TaskID, t.Status)
	}
	return w.Flush()
}

func readAllLimited(f *os.File) ([]byte, error) {
	const limit = 8 << 20
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if len(b) > limit {
		return nil, errors.New("input larger than 8 MiB")
	}
	return b, err
}

// maxChainNodes bounds how many tasks task show fetches to draw a chain.
const maxChainNodes = 100

// printChain prints a task's upstream (what it waits for) and downstream
// (what waits for it) tasks as indented trees.
func printChain(ctx context.Context, env *cmdEnv, c *client.Client, t client.Task) {
	if len(t.DependsOn) == 0 && len(t.Dependents) == 0 {
		return
	}
	fetched := 0
	seen := map[string]bool{t.ID: true}
	var walk func(ids []string, depth int, up bool)
	walk = func(ids []string, depth int, up bool) {
		for _, id := range ids {
			indent := strings.Repeat("  ", depth)
			if seen[id] || fetched >= maxChainNodes {
				fmt.Fprintf(env.stdout, "%s%s ...\n", indent, id)
				continue
			}
			seen[id] = true
			fetched++
			n, err := c.Task(ctx, id)
			if err != nil {
				fmt.Fprintf(env.stdout, "%s%s (%v)\n", indent, id, err)
				continue
			}
			fmt.Fprintf(env.stdout, "%s%s  %-10s %s\n", indent, id, n.Status, clipText(n.DescriptionText(), 50))
			next := n.Dependents
			if up {
				next = n.DependsOn
			}
			walk(next, depth+1, up)
		}
	}
	fmt.Fprintf(env.stdout, "\nchain of %s (%s)\n", t.ID, t.Status)
	if len(t.DependsOn) > 0 {
		fmt.Fprintln(env.stdout, "upstream (runs after):")
		walk(t.DependsOn, 1, true)
	}
	if len(t.Dependents) > 0 {
		fmt.Fprintln(env.stdout, "downstream (waits for it):")
		walk(t.Dependents, 1, false)
	}
}

func clipText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-3]) + "..."
	}
	return s
}

// runSchedule is the periodic schedule client.
func runSchedule(ctx context.Context, env *cmdEnv, args []string) error {
	subs := map[string]func(context.Context, *cmdEnv, []string) error{
		"add": scheduleAdd, "list": scheduleList,
		"pause":   scheduleAction("pause"),
		"resume":  scheduleAction("resume"),
		"remove":  scheduleAction("remove"),
		"run-now": scheduleAction("run"),
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.stderr, "usage: agentcom schedule <command> [flags]\n\n"+
			"  add NAME --cron EXPR --description TEXT [--timezone TZ] [--priority P]\n"+
			"           [--capabilities a,b] [--target AGENT] [--max-retries N] [--metadata JSON]\n"+
			"  list | pause NAME | resume NAME | remove NAME | run-now NAME\n\n"+
			"EXPR: 5 fields (minute hour day-of-month month day-of-week) with *, lists,\n"+
			"ranges and steps, or @hourly, @daily, @weekly, @monthly, @yearly, @every 10m.\n"+
			"Every command takes --hub, --token and --json.")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	f, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "agentcom schedule: unknown command %q\n", args[0])
		return errUsage
	}
	return f(ctx, env, args[1:])
}

func scheduleAdd(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "schedule add", "NAME --cron EXPR --description TEXT [flags]")
	api := addAPIFlags(env, fs)
	expr := fs.String("cron", "", "when: 5-field cron expression, @daily, @every 1h, ...")
	tz := fs.String("timezone", "UTC", "IANA time zone the expression is read in")
	desc := fs.String("description", "", "the task's description")
	prio := fs.String("priority", "normal", "urgent, high, normal or low")
	caps := fs.String("capabilities", "", "comma-separated capabilities the agent must all have")
	target := fs.String("target", "", "only this agent may take the tasks")
	maxRetries := fs.Int("max-retries", -1, "failures before dead-letter (default: the hub's, 3)")
	meta := fs.String("metadata", "", "metadata JSON object")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *expr == "" || strings.TrimSpace(*desc) == "" {
		fmt.Fprintln(env.stderr, "agentcom schedule add: NAME, --cron and --description are required")
		return errUsage
	}
	req := client.ScheduleAdd{Name: pos[0], Cron: *expr, TimeZone: *tz, Description: *desc, Priority: *prio,
		NeededCapabilities: splitComma(*caps), TargetAgent: *target}
	if *maxRetries >= 0 {
		req.MaxRetries = maxRetries
	}
	if *meta != "" {
		if err := json.Unmarshal([]byte(*meta), &req.Metadata); err != nil || req.Metadata == nil {
			return fmt.Errorf("--metadata must be a JSON object")
		}
	}
	s, err := api.client().AddSchedule(ctx, req)
	if err != nil {
		return err
	}
	if *api.json {
		return printJSON(env, s)
	}
	fmt.Fprintf(env.stdout, "schedule %s added; next run %s\n", s.Name, fmtMs(s.NextRun))
	return nil
}

func scheduleList(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "schedule list", "[flags]")
	api := addAPIFlags(env, fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ss, err := api.client().Schedules(ctx)
	if err != nil {
		return err
	}
	if *api.json {
		return printJSON(env, ss)
	}
	w := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tCRON\tTIMEZONE\tSTATE\tLAST RUN\tNEXT RUN\tLAST TASK")
	for _, s := range ss {
		state := "active"
		if s.Paused {
			state = "paused"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Cron, s.TimeZone, state, fmtMs(s.LastTick), fmtMs(s.NextRun),
			cmp.Or(s.LastTaskID, "-"))
	}
	return w.Flush()
}

func scheduleAction(action string) func(context.Context, *cmdEnv, []string) error {
	cmd := map[string]string{"run": "run-now"}[action]
	if cmd == "" {
		cmd = action
	}
	return func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlagSet(env, "schedule "+cmd, "NAME [flags]")
		api := addAPIFlags(env, fs)
		pos, err := parseWithArgs(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			fs.Usage()
			return errUsage
		}
		c, name := api.client(), pos[0]
		var out any
		switch action {
		case "remove":
			err = c.RemoveSchedule(ctx, name)
			out = map[string]string{"status": "removed", "name": name}
		case "run":
			out, err = c.RunSchedule(ctx, name)
		default:
			out, err = c.ScheduleAction(ctx, name, action)
		}
		if err != nil {
			return err
		}
		if *api.json {
			return printJSON(env, out)
		}
		switch v := out.(type) {
		case client.Submitted:
			fmt.Fprintf(env.stdout, "schedule %s: task %s %s\n", name, v.TaskID, v.Status)
		case client.Schedule:
			state := "active"
			if v.Paused {
				state = "paused"
			}
			fmt.Fprintf(env.stdout, "schedule %s %s; next run %s\n", name, state, fmtMs(v.NextRun))
		default:
			fmt.Fprintf(env.stdout, "schedule %s removed\n", name)
		}
		return nil
	}
}

func fmtMs(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}
