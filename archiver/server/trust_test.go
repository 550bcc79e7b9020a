package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/intake"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/internal/callback"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

// fileConfig is an archiver on a local file store (no S3 needed).
func fileConfig(t *testing.T) server.Config {
	c := server.DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.Store = "file://" + filepath.Join(t.TempDir(), "archive")
	c.Spool = filepath.Join(t.TempDir(), "spool")
	c.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return c
}

func writeKeys(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestSecureByDefaultFlags(t *testing.T) {
	t.Parallel()
	keys := filepath.Join(t.TempDir(), "keys.json")
	writeKeys(t, keys, `{"push.example.com":"k"}`, 0o600)
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"neither --keys nor --allow-unsigned", nil, "refusing to start without --keys FILE or --allow-unsigned"},
		{"--keys", []string{"--keys", keys}, ""},
		{"--allow-unsigned", []string{"--allow-unsigned"}, ""},
		{"both", []string{"--keys", keys, "--allow-unsigned"}, ""},
		{"negative max connections", []string{"--allow-unsigned", "--max-connections", "-1"}, "--max-connections"},
		{"negative dedup cap", []string{"--allow-unsigned", "--dedup-max-entries", "-5"}, "--dedup-max-entries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := server.ParseFlags(tc.args, io.Discard)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.MaxConnections != server.DefaultMaxConnections || c.DedupMaxEntries <= 0 {
					t.Fatalf("defaults %d %d", c.MaxConnections, c.DedupMaxEntries)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line with %q", err, tc.err)
			}
		})
	}
	// archiver serve: exit 2 and one line naming both flags and what they mean.
	var out, errb bytes.Buffer
	if code := server.Run(context.Background(), []string{"--listen", "127.0.0.1:0"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	msg := errb.String()
	if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "--keys FILE") || !strings.Contains(msg, "--allow-unsigned") || !strings.Contains(msg, "403") {
		t.Fatalf("message %q", msg)
	}
}

// Key rotation: a list of keys verifies with any of them; a keys file readable by others is
// refused at start and on reload (the old keys stay).
func TestKeyRotationAndPermissions(t *testing.T) {
	t.Parallel()
	const newKey, oldKey = "new-key-0123456789abcdef01234567", "old-key-0123456789abcdef01234567"
	keys := filepath.Join(t.TempDir(), "keys.json")
	c := fileConfig(t)
	c.Keys = keys
	c.SignatureWindow = time.Minute

	writeKeys(t, keys, `{"push.example.com":"`+oldKey+`"}`, 0o644)
	if _, err := server.New(context.Background(), c); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("start with a 0644 keys file: %v, want a chmod 600 message", err)
	}
	writeKeys(t, keys, `{"push.example.com":["`+newKey+`","`+oldKey+`"]}`, 0o600)
	s := start(t, c)
	n := 0
	send := func(key string) int {
		n++
		ts := time.Now().Unix()
		stream := "s" + strconv.Itoa(n)
		body := fmt.Sprintf(`{"domain":"push.example.com","app":"live","stream":%q,"event":"PUBLISH","publish_timestamp":"%d","auth_timestamp":%d,"auth_sign":%q}`,
			stream, ts, ts, callback.Sign(key, "PUBLISH", "push.example.com", "live", stream, ts))
		return archivetest.Post(t, s.URL()+"/callback", []byte(body)).Status
	}
	if a, b := send(newKey), send(oldKey); a != 200 || b != 200 {
		t.Fatalf("during rotation: new key %d, old key %d; want 200 both", a, b)
	}
	// A reload of a file others can read is refused; the rotation keys stay.
	writeKeys(t, keys, `{"push.example.com":"`+newKey+`"}`, 0o640)
	if err := s.ReloadKeys(); err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), newKey) {
		t.Fatalf("reload of a 0640 file: %v", err)
	}
	if b := send(oldKey); b != 200 {
		t.Fatalf("old key after a refused reload: %d, want 200", b)
	}
	// The rotation ends: the old key goes.
	if err := os.Chmod(keys, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	if a, b := send(newKey), send(oldKey); a != 200 || b != 401 {
		t.Fatalf("after the rotation: new key %d, old key %d; want 200, 401", a, b)
	}
}

// Hundreds of stalled connections (headers never finished, or a body announced in full and never
// sent) neither delay a real callback nor cost their announced Content-Length in memory.
//
// Not parallel: it measures the heap, which other tests would disturb.
func TestStalledConnections(t *testing.T) {
	c := fileConfig(t)
	c.AllowUnsigned = true
	s := start(t, c)
	addr := s.Addr()

	const stalledBodies, stalledHeaders = 300, 200
	var conns []net.Conn
	t.Cleanup(func() {
		for _, cn := range conns {
			cn.Close()
		}
	})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < stalledBodies+stalledHeaders; i++ {
		cn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn)
		if i < stalledBodies {
			fmt.Fprintf(cn, "POST /callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"domain\":", server.DefaultConfig().MaxBody)
		} else {
			fmt.Fprintf(cn, "POST /callback HTTP/1.1\r\nHost: x\r\nContent-Le")
		}
	}
	// Let the server read what the stalled clients sent.
	archivetest.Eventually(t, 10*time.Second, "all stalled connections accepted", func() bool {
		return strings.Contains(metricsText(t, s.URL()), "livehook_archiver_connections_open "+strconv.Itoa(stalledBodies+stalledHeaders+1))
	})
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)

	start := time.Now()
	r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("open.example.com", "real", "PUBLISH", time.Now().Unix()))
	took := time.Since(start)
	if r.Status != 200 || took > 2*time.Second {
		t.Fatalf("real callback: %d after %s", r.Status, took)
	}
	grew := int64(during.HeapInuse) - int64(before.HeapInuse)
	announced := int64(stalledBodies) * server.DefaultConfig().MaxBody
	t.Logf("%d stalled connections: heap in use grew %.1f MiB (announced bodies: %.1f MiB); real callback answered in %s",
		stalledBodies+stalledHeaders, float64(grew)/(1<<20), float64(announced)/(1<<20), took.Round(time.Millisecond))
	// Per connection the server needs its bufio reader and writer and the request state (a few
	// KiB each); a buffer sized by Content-Length would add 64 KiB per stalled body.
	if perConn := int64(24 << 10); grew > perConn*(stalledBodies+stalledHeaders) {
		t.Fatalf("heap grew %d bytes with %d stalled bodies: buffers sized by Content-Length", grew, stalledBodies)
	}
}

// --max-connections: past the cap (and as many again, answered 503), connections wait to be accepted.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	c := fileConfig(t)
	c.AllowUnsigned = true
	c.MaxConnections = 20
	s := start(t, c)
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, cn := range conns {
			cn.Close()
		}
	})
	for i := 0; i < 40; i++ {
		cn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		conns = append(conns, cn)
		mu.Unlock()
		fmt.Fprintf(cn, "POST /callback HTTP/1.1\r\nHost: x\r\n")
	}
	time.Sleep(300 * time.Millisecond)
	open := 0
	for _, ln := range strings.Split(metricsTextRaw(t, s), "\n") {
		if v, ok := strings.CutPrefix(ln, "livehook_archiver_connections_open "); ok {
			open, _ = strconv.Atoi(v)
		}
	}
	if open > 20 {
		t.Fatalf("%d connections open, cap 20", open)
	}
	// Closing the stalled ones frees the slots: a real callback gets through.
	mu.Lock()
	for _, cn := range conns {
		cn.Close()
	}
	conns = nil
	mu.Unlock()
	// A slot is free once the server has seen its connection close (until then a new connection
	// would be answered 503 at once, TestOverLimitConnectionAnswered503).
	archivetest.Eventually(t, 10*time.Second, "the stalled connections' slots freed", func() bool {
		return strings.Contains(metricsTextRaw(t, s), "livehook_archiver_connections_open 0\n")
	})
	r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("open.example.com", "real", "PUBLISH", time.Now().Unix()))
	if r.Status != 200 {
		t.Fatalf("after the stalled clients left: %d", r.Status)
	}
}

func metricsText(t *testing.T, url string) string {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricsTextRaw reads /metrics through the in-process handler (the listener may be full).
func metricsTextRaw(t *testing.T, s *server.Server) string {
	var b bytes.Buffer
	s.Metrics().Registry.WriteTo(&b)
	return b.String()
}

// --dedup-max-entries bounds the redelivery memory; evictions are counted in /metrics.
func TestDedupCapMetric(t *testing.T) {
	t.Parallel()
	c := fileConfig(t)
	c.AllowUnsigned = true
	c.DedupMaxEntries = 64
	s := start(t, c)
	for i := 0; i < 300; i++ {
		body := archivetest.Event("open.example.com", "s"+strconv.Itoa(i), "PUBLISH", time.Now().Unix())
		if r := archivetest.Post(t, s.URL()+"/callback", body); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
	}
	m := metricsText(t, s.URL())
	var entries, evicted int
	for _, ln := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(ln, "livehook_archiver_dedup_entries "); ok {
			entries, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(ln, "livehook_archiver_dedup_evicted_total "); ok {
			evicted, _ = strconv.Atoi(v)
		}
	}
	if entries > 128 || evicted < 300-128 {
		t.Fatalf("dedup_entries %d, dedup_evicted_total %d; want at most the cap (rounded per shard) and the rest evicted", entries, evicted)
	}
}

// Past --max-connections a connection is accepted only to be answered 503 + Retry-After and
// closed, at once: left in the accept queue it would wait for a slot past the sender's timeout.
func TestOverLimitConnectionAnswered503(t *testing.T) {
	t.Parallel()
	c := fileConfig(t)
	c.AllowUnsigned = true
	c.MaxConnections = 2
	s := start(t, c)
	var stalled []net.Conn
	t.Cleanup(func() {
		for _, cn := range stalled {
			cn.Close()
		}
	})
	for range 2 {
		cn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, cn)
		fmt.Fprintf(cn, "POST /callback HTTP/1.1\r\nHost: x\r\n")
	}
	archivetest.Eventually(t, 10*time.Second, "both stalled connections accepted", func() bool {
		return strings.Contains(metricsTextRaw(t, s), "livehook_archiver_connections_open 2\n")
	})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := client.Post(s.URL()+"/callback", "application/json",
		bytes.NewReader(archivetest.Event("open.example.com", "over", "PUBLISH", time.Now().Unix())))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !resp.Close || !strings.Contains(string(b), "--max-connections") {
		t.Fatalf("past the limit: %d Retry-After %q close %v: %s; want 503, Retry-After 1, the connection closed, a message naming --max-connections",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close, b)
	}
	if got := s.Metrics().Rejected.With(intake.ReasonOverloaded).Value(); got != 1 {
		t.Errorf("rejected{reason=overloaded} = %d, want 1", got)
	}
	for _, cn := range stalled {
		cn.Close()
	}
	stalled = nil
	archivetest.Eventually(t, 10*time.Second, "the stalled connections' slots freed", func() bool {
		return strings.Contains(metricsTextRaw(t, s), "livehook_archiver_connections_open 0\n")
	})
	if r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("open.example.com", "real", "PUBLISH", time.Now().Unix())); r.Status != 200 {
		t.Fatalf("with free slots: %d %s", r.Status, r.Raw)
	}
}

// At --max-connections, a new connection takes the slot of an idle kept-alive one (closed) rather
// than being refused: idle connections must not lock a sender's new ones out.
func TestIdleConnectionMakesRoom(t *testing.T) {
	t.Parallel()
	c := fileConfig(t)
	c.AllowUnsigned = true
	c.MaxConnections = 2
	s := start(t, c)
	var idle []net.Conn
	t.Cleanup(func() {
		for _, cn := range idle {
			cn.Close()
		}
	})
	for i := range 2 {
		cn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, cn)
		body := archivetest.Event("open.example.com", "idle-"+strconv.Itoa(i), "PUBLISH", time.Now().Unix())
		fmt.Fprintf(cn, "POST /callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		resp, err := http.ReadResponse(bufio.NewReader(cn), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("kept-alive request %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
	// Both slots are held by idle connections; a new sender gets through (retried only while the
	// server may not yet have marked the second one idle).
	archivetest.Eventually(t, 10*time.Second, "a new connection served with both slots held by idle ones", func() bool {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Post(s.URL()+"/callback", "application/json",
			bytes.NewReader(archivetest.Event("open.example.com", "new", "PUBLISH", time.Now().UnixNano())))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if !strings.Contains(metricsTextRaw(t, s), "livehook_archiver_connections_evicted_total 1\n") &&
		!strings.Contains(metricsTextRaw(t, s), "livehook_archiver_connections_evicted_total 2\n") {
		t.Fatalf("no eviction counted:\n%s", metricsTextRaw(t, s))
	}
}
