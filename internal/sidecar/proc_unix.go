//go:build unix

package sidecar

import (
	"os/exec"
	"syscall"
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
