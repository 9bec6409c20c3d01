package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/tasks"
)

// apiOpts are the flags every HTTP client command shares.
type apiOpts struct {
	hub   *string
	token func() string
	env   *cmdEnv
}

// api declares --hub and --token. The token never appears as a default.
func (in *inv) api() *apiOpts {
	return &apiOpts{
		hub:   in.fs.String("hub", "", "hub HTTP `URL` (env AGENTCOM_HUB, else http://localhost:4000)"),
		token: in.secret("token", "AGENTCOM_TOKEN", "bearer `TOKEN`"),
		env:   in.env,
	}
}

func (a *apiOpts) url() string {
	if *a.hub != "" {
		return *a.hub
	}
	return envOr(a.env, "AGENTCOM_HUB", "http://localhost:4000")
}

func (a *apiOpts) client() *client.Client {
	return client.New(a.url(), a.token(), &http.Client{Timeout: 15 * time.Second})
}

// taskStatuses are the values --status accepts, in lifecycle order.
var taskStatuses = []string{string(tasks.StatusWaiting), string(tasks.StatusScheduled), string(tasks.StatusQueued),
	string(tasks.StatusAssigned), string(tasks.StatusCompleted), string(tasks.StatusCancelled), string(tasks.StatusDeadLetter)}

var laneNames = []string{tasks.LaneName(tasks.PriorityUrgent), tasks.LaneName(tasks.PriorityHigh),
	tasks.LaneName(tasks.PriorityNormal), tasks.LaneName(tasks.PriorityLow)}

func taskCommand() *command {
	return &command{name: "task", summary: "submit, list, show, retry and cancel tasks",
		about: "Every task command takes --hub (env AGENTCOM_HUB, default http://localhost:4000),\n" +
			"--token (env AGENTCOM_TOKEN) and --json.",
		subs: append([]*command{
			{name: "submit", summary: "submit a task; --wait follows it to its end; --file submits one task per line of a JSONL file", synopsis: `"description" | --file FILE`,
				args: [2]int{0, 1}, setup: taskSubmit},
			{name: "list", summary: "list tasks in scheduling order, dead-lettered ones last; filters and paging", setup: taskList},
			{name: "show", summary: "a task in full: attempts, errors, result, history", synopsis: "TASK_ID",
				args: [2]int{1, 1}, setup: taskShow},
			{name: "retry", summary: "put a dead-lettered task back in the queue", synopsis: "TASK_ID",
				args: [2]int{1, 1}, setup: taskRetry},
			{name: "cancel", summary: "cancel a queued or running task", synopsis: "TASK_ID",
				args: [2]int{1, 1}, setup: taskCancel},
			{name: "dead-letter", summary: "list dead-lettered tasks (task list --status dead_letter)", setup: taskDeadLetter},
			{name: "stats", summary: "task counts by status and lane", setup: taskStats},
			{name: "logs", summary: "the agent's output as the hub keeps it; -f follows it until the task ends", synopsis: "TASK_ID",
				args: [2]int{1, 1}, setup: taskLogs},
		}, workflowTaskCommands()...)}
}

func taskSubmit(in *inv) runFunc {
	api := in.api()
	prio := in.fs.String("priority", "normal", "`LANE`: "+strings.Join(laneNames, ", "))
	in.oneOf("priority", laneNames...)
	caps := in.fs.String("capabilities", "", "comma-separated `CAPABILITIES` the agent must all have")
	target := in.fs.String("target", "", "only this `AGENT` may take the task")
	maxRetries := in.fs.Int("max-retries", -1, "failures before dead-letter (-1: the hub's default, 3)")
	completeBy := in.fs.String("complete-by", "", "deadline `TIME`: RFC 3339, a duration from now (30m), or Unix ms")
	meta := in.fs.String("metadata", "", "metadata, a `JSON` object")
	wait := in.fs.Bool("wait", false, "follow the task until it ends; exit 0 only if it completed")
	waitTimeout := in.fs.Duration("wait-timeout", 0, "give up waiting after this long (0: no limit)")
	var verify verifyFlag
	in.fs.Var(&verify, "verify", "`COMMAND` the sidecar runs in the agent's working directory after the agent succeeds; a failure sends the agent back with it as feedback (repeatable)")
	verifyAttempts := in.fs.String("max-verify-attempts", "", "agent runs allowed for a verified task, `N` from 1 to 10 (default: the sidecar's, 3)")
	wf := addTaskWorkflowFlags(in.fs)
	quiet := in.fs.Bool("quiet", false, "print only the task id (for scripts: id=$(agentcom task submit ... --quiet))")
	file := in.fs.String("file", "", "submit one task per line of this JSONL `FILE` (\"-\": stdin), each a JSON object with the fields of POST /api/tasks; sent 100 at a time through the batch route; prints the ids")
	return func(ctx context.Context, pos []string) error {
		if *file != "" {
			var others []string
			in.fs.Visit(func(f *flag.Flag) {
				switch f.Name {
				case "file", "hub", "token", "json", "quiet":
				default:
					others = append(others, "--"+f.Name)
				}
			})
			switch {
			case len(pos) > 0:
				return in.usagef("--file goes without a description (each line has its own)")
			case len(others) > 0:
				return in.usagef("--file goes without %s: give the fields on each line", strings.Join(others, ", "))
			}
			return taskSubmitFile(ctx, in, api, *file)
		}
		if len(pos) == 0 {
			return in.usagef("missing argument: a description, or --file FILE")
		}
		if *quiet && (*wait || in.asJSON) {
			return in.usagef("--quiet goes without --wait and --json")
		}
		if strings.TrimSpace(pos[0]) == "" {
			return in.usagef("the description is empty")
		}
		if !slices.Contains(laneNames, *prio) {
			return in.usagef("--priority %q: use one of %s", *prio, strings.Join(laneNames, ", "))
		}
		req := client.TaskSubmit{Description: pos[0], Priority: optPriority(*prio), NeededCapabilities: splitComma(*caps), TargetAgent: *target, Verify: verify}
		var err error
		if req.MaxVerifyAttempts, err = parseAttempts(*verifyAttempts); err != nil {
			return in.usagef("%v", err)
		}
		req.MaxRetries = optRetries(*maxRetries)
		if *completeBy != "" {
			ms, err := parseDeadline(*completeBy, time.Now())
			if err != nil {
				return in.usagef("%v", err)
			}
			req.CompleteBy = &ms
		}
		if *meta != "" {
			if err := json.Unmarshal([]byte(*meta), &req.Metadata); err != nil || req.Metadata == nil {
				return in.usagef("--metadata must be a JSON object")
			}
		}
		if err := wf.apply(&req); err != nil {
			return in.usagef("%v", err)
		}
		c := api.client()
		sub, err := c.SubmitTask(ctx, req)
		if err != nil {
			return err
		}
		if *quiet {
			fmt.Fprintln(in.env.stdout, sub.TaskID)
			return nil
		}
		if !*wait {
			return in.emit(sub, func(p *printer) {
				printSubmitted(p, sub)
				p.line("follow it:  agentcom task show %s   (or submit with --wait)", sub.TaskID)
			})
		}
		// With --json, stdout holds only the final task; progress goes
		// to stderr.
		progress := in.env.stdout
		if in.asJSON {
			progress = in.env.stderr
		}
		printSubmitted(&printer{w: progress, color: in.env.colorOK() && !in.asJSON}, sub)
		t, err := followTask(ctx, in, c, sub.TaskID, *waitTimeout, progress)
		if err != nil {
			return err
		}
		return reportEnd(in, t)
	}
}

func printSubmitted(p *printer, sub client.Submitted) {
	p.line("submitted %s  %s lane", p.paint(bold, sub.TaskID), p.paint(laneStyle(sub.Priority), tasks.LaneName(sub.Priority)))
	if sub.Status != "" && sub.Status != string(tasks.StatusQueued) {
		p.line("status:    %s", p.paint(statusStyle(sub.Status), sub.Status))
	}
	if sub.Duplicate {
		p.line("duplicate: an existing task holds this unique key; nothing new was stored")
	}
}

// waitPoll is how often --wait asks for the task.
const waitPoll = time.Second

// followTask polls the task and prints each change to progress until the
// task ends. A hub outage is reported once, and once more when the hub is
// back; the wait goes on across it.
func followTask(ctx context.Context, in *inv, c *client.Client, id string, timeout time.Duration, progress io.Writer) (client.Task, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	p := &printer{w: progress, color: in.env.colorOK() && !in.asJSON}
	last, lastErr := "", ""
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	for {
		t, err := c.Task(ctx, id)
		switch {
		case err != nil && ctx.Err() != nil:
		case permanent(err):
			// The task is gone or the token no longer works: waiting
			// longer would not change that.
			return client.Task{}, err
		case err != nil:
			msg, _ := explain(err)
			if client.IsUnreachable(err) {
				msg = "hub unreachable (" + msg + "); still waiting"
			}
			if msg != lastErr {
				fmt.Fprintf(in.env.stderr, "%s  %s\n", time.Now().UTC().Format(time.TimeOnly), safe(msg))
				lastErr = msg
			}
		default:
			if lastErr != "" {
				fmt.Fprintf(in.env.stderr, "%s  the hub answers again\n", time.Now().UTC().Format(time.TimeOnly))
				lastErr = ""
			}
			state := t.Status
			if t.AssignedTo != nil && t.Status == string(tasks.StatusAssigned) {
				state += " to " + *t.AssignedTo
			}
			if state != last {
				fmt.Fprintf(progress, "%s  %s (generation %d)\n", time.Now().UTC().Format(time.TimeOnly),
					p.paint(statusStyle(t.Status), safe(state)), t.Generation)
				last = state
			}
			if t.Terminal() {
				return t, nil
			}
		}
		select {
		case <-ctx.Done():
			return client.Task{}, fmt.Errorf("stopped waiting for %s (last seen %s): %w", id, orDash(last), ctx.Err())
		case <-tick.C:
		}
	}
}

// permanent reports a refusal that waiting does not cure: a 4xx answer
// other than 429 (outages and 5xx answers are waited out).
func permanent(err error) bool {
	st := client.StatusOf(err)
	return st >= 400 && st < 500 && st != http.StatusTooManyRequests
}

// reportEnd prints the ended task and fails unless it completed.
func reportEnd(in *inv, t client.Task) error {
	err := in.emit(t, func(p *printer) {
		if hasValue(t.Result) {
			p.line("result: %s", string(t.Result))
		}
	})
	if err != nil || t.Status == string(tasks.StatusCompleted) {
		return err
	}
	msg := fmt.Sprintf("task %s ended %s", t.ID, t.Status)
	if hasValue(t.LastError) {
		msg += ": " + rawString(t.LastError)
	}
	return errors.New(msg)
}

func hasValue(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// rawString is a JSON string's text, or the raw JSON of anything else.
func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// taskListing is what task list prints with --json.
type taskListing struct {
	Tasks  []client.Task `json:"tasks"`
	Count  int           `json:"count"`
	Total  int           `json:"total"`
	Offset int           `json:"offset"`
}

func taskList(in *inv) runFunc {
	return listTasks(in, "")
}

func taskDeadLetter(in *inv) runFunc {
	return listTasks(in, string(tasks.StatusDeadLetter))
}

// listTasks is task list (and task dead-letter, with fixedStatus set).
// The active table and the dead letter are listed as one sequence (active
// first, both in scheduling order) and paged on the hub.
func listTasks(in *inv, fixedStatus string) runFunc {
	api := in.api()
	status := &fixedStatus
	if fixedStatus == "" {
		status = in.fs.String("status", "", "only this `STATUS`: "+strings.Join(taskStatuses, ", "))
		in.oneOf("status", taskStatuses...)
	}
	lane := in.fs.String("lane", "", "only this `LANE`: "+strings.Join(laneNames, ", "))
	in.oneOf("lane", laneNames...)
	agent := in.fs.String("agent", "", "only tasks assigned to this `AGENT`")
	limit := in.fs.Int("limit", 50, "at most `N` tasks (0: all)")
	offset := in.fs.Int("offset", 0, "skip the first `N` tasks")
	archived := new(bool)
	if fixedStatus == "" {
		archived = in.fs.Bool("archived", false, "list the archive instead: completed and cancelled tasks that ended longer ago than the hub's --task-retention")
	}
	return func(ctx context.Context, _ []string) error {
		if *status != "" && !slices.Contains(taskStatuses, *status) {
			return in.usagef("--status %q: use one of %s", *status, strings.Join(taskStatuses, ", "))
		}
		if *lane != "" && !slices.Contains(laneNames, *lane) {
			return in.usagef("--lane %q: use one of %s", *lane, strings.Join(laneNames, ", "))
		}
		if *limit < 0 || *offset < 0 {
			return in.usagef("--limit and --offset must be >= 0")
		}
		f := client.TaskFilter{Status: *status, Priority: *lane, AssignedTo: *agent, Archived: *archived}
		l, err := pageTasks(ctx, api.client(), f, *offset, *limit)
		if err != nil {
			return err
		}
		return in.emit(l, func(p *printer) { printTasks(p, l) })
	}
}

// pageTasks lists active then dead-lettered tasks matching f, skipping
// offset and keeping at most limit (0: all).
func pageTasks(ctx context.Context, c *client.Client, f client.TaskFilter, offset, limit int) (taskListing, error) {
	out := taskListing{Tasks: []client.Task{}, Offset: offset}
	wantActive := f.Status != string(tasks.StatusDeadLetter) || f.Archived
	wantDead := (f.Status == "" || f.Status == string(tasks.StatusDeadLetter)) && !f.Archived
	activeTotal := 0
	if wantActive {
		f.Offset, f.Limit = offset, limit
		pg, err := c.ListTasks(ctx, f)
		if err != nil {
			return out, err
		}
		out.Tasks = append(out.Tasks, pg.Tasks...)
		activeTotal = pg.Total
		out.Total += pg.Total
	}
	if wantDead {
		f.Offset = max(offset-activeTotal, 0)
		f.Limit = 0
		if limit > 0 {
			f.Limit = limit - len(out.Tasks)
		}
		// With the page already full only the total is needed.
		full := limit > 0 && f.Limit <= 0
		if full {
			f.Limit = 1
		}
		pg, err := c.DeadLetter(ctx, f)
		if err != nil {
			return out, err
		}
		if !full {
			out.Tasks = append(out.Tasks, pg.Tasks...)
		}
		out.Total += pg.Total
	}
	out.Count = len(out.Tasks)
	return out, nil
}

func printTasks(p *printer, l taskListing) {
	if l.Total == 0 {
		p.line("no tasks")
		return
	}
	rows := make([][]cell, 0, len(l.Tasks))
	for _, t := range l.Tasks {
		rows = append(rows, []cell{txt(t.ID), styled(t.Status, statusStyle(t.Status)),
			styled(tasks.LaneName(t.Priority), laneStyle(t.Priority)), txt(orDash(deref(t.AssignedTo))),
			txt(strconv.Itoa(t.RetryCount)), txt(p.ago(t.CreatedAt)), txt(p.ago(t.UpdatedAt)), txt(oneLine(t.DescriptionText(), 60))})
	}
	p.table([]string{"ID", "STATUS", "LANE", "AGENT", "FAILS", "CREATED", "UPDATED", "DESCRIPTION"}, rows)
	if l.Offset > 0 || l.Count < l.Total {
		p.line("%s", p.paint(dim, fmt.Sprintf("showing %d-%d of %d; --offset %d for the next page, --limit 0 for all",
			l.Offset+min(1, l.Count), l.Offset+l.Count, l.Total, l.Offset+l.Count)))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func taskShow(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, pos []string) error {
		t, err := api.client().Task(ctx, pos[0])
		if client.IsNotFound(err) {
			return withHint(fmt.Errorf("no task %s on the hub", pos[0]), "agentcom task list shows the task ids")
		}
		if err != nil {
			return err
		}
		return in.emit(t, func(p *printer) {
			printTask(p, t)
			printChain(ctx, p, api.client(), t)
		})
	}
}

func printTask(p *printer, t client.Task) {
	pairs := []field{
		kvs("id", t.ID, bold),
		kvs("status", t.Status, statusStyle(t.Status)),
	}
	if t.Archived {
		pairs = append(pairs, kv("archived", "yes: ended longer ago than the hub's task retention"))
	}
	pairs = append(pairs,
		kvs("lane", tasks.LaneName(t.Priority), laneStyle(t.Priority)),
		kv("description", t.DescriptionText()),
		kv("submitted by", orDash(t.SubmittedBy)),
		kv("created", p.when(t.CreatedAt)),
		kv("updated", p.when(t.UpdatedAt)),
	)
	if t.AssignedTo != nil {
		at := int64(0)
		if t.AssignedAt != nil {
			at = *t.AssignedAt
		}
		pairs = append(pairs, kv("assigned to", *t.AssignedTo+" ("+p.ago(at)+")"))
	}
	if t.TargetAgent != nil && *t.TargetAgent != "" {
		pairs = append(pairs, kv("target agent", *t.TargetAgent))
	}
	var caps []string
	if json.Unmarshal(t.NeededCapabilities, &caps) == nil && len(caps) > 0 {
		pairs = append(pairs, kv("needs", strings.Join(caps, ", ")))
	}
	pairs = append(pairs, kv("generation", strconv.FormatInt(t.Generation, 10)),
		kv("failures", fmt.Sprintf("%d of %s", t.RetryCount, orDash(string(t.MaxRetries)))))
	var cb int64
	if json.Unmarshal(t.CompleteBy, &cb) == nil && cb > 0 {
		pairs = append(pairs, kv("complete by", p.when(cb)))
	}
	if t.CancelledBy != "" {
		pairs = append(pairs, kv("cancelled by", t.CancelledBy))
	}
	if hasValue(t.Metadata) && string(t.Metadata) != "{}" {
		pairs = append(pairs, kv("metadata", string(t.Metadata)))
	}
	if hasValue(t.LastError) {
		pairs = append(pairs, kvs("last error", rawString(t.LastError), red))
	}
	if hasValue(t.LastOutput) {
		pairs = append(pairs, kv("last output", oneLine(rawString(t.LastOutput), 200)))
	}
	if hasValue(t.Result) {
		pairs = append(pairs, kv("result", string(t.Result)))
	}
	p.kv(pairs)
	if len(t.Attempts) > 0 {
		p.heading("attempts")
		rows := make([][]cell, 0, len(t.Attempts))
		for _, a := range t.Attempts {
			outcome := a.Outcome
			if outcome == "" {
				outcome = "running"
			}
			ran := "-"
			if a.EndedAt > 0 {
				ran = shortDuration(time.Duration(a.EndedAt-a.AssignedAt) * time.Millisecond)
			}
			rows = append(rows, []cell{txt(strconv.FormatInt(a.Generation, 10)), txt(a.AgentID), txt(p.ago(a.AssignedAt)),
				txt(ran), styled(outcome, statusStyle(outcome)), txt(oneLine(a.Reason, 60))})
		}
		p.table([]string{"GEN", "AGENT", "ASSIGNED", "RAN", "OUTCOME", "REASON"}, rows)
	}
	if len(t.History) > 0 {
		p.heading("history (newest first)")
		rows := make([][]cell, 0, len(t.History))
		for _, e := range t.History {
			d := ""
			if hasValue(e.Details) {
				d = oneLine(rawString(e.Details), 80)
			}
			rows = append(rows, []cell{txt(p.ago(e.Timestamp)), txt(e.Event), txt(d)})
		}
		p.table([]string{"WHEN", "EVENT", "DETAILS"}, rows)
	}
}

func taskRetry(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, pos []string) error {
		c := api.client()
		r, err := c.RetryTask(ctx, pos[0])
		if client.IsNotFound(err) || client.IsConflict(err) {
			// The hub names the state of a task that is not
			// dead-lettered (409); the original answered 404 for it.
			if st, ok := refusedState(ctx, c, pos[0], err); ok {
				refusal := fmt.Errorf("task %s is %s, not dead-lettered: only dead-lettered tasks can be retried", pos[0], safe(st.Status))
				if tasks.Status(st.Status).Active() {
					return withHint(refusal, "it has not ended yet; agentcom task logs -f %s follows it", pos[0])
				}
				return withHint(refusal, "submit it again to run it once more (agentcom task show %s has its description)", pos[0])
			}
		}
		if client.IsNotFound(err) {
			return withHint(fmt.Errorf("no task %s on the hub", pos[0]), "agentcom task list --status dead_letter lists what can be retried")
		}
		if err != nil {
			return err
		}
		return in.emit(r, func(p *printer) {
			lane := ""
			if r.Priority != nil {
				lane = " in the " + tasks.LaneName(*r.Priority) + " lane"
			}
			p.line("task %s is queued again%s", r.TaskID, lane)
		})
	}
}

// refusedState is the state of a task whose retry or cancel the hub
// refused: from the refusal's body, or else (an older hub, or the
// original, which answers a retry outside the dead letter with 404) by
// fetching the task. ok is false when the task cannot be found.
func refusedState(ctx context.Context, c *client.Client, id string, err error) (protocol.TaskStateRefusal, bool) {
	if st, ok := client.StateRefusal(err); ok {
		return st, true
	}
	t, gerr := c.Task(ctx, id)
	if gerr != nil {
		return protocol.TaskStateRefusal{}, false
	}
	return protocol.TaskStateRefusal{TaskID: t.ID, Status: t.Status, CancelledBy: t.CancelledBy}, true
}

func taskCancel(in *inv) runFunc {
	api := in.api()
	reason := in.fs.String("reason", "", "`WHY`, kept in the task's history")
	return func(ctx context.Context, pos []string) error {
		c := api.client()
		r, err := c.CancelTask(ctx, pos[0], *reason)
		if client.IsConflict(err) {
			if st, ok := refusedState(ctx, c, pos[0], err); ok {
				if st.CancelledBy != "" {
					return fmt.Errorf("task %s was already cancelled by %s: nothing to cancel", pos[0], safe(st.CancelledBy))
				}
				return fmt.Errorf("task %s is already %s: nothing to cancel", pos[0], safe(st.Status))
			}
		}
		if client.IsNotFound(err) {
			return withHint(fmt.Errorf("no task %s on the hub", pos[0]), "agentcom task list shows the task ids")
		}
		if err != nil {
			return err
		}
		return in.emit(r, func(p *printer) {
			p.line("task %s cancelled", r.TaskID)
			if r.WasAssignedTo != nil {
				p.line("%s was told to stop", *r.WasAssignedTo)
			}
		})
	}
}

func taskStats(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, _ []string) error {
		s, err := api.client().TaskStats(ctx)
		if err != nil {
			return err
		}
		return in.emit(s, func(p *printer) {
			var rows [][]cell
			for _, st := range taskStatuses {
				n := s.ByStatus[st]
				if st == string(tasks.StatusDeadLetter) {
					n = s.DeadLetter
				}
				rows = append(rows, []cell{styled(st, statusStyle(st)), txt(strconv.Itoa(n))})
			}
			p.table([]string{"STATUS", "TASKS"}, rows)
			rows = nil
			for i := range tasks.Lanes {
				rows = append(rows, []cell{styled(tasks.LaneName(i), laneStyle(i)), txt(strconv.Itoa(s.ByPriority[strconv.Itoa(i)]))})
			}
			p.line("")
			p.table([]string{"LANE", "TASKS"}, rows)
		})
	}
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

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
