package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/client"
)

// logsPoll is how long one follow request waits at the hub; it stays
// below the CLI's HTTP timeout.
const logsPoll = 10 * time.Second

// taskLogs prints a task's live output: `agentcom task logs TASK_ID [-f]`.
// With -f it follows the output (long polling) until the task ends; a hub
// outage is reported once and the follow goes on. On a terminal the
// output's control characters are replaced (colour codes kept) unless
// --raw; piped, it is passed through as the agent wrote it.
func taskLogs(in *inv) runFunc {
	api := in.api()
	follow := in.fs.Bool("f", false, "follow: keep printing output as it arrives, until the task ends")
	in.fs.BoolVar(follow, "follow", false, "same as -f")
	since := in.fs.Int64("since", 0, "start at this output `OFFSET` (the \"next\" of an earlier --json read)")
	raw := in.fs.Bool("raw", false, "print the output exactly as the agent wrote it, also on a terminal")
	return func(ctx context.Context, pos []string) error {
		c := api.client()
		clean := in.env.stdoutTTY && !*raw
		off := *since
		outage := ""
		for {
			wait := time.Duration(0)
			if *follow {
				wait = logsPoll
			}
			l, err := c.TaskLogs(ctx, pos[0], off, wait)
			if err != nil {
				if ctx.Err() != nil {
					return nil // interrupted while following
				}
				if client.IsNotFound(err) {
					return withHint(fmt.Errorf("no output kept for task %s (no such task, or its output is gone)", pos[0]),
						"agentcom task show %s shows its result and last output", pos[0])
				}
				if *follow && !permanent(err) {
					// A hub restart or a network blip: keep following,
					// and say so once.
					if msg, _ := explain(err); msg != outage {
						fmt.Fprintf(in.env.stderr, "%s; still following\n", safe(msg))
						outage = msg
					}
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(time.Second):
					}
					continue
				}
				return err
			}
			if outage != "" {
				fmt.Fprintln(in.env.stderr, "the hub answers again")
				outage = ""
			}
			if in.asJSON {
				b, _ := json.Marshal(l)
				fmt.Fprintln(in.env.stdout, string(b))
			} else {
				if l.Truncated {
					fmt.Fprintf(in.env.stderr, "[agentcom: output before offset %d is no longer kept]\n", l.Offset)
				}
				data := l.Data
				if clean {
					data = safeOutput(data)
				}
				fmt.Fprint(in.env.stdout, data)
			}
			off = l.Next
			if !*follow || (l.Done && l.Data == "") {
				if !in.asJSON && l.Done && *follow {
					fmt.Fprintf(in.env.stderr, "[agentcom: task %s %s]\n", pos[0], safe(l.Status))
				}
				return nil
			}
		}
	}
}

// verifyFlag collects repeated --verify commands.
type verifyFlag []string

func (v *verifyFlag) String() string { return strings.Join(*v, "; ") }

func (v *verifyFlag) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("empty verification command")
	}
	*v = append(*v, s)
	return nil
}

func parseAttempts(s string) (*int64, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 10 {
		return nil, fmt.Errorf("--max-verify-attempts %q: use an integer from 1 to 10", s)
	}
	n64 := int64(n)
	return &n64, nil
}
