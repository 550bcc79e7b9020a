//go:build !linux

package fsutil

import "os"

// SyncData flushes f to disk (fsync; fdatasync is used on Linux).
func SyncData(f *os.File) error { return f.Sync() }
