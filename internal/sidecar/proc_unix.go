//go:build unix

package sidecar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ownProcessGroup makes the wake command lead its own process group and
// makes cancelling it kill the whole group, so a shell's children do not
// outlive a timeout or a stop.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// shellCommand is the shell that runs a string wake_command.
func shellCommand(s string) []string { return []string{"/bin/sh", "-c", s} }

// runWrapper starts the agent command ("$@") in the background with its
// output appended to the task log, and writes its exit code to the exit
// file (atomically) when it ends. It prints the background process's pid
// and exits at once, so the sidecar never waits on the agent.
const runWrapper = `exitf=$1; logf=$2; shift 2
( "$@"; code=$?; printf '%s\n' "$code" > "$exitf.tmp" && mv -f "$exitf.tmp" "$exitf" ) </dev/null >>"$logf" 2>&1 &
echo $!`

// startDetached starts argv as a run-mode agent in a new process group
// and returns the group id and the agent's pid.
func startDetached(argv, env []string, dir, logPath, exitPath string) (pgid, pid int, err error) {
	cmd := exec.Command("/bin/sh", append([]string{"-c", runWrapper, "agentcom-run", exitPath, logPath}, argv...)...)
	cmd.Env, cmd.Dir = env, dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("start agent: %w", err)
	}
	pgid = cmd.Process.Pid
	if err := cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("start agent: %w: %s", err, out.String())
	}
	pid, err = strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		return 0, 0, fmt.Errorf("start agent: unexpected wrapper output %q", out.String())
	}
	return pgid, pid, nil
}

// groupAlive reports whether process group pgid has a live member.
// Zombies do not count: where /proc exists, members are looked up there.
func groupAlive(pgid int) bool {
	if pgid <= 0 {
		return false
	}
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return true
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain anything.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			return true
		}
	}
	return false
}

// stopGroup sends SIGTERM to the group, waits up to grace for it to exit,
// then sends SIGKILL and waits a little more. It reports whether SIGKILL
// was needed and whether the group is gone. A cancelled ctx (the sidecar
// stopping) skips the grace.
func stopGroup(ctx context.Context, pgid int, grace time.Duration) (killed, gone bool) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	if waitGroupGone(ctx, pgid, grace) {
		return false, true
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return true, waitGroupGone(context.Background(), pgid, 5*time.Second)
}

func waitGroupGone(ctx context.Context, pgid int, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if !groupAlive(pgid) {
			return true
		}
		select {
		case <-ctx.Done():
			return !groupAlive(pgid)
		case <-deadline.C:
			return !groupAlive(pgid)
		case <-tick.C:
		}
	}
}
