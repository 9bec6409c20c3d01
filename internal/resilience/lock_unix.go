//go:build unix

package resilience

import (
	"errors"
	"os"
	"syscall"
)

// inUse reports whether another process (a running hub) holds the table
// file at path open: bbolt keeps an exclusive flock on every file it has
// open for writing. A missing file is not in use.
func inUse(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
