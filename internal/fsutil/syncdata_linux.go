package fsutil

import (
	"os"
	"syscall"
)

// SyncData flushes f's data (and the metadata needed to read it back, such as its size) to disk:
// fdatasync, cheaper than a full fsync because timestamps are not written.
func SyncData(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return f.Sync()
	}
	var serr error
	if err := sc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
