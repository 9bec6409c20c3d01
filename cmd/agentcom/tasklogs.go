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
// With -f it follows the output (long polling) until the task ends.
func taskLogs(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "task logs", "TASK_ID [-f] [flags]")
	api := addAPIFlags(env, fs)
	follow := fs.Bool("f", false, "follow: keep printing output as it arrives, until the task ends")
	fs.BoolVar(follow, "follow", false, "same as -f")
	since := fs.Int64("since", 0, "start at this output offset (the \"next\" of an earlier --json read)")
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	c := api.client()
	off := *since
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
			if *follow && !client.IsNotFound(err) && client.StatusOf(err) < 400 {
				// A hub restart or a network blip: keep following.
				fmt.Fprintf(env.stderr, "agentcom task logs: %v; retrying\n", err)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Second):
				}
				continue
			}
			return err
		}
		if *api.json {
			b, _ := json.Marshal(l)
			fmt.Fprintln(env.stdout, string(b))
		} else {
			if l.Truncated {
				fmt.Fprintf(env.stderr, "[agentcom: output before offset %d is no longer kept]\n", l.Offset)
			}
			fmt.Fprint(env.stdout, l.Data)
		}
		off = l.Next
		if !*follow || (l.Done && l.Data == "") {
			if !*api.json && l.Done && *follow {
				fmt.Fprintf(env.stderr, "[agentcom: task %s %s]\n", pos[0], l.Status)
			}
			return nil
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

func parseAttempts(s string) (*int, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 10 {
		return nil, fmt.Errorf("--max-verify-attempts %q: use an integer from 1 to 10", s)
	}
	return &n, nil
}
