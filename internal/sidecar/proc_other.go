//go:build !unix

package sidecar

import (
	"context"
	"errors"
	"os/exec"
	"time"
)

func ownProcessGroup(*exec.Cmd) {}

func shellCommand(s string) []string { return []string{"cmd.exe", "/C", s} }

var errRunUnsupported = errors.New("run mode needs a Unix system")

func startDetached(argv, env []string, dir, logPath, exitPath string) (int, int, error) {
	return 0, 0, errRunUnsupported
}

func groupAlive(int) bool { return false }

func stopGroup(context.Context, int, time.Duration) (bool, bool) { return false, true }
