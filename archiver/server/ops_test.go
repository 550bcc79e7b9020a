package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

// opsConfig is fileConfig accepting unsigned callbacks.
func opsConfig(t *testing.T) server.Config {
	c := fileConfig(t)
	c.AllowUnsigned = true
	return c
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminListener: with --admin-listen, /metrics and /readyz are served there and not on the
// callback port, which serves /callback and /healthz only; the admin port serves no callbacks.
func TestAdminListener(t *testing.T) {
	t.Parallel()
	c := opsConfig(t)
	c.AdminListen = "127.0.0.1:0"
	s := start(t, c)
	if s.AdminURL() == "" || s.AdminURL() == s.URL() {
		t.Fatalf("admin URL %q, callback URL %q", s.AdminURL(), s.URL())
	}
	for _, tc := range []struct {
		url  string
		want int
	}{
		{s.URL() + "/metrics", 404},
		{s.URL() + "/readyz", 404},
		{s.URL() + "/healthz", 200},
		{s.AdminURL() + "/metrics", 200},
		{s.AdminURL() + "/readyz", 200},
		{s.AdminURL() + "/healthz", 200},
		{s.AdminURL() + "/callback", 404},
	} {
		if code, body := get(t, tc.url); code != tc.want {
			t.Errorf("GET %s: %d %s, want %d", tc.url, code, body, tc.want)
		}
	}
	if r := archivetest.Post(t, s.AdminURL()+"/callback", archivetest.Sample(t, "unsigned-publish.json")); r.Status != 404 {
		t.Errorf("POST admin /callback: %d, want 404", r.Status)
	}
	if r := archivetest.Post(t, s.URL()+"/callback", archivetest.Sample(t, "unsigned-publish.json")); r.Status != 200 {
		t.Errorf("POST /callback: %d %s", r.Status, r.Raw)
	}
	_, m := get(t, s.AdminURL()+"/metrics")
	for _, want := range []string{"livehook_archiver_build_info{", `goversion="go`, "livehook_archiver_accepted_total 1",
		"livehook_archiver_ready 1", "livehook_archiver_degraded 0", "livehook_archiver_digest_enabled 0"} {
		if !strings.Contains(m, want) {
			t.Errorf("admin /metrics lacks %q", want)
		}
	}
}

// TestAdminListenBoundBeforeCallbacks: a --admin-listen address that cannot be bound fails Start
// before the callback listener serves: no callback is acknowledged by a process that then exits.
func TestAdminListenBoundBeforeCallbacks(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	c := opsConfig(t)
	c.Listen, c.AdminListen = addr, busy.Addr().String()
	s, err := server.New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "--admin-listen") {
		t.Fatalf("Start with a busy admin address: %v, want an --admin-listen error", err)
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("the callback listener %s accepts connections after Start failed on --admin-listen", addr)
	}
}

// TestAdminListenerFlags: --admin-listen parses, and the same fixed address as --listen is refused.
func TestAdminListenerFlags(t *testing.T) {
	t.Parallel()
	c, err := server.ParseFlags([]string{"--allow-unsigned", "--admin-listen", ":9090"}, io.Discard)
	if err != nil || c.AdminListen != ":9090" || !c.StoreProbe {
		t.Fatalf("parsed %q probe=%v err=%v", c.AdminListen, c.StoreProbe, err)
	}
	_, err = server.ParseFlags([]string{"--allow-unsigned", "--listen", ":8080", "--admin-listen", ":8080"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--admin-listen") {
		t.Fatalf("same address: %v", err)
	}
}

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestDebugLogAndDomainMetrics: at debug level each accepted callback is one log line with domain,
// app, stream, event and event_id, never the signature or the key; accepted callbacks are counted
// per configured domain, every other domain as "other"; and a rejected callback logs no accept.
func TestDebugLogAndDomainMetrics(t *testing.T) {
	t.Parallel()
	c := opsConfig(t)
	keys := filepath.Join(t.TempDir(), "keys.json")
	os.WriteFile(keys, []byte(`{"push.example.com":"`+archivetest.SampleKey+`"}`), 0o600)
	c.Keys = keys
	c.Now = (&fakeClock{t: archivetest.SampleSignTime}).Now
	var logs syncBuffer
	c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := start(t, c)
	signed := archivetest.Sample(t, "signed-publish.json")
	if r := archivetest.Post(t, s.URL()+"/callback", signed); r.Status != 200 {
		t.Fatalf("signed: %d %s", r.Status, r.Raw)
	}
	for i := range 3 { // unsigned, unnamed domains: one "other" series, not three
		if r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("x"+string(rune('a'+i))+".example.org", "s", "PUBLISH", 1_700_000_000)); r.Status != 200 {
			t.Fatalf("unsigned: %d %s", r.Status, r.Raw)
		}
	}
	var sig struct {
		AuthSign string `json:"auth_sign"`
	}
	json.Unmarshal(signed, &sig)
	forged := bytes.Replace(signed, []byte(sig.AuthSign), []byte(strings.Repeat("0", len(sig.AuthSign))), 1)
	if r := archivetest.Post(t, s.URL()+"/callback", forged); r.Status != 401 {
		t.Fatalf("forged: %d", r.Status)
	}

	var accepted []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "accepted callback" {
			accepted = append(accepted, m)
		}
	}
	if len(accepted) != 4 {
		t.Fatalf("%d accepted-callback lines, want 4:\n%s", len(accepted), logs.String())
	}
	first := accepted[0]
	for k, want := range map[string]string{"domain": "push.example.com", "app": "live", "stream": "example_stream", "event": "PUBLISH"} {
		if first[k] != want {
			t.Errorf("log %s = %v, want %s", k, first[k], want)
		}
	}
	if id, _ := first["event_id"].(string); len(id) != 32 {
		t.Errorf("log event_id %q", id)
	}
	for _, secret := range []string{sig.AuthSign, archivetest.SampleKey, strings.Repeat("0", len(sig.AuthSign))} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds a signature or key %q", secret)
		}
	}
	_, m := get(t, s.URL()+"/metrics")
	for _, want := range []string{
		`livehook_archiver_domain_accepted_total{domain="push.example.com"} 1`,
		`livehook_archiver_domain_accepted_total{domain="other"} 3`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(m, "example.org") {
		t.Errorf("an unnamed domain became a label:\n%s", m)
	}
}

// TestTLSReload: SIGHUP's reload serves the new certificate to new connections; a broken pair is
// refused with a logged error and the certificate in use stays.
func TestTLSReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := opsConfig(t)
	c.TLSCert, c.TLSKey = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c.AdminListen = "127.0.0.1:0" // plain HTTP, for /metrics
	var logs syncBuffer
	c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cert1, key1 := archivetest.SelfSignedCert(t, "first.test")
	writePair(t, c, cert1, key1)
	s := start(t, c)
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test reads which certificate is served
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := served(); cn != "first.test" {
		t.Fatalf("serving %q before reload", cn)
	}
	cert2, key2 := archivetest.SelfSignedCert(t, "second.test")
	writePair(t, c, cert2, key2)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := served(); cn != "second.test" {
		t.Fatalf("serving %q after reload, want second.test", cn)
	}
	for name, pair := range map[string][2][]byte{
		"garbage":      {[]byte("not a certificate"), key2},
		"key mismatch": {cert1, key2},
	} {
		writePair(t, c, pair[0], pair[1])
		err := s.Reload()
		if err == nil || !strings.Contains(err.Error(), "--tls-cert") {
			t.Errorf("%s: reload error %v, want one naming --tls-cert", name, err)
		}
		if cn := served(); cn != "second.test" {
			t.Errorf("%s: serving %q, want the previous certificate kept", name, cn)
		}
	}
	if !strings.Contains(logs.String(), "keeping the previous certificate") {
		t.Errorf("no log line says the old certificate stays:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Error("the log holds key material")
	}
	_, m := get(t, s.AdminURL()+"/metrics")
	for _, want := range []string{`livehook_archiver_reload_failures_total{file="tls"} 2`, "livehook_archiver_tls_cert_not_after_timestamp_seconds "} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func writePair(t *testing.T, c server.Config, cert, key []byte) {
	t.Helper()
	if err := os.WriteFile(c.TLSCert, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.TLSKey, key, 0o600); err != nil {
		t.Fatal(err)
	}
}

// stripProxy is a reverse proxy to gw that drops If-None-Match, as a store (or a gateway in front
// of one) that ignores conditional creates does. The header is signed, so the proxy re-signs the
// request with gw's credentials, as a signing gateway would.
func stripProxy(t *testing.T, gw *versitygw.Server) string {
	t.Helper()
	u, err := url.Parse(gw.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host // what the client signed
		if pr.Out.Header.Get("If-None-Match") == "" {
			return
		}
		pr.Out.Header.Del("If-None-Match")
		pr.Out.Header.Del("Authorization")
		pr.Out.Header = signer.SignV4(*pr.Out, gw.AccessKey, gw.SecretKey, "", versitygw.Region).Header
	}}
	return listen(t, rp)
}

// listen serves h on a free 127.0.0.1 port until the test ends.
func listen(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestStoreProbe: serve refuses to start on a store that accepts a second conditional create of
// one name (VersityGW behind a proxy that strips If-None-Match), saying what to do; it starts
// with --store-probe=false, and on VersityGW itself, leaving no probe object behind.
func TestStoreProbe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.config(t)
	c.S3Endpoint = stripProxy(t, e.gw)
	_, err := server.New(context.Background(), c)
	if err == nil {
		t.Fatal("started on a store that overwrites")
	}
	for _, want := range []string{"If-None-Match", "--store-probe=false", "_probe/"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), e.gw.SecretKey) {
		t.Error("the error holds the S3 secret")
	}
	if strings.Contains(err.Error(), "OBS") {
		t.Errorf("the error names OBS among stores that answer 412, which OBS's documentation does not confirm (object-storage guide): %v", err)
	}

	c.StoreProbe = false
	c.Spool = t.TempDir()
	s := start(t, c)
	stop(t, s)

	c = e.config(t)
	s = start(t, c)
	stop(t, s)
	if keys := archivetest.Keys(t, e.store, "_probe/"); len(keys) != 0 {
		t.Errorf("probe objects left behind: %v", keys)
	}
}

// TestStoreProbeFileStore: the file store passes the probe (exclusive create).
func TestStoreProbeFileStore(t *testing.T) {
	t.Parallel()
	s := start(t, opsConfig(t))
	stop(t, s)
}

// TestDigestMetrics: digests written and failed are counted with the time of the last success: a
// store refusing digest writes (500 on _digests/, through a proxy in front of VersityGW) counts
// failures and leaves the last-success time alone; once it takes them, writes are counted.
func TestDigestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	u, _ := url.Parse(e.gw.Endpoint)
	var refuse atomic.Bool
	refuse.Store(true)
	rp := httputil.NewSingleHostReverseProxy(u)
	endpoint := listen(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/_digests/") {
			http.Error(w, "<Error><Code>InternalError</Code><Message>injected</Message></Error>", http.StatusInternalServerError)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	kf, _ := digestKeyFile(t)
	c := e.config(t)
	c.S3Endpoint = endpoint
	c.Digest.Key, c.Digest.Interval = kf, 100*time.Millisecond
	s := start(t, c)
	m := s.Metrics()
	archivetest.Eventually(t, 20*time.Second, "a failed digest write", func() bool { return m.DigestFailures.Value() > 0 })
	if m.DigestsWritten.Value() != 0 || m.LastDigest.Value() != 0 {
		t.Fatalf("written %d, last %v while every digest write fails", m.DigestsWritten.Value(), m.LastDigest.Value())
	}
	refuse.Store(false)
	before := float64(time.Now().Unix())
	archivetest.Eventually(t, 20*time.Second, "a digest written", func() bool { return m.DigestsWritten.Value() > 0 })
	if last := m.LastDigest.Value(); last < before-1 {
		t.Errorf("last digest time %v, want >= %v", last, before)
	}
	_, body := get(t, s.URL()+"/metrics")
	for _, want := range []string{"livehook_archiver_digests_written_total ", "livehook_archiver_digest_failures_total ", "livehook_archiver_last_digest_timestamp_seconds ", "livehook_archiver_digest_enabled 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestLastUploadMetric: storing an object sets the last-upload time.
func TestLastUploadMetric(t *testing.T) {
	t.Parallel()
	c := opsConfig(t)
	c.FlushInterval = 20 * time.Millisecond
	s := start(t, c)
	if v := s.Metrics().LastUpload.Value(); v != 0 {
		t.Fatalf("last upload %v before any", v)
	}
	before := float64(time.Now().Unix())
	archivetest.Post(t, s.URL()+"/callback", archivetest.Sample(t, "unsigned-publish.json"))
	archivetest.Eventually(t, 10*time.Second, "an upload", func() bool { return s.Metrics().LastUpload.Value() >= before })
}
