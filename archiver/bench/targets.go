package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// The peer targets, each run in its own process (`archiver-bench target NAME`), so that the
// load generator's CPU and GC never share a runtime with the server being measured. All of them
// answer every path with 200 and the same small JSON body the archiver sends.

var okBody = []byte(`{"status":"ok"}` + "\n")

// RunTarget is the hidden `target` subcommand: args[0] is bare, fsync or naive. It serves until
// SIGTERM or SIGINT and returns the process exit code.
func RunTarget(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: archiver-bench target bare|fsync|groupcommit|naive --listen ADDR [flags]")
		return 2
	}
	name := args[0]
	if name == "archiver" {
		return runProfiledArchiver(args[1:], os.Stderr, stderr)
	}
	fs := flag.NewFlagSet("target "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	file := fs.String("file", "", "fsync: file to append bodies to")
	window := fs.Duration("window", 3*time.Millisecond, "groupcommit: wait this long after the first waiting request before each commit")
	endpoint := fs.String("s3-endpoint", "", "naive: S3 endpoint URL (http://host:port)")
	bucket := fs.String("bucket", "", "naive: bucket")
	prefix := fs.String("prefix", "naive", "naive: key prefix")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}

	var h http.Handler
	switch name {
	case "bare":
		h = http.HandlerFunc(bareHandler)
	case "fsync":
		if *file == "" {
			fmt.Fprintln(stderr, "target fsync: --file is required")
			return 2
		}
		f, err := os.OpenFile(*file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "target fsync: %v\n", err)
			return 1
		}
		defer f.Close()
		h = &fsyncHandler{f: f}
	case "groupcommit":
		if *file == "" {
			fmt.Fprintln(stderr, "target groupcommit: --file is required")
			return 2
		}
		f, err := os.OpenFile(*file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "target groupcommit: %v\n", err)
			return 1
		}
		defer f.Close()
		g := newGroupCommit(f, *window)
		defer g.close()
		h = g
	case "naive":
		nh, err := newNaiveHandler(*endpoint, *bucket, *prefix)
		if err != nil {
			fmt.Fprintf(stderr, "target naive: %v\n", err)
			return 2
		}
		h = nh
	default:
		fmt.Fprintf(stderr, "unknown target %q (want bare, fsync, groupcommit or naive)\n", name)
		return 2
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "target %s: listen: %v\n", name, err)
		return 1
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(stderr, "target %s listening on http://%s\n", name, ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "target %s: %v\n", name, err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "target %s: shutdown: %v\n", name, err)
		return 1
	}
	return 0
}

// bareHandler reads the body and answers 200: the ceiling of HTTP on this box.
func bareHandler(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	writeOK(w)
}

func writeOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(okBody)
}

// fsyncHandler appends the body (plus a newline) to one file and fsyncs once per request, under
// a mutex, before answering: durability without group commit.
type fsyncHandler struct {
	mu sync.Mutex
	f  *os.File
}

func (h *fsyncHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	body = append(body, '\n')
	h.mu.Lock()
	_, err = h.f.Write(body)
	if err == nil {
		err = h.f.Sync()
	}
	h.mu.Unlock()
	if err != nil {
		http.Error(w, "write: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeOK(w)
}

// groupCommit is the floor of any durable answer: it appends each body to one file and answers
// once a commit (one write and one fdatasync for everything waiting) holds it, the first commit
// of a wave starting window after its first request. No parsing, verification, dedup or upload:
// what the archiver costs above it is its own work, what it costs above bare is durability's.
type groupCommit struct {
	f      *os.File
	window time.Duration
	kick   chan struct{}
	quit   chan struct{}

	mu   sync.Mutex
	buf  []byte        // the next commit's bodies
	done chan struct{} // closed when the next commit is done; its outcome is then in *errv
	errv *error
}

func newGroupCommit(f *os.File, window time.Duration) *groupCommit {
	g := &groupCommit{f: f, window: window, kick: make(chan struct{}, 1), quit: make(chan struct{})}
	g.done, g.errv = make(chan struct{}), new(error)
	go g.run()
	return g
}

func (g *groupCommit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	g.buf = append(append(g.buf, body...), '\n')
	done, errv := g.done, g.errv
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
	<-done
	if *errv != nil {
		http.Error(w, "write: "+(*errv).Error(), http.StatusServiceUnavailable)
		return
	}
	writeOK(w)
}

func (g *groupCommit) run() {
	for {
		select {
		case <-g.quit:
			return
		case <-g.kick:
		}
		if g.window > 0 {
			time.Sleep(g.window)
		}
		g.mu.Lock()
		buf, done, errv := g.buf, g.done, g.errv
		g.buf, g.done, g.errv = nil, make(chan struct{}), new(error)
		g.mu.Unlock()
		_, err := g.f.Write(buf)
		if err == nil {
			err = fsutil.SyncData(g.f)
		}
		*errv = err
		close(done)
	}
}

func (g *groupCommit) close() { close(g.quit) }

// naiveHandler is what people write by hand: decode the event, PutObject it, answer. One
// object per event, the sender held for a whole S3 round trip.
type naiveHandler struct {
	mc     *minio.Client
	bucket string
	prefix string
}

func newNaiveHandler(endpoint, bucket, prefix string) (*naiveHandler, error) {
	if endpoint == "" || bucket == "" {
		return nil, errors.New("--s3-endpoint and --bucket are required")
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--s3-endpoint %q is not a URL like http://127.0.0.1:7070", endpoint)
	}
	ak, sk := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if ak == "" || sk == "" {
		return nil, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
	}
	// A transport with enough idle connections for the 32 concurrent handlers, so the baseline
	// is not handicapped by connection churn (minio-go's default keeps 16 per host).
	tr, err := minio.DefaultTransport(u.Scheme == "https")
	if err != nil {
		return nil, err
	}
	tr.MaxIdleConnsPerHost = 256
	mc, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(ak, sk, ""),
		Secure:    u.Scheme == "https",
		Region:    "us-east-1",
		Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client: %w", err)
	}
	return &naiveHandler{mc: mc, bucket: bucket, prefix: strings.Trim(prefix, "/")}, nil
}

func (h *naiveHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var ev struct {
		Domain, App, Stream, Event string
		PublishTimestamp           string `json:"publish_timestamp"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.Stream == "" {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	key := fmt.Sprintf("%s/dt=%s/%s/%s/%s-%s-%s.json", h.prefix, time.Now().UTC().Format("2006-01-02"),
		ev.Domain, ev.App, ev.Stream, ev.Event, ev.PublishTimestamp)
	_, err = h.mc.PutObject(r.Context(), h.bucket, key, bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "application/json"})
	if err != nil {
		http.Error(w, "store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeOK(w)
}
