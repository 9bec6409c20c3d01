package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/client"
)

// Workflow commands: the workflow flags of task submit, task
// pause/resume/paused/batch, the dependency chain of task show, and the
// schedule command.

// taskWorkflowFlags are the workflow flags of task submit.
type taskWorkflowFlags struct {
	uniqueKey, uniqueFor, runAt, runIn, dependsOn, onDepFailure *string
}

func addTaskWorkflowFlags(fs *flag.FlagSet) taskWorkflowFlags {
	return taskWorkflowFlags{
		uniqueKey:    fs.String("unique-key", "", "a second submit with this `KEY` returns the existing task"),
		uniqueFor:    fs.String("unique-for", "", "how long the key holds from submission (`DURATION`, e.g. 1h); default: while the task is active"),
		runAt:        fs.String("run-at", "", "hold the task until `TIME`: RFC 3339 or Unix ms"),
		runIn:        fs.String("run-in", "", "hold the task for `DURATION` (e.g. 30m)"),
		dependsOn:    fs.String("depends-on", "", "comma-separated task `IDS` that must complete first"),
		onDepFailure: fs.String("on-dependency-failure", "", "`POLICY` when a dependency fails: cancel (default) or run"),
	}
}

// optPriority is a lane flag as the task body's priority: an empty one is
// left out (nil), so the hub applies its default.
func optPriority(lane string) any {
	if lane == "" {
		return nil
	}
	return lane
}

// optRetries is a --max-retries flag as the body's max_retries: negative
// (the flag's default) is left out, so the hub applies its default.
func optRetries(n int) *int64 {
	if n < 0 {
		return nil
	}
	v := int64(n)
	return &v
}

// apply copies the flags into the request.
func (f taskWorkflowFlags) apply(req *client.TaskSubmit) error {
	req.UniqueKey, req.UniqueFor, req.RunIn = *f.uniqueKey, *f.uniqueFor, *f.runIn
	req.DependsOn = splitComma(*f.dependsOn)
	req.OnDependencyFailure = *f.onDepFailure
	if *f.runAt != "" {
		if t, err := time.Parse(time.RFC3339, *f.runAt); err == nil {
			req.RunAt = t.UnixMilli()
		} else if ms, err := parseUnixMs(*f.runAt); err == nil {
			req.RunAt = ms
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

// workflowTaskCommands are the task subcommands of the workflows.
func workflowTaskCommands() []*command {
	return []*command{
		{name: "pause", summary: "stop assignment from a lane or capability (admin)", setup: taskPause(true)},
		{name: "resume", summary: "restart assignment from a lane or capability (admin)", setup: taskPause(false)},
		{name: "paused", summary: "what is paused", setup: taskPaused},
		{name: "batch", summary: `submit {"tasks": [{"key": ..., "depends_on": [keys or ids], ...}]} from FILE ("-": stdin)`,
			synopsis: "FILE", args: [2]int{1, 1}, setup: taskBatch},
	}
}

// taskPause is "task pause|resume --lane L | --capability C".
func taskPause(pause bool) func(in *inv) runFunc {
	return func(in *inv) runFunc {
		api := in.api()
		lane := in.fs.String("lane", "", "`LANE`: "+strings.Join(laneNames, ", "))
		in.oneOf("lane", laneNames...)
		capName := in.fs.String("capability", "", "a `CAPABILITY`: tasks needing it are held")
		return func(ctx context.Context, _ []string) error {
			if (*lane == "") == (*capName == "") {
				return in.usagef("give exactly one of --lane or --capability")
			}
			kind, target := "lane", *lane
			if *capName != "" {
				kind, target = "capability", *capName
			}
			r, err := api.client().SetPaused(ctx, kind, target, pause)
			if err != nil {
				return err
			}
			return in.emit(r, func(p *printer) {
				verb := map[bool]string{true: "paused", false: "resumed"}[pause]
				if !r.Changed {
					verb = map[bool]string{true: "was already paused", false: "was not paused"}[pause]
				}
				p.line("%s %s %s", kind, safe(target), verb)
				printPaused(p, r.State)
			})
		}
	}
}

func printPaused(p *printer, s client.Paused) {
	show := func(xs []string) string {
		if len(xs) == 0 {
			return "none"
		}
		return safe(strings.Join(xs, ", "))
	}
	p.line("paused lanes:        %s", show(s.Lanes))
	p.line("paused capabilities: %s", show(s.Capabilities))
}

func taskPaused(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, _ []string) error {
		s, err := api.client().Paused(ctx)
		if err != nil {
			return err
		}
		return in.emit(s, func(p *printer) { printPaused(p, s) })
	}
}

// taskBatch submits a batch from a JSON file ({"tasks": [...]} or a bare
// array; "-" reads stdin).
func taskBatch(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, pos []string) error {
		var data []byte
		var err error
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
			return in.usagef("%s is not valid JSON", pos[0])
		}
		ts, err := api.client().SubmitBatchRaw(ctx, data)
		if err != nil {
			return err
		}
		return in.emit(ts, func(p *printer) {
			rows := make([][]cell, 0, len(ts))
			for _, t := range ts {
				rows = append(rows, []cell{txt(safe(t.Key)), txt(t.TaskID), styled(t.Status, statusStyle(t.Status))})
			}
			p.table([]string{"KEY", "TASK ID", "STATUS"}, rows)
		})
	}
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
func printChain(ctx context.Context, p *printer, c *client.Client, t client.Task) {
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
				p.line("%s%s ...", indent, safe(id))
				continue
			}
			seen[id] = true
			fetched++
			n, err := c.Task(ctx, id)
			if err != nil {
				p.line("%s%s (%s)", indent, safe(id), safe(err.Error()))
				continue
			}
			p.line("%s%s  %s  %s", indent, n.ID, p.paint(statusStyle(n.Status), n.Status), oneLine(n.DescriptionText(), 50))
			next := n.Dependents
			if up {
				next = n.DependsOn
			}
			walk(next, depth+1, up)
		}
	}
	p.line("")
	if len(t.DependsOn) > 0 {
		p.line("upstream (runs after):")
		walk(t.DependsOn, 1, true)
	}
	if len(t.Dependents) > 0 {
		p.line("downstream (waits for it):")
		walk(t.Dependents, 1, false)
	}
}

// scheduleCommand is the periodic schedule client.
func scheduleCommand() *command {
	return &command{name: "schedule", summary: "add, list, pause, resume, remove and run periodic schedules",
		about: "EXPR: 5 fields (minute hour day-of-month month day-of-week) with *, lists,\n" +
			"ranges and steps, or @hourly, @daily, @weekly, @monthly, @yearly, @every 10m.\n" +
			"Every schedule command takes --hub, --token and --json; writes need an admin token.",
		subs: []*command{
			{name: "add", summary: "add a schedule", synopsis: "NAME", args: [2]int{1, 1}, setup: scheduleAdd},
			{name: "list", summary: "the schedules with their last and next runs", setup: scheduleList},
			{name: "pause", summary: "pause a schedule (no catch-up on resume)", synopsis: "NAME", args: [2]int{1, 1}, setup: scheduleAction("pause")},
			{name: "resume", summary: "resume a schedule", synopsis: "NAME", args: [2]int{1, 1}, setup: scheduleAction("resume")},
			{name: "remove", summary: "remove a schedule (its tasks stay)", synopsis: "NAME", args: [2]int{1, 1}, setup: scheduleAction("remove")},
			{name: "run-now", summary: "enqueue one task from the schedule at once", synopsis: "NAME", args: [2]int{1, 1}, setup: scheduleAction("run")},
		}}
}

func scheduleAdd(in *inv) runFunc {
	api := in.api()
	expr := in.fs.String("cron", "", "when: a cron `EXPR`, @daily, @every 1h, ...")
	tz := in.fs.String("timezone", "UTC", "IANA time `ZONE` the expression is read in")
	desc := in.fs.String("description", "", "the tasks' `TEXT`")
	prio := in.fs.String("priority", "normal", "`LANE`: "+strings.Join(laneNames, ", "))
	in.oneOf("priority", laneNames...)
	caps := in.fs.String("capabilities", "", "comma-separated `CAPABILITIES` the agent must all have")
	target := in.fs.String("target", "", "only this `AGENT` may take the tasks")
	maxRetries := in.fs.Int("max-retries", -1, "failures before dead-letter (-1: the hub's default, 3)")
	meta := in.fs.String("metadata", "", "metadata, a `JSON` object")
	return func(ctx context.Context, pos []string) error {
		if *expr == "" || strings.TrimSpace(*desc) == "" {
			return in.usagef("--cron and --description are required")
		}
		req := client.ScheduleAdd{Name: pos[0], Cron: *expr, Timezone: *tz, Description: *desc, Priority: optPriority(*prio),
			NeededCapabilities: splitComma(*caps), TargetAgent: *target}
		req.MaxRetries = optRetries(*maxRetries)
		if *meta != "" {
			if err := json.Unmarshal([]byte(*meta), &req.Metadata); err != nil || req.Metadata == nil {
				return in.usagef("--metadata must be a JSON object")
			}
		}
		s, err := api.client().AddSchedule(ctx, req)
		if err != nil {
			return err
		}
		return in.emit(s, func(p *printer) { p.line("schedule %s added; next run %s", safe(s.Name), fmtMs(s.NextRun)) })
	}
}

func scheduleList(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, _ []string) error {
		ss, err := api.client().Schedules(ctx)
		if err != nil {
			return err
		}
		return in.emit(ss, func(p *printer) {
			if len(ss) == 0 {
				p.line("no schedules")
				return
			}
			rows := make([][]cell, 0, len(ss))
			for _, s := range ss {
				state := "active"
				if s.Paused {
					state = "paused"
				}
				rows = append(rows, []cell{txt(safe(s.Name)), txt(safe(s.Cron)), txt(safe(s.TimeZone)), txt(state),
					txt(fmtMs(s.LastTick)), txt(fmtMs(s.NextRun)), txt(orDash(s.LastTaskID))})
			}
			p.table([]string{"NAME", "CRON", "TIMEZONE", "STATE", "LAST RUN", "NEXT RUN", "LAST TASK"}, rows)
		})
	}
}

func scheduleAction(action string) func(in *inv) runFunc {
	return func(in *inv) runFunc {
		api := in.api()
		return func(ctx context.Context, pos []string) error {
			c, name := api.client(), pos[0]
			switch action {
			case "remove":
				if err := c.RemoveSchedule(ctx, name); err != nil {
					return err
				}
				out := map[string]string{"status": "removed", "name": name}
				return in.emit(out, func(p *printer) { p.line("schedule %s removed", safe(name)) })
			case "run":
				sub, err := c.RunSchedule(ctx, name)
				if err != nil {
					return err
				}
				return in.emit(sub, func(p *printer) { p.line("schedule %s: task %s %s", safe(name), sub.TaskID, sub.Status) })
			}
			s, err := c.ScheduleAction(ctx, name, action)
			if err != nil {
				return err
			}
			return in.emit(s, func(p *printer) {
				state := "active"
				if s.Paused {
					state = "paused"
				}
				p.line("schedule %s %s; next run %s", safe(name), state, fmtMs(s.NextRun))
			})
		}
	}
}

func fmtMs(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}
