package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openT(t *testing.T, o storage.Options) storage.Store {
	t.Helper()
	s, err := storage.Open(testCtx(t), o)
	if err != nil {
		t.Fatalf("Open(%+v): %v", o.URL, err)
	}
	return s
}

func s3Opts(gw *versitygw.Server, url string) storage.Options {
	return storage.Options{URL: url, Endpoint: gw.Endpoint, AccessKey: gw.AccessKey, SecretKey: gw.SecretKey}
}

func readAll(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(testCtx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return b
}

// TestStore runs the same contract checks against a real VersityGW bucket (with and without a
// prefix) and the file backend.
func TestStore(t *testing.T) {
	gw := versitygw.StartT(t)
	bucket := gw.BucketT(t)
	backends := []struct {
		name string
		open func(t *testing.T) storage.Store
	}{
		{"file", func(t *testing.T) storage.Store {
			return openT(t, storage.Options{URL: "file://" + filepath.ToSlash(t.TempDir())})
		}},
		{"s3-prefix", func(t *testing.T) storage.Store {
			return openT(t, s3Opts(gw, "s3://"+bucket+"/"+strings.ReplaceAll(t.Name(), "/", "_")+"/archive"))
		}},
		{"s3-root", func(t *testing.T) storage.Store {
			return openT(t, s3Opts(gw, "s3://"+gw.BucketT(t)))
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := b.open(t)
			ctx := testCtx(t)
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			if strings.Contains(s.String(), gw.SecretKey) {
				t.Fatalf("String() leaks the secret: %s", s)
			}

			// Put / Get round trip, binary-safe.
			body := []byte("{\"a\":1}\n\x00\xff{\"b\":2}\n")
			keys := []string{
				"dt=2026-11-27/i-00000000000000000001-000.jsonl.gz",
				"dt=2026-11-26/i-00000000000000000002-000.jsonl",
				"dt=2026-11-26/i-00000000000000000001-000.jsonl.gz",
				"dt=2026-11-2x/other.jsonl",
				"_rejected/dt=2026-11-26/i-00000000000000000001.json",
			}
			for _, k := range keys {
				if err := s.Put(ctx, k, append([]byte(k), body...), "application/x-ndjson"); err != nil {
					t.Fatalf("Put(%q): %v", k, err)
				}
			}
			if got := readAll(t, s, keys[0]); !bytes.Equal(got, append([]byte(keys[0]), body...)) {
				t.Fatalf("Get = %q", got)
			}

			// Conditional create: same key, same bytes (the archiver's retry) is done; different
			// bytes under the same name are refused with ErrExists and never replace the object.
			for i := 0; i < 2; i++ {
				if err := s.Put(ctx, "fresh/one", []byte("same\n"), "application/x-ndjson"); err != nil && i == 0 {
					t.Fatalf("create: %v", err)
				} else if err != nil {
					t.Fatalf("same bytes again = %v; want nil (idempotent)", err)
				}
			}
			for _, other := range []string{"other\n", "same\nmore\n", "sam", ""} {
				err := s.Put(ctx, "fresh/one", []byte(other), "application/x-ndjson")
				if !errors.Is(err, storage.ErrExists) {
					t.Fatalf("Put(%q) over different bytes = %v; want ErrExists", other, err)
				}
				if !strings.Contains(err.Error(), "fresh/one") {
					t.Errorf("ErrExists does not name the key: %v", err)
				}
			}
			if got := readAll(t, s, "fresh/one"); string(got) != "same\n" {
				t.Fatalf("after conflicting Puts Get = %q; the object was replaced", got)
			}
			if err := s.Put(ctx, "empty", nil, "application/x-ndjson"); err != nil {
				t.Fatalf("Put empty body: %v", err)
			}
			if got := readAll(t, s, "empty"); len(got) != 0 {
				t.Fatalf("empty object = %q", got)
			}

			// List: recursive, sorted, relative keys, string-prefix semantics.
			for _, tc := range []struct {
				prefix string
				want   []string
			}{
				{"dt=2026-11-26/", []string{keys[2], keys[1]}},
				{"dt=2026-11-2", []string{keys[2], keys[1], keys[0], keys[3]}},
				{"dt=2026-11-28/", nil},
				{"nothing/here/", nil},
				{"_rejected/", []string{keys[4]}},
				{"", []string{keys[4], keys[2], keys[1], keys[0], keys[3], "empty", "fresh/one"}},
			} {
				objs, err := s.List(ctx, tc.prefix)
				if err != nil {
					t.Fatalf("List(%q): %v", tc.prefix, err)
				}
				var got []string
				for _, o := range objs {
					got = append(got, o.Key)
					if o.LastModified.IsZero() {
						t.Errorf("List(%q): %s has no LastModified", tc.prefix, o.Key)
					}
				}
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Errorf("List(%q) =\n%s\nwant\n%s", tc.prefix, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
				}
				for _, o := range objs {
					if o.Key == "fresh/one" && o.Size != int64(len("same\n")) {
						t.Errorf("List: %s size %d, want %d", o.Key, o.Size, len("same\n"))
					}
				}
			}

			// Missing key.
			if _, err := s.Get(ctx, "dt=2026-11-26/missing.jsonl"); !errors.Is(err, storage.ErrNotExist) {
				t.Fatalf("Get(missing) = %v; want ErrNotExist", err)
			}
			// Keys that would escape the prefix or differ between S3 and disk are refused.
			for _, k := range []string{"", "/abs", "a/../b", "a//b", "dir/", `a\b`, "a/.tmp-x"} {
				if err := s.Put(ctx, k, body, "x"); err == nil {
					t.Errorf("Put(%q) succeeded; want a key error", k)
				}
			}
		})
	}
}

// TestS3Details covers what only the S3 backend has: content type, missing bucket, wrong
// credentials, unreachable endpoint, all with errors worded for a person and free of secrets.
func TestS3Details(t *testing.T) {
	gw := versitygw.StartT(t)
	bucket := gw.BucketT(t)
	ctx := testCtx(t)

	t.Run("content-type", func(t *testing.T) {
		t.Parallel()
		s := openT(t, s3Opts(gw, "s3://"+bucket+"/ct"))
		if err := s.Put(ctx, "dt=2026-11-26/x.jsonl.gz", []byte("x"), "application/x-ndjson"); err != nil {
			t.Fatal(err)
		}
		c, err := gw.Client()
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.StatObject(ctx, bucket, "ct/dt=2026-11-26/x.jsonl.gz", minio.StatObjectOptions{})
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if st.ContentType != "application/x-ndjson" {
			t.Errorf("Content-Type = %q", st.ContentType)
		}
		if enc := st.Metadata.Get("Content-Encoding"); enc != "" {
			t.Errorf("Content-Encoding = %q; objects must stay plain .gz files", enc)
		}
	})

	t.Run("missing-bucket", func(t *testing.T) {
		t.Parallel()
		s := openT(t, s3Opts(gw, "s3://no-such-bucket-here/p"))
		err := s.Ping(ctx)
		if !errors.Is(err, storage.ErrNotExist) || !strings.Contains(err.Error(), "no-such-bucket-here") || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("Ping = %v; want a missing-bucket error naming the bucket", err)
		}
		err = s.Put(ctx, "k", []byte("x"), "x")
		if !errors.Is(err, storage.ErrNotExist) || !strings.Contains(err.Error(), "create the bucket") {
			t.Fatalf("Put = %v; want a missing-bucket error with a hint", err)
		}
	})

	t.Run("wrong-credentials", func(t *testing.T) {
		t.Parallel()
		secret := "wrong-secret-" + gw.SecretKey
		s := openT(t, storage.Options{URL: "s3://" + bucket, Endpoint: gw.Endpoint, AccessKey: gw.AccessKey, SecretKey: secret})
		unknown := openT(t, storage.Options{URL: "s3://" + bucket, Endpoint: gw.Endpoint, AccessKey: "unknown-key", SecretKey: secret})
		_, listErr := s.List(ctx, "dt=")
		for name, err := range map[string]error{
			"Ping":             s.Ping(ctx),
			"Put":              s.Put(ctx, "k", []byte("x"), "x"),
			"List":             listErr,
			"Ping(unknown AK)": unknown.Ping(ctx),
			"Put(unknown AK)":  unknown.Put(ctx, "k", []byte("x"), "x"),
		} {
			if err == nil {
				t.Fatalf("%s with a wrong secret succeeded", name)
			}
			msg := err.Error()
			if !strings.Contains(msg, "credentials") || !strings.Contains(msg, bucket) {
				t.Errorf("%s = %v; want a credentials hint naming the bucket", name, err)
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, gw.SecretKey) {
				t.Errorf("%s error leaks the secret: %v", name, err)
			}
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		// A port nothing listens on: the server's own port after it is known to be free is racy,
		// so use port 1 (privileged, never a test server).
		s := openT(t, storage.Options{URL: "s3://" + bucket, Endpoint: "http://127.0.0.1:1", AccessKey: "a", SecretKey: "b", MaxRetries: 1})
		err := s.Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "cannot reach http://127.0.0.1:1") {
			t.Fatalf("Ping = %v; want a cannot-reach error naming the endpoint", err)
		}
	})
}

// TestCredentialChain checks the path `archiver serve` uses: no static keys, credentials from the
// environment; and the message when there are none. Not parallel: it sets the environment.
func TestCredentialChain(t *testing.T) {
	gw := versitygw.StartT(t)
	bucket := gw.BucketT(t)
	ctx := testCtx(t)
	home := t.TempDir()
	t.Setenv("HOME", home) // no ~/.aws of the machine running the tests
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "none"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "none"))
	// Make the IAM provider fail fast instead of probing the EC2 metadata address.
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds")
	for _, k := range []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_REGION"} {
		t.Setenv(k, "")
	}

	t.Setenv("AWS_ACCESS_KEY_ID", gw.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", gw.SecretKey)
	s := openT(t, storage.Options{URL: "s3://" + bucket + "/env", Endpoint: gw.Endpoint})
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping with env credentials: %v", err)
	}
	if err := s.Put(ctx, "k", []byte("v"), "text/plain"); err != nil {
		t.Fatalf("Put with env credentials: %v", err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	s = openT(t, storage.Options{URL: "s3://" + bucket + "/env", Endpoint: gw.Endpoint})
	err := s.Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "no S3 credentials found") {
		t.Fatalf("Ping without credentials = %v; want a no-credentials hint", err)
	}
}

func TestParseS3URL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, bucket, prefix, err string
	}{
		{in: "s3://bucket", bucket: "bucket"},
		{in: "s3://bucket/", bucket: "bucket"},
		{in: "s3://bucket/a/b", bucket: "bucket", prefix: "a/b/"},
		{in: "s3://bucket/a/b/", bucket: "bucket", prefix: "a/b/"},
		{in: "s3://my.bucket-1/p", bucket: "my.bucket-1", prefix: "p/"},
		{in: "s3:///p", err: "missing bucket"},
		{in: "s3://Bucket/p", err: "lower-case"},
		{in: "s3://ab", err: "3 to 63"},
		{in: "s3://-ab/p", err: "start and end"},
		{in: "s3://bucket:9000/p", err: "--s3-endpoint"},
		{in: "s3://key:secret@bucket/p", err: "no user"},
		{in: "s3://bucket/p?x=1", err: "query"},
		{in: "s3://bucket/a//b", err: "empty"},
		{in: "s3://bucket/a/../b", err: `".."`},
		{in: "http://bucket/p", err: "scheme must be s3"},
	} {
		b, p, err := storage.ParseS3URL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseS3URL(%q) error = %v; want it to mention %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(tc.in, "secret") && strings.Contains(err.Error(), "secret") {
				// The URL is echoed; a user putting secrets into it is told not to, which is acceptable.
				_ = err
			}
			continue
		}
		if err != nil || b != tc.bucket || p != tc.prefix {
			t.Errorf("ParseS3URL(%q) = %q, %q, %v; want %q, %q", tc.in, b, p, err, tc.bucket, tc.prefix)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	for _, tc := range []struct {
		o   storage.Options
		err string
	}{
		{storage.Options{URL: "/tmp/archive"}, "unsupported store"},
		{storage.Options{URL: "gs://bucket"}, "unsupported store"},
		{storage.Options{URL: "file://host/dir"}, "three slashes"},
		{storage.Options{URL: "file://"}, "missing directory"},
		{storage.Options{URL: "s3://bucket", Endpoint: "127.0.0.1:7070"}, "http://HOST"},
		{storage.Options{URL: "s3://bucket", Endpoint: "ftp://x"}, "http://HOST"},
		{storage.Options{URL: "s3://bucket", Endpoint: "http://x/bucket"}, "--store s3://BUCKET/PREFIX"},
	} {
		if _, err := storage.Open(ctx, tc.o); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Open(%+v) = %v; want an error mentioning %q", tc.o, err, tc.err)
		}
	}
}

func TestFileStore(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "archive")

	s := openT(t, storage.Options{URL: "file://" + dir})
	if got, want := s.String(), "file://"+filepath.ToSlash(dir); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	// Reading a store that was never written to says so instead of printing nothing.
	if _, err := s.List(ctx, "dt=2026-11-26/"); !errors.Is(err, storage.ErrNotExist) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("List on a missing directory = %v; want ErrNotExist", err)
	}
	// Ping creates the directory (zero-setup default).
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("Ping did not create %s: %v", dir, err)
	}
	if err := s.Put(ctx, "dt=2026-11-26/a.jsonl", []byte("x\n"), "application/x-ndjson"); err != nil {
		t.Fatal(err)
	}
	// Files on disk mirror the keys, owner-only (archive lines hold usr_args tokens and
	// signatures: 0600 files, 0700 directories), with no temp files left behind.
	p := filepath.Join(dir, "dt=2026-11-26", "a.jsonl")
	for path, want := range map[string]os.FileMode{p: 0o600, filepath.Dir(p): 0o700, dir: 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Fatalf("stat %s: %v %v; want mode %v", path, st, err, want)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the object: %v", len(ents), ents)
	}
	// A temp file left by a crash is not an object.
	if err := os.WriteFile(filepath.Join(dir, "dt=2026-11-26", ".tmp-b.jsonl-123"), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := s.List(ctx, "")
	if err != nil || len(objs) != 1 || objs[0].Key != "dt=2026-11-26/a.jsonl" {
		t.Fatalf("List = %v, %v; want only the object", objs, err)
	}
	// A directory is not an object.
	if _, err := s.Get(ctx, "dt=2026-11-26"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("Get(directory) = %v; want ErrNotExist", err)
	}
	// Relative file URL and the zero-setup default resolve to absolute directories.
	for _, url := range []string{"file:rel/dir", ""} {
		s := openT(t, storage.Options{URL: url})
		if !strings.HasPrefix(s.String(), "file:///") {
			t.Errorf("Open(%q).String() = %q; want an absolute file:/// URL", url, s)
		}
	}
	if s := openT(t, storage.Options{}); !strings.HasSuffix(s.String(), "/archive") {
		t.Errorf("default store = %s; want ./archive", s)
	}
}

func TestFileStoreNotWritable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// Root writes through mode bits, but not into a read-only file system.
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
			testenv.Skip(t, fmt.Sprintf("as root this needs mount -t tmpfs (a namespace that may mount): %v %s", err, out))
		}
		t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	} else {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	}
	s := openT(t, storage.Options{URL: "file://" + dir})
	if err := s.Ping(testCtx(t)); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("Ping = %v; want not writable", err)
	}
}

// TestClassify: the kinds of upload_failures_total, and which need an operator.
func TestClassify(t *testing.T) {
	t.Parallel()
	gw := versitygw.Shared(t)
	ctx := testCtx(t)
	bucket := gw.BucketT(t)
	wrong := s3Opts(gw, "s3://"+bucket)
	wrong.SecretKey = "not-the-secret"
	for _, tc := range []struct {
		name      string
		err       func() error
		kind      string
		permanent bool
	}{
		{"wrong secret", func() error {
			return openT(t, wrong).Put(ctx, "k", []byte("x"), "x")
		}, storage.KindAccessDenied, true},
		{"missing bucket", func() error {
			return openT(t, s3Opts(gw, "s3://no-such-bucket-here")).Put(ctx, "k", []byte("x"), "x")
		}, storage.KindNoSuchBucket, true},
		{"unreachable", func() error {
			o := s3Opts(gw, "s3://"+bucket)
			o.Endpoint, o.MaxRetries = "http://127.0.0.1:1", 1
			return openT(t, o).Put(ctx, "k", []byte("x"), "x")
		}, storage.KindUnreachable, false},
		{"conflict", func() error {
			s := openT(t, storage.Options{URL: "file://" + filepath.ToSlash(t.TempDir())})
			_ = s.Put(ctx, "k", []byte("x"), "x")
			return s.Put(ctx, "k", []byte("y"), "x")
		}, storage.KindConflict, false},
		{"plain error", func() error { return errors.New("something") }, storage.KindUnreachable, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			kind, permanent := storage.Classify(err)
			if kind != tc.kind || permanent != tc.permanent {
				t.Fatalf("Classify(%v) = %s, %v; want %s, %v", err, kind, permanent, tc.kind, tc.permanent)
			}
			if strings.Contains(fmt.Sprint(err), gw.SecretKey) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

// TestMain stops the VersityGW versitygw.Shared starts on first use.
func TestMain(m *testing.M) {
	code := m.Run()
	versitygw.StopShared()
	os.Exit(code)
}

// TestFileIdentity: a file store's identity is its absolute directory, however the URL names it
// (digests are signed for it).
func TestFileIdentity(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("archive", 0o700); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, u := range []string{"file:archive", "file://" + filepath.Join(dir, "archive"), "file://" + filepath.Join(dir, "archive") + "/"} {
		st, err := storage.Open(context.Background(), storage.Options{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		ids[storage.Identity(st)] = true
	}
	if len(ids) != 1 {
		t.Fatalf("identities %v", ids)
	}
}
