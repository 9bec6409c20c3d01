package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/agentcom/agentcom/internal/bench"
)

func benchCommand() *command {
	return &command{name: "bench", summary: "load-test a hub with simulated agents and print the figures (BENCHMARKS.md)", setup: runBench}
}

// runBench is the load tool: it drives a hub with simulated agents over
// real WebSockets and prints the figures (see internal/bench).
func runBench(in *inv) runFunc {
	fs := in.fs
	o := bench.DefaultOptions()
	fs.StringVar(&o.Scenario, "scenario", o.Scenario, "tasks, messages, broadcast, idle, storage, restart or all")
	in.oneOf("scenario", "tasks", "messages", "broadcast", "idle", "storage", "restart", "all")
	fs.IntVar(&o.Agents, "agents", o.Agents, "simulated agents, each its own WebSocket")
	fs.IntVar(&o.Tasks, "tasks", o.Tasks, "tasks: how many to submit at once")
	fs.IntVar(&o.Samples, "samples", o.Samples, "tasks: then how many to submit one at a time with every agent idle")
	fs.IntVar(&o.Messages, "messages", o.Messages, "messages: direct messages to send in all")
	fs.IntVar(&o.Broadcasts, "broadcasts", o.Broadcasts, "broadcast: broadcasts to send, one after the other")
	fs.IntVar(&o.Window, "window", o.Window, "messages: unacknowledged messages per sender")
	fs.IntVar(&o.Submitters, "submitters", o.Submitters, "tasks: concurrent HTTP clients submitting")
	fs.IntVar(&o.Batch, "batch", 1, "tasks: tasks per submit request in the flood; above 1 they go through POST /api/tasks/batch (at most 100)")
	fs.IntVar(&o.ConnectWorkers, "connect-workers", o.ConnectWorkers, "agents connecting at the same time")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "idle: how long to hold the connections")
	fs.DurationVar(&o.PingInterval, "ping-interval", o.PingInterval, "idle: how often each agent pings")
	fs.IntVar(&o.StorageRecords, "storage-records", o.StorageRecords, "storage: records in the table")
	fs.IntVar(&o.StorageWriters, "storage-writers", o.StorageWriters, "storage: concurrent writers")
	fs.DurationVar(&o.StoragePhase, "storage-phase", o.StoragePhase, "storage: writers alone before the backup (half of it between and after)")
	fs.IntVar(&o.Records, "records", o.Records, "restart: records stored before the restart")
	fs.StringVar(&o.RecordKind, "record-kind", o.RecordKind, "restart: tasks, ended-tasks or mailbox")
	var hubs urlList
	fs.Var(&hubs, "hub", "drive a running hub at this `URL` instead of starting one; for a cluster, every hub (comma-separated or --hub repeated): agents and task submits are spread over them in turn")
	token := in.secret("token", "AGENTCOM_TOKEN", "admin `TOKEN` for --hub")
	hubProc := fs.String("hub-process", "auto", "auto: hub in-process, but the idle scenario runs it as a child 'agentcom serve'; child: every scenario; in: never")
	fs.StringVar(&o.TempDir, "tmp", "", "directory for the scenarios' data (default: the OS temp dir)")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "cap on each scenario")
	var prof bench.Profiles
	fs.StringVar(&prof.CPU, "cpuprofile", "", "write a CPU profile of this process")
	fs.StringVar(&prof.Trace, "trace", "", "write a runtime execution trace of this process (go tool trace)")
	fs.StringVar(&prof.Mutex, "mutexprofile", "", "write a mutex contention profile")
	fs.StringVar(&prof.Block, "blockprofile", "", "write a blocking profile")
	fs.StringVar(&o.HeapProfile, "memprofile", "", "idle: write a heap profile of this process at the end of the hold (use --hub-process in to see the hub's connections)")
	quiet := fs.Bool("quiet", false, "no progress line")
	return func(ctx context.Context, _ []string) error {
		if o.Batch < 1 || o.Batch > bench.MaxBatch {
			return in.usagef("--batch must be 1 to %d", bench.MaxBatch)
		}
		o.Token, o.HubURLs = token(), hubs
		return benchRun(ctx, in, o, *hubProc, prof, *quiet)
	}
}

func benchRun(ctx context.Context, in *inv, o bench.Options, hubProc string, prof bench.Profiles, quiet bool) error {
	env := in.env
	switch hubProc {
	case "auto", "child":
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary to run the hub: %w", err)
		}
		o.HubCommand = func(addr, dir string) *exec.Cmd {
			// The load tool submits every task with one admin token: no
			// per-submitter quota, as no rate limits.
			return exec.Command(exe, "serve", "--addr", addr, "--data", dir, "--rate-limits", "off",
				"--max-queued-per-submitter", "1000000", "--log-level", "error", "--log-format", "json")
		}
		o.ChildHub = hubProc == "child"
	case "in":
	default:
		return in.usagef("--hub-process must be auto, child or in")
	}
	if !quiet {
		o.Progress = env.stderr
	}
	stop, err := prof.Start()
	if err != nil {
		return err
	}
	rep, runErr := bench.Run(ctx, o)
	if err := stop(); err != nil {
		fmt.Fprintf(env.stderr, "agentcom bench: %v\n", err)
	}
	if rep != nil {
		if in.asJSON {
			err = rep.WriteJSON(env.stdout)
		} else {
			err = rep.WriteTable(env.stdout)
		}
		if err != nil {
			return err
		}
	}
	return runErr
}
