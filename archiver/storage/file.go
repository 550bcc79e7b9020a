package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// fileStore keeps objects as files under dir; the key's '/' become directories, so the tree looks
// like the bucket (dt=YYYY-MM-DD/...), readable with DuckDB's hive partitioning as well.
type fileStore struct {
	dir string // absolute
}

var _ Store = (*fileStore)(nil)

// parseFileURL accepts file:///abs/dir, file://localhost/abs/dir and file:rel/dir.
func parseFileURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid store URL %q: %w (expected file:///ABSOLUTE/DIR)", raw, err)
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("invalid store URL %q: host %q is not allowed (expected file:///ABSOLUTE/DIR, three slashes)", raw, u.Host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("invalid store URL %q: query and fragment are not allowed (expected file:///ABSOLUTE/DIR)", raw)
	}
	p := u.Path
	if u.Opaque != "" { // file:rel/dir
		p, err = url.PathUnescape(u.Opaque)
		if err != nil {
			return "", fmt.Errorf("invalid store URL %q: %w", raw, err)
		}
	}
	if p == "" {
		return "", fmt.Errorf("invalid store URL %q: missing directory (expected file:///ABSOLUTE/DIR)", raw)
	}
	return p, nil
}

func newFileStore(dir string) (*fileStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("file store %q: %w", dir, err)
	}
	return &fileStore{dir: abs}, nil
}

func (s *fileStore) String() string { return "file://" + filepath.ToSlash(s.dir) }

func (s *fileStore) path(key string) string { return filepath.Join(s.dir, filepath.FromSlash(key)) }

// Put creates key atomically and never replaces it: the bytes go to a temp file in the target
// directory (fsynced), which is then hard-linked under the key (link fails when the name exists:
// an exclusive create) and the directory fsynced. Readers see either nothing or the whole object,
// and a crash never leaves a torn object. Files are owner-only: archive lines hold usr_args
// tokens and signatures. contentType is not kept: a directory has no place for it (readers go by
// the .jsonl[.gz] suffix).
func (s *fileStore) Put(ctx context.Context, key string, body []byte, contentType string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("file store %s: put: %w", s, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file store %s: put %s: %w", s, key, err)
	}
	dst := s.path(key)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("file store %s: put %s: creating directory: %w (check that the directory is writable)", s, key, err)
	}
	if err := fsutil.CreateFileExclusive(dst, body, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return compareExisting(ctx, s, key, body)
		}
		return fmt.Errorf("file store %s: put %s: %w (is the directory writable, the disk full?)", s, key, err)
	}
	return nil
}

func (s *fileStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("file store %s: get: %w", s, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file store %s: get %s: %w", s, key, err)
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("file store %s: %s: %w", s, key, ErrNotExist)
		}
		return nil, fmt.Errorf("file store %s: get %s: %w", s, key, err)
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("file store %s: get %s: %w", s, key, err)
		}
		return nil, fmt.Errorf("file store %s: %s is a directory: %w", s, key, ErrNotExist)
	}
	return f, nil
}

func (s *fileStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if st, err := os.Stat(s.dir); err != nil || !st.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil, &storeError{msg: fmt.Sprintf("file store %s: directory does not exist (check --store)", s), err: ErrNotExist}
		}
		return nil, fmt.Errorf("file store %s: %w", s, err)
	}
	// Walk only the deepest directory the prefix names; the rest of the prefix filters names.
	start := s.dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = filepath.Join(s.dir, filepath.FromSlash(path.Clean("/"+prefix[:i])))
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll // nothing under this prefix
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), fsutil.TempPrefix) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while listing
			}
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: info.Size(), LastModified: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("file store %s: list %q: %w", s, prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Ping creates the directory when missing (the zero-setup default must just work) and checks that
// it is a writable directory.
func (s *fileStore) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file store %s: %w", s, err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("file store %s: cannot create the directory: %w", s, err)
	}
	f, err := os.CreateTemp(s.dir, fsutil.TempPrefix+"ping-*")
	if err != nil {
		return fmt.Errorf("file store %s: directory is not writable: %w", s, err)
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return nil
}

// Identity is the directory's absolute path (see storage.Identity), so file:archive and
// file:///abs/archive name the same archive.
func (s *fileStore) Identity() string {
	dir, err := filepath.Abs(s.dir)
	if err != nil {
		dir = filepath.Clean(s.dir)
	}
	return "file://" + filepath.ToSlash(dir)
}
