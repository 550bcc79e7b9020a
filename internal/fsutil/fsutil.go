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
	tmp, err := writeTemp(path, perm, write)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// CreateFileExclusive creates path with data durably, failing with an error wrapping
// fs.ErrExist when path already exists (it is never replaced): temp file, fsync, hard link to
// path (link never overwrites), removal of the temp name, fsync of the directory.
func CreateFileExclusive(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, perm, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// writeTemp writes a durable (fsynced, perm) temporary file next to path, for a rename or link
// into place, and returns its name; on error nothing is left behind.
func writeTemp(path string, perm os.FileMode, write func(*bufio.Writer) error) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("syncing: %w", err)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Name(), nil
}
