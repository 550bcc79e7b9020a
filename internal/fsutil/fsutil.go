// Package fsutil holds the few durable-file primitives the module shares: the spool, the dedup
// journal, the local-directory archive store and the emulator's state file.
package fsutil

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
)

// SyncDir fsyncs a directory so that file creations, renames and removals in it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// TempPrefix starts the name of every file WriteFileAtomic is still writing: listings skip such
// files, and a crash leaves only such files behind.
const TempPrefix = ".tmp-"

// WriteFileAtomic replaces path with data durably: temp file, fsync, rename, fsync of the directory.
// Readers see the old content or the new, never a torn file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return ReplaceFile(path, perm, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// ReplaceFile is WriteFileAtomic for content written as a stream by write (into a buffered
// writer over the temp file), so a large file never has to be held in memory.
func ReplaceFile(path string, perm os.FileMode, write func(*bufio.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 64<<10)
	if err := write(w); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	ok = true
	return SyncDir(dir)
}

// CreateFileExclusive creates path with data durably, failing with an error wrapping
// fs.ErrExist when path already exists (it is never replaced): temp file, fsync, hard link to
// path (link never overwrites), removal of the temp name, fsync of the directory.
func CreateFileExclusive(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return SyncDir(dir)
}
