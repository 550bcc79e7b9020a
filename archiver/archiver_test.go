package main

// Subprocess tests: the real archiver binary against a real VersityGW, killed and restarted.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
	lproc "github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

// binary is the archiver built once for every subprocess test (it needs only Go).
var binary string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "archiver-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		root, err := devenv.RepoRoot()
		if err == nil {
			var bins devenv.Binaries
			bins, err = devenv.Build(context.Background(), root, dir, "", "archiver")
			binary = bins.Archiver
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "building the archiver: %v\n", err)
			return 1
		}
		defer versitygw.StopShared()
		return m.Run()
	}())
}

// proc is a running `archiver serve`, run by devenv: its own process group, stdout and stderr in
// a log file, the address taken from its "listening on" line.
type proc struct {
	t   *testing.T
	p   *lproc.Process
	url string
}

// serve starts the binary with args (plus --listen 127.0.0.1:0) in dir and waits for its address;
// gw (nil for a file store) gives it the S3 credentials.
func serve(t *testing.T, gw *versitygw.Server, dir string, args ...string) *proc {
	t.Helper()
	denv, err := devenv.NewEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = denv.Close() }) // stops it if the test did not; a killed one is expected
	if !containsArg(args, "--keys") && !containsArg(args, "--allow-unsigned") {
		// Tests about durability, not trust: accept unsigned callbacks.
		args = append(args, "--allow-unsigned")
	}
	var env []string
	if gw != nil {
		env = gw.Env()
	}
	dp, err := denv.Start(context.Background(), lproc.Spec{
		Name: "archiver", Path: binary, Dir: dir, Env: env,
		Args:          append([]string{"serve", "--listen", "127.0.0.1:0"}, args...),
		WaitListening: true,
		StopTimeout:   60 * time.Second, // hang guard for terminate
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("archiver log:\n%s", dp.LogTail(200))
		}
	})
	return &proc{t: t, p: dp, url: dp.URL}
}

func containsArg(args []string, a string) bool {
	for _, x := range args {
		if x == a || strings.HasPrefix(x, a+"=") {
			return true
		}
	}
	return false
}

// Logs returns the archiver's log lines so far.
func (p *proc) Logs() []string {
	b, err := os.ReadFile(p.p.LogPath())
	if err != nil {
		p.t.Fatalf("archiver log: %v", err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// terminate sends SIGTERM and returns the exit code and how long the exit took.
func (p *proc) terminate() (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.p.Shutdown(); errors.Is(err, lproc.ErrKilled) {
		p.t.Fatalf("archiver did not exit after SIGTERM: %v\n%s", err, p.p.LogTail(50))
	}
	return p.p.ExitCode(), time.Since(start)
}

// kill SIGKILLs it, like a crash.
func (p *proc) kill() { _ = p.p.Kill() }

// loadThenKill posts distinct events from senders goroutines for d, SIGKILLs p while they post, and
// adds the body of every event answered 200 to acked (by event_id).
func loadThenKill(p *proc, senders int, d time.Duration, stream func(sender int) string, acked map[string][]byte) {
	var mu sync.Mutex
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				body := archivetest.Event("load.example.com", stream(g), "PUBLISH", int64(i))
				r, err := archivetest.TryPost(p.url+"/callback", body)
				if err != nil {
					return // the process is gone
				}
				if r.Status == 200 {
					mu.Lock()
					acked[r.Body["event_id"].(string)] = body
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(d)
	p.kill()
	stop.Store(true)
	wg.Wait()
}

func s3Args(gw *versitygw.Server, bucket string) []string {
	return []string{"--store", "s3://" + bucket + "/a/", "--s3-endpoint", gw.Endpoint}
}

// TestKill9UnderLoadLosesNothing: every event answered 200 before a SIGKILL is in the store
// exactly once after a restart; no event is stored twice.
func TestKill9UnderLoadLosesNothing(t *testing.T) {
	t.Parallel()
	gw := versitygw.Shared(t)
	bucket := gw.BucketT(t)
	spool := t.TempDir()
	args := append(s3Args(gw, bucket), "--spool", spool, "--flush-interval", "300ms", "--flush-bytes", "32KiB")
	p := serve(t, gw, t.TempDir(), args...)

	acked := map[string][]byte{} // event_id -> body
	loadThenKill(p, 8, 2*time.Second, func(g int) string { return fmt.Sprintf("g%d", g) }, acked)
	if len(acked) < 100 {
		t.Fatalf("only %d events acknowledged before the kill", len(acked))
	}

	p2 := serve(t, gw, t.TempDir(), args...)
	// Under load the active segment always holds events at the kill: the restart recovers it.
	if logs := strings.Join(p2.Logs(), "\n"); !strings.Contains(logs, "recovered spool segments") {
		t.Errorf("the restart did not recover spool segments:\n%s", logs)
	}
	// Redeliveries of acknowledged events after the crash are recognised.
	n := 0
	for id, body := range acked {
		if n++; n > 20 {
			break
		}
		if r := archivetest.Post(t, p2.url+"/callback", body); r.Status != 200 || r.Body["status"] != "duplicate" {
			t.Fatalf("redelivery of %s after the crash: %d %s", id, r.Status, r.Raw)
		}
	}
	if code, _ := p2.terminate(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	store := archivetest.S3Store(t, gw, bucket, "a/")
	count := map[string]int{}
	for _, ev := range archivetest.ReadToday(t, store) {
		count[ev.Archive.EventID]++
	}
	for id, c := range count {
		if c != 1 {
			t.Errorf("event %s stored %d times", id, c)
		}
	}
	for id := range acked {
		if count[id] != 1 {
			t.Errorf("acknowledged event %s stored %d times", id, count[id])
		}
	}
	t.Logf("%d acknowledged before SIGKILL, %d in the store", len(acked), len(count))
	if segs, _ := filepath.Glob(filepath.Join(spool, "seg-*")); len(segs) != 0 {
		t.Errorf("spool not drained after shutdown: %v", segs)
	}
}

func TestSIGTERMFlushesAndExits(t *testing.T) {
	t.Parallel()
	gw := versitygw.Shared(t)
	bucket := gw.BucketT(t)
	spool := t.TempDir()
	p := serve(t, gw, t.TempDir(), append(s3Args(gw, bucket), "--spool", spool, "--flush-interval", "1h")...)
	for i := range 20 {
		if r := archivetest.Post(t, p.url+"/callback", archivetest.Event("d.example.com", "s", "PUBLISH", int64(i))); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
	}
	code, took := p.terminate()
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	t.Logf("SIGTERM to exit: %s", took)
	if got := len(archivetest.ReadToday(t, archivetest.S3Store(t, gw, bucket, "a/"))); got != 20 {
		t.Fatalf("read back %d, want 20", got)
	}
	if segs, _ := filepath.Glob(filepath.Join(spool, "seg-*")); len(segs) != 0 {
		t.Errorf("spool not drained: %v", segs)
	}
}

// TestEventsCommandReadsSamplesBack: `archiver events` prints every sample field for field.
func TestEventsCommandReadsSamplesBack(t *testing.T) {
	t.Parallel()
	gw := versitygw.Shared(t)
	bucket := gw.BucketT(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	os.WriteFile(keys, []byte(`{"push.example.com":"`+archivetest.SampleKey+`"}`), 0o600)
	p := serve(t, gw, dir, append(s3Args(gw, bucket), "--spool", filepath.Join(dir, "spool"), "--keys", keys, "--allow-unsigned", "--signature-window", "0", "--gzip=false")...)
	sent := map[string][]byte{}
	for _, name := range archivetest.SampleNames(t) {
		body := archivetest.Sample(t, name)
		if !strings.HasPrefix(name, "signed") {
			body = bytes.Replace(body, []byte("push.example.com"), []byte("open.example.com"), 1)
		}
		r := archivetest.Post(t, p.url+"/callback", body)
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Raw)
		}
		sent[r.Body["event_id"].(string)] = body
	}
	tampered := bytes.Replace(archivetest.Sample(t, "signed-publish.json"), []byte(`"live"`), []byte(`"live2"`), 1)
	if r := archivetest.Post(t, p.url+"/callback", tampered); r.Status != 401 {
		t.Fatalf("tampered: %d %s", r.Status, r.Raw)
	}
	if code, _ := p.terminate(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, l := range p.Logs() {
		if strings.Contains(l, archivetest.SampleKey) || strings.Contains(l, "fa5addca9ea94589") {
			t.Errorf("a key or signature was logged: %s", l)
		}
	}
	from, to := archivetest.Today()
	run := func(extra ...string) []map[string]json.RawMessage {
		cmd := exec.Command(binary, append([]string{"events", "--store", "s3://" + bucket + "/a/", "--s3-endpoint", gw.Endpoint, "--from", from, "--to", to}, extra...)...)
		cmd.Env = append(os.Environ(), gw.Env()...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("archiver events: %v\n%s", err, errb.String())
		}
		var lines []map[string]json.RawMessage
		for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatalf("events output line %q: %v", l, err)
			}
			// The line itself must equal the body as received plus the archive field.
			var a layout.Archive
			json.Unmarshal(m["archive"], &a)
			body, ok := sent[a.EventID]
			if !ok {
				t.Fatalf("unexpected event %s", l)
			}
			if got, want := archivetest.StripArchive(t, l), archivetest.Compact(t, body); !bytes.Equal(got, want) {
				t.Errorf("fields changed:\n got  %s\n want %s", got, want)
			}
			wantSig := "none"
			if bytes.Contains(body, []byte("auth_sign")) {
				wantSig = "verified"
			}
			if a.Signature != wantSig || a.Instance == "" || a.PublishTime == nil || a.ReceivedAt.IsZero() {
				t.Errorf("archive field %+v", a)
			}
			lines = append(lines, m)
		}
		return lines
	}
	if got := run(); len(got) != len(sent) {
		t.Fatalf("archiver events printed %d events, want %d", len(got), len(sent))
	}
	if got := run("--domain", "push.example.com", "--event", "PUBLISH_DONE"); len(got) != 1 {
		t.Fatalf("filtered: %d events, want 1", len(got))
	}
	// The seed's quirky publish_timestamp is kept raw.
	found := false
	for _, m := range run("--domain", "open.example.com") {
		found = found || string(m["publish_timestamp"]) == `"1587954134,"`
	}
	if !found {
		t.Error(`publish_timestamp "1587954134," not kept raw`)
	}
}

func TestNoStoreWritesToLocalArchive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, nil, dir)
	if first := p.Logs()[0]; !strings.Contains(first, "./archive") {
		t.Fatalf("first log line does not say where the archive goes: %s", first)
	}
	r := archivetest.Post(t, p.url+"/callback", archivetest.Sample(t, "seed-example.json"))
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if code, _ := p.terminate(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	objs, _ := filepath.Glob(filepath.Join(dir, "archive", "dt=*", "*.jsonl.gz"))
	if len(objs) != 1 {
		t.Fatalf("objects under ./archive: %v", objs)
	}
}

func TestSIGHUPReloadsKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	os.WriteFile(keys, []byte(`{"push.example.com":"`+archivetest.SampleKey+`"}`), 0o600)
	p := serve(t, nil, dir, "--store", "file://"+filepath.Join(dir, "archive"), "--keys", keys, "--signature-window", "0")
	if r := archivetest.Post(t, p.url+"/callback", archivetest.Sample(t, "signed-publish.json")); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	os.WriteFile(keys, []byte(`{"push.example.com":"rotated-key-0000"}`), 0o600)
	if err := syscall.Kill(p.p.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	archivetest.Eventually(t, 10*time.Second, "the reload to be logged", func() bool {
		return strings.Contains(strings.Join(p.Logs(), "\n"), "reloaded --keys")
	})
	if r := archivetest.Post(t, p.url+"/callback", archivetest.Sample(t, "signed-publish_done.json")); r.Status != 401 {
		t.Fatalf("old signature after key rotation: %d %s", r.Status, r.Raw)
	}
	if code, _ := p.terminate(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, l := range p.Logs() {
		if strings.Contains(l, "rotated-key-0000") || strings.Contains(l, archivetest.SampleKey) {
			t.Errorf("a key was logged: %s", l)
		}
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(context.Background(), nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "serve") {
		t.Errorf("no command: %d %q", code, errb.String())
	}
	if code := run(context.Background(), []string{"bogus"}, io.Discard, &errb); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
	if code := run(context.Background(), []string{"serve", "--ack", "nope"}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "--ack") {
		t.Errorf("bad flag: %d %q", code, errb.String())
	}
	for _, v := range []string{"version", "--version"} {
		out.Reset()
		if code := run(context.Background(), []string{v}, &out, io.Discard); code != 0 || out.String() != "archiver "+version+"\n" {
			t.Errorf("%s: %d %q", v, code, out.String())
		}
	}
}

// TestAdminPortAndSIGHUPReloadsTLS: the binary serves /metrics and /readyz on --admin-listen only
// (with its build info), and SIGHUP swaps the TLS certificate; a broken one is logged and the old
// one kept.
func TestAdminPortAndSIGHUPReloadsTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	write := func(cert, key []byte) {
		t.Helper()
		if err := os.WriteFile(certFile, cert, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(archivetest.SelfSignedCert(t, "first.test"))
	admin, err := lproc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p := serve(t, nil, dir, "--store", "file://"+filepath.Join(dir, "archive"), "--admin-listen", admin,
		"--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("callback URL %s", p.url)
	}
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", strings.TrimPrefix(p.url, "https://"), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads which certificate is served
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test certificate
	for path, want := range map[string]int{"/metrics": 404, "/readyz": 404, "/healthz": 200} {
		resp, err := insecure.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("callback port %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "livehook_archiver_build_info{") {
		t.Fatalf("admin /metrics: %d\n%s", resp.StatusCode, body)
	}

	if cn := served(); cn != "first.test" {
		t.Fatalf("serving %q", cn)
	}
	hup := func(logged string) {
		t.Helper()
		if err := syscall.Kill(p.p.PID(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		archivetest.Eventually(t, 10*time.Second, logged, func() bool { return strings.Contains(strings.Join(p.Logs(), "\n"), logged) })
	}
	write(archivetest.SelfSignedCert(t, "second.test"))
	hup("reloaded the TLS certificate")
	if cn := served(); cn != "second.test" {
		t.Fatalf("after SIGHUP serving %q, want second.test", cn)
	}
	write([]byte("not a certificate"), []byte("not a key"))
	hup("keeping the previous certificate")
	if cn := served(); cn != "second.test" {
		t.Fatalf("after a broken reload serving %q, want the previous second.test", cn)
	}
	if code, _ := p.terminate(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
