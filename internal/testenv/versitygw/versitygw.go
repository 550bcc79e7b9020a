// Package versitygw starts a real VersityGW S3 server (posix backend) for tests, benchmarks and the
// demo: a free 127.0.0.1 port, random credentials, its own process group, output captured to a log
// file in its directory.
package versitygw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

// InstallHint is how to get the binary.
const InstallHint = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Region is the region the server answers for.
const Region = "us-east-1"

// LogFile is the name of the server's output file in the directory given to Start (next to the
// "data" directory that holds the buckets).
const LogFile = "versitygw.log"

// Server is a running VersityGW.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string // the posix backend root: every sub-directory is a bucket

	addr    string // 127.0.0.1:PORT
	bin     string
	logPath string

	mu   sync.Mutex
	proc *proc.Process // nil when stopped
}

// Binary finds versitygw: $VERSITYGW, PATH, $(go env GOBIN), $(go env GOPATH)/bin, ~/go/bin.
func Binary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("$VERSITYGW=%q is not an executable file; install with: %s", p, InstallHint)
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
			dirs = append(dirs, strings.TrimSpace(lines[0]))
		}
		if len(lines) > 1 {
			for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(gp, "bin"))
			}
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "versitygw"); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw binary not found ($VERSITYGW, PATH, GOBIN, GOPATH/bin); install it with: %s", InstallHint)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Start runs VersityGW on a free 127.0.0.1 port with its posix backend rooted at dir/data
// (Server.Dir; created if needed) and waits until it answers S3 requests. Its output goes to
// dir/versitygw.log (LogPath). The server runs until Stop, independent of ctx, which bounds only
// the startup.
func Start(ctx context.Context, dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("versitygw: %w", err)
	}
	root := filepath.Join(abs, "data")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("versitygw: creating %s: %w", root, err)
	}
	s := &Server{
		AccessKey: "AK" + randomHex(8),
		SecretKey: "SK" + randomHex(16),
		Dir:       root,
		bin:       bin,
		logPath:   filepath.Join(abs, LogFile),
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		addr, err := proc.FreeAddr()
		if err != nil {
			return nil, fmt.Errorf("versitygw: finding a free port: %w", err)
		}
		s.addr, s.Endpoint = addr, "http://"+addr
		if lastErr = s.start(ctx); lastErr == nil {
			return s, nil
		}
		if ctx.Err() != nil || !s.bindFailed() {
			break
		}
	}
	return nil, lastErr
}

// LogPath is the file holding the server's stdout and stderr.
func (s *Server) LogPath() string { return s.logPath }

// LogTail returns the last lines of the server's output, for failure messages.
func (s *Server) LogTail() string { return proc.LogTail(s.logPath, 30) }

func (s *Server) bindFailed() bool {
	t, _ := proc.Tail(s.logPath, 4096)
	return strings.Contains(t, "address already in use") || strings.Contains(t, "bind")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// start launches the process on s.addr and waits for readiness; on failure the process is gone.
func (s *Server) start(ctx context.Context) error {
	if err := s.logStart(); err != nil {
		return err
	}
	// Credentials go through the environment, not argv, so they do not show up in ps.
	// --keep-alive: without it VersityGW closes the connection after every request, so each Put
	// pays a TCP connect that real S3 endpoints do not charge, which would distort store-mode
	// benchmarks.
	client, err := s.Client()
	if err != nil {
		return err
	}
	p, err := proc.Launch(ctx, proc.Spec{
		Name: "versitygw", Path: s.bin, Log: s.logPath,
		Args: []string{"--port", s.addr, "--quiet", "--keep-alive", "posix", s.Dir},
		Env: []string{
			"ROOT_ACCESS_KEY_ID=" + s.AccessKey,
			"ROOT_SECRET_ACCESS_KEY=" + s.SecretKey,
			"VGW_REGION=" + Region,
		},
		// Ready once a TCP connection and an S3 ListBuckets succeed.
		Ready: func(ctx context.Context, _ *proc.Process) error {
			c, err := net.DialTimeout("tcp", s.addr, time.Second)
			if err != nil {
				return err
			}
			_ = c.Close()
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err = client.ListBuckets(actx)
			return err
		},
		StartTimeout: 20 * time.Second,
		StopTimeout:  3 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("versitygw on %s: %w", s.addr, err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// logStart marks a (re)start in the log file, which every start appends to.
func (s *Server) logStart() error {
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("versitygw: opening log file: %w", err)
	}
	fmt.Fprintf(f, "---- %s starting on %s\n", time.Now().Format(time.RFC3339), s.addr)
	return f.Close()
}

// Client returns a minio-go client for this server (path-style, root credentials).
func (s *Server) Client() (*minio.Client, error) {
	c, err := minio.New(s.addr, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       Region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		return nil, fmt.Errorf("versitygw: client for %s: %w", s.Endpoint, err)
	}
	return c, nil
}

// Env is the environment a subprocess needs to reach this server through minio-go's credential
// chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + Region,
	}
}

// Stop sends SIGTERM to the server's process group, SIGKILL after 3s, and waits for it. Stopping a
// stopped server is a no-op.
func (s *Server) Stop() error { return s.halt(true) }

// Kill stops the server abruptly (SIGKILL to the group), like a crash, and waits for it.
func (s *Server) Kill() error { return s.halt(false) }

// halt ends the process: gracefully (SIGTERM first) or as a crash (SIGKILL only).
func (s *Server) halt(graceful bool) error {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	var err error
	if graceful {
		// Past the grace period the group is killed; that still counts as stopped.
		if err = p.Stop(context.Background(), syscall.SIGTERM, 3*time.Second); errors.Is(err, proc.ErrKilled) {
			err = nil
		}
	} else {
		err = p.Kill()
	}
	if err != nil {
		return fmt.Errorf("versitygw: %w", err)
	}
	return nil
}

func (s *Server) Running() bool {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	return p != nil && p.Running()
}

// Restart stops the server (if running) and starts it again on the same port with the same data
// and credentials, for store-down tests. It retries briefly while the port is still held.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.StartAgain(ctx)
}

// StartAgain starts a stopped server on its old port with its old data (the second half of Restart,
// for tests that keep the store down for a while).
func (s *Server) StartAgain(ctx context.Context) error {
	if s.Running() {
		return nil
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.start(ctx); err == nil {
			return nil
		}
		if ctx.Err() != nil || !s.bindFailed() {
			return err
		}
		if ctxsleep.Sleep(ctx, 250*time.Millisecond) != nil {
			return err
		}
	}
	return err
}

// CreateBucket creates a bucket (a directory under Dir).
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: Region}); err != nil {
		return fmt.Errorf("versitygw %s: creating bucket %q: %w", s.Endpoint, name, err)
	}
	return nil
}

// StartT starts a server in t.TempDir() and stops it in t.Cleanup. Without the binary the test
// skips with the install hint (fails under LIVEHOOK_TEST_ALL=1, see internal/testenv).
func StartT(t testing.TB) *Server {
	t.Helper()
	testenv.Binary(t, "versitygw", Binary)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("starting VersityGW: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping VersityGW: %v", err)
		}
	})
	return s
}

var shared struct {
	mu  sync.Mutex
	s   *Server
	dir string
	err error
}

// Shared is one server per test binary, started on first use, for tests that only need a bucket
// of their own (BucketT). Without the binary the test skips like StartT. A package that uses it
// calls StopShared from TestMain after m.Run.
func Shared(t testing.TB) *Server {
	t.Helper()
	testenv.Binary(t, "versitygw", Binary)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s == nil && shared.err == nil {
		shared.dir, shared.err = os.MkdirTemp("", "versitygw-shared-")
		if shared.err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			shared.s, shared.err = Start(ctx, shared.dir)
			cancel()
		}
	}
	if shared.err != nil {
		t.Fatalf("starting the shared VersityGW: %v", shared.err)
	}
	return shared.s
}

// StopShared stops the server Shared started, if any, and removes its directory.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s != nil {
		_ = shared.s.Stop()
		shared.s = nil
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
		shared.dir = ""
	}
}

// BucketT creates a bucket with a name unique to the test and returns it.
func (s *Server) BucketT(t testing.TB) string {
	t.Helper()
	name := "b-" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.CreateBucket(ctx, name); err != nil {
		t.Fatalf("%v\n%s", err, s.LogTail())
	}
	return name
}
