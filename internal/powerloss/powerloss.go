// Package powerloss runs a process under a system-call tracer that knows
// which of its writes to files under a directory have reached stable
// storage, and simulates a power loss: the process is killed and every
// write not followed by an fsync/fdatasync of its file is undone.
//
// A SIGKILL alone proves little about durability: the kernel's page cache
// survives it, so data that was written but never synced is still there
// when the process restarts. Tests of "an acknowledged write survives a
// crash" therefore run the writer under Start and end it with Crash; a
// write path that skips its fsync then loses acknowledged data and the
// test fails.
//
// The tracer (ptrace, linux/amd64) keeps an undo log: before each write
// to a file under the directory it saves the bytes the write will
// overwrite (and the file's size); a successful fsync or fdatasync of the
// file (or sync/syncfs) empties the file's log. Crash applies the logs in
// reverse, which is the worst case a file system may leave after a power
// loss: none of the unsynced writes reached the disk.
//
// Limits: metadata operations (create, rename, unlink, directory entries)
// are treated as durable at once, so a missing directory fsync is not
// caught; writes through mmap, io_uring or AIO are not seen (bbolt, the
// store's engine, writes with pwrite and only reads through its mmap);
// a real file system may keep some unsynced writes or tear a write, and
// this layer only models "all of them lost".
package powerloss

import (
	"errors"
	"os/exec"
	"testing"

	"github.com/agentcom/agentcom/internal/testenv"
)

// ErrUnsupported is returned by Start where the tracer does not run.
var ErrUnsupported = errors.New("powerloss: needs linux/amd64 with ptrace")

// Stats describes what a Crash undid.
type Stats struct {
	Writes      int // writes to traced files seen while the process ran
	Syncs       int // fsync/fdatasync/sync calls that emptied an undo log
	UndoneWrite int // writes undone at the crash
	Files       int // files whose contents were rolled back
}

// Process is a process running under the tracer.
type Process struct {
	pid  int
	done chan struct{}
	impl *tracer
}

// Pid is the traced process's id.
func (p *Process) Pid() int { return p.pid }

// Start starts cmd (not yet started; its SysProcAttr is replaced) under
// the tracer, tracking writes to regular files under dir. The caller must
// not call cmd.Wait: the tracer reaps the process. End it with Crash or
// Wait.
func Start(cmd *exec.Cmd, dir string) (*Process, error) { return start(cmd, dir) }

// Exited is closed when the traced process has ended.
func (p *Process) Exited() <-chan struct{} { return p.done }

// StartT is Start for tests: where the tracer cannot run the test is
// skipped, or failed in CI (testenv.Missing); the process is killed when
// the test ends.
func StartT(t testing.TB, cmd *exec.Cmd, dir string) *Process {
	t.Helper()
	p, err := Start(cmd, dir)
	if errors.Is(err, ErrUnsupported) {
		testenv.Missing(t, "the power-loss tracer", err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}
