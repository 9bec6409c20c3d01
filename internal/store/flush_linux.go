package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// flushRange writes the file's dirty pages in [off, off+n) to the disk
// and waits for them, without touching metadata or the rest of the file:
// a backup flushes each chunk as it goes, so the final fsync has little
// left to do and no single flush holds the disk for the whole copy.
func flushRange(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}
