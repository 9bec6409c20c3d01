//go:build linux && amd64

package powerloss

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// System call numbers on linux/amd64.
const (
	sysWrite         = 1
	sysOpen          = 2
	sysSendfile      = 40
	sysWritev        = 20
	sysPwrite64      = 18
	sysFsync         = 74
	sysFdatasync     = 75
	sysTruncate      = 76
	sysFtruncate     = 77
	sysSync          = 162
	sysOpenat        = 257
	sysFallocate     = 285
	sysPwritev       = 296
	sysSyncfs        = 306
	sysCopyFileRange = 326
	sysPwritev2      = 328

	ptraceOExitKill = 0x100000 // PTRACE_O_EXITKILL: the tracee dies with the tracer
	atFdCwd         = -100
)

// undo restores one piece of a file: whole replaces the file with old;
// otherwise old goes back at off and the file is cut to size when longer.
type undo struct {
	whole bool
	off   int64
	old   []byte
	size  int64
}

type tracer struct {
	dir string // resolved, without a trailing slash

	mu     sync.Mutex
	logs   map[string][]undo // per file, in write order, since its last sync
	stats  Stats
	trErr  error
	inSys  map[int]bool   // per thread: between syscall entry and exit
	onExit map[int]func() // per thread: what a successful syscall exit commits
}

func start(cmd *exec.Cmd, dir string) (*Process, error) {
	rd, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("powerloss: %w", err)
	}
	tr := &tracer{dir: filepath.Clean(rd), logs: map[string][]undo{}, inSys: map[int]bool{}, onExit: map[int]func(){}}
	p := &Process{done: make(chan struct{}), impl: tr}
	started := make(chan error, 1)
	go func() {
		// Every ptrace request must come from the thread that started
		// the tracee; this goroutine owns that thread until the end.
		runtime.LockOSThread()
		defer close(p.done)
		cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true, Setpgid: true}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		tr.loop(p.pid)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("powerloss: start: %w", err)
	}
	return p, nil
}

// loop serves the tracee's stops until every thread is gone.
func (tr *tracer) loop(pid int) {
	first := true
	for {
		var ws syscall.WaitStatus
		// -pid: the tracee's process group (Setpgid), so the test
		// process's other children are never reaped here.
		wpid, err := syscall.Wait4(-pid, &ws, syscall.WALL, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return // ECHILD: everything exited
		}
		if ws.Exited() || ws.Signaled() {
			delete(tr.inSys, wpid)
			delete(tr.onExit, wpid)
			continue
		}
		if !ws.Stopped() {
			continue
		}
		inject := 0
		switch sig := ws.StopSignal(); sig {
		case syscall.SIGTRAP | 0x80:
			tr.syscallStop(wpid)
		case syscall.SIGTRAP:
			if first {
				first = false
				if err := syscall.PtraceSetOptions(pid, syscall.PTRACE_O_TRACESYSGOOD|syscall.PTRACE_O_TRACECLONE|ptraceOExitKill); err != nil {
					tr.fail(fmt.Errorf("set options: %w", err))
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		case syscall.SIGSTOP:
			// A new thread's first stop, or a group stop: swallow it.
		default:
			inject = int(sig)
		}
		_ = syscall.PtraceSyscall(wpid, inject) // ESRCH when the thread died meanwhile
	}
}

func (tr *tracer) fail(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.trErr == nil {
		tr.trErr = err
	}
}

func (tr *tracer) syscallStop(tid int) {
	if tr.inSys[tid] {
		tr.inSys[tid] = false
		commit := tr.onExit[tid]
		delete(tr.onExit, tid)
		if commit == nil {
			return
		}
		var regs syscall.PtraceRegs
		if err := syscall.PtraceGetRegs(tid, &regs); err != nil {
			return
		}
		if int64(regs.Rax) == 0 {
			commit()
		}
		return
	}
	tr.inSys[tid] = true
	var regs syscall.PtraceRegs
	if err := syscall.PtraceGetRegs(tid, &regs); err != nil {
		return
	}
	a0, a1, a2 := int64(regs.Rdi), int64(regs.Rsi), int64(regs.Rdx)
	a3 := int64(regs.R10)
	switch regs.Orig_rax {
	case sysPwrite64:
		if path := tr.fdPath(tid, a0); path != "" {
			tr.saveRange(path, a3, a2)
		}
	case sysWrite:
		if a0 <= 2 {
			return // stdin/stdout/stderr: never a data file here
		}
		if path := tr.fdPath(tid, a0); path != "" {
			off, err := fdPos(tid, a0, path)
			if err != nil {
				tr.saveWhole(path)
				return
			}
			tr.saveRange(path, off, a2)
		}
	case sysWritev, sysPwritev, sysPwritev2, sysSendfile:
		if path := tr.fdPath(tid, a0); path != "" {
			tr.saveWhole(path)
		}
	case sysCopyFileRange:
		if path := tr.fdPath(tid, a2); path != "" {
			tr.saveWhole(path)
		}
	case sysFtruncate:
		if path := tr.fdPath(tid, a0); path != "" {
			tr.saveTruncate(path, a1)
		}
	case sysFallocate:
		if path := tr.fdPath(tid, a0); path != "" {
			tr.saveSize(path)
		}
	case sysTruncate:
		if path := tr.memPath(tid, atFdCwd, uintptr(a0)); path != "" {
			tr.saveTruncate(path, a1)
		}
	case sysOpenat:
		if a2&syscall.O_TRUNC != 0 {
			if path := tr.memPath(tid, a0, uintptr(a1)); path != "" {
				tr.saveWhole(path)
			}
		}
	case sysOpen:
		if a1&syscall.O_TRUNC != 0 {
			if path := tr.memPath(tid, atFdCwd, uintptr(a0)); path != "" {
				tr.saveWhole(path)
			}
		}
	case sysFsync, sysFdatasync:
		if path := tr.fdPath(tid, a0); path != "" {
			tr.onExit[tid] = func() { tr.synced(path) }
		}
	case sysSync:
		tr.onExit[tid] = func() { tr.synced("") }
	case sysSyncfs:
		tr.onExit[tid] = func() { tr.synced("") }
	}
}

// tracked reports whether path is a regular file under the directory.
func (tr *tracer) tracked(path string) bool {
	if !strings.HasPrefix(path, tr.dir+"/") {
		return false
	}
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// fdPath is the tracked file behind the thread's fd, or "".
func (tr *tracer) fdPath(tid int, fd int64) string {
	if fd < 0 {
		return ""
	}
	p, err := os.Readlink("/proc/" + strconv.Itoa(tid) + "/fd/" + strconv.FormatInt(fd, 10))
	if err != nil || !tr.tracked(p) {
		return ""
	}
	return p
}

// memPath reads a NUL-terminated path from the tracee and resolves it
// against dirfd; "" when it is not a tracked file.
func (tr *tracer) memPath(tid int, dirfd int64, addr uintptr) string {
	var buf []byte
	chunk := make([]byte, 8)
	for len(buf) < 4096 {
		if _, err := syscall.PtracePeekData(tid, addr+uintptr(len(buf)), chunk); err != nil {
			return ""
		}
		if i := bytes.IndexByte(chunk, 0); i >= 0 {
			buf = append(buf, chunk[:i]...)
			break
		}
		buf = append(buf, chunk...)
	}
	p := string(buf)
	if !filepath.IsAbs(p) {
		base := "/proc/" + strconv.Itoa(tid) + "/cwd"
		if int32(dirfd) != atFdCwd {
			base = "/proc/" + strconv.Itoa(tid) + "/fd/" + strconv.FormatInt(dirfd, 10)
		}
		d, err := os.Readlink(base)
		if err != nil {
			return ""
		}
		p = filepath.Join(d, p)
	}
	p, err := filepath.EvalSymlinks(p)
	if err != nil || !tr.tracked(p) {
		return ""
	}
	return p
}

// fdPos is the fd's file offset for write(2), or the file's size when it
// was opened with O_APPEND.
func fdPos(tid int, fd int64, path string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/fdinfo/" + strconv.FormatInt(fd, 10))
	if err != nil {
		return 0, err
	}
	var pos, flags int64 = -1, 0
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		v = strings.TrimSpace(v)
		switch k {
		case "pos":
			pos, _ = strconv.ParseInt(v, 10, 64)
		case "flags":
			flags, _ = strconv.ParseInt(v, 8, 64)
		}
	}
	if flags&syscall.O_APPEND != 0 {
		fi, err := os.Stat(path)
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	if pos < 0 {
		return 0, errors.New("no pos in fdinfo")
	}
	return pos, nil
}

func (tr *tracer) push(path string, u undo) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.logs[path] = append(tr.logs[path], u)
	tr.stats.Writes++
}

// saveRange records the n bytes at off that a write is about to replace.
func (tr *tracer) saveRange(path string, off, n int64) {
	f, err := os.Open(path)
	if err != nil {
		tr.fail(err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		tr.fail(err)
		return
	}
	size := fi.Size()
	old := make([]byte, max(0, min(n, size-off)))
	if _, err := f.ReadAt(old, off); err != nil && !errors.Is(err, io.EOF) {
		tr.fail(err)
		return
	}
	tr.push(path, undo{off: off, old: old, size: size})
}

// saveWhole records the whole file before an operation whose effect is
// not a simple range.
func (tr *tracer) saveWhole(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		tr.fail(err)
		return
	}
	tr.push(path, undo{whole: true, old: b, size: int64(len(b))})
}

// saveSize records only the file's size (for growth).
func (tr *tracer) saveSize(path string) {
	fi, err := os.Stat(path)
	if err != nil {
		tr.fail(err)
		return
	}
	tr.push(path, undo{off: fi.Size(), size: fi.Size()})
}

func (tr *tracer) saveTruncate(path string, to int64) {
	fi, err := os.Stat(path)
	if err != nil {
		tr.fail(err)
		return
	}
	if to < fi.Size() {
		tr.saveWhole(path) // shrinking destroys data: keep it all
		return
	}
	tr.saveSize(path)
}

// synced empties path's undo log ("" for every file: sync/syncfs).
func (tr *tracer) synced(path string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if path == "" {
		clear(tr.logs)
	} else {
		delete(tr.logs, path)
	}
	tr.stats.Syncs++
}

// Crash kills the process with SIGKILL, waits for it to be gone and undoes
// every write that was not synced, as a power loss at that instant would.
func (p *Process) Crash() (Stats, error) {
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		return Stats{}, errors.New("powerloss: traced process did not die within 30s")
	}
	tr := p.impl
	tr.mu.Lock()
	defer tr.mu.Unlock()
	st := tr.stats
	if tr.trErr != nil {
		return st, fmt.Errorf("powerloss: tracer: %w", tr.trErr)
	}
	for path, log := range tr.logs {
		if len(log) == 0 {
			continue
		}
		if err := rollback(path, log); err != nil {
			return st, fmt.Errorf("powerloss: roll back %s: %w", path, err)
		}
		st.Files++
		st.UndoneWrite += len(log)
	}
	clear(tr.logs)
	return st, nil
}

// Kill ends the process without rolling anything back (cleanup).
func (p *Process) Kill() {
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
	}
}

func rollback(path string, log []undo) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil // removed since: metadata is out of scope
	}
	if err != nil {
		return err
	}
	defer f.Close()
	for i := len(log) - 1; i >= 0; i-- {
		u := log[i]
		if len(u.old) > 0 || u.whole {
			if _, err := f.WriteAt(u.old, u.off); err != nil {
				return err
			}
		}
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if u.whole || fi.Size() > u.size {
			if err := f.Truncate(u.size); err != nil {
				return err
			}
		}
	}
	return f.Sync()
}
