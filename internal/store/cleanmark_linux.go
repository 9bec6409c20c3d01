package store

import (
	"os"
	"syscall"
)

// fileIdentity is the device, inode and change time of a file: what no
// rename-into-place or rewrite keeps, and no user can set back.
func fileIdentity(fi os.FileInfo) (cleanMarker, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return cleanMarker{}, false
	}
	return cleanMarker{Dev: uint64(st.Dev), Ino: st.Ino, CtimeNs: st.Ctim.Nano()}, true
}
