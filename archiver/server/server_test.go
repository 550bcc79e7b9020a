package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/callback"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

// TestMain stops the VersityGW that versitygw.Shared starts on first use (tests that do not stop
// their store share it, each with its own bucket); without versitygw those tests skip.
func TestMain(m *testing.M) {
	code := m.Run()
	versitygw.StopShared()
	os.Exit(code)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type env struct {
	gw     *versitygw.Server
	bucket string
	store  storage.Store
}

func newEnv(t *testing.T, gw *versitygw.Server) *env {
	t.Helper()
	if gw == nil {
		gw = versitygw.Shared(t)
	}
	b := gw.BucketT(t)
	return &env{gw: gw, bucket: b, store: archivetest.S3Store(t, gw, b, "archive/")}
}

// config is a test configuration writing to the env's bucket under archive/.
func (e *env) config(t *testing.T) server.Config {
	c := server.DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.Store = "s3://" + e.bucket + "/archive/"
	c.S3Endpoint = e.gw.Endpoint
	c.S3AccessKey, c.S3SecretKey = e.gw.AccessKey, e.gw.SecretKey
	c.Spool = t.TempDir()
	c.AllowUnsigned = true
	c.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// start runs an in-process archiver; it is shut down (flushed) at cleanup unless stopped before.
func start(t *testing.T, c server.Config) *server.Server {
	t.Helper()
	s, err := server.New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, s) })
	return s
}

func stop(t *testing.T, s *server.Server) {
	t.Helper()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestSamplesStoredAndReadBack(t *testing.T) {
	t.Parallel()
	for _, ack := range []string{server.AckSpool, server.AckStore} {
		t.Run(ack, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			keys := filepath.Join(t.TempDir(), "keys.json")
			os.WriteFile(keys, []byte(`{"push.example.com":"`+archivetest.SampleKey+`"}`), 0o600)
			c := e.config(t)
			c.Ack = ack
			c.Keys = keys
			c.SignatureWindow = 0 // the signed samples are from 2020
			s := start(t, c)
			sent := map[string][]byte{}
			for _, name := range archivetest.SampleNames(t) {
				body := archivetest.Sample(t, name)
				if strings.HasPrefix(name, "seed") || strings.HasPrefix(name, "unsigned") {
					// Unsigned bodies for a domain with a key are refused: send them for another domain.
					body = bytes.Replace(body, []byte("push.example.com"), []byte("unsigned.example.com"), 1)
				}
				r := archivetest.Post(t, s.URL()+"/callback", body)
				if r.Status != http.StatusOK || r.Body["status"] != "ok" {
					t.Fatalf("%s: %d %s", name, r.Status, r.Raw)
				}
				sent[r.Body["event_id"].(string)] = body
			}
			stop(t, s)
			events := archivetest.ReadToday(t, e.store)
			if len(events) != len(sent) {
				t.Fatalf("read back %d events, want %d", len(events), len(sent))
			}
			for _, ev := range events {
				body, ok := sent[ev.Archive.EventID]
				if !ok {
					t.Fatalf("unexpected event %s", ev.Raw)
				}
				checkRecord(t, ev, body, s.Instance())
			}
		})
	}
}

// checkRecord verifies an archived line field for field against the body that was sent.
func checkRecord(t *testing.T, ev readback.Event, body []byte, instance string) {
	t.Helper()
	// The callback's own fields: byte-identical to the compacted body (order, raw values such as
	// "1587954134," and unknown fields unchanged).
	if got, want := archivetest.StripArchive(t, ev.Raw), archivetest.Compact(t, body); !bytes.Equal(got, want) {
		t.Errorf("fields changed:\n got  %s\n want %s", got, want)
	}
	var m map[string]json.RawMessage
	json.Unmarshal(body, &m)
	str := func(k string) string { var s string; json.Unmarshal(m[k], &s); return s }
	pts := str("publish_timestamp")
	if want := layout.EventID(str("domain"), str("app"), str("stream"), str("event"), pts); ev.Archive.EventID != want {
		t.Errorf("event_id %s, want %s", ev.Archive.EventID, want)
	}
	wantSig := layout.SignatureNone
	if m["auth_sign"] != nil {
		wantSig = layout.SignatureVerified
	}
	if ev.Archive.Signature != wantSig {
		t.Errorf("signature %q, want %q", ev.Archive.Signature, wantSig)
	}
	if wantPT := layout.ParsePublishTimestamp(m["publish_timestamp"]); ev.Archive.PublishTime == nil || !ev.Archive.PublishTime.Equal(*wantPT) {
		t.Errorf("publish_time %v, want %v", ev.Archive.PublishTime, wantPT)
	}
	if ev.Archive.Instance != instance || !strings.HasPrefix(ev.Archive.RemoteAddr, "127.0.0.1:") {
		t.Errorf("instance %q remote_addr %q", ev.Archive.Instance, ev.Archive.RemoteAddr)
	}
	if time.Since(ev.Archive.ReceivedAt) > time.Minute || ev.Archive.ReceivedAt.Location() != time.UTC {
		t.Errorf("received_at %v", ev.Archive.ReceivedAt)
	}
	if ev.Domain != str("domain") || ev.Event != str("event") || ev.PublishTimestamp != pts {
		t.Errorf("read back domain/event/publish_timestamp %q %q %q", ev.Domain, ev.Event, ev.PublishTimestamp)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	keys := filepath.Join(t.TempDir(), "keys.json")
	os.WriteFile(keys, []byte(`{"push.example.com":"`+archivetest.SampleKey+`"}`), 0o600)
	clock := &fakeClock{t: archivetest.SampleSignTime.Add(time.Minute)}
	c := e.config(t)
	c.Keys = keys
	c.AllowDomains = []string{"push.example.com", "open.example.com"}
	c.MaxBody = 1024
	c.Now = clock.Now
	s := start(t, c)
	url := s.URL() + "/callback"
	signed := archivetest.Sample(t, "signed-publish.json")
	open := func(mod string) []byte {
		return []byte(`{"domain":"open.example.com","app":"live","stream":"s","publish_timestamp":"1",` + mod + `}`)
	}
	tests := []struct {
		name   string
		method string
		path   string
		body   []byte
		status int
		field  string
		reason string
	}{
		{"GET", http.MethodGet, "/callback", nil, 405, "", "method_not_allowed"},
		{"PUT below", http.MethodPut, "/callback/x/y", open(`"event":"PUBLISH"`), 405, "", "method_not_allowed"},
		{"too large", "", "", append(open(`"event":"PUBLISH","pad":"`), bytes.Repeat([]byte("x"), 2000)...), 413, "", "body_too_large"},
		{"array", "", "", []byte(`[1,2]`), 400, "", "not_json_object"},
		{"string", "", "", []byte(`"PUBLISH"`), 400, "", "not_json_object"},
		{"empty", "", "", nil, 400, "", "not_json_object"},
		{"invalid json", "", "", []byte(`{"domain":`), 400, "", "invalid_json"},
		{"invalid utf8", "", "", open("\"event\":\"PUBLISH\",\"x\":\"\xc3\x28\""), 400, "", "invalid_utf8"},
		{"missing domain", "", "", []byte(`{"app":"live","stream":"s","event":"PUBLISH"}`), 400, "domain", "missing_field"},
		{"empty app", "", "", []byte(`{"domain":"open.example.com","app":"","stream":"s","event":"PUBLISH"}`), 400, "app", "missing_field"},
		{"missing stream", "", "", []byte(`{"domain":"open.example.com","app":"live","event":"PUBLISH"}`), 400, "stream", "missing_field"},
		{"missing event", "", "", open(`"x":1`), 400, "event", "missing_field"},
		{"bad event", "", "", open(`"event":"RECORD"`), 400, "event", "bad_event"},
		{"domain not allowed", "", "", []byte(`{"domain":"evil.example.com","app":"live","stream":"s","event":"PUBLISH"}`), 403, "domain", "domain_not_allowed"},
		{"signature missing", "", "", bytes.Replace(signed, []byte(`"auth_sign"`), []byte(`"x_auth_sign"`), 1), 401, "auth_sign", "signature_missing"},
		{"auth_timestamp missing", "", "", bytes.Replace(signed, []byte(`"auth_timestamp"`), []byte(`"x_ts"`), 1), 401, "auth_timestamp", "signature_missing"},
		{"tampered stream", "", "", bytes.Replace(signed, []byte(`"example_stream"`), []byte(`"other_stream"`), 1), 401, "auth_sign", "signature_invalid"},
		{"wrong signature", "", "", bytes.Replace(signed, []byte(`fa5addca`), []byte(`fa5addcb`), 1), 401, "auth_sign", "signature_invalid"},
		{"stale", "", "", signedBody(archivetest.SampleSignTime.Add(-time.Hour)), 401, "auth_timestamp", "signature_stale"},
		{"signed ok", "", "", signed, 200, "", ""},
		{"signed string timestamp ok", "", "", signedBody(archivetest.SampleSignTime, `"%d"`), 200, "", ""},
		{"unsigned other domain ok", "", "", open(`"event":"PUBLISH"`), 200, "", ""},
	}
	for _, tc := range tests {
		method, path := tc.method, tc.path
		if method == "" {
			method = http.MethodPost
		}
		if path == "" {
			path = "/callback"
		}
		req, _ := http.NewRequest(method, s.URL()+path, bytes.NewReader(tc.body))
		resp, err := archivetest.Client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("%s: answer is not JSON: %s", tc.name, raw)
			continue
		}
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d (%s), want %d", tc.name, resp.StatusCode, raw, tc.status)
			continue
		}
		if tc.status == 200 {
			continue
		}
		if f, _ := body["field"].(string); f != tc.field {
			t.Errorf("%s: field %q, want %q (%s)", tc.name, f, tc.field, raw)
		}
		if msg, _ := body["error"].(string); msg == "" || strings.Contains(msg, archivetest.SampleKey) {
			t.Errorf("%s: bad error message %q", tc.name, msg)
		}
		if tc.status == 405 && resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s: Allow %q", tc.name, resp.Header.Get("Allow"))
		}
		if got := s.Metrics().Rejected.With(tc.reason).Value(); got == 0 {
			t.Errorf("%s: rejected{reason=%q} not counted", tc.name, tc.reason)
		}
	}
	_ = url
	// The stale message says how far off the timestamp is.
	r := archivetest.Post(t, url, signedBody(archivetest.SampleSignTime.Add(-time.Hour)))
	if msg := r.Body["error"].(string); !strings.Contains(msg, "1h1m0s behind") || !strings.Contains(msg, "--signature-window 5m0s") {
		t.Errorf("stale message %q does not say how far off", msg)
	}
	// Samples of rejected requests land under _rejected/ with the signature redacted, without keys.
	stop(t, s)
	rejected := archivetest.Keys(t, e.store, "_rejected/dt=")
	if len(rejected) < 5 {
		t.Fatalf("%d rejected samples, want one per reason (>= 5)", len(rejected))
	}
	found := false
	for _, k := range rejected {
		rc, err := e.store.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		var smp map[string]any
		if err := json.Unmarshal(b, &smp); err != nil {
			t.Fatalf("sample %s: %v", k, err)
		}
		if smp["reason"] == nil || smp["status"] == nil || smp["received_at"] == nil || smp["remote_addr"] == nil {
			t.Errorf("sample %s lacks fields: %s", k, b)
		}
		if bytes.Contains(b, []byte("fa5addcb")) || bytes.Contains(b, []byte(archivetest.SampleKey)) {
			t.Errorf("sample %s contains a signature or key: %s", k, b)
		}
		if smp["reason"] == "signature_invalid" {
			found = strings.Contains(smp["body"].(string), `"auth_sign": "REDACTED"`)
		}
	}
	if !found {
		t.Error("no redacted signature_invalid sample")
	}
}

// signedBody signs a PUBLISH for push.example.com at ts; tsFormat formats auth_timestamp.
func signedBody(ts time.Time, tsFormat ...string) []byte {
	f := "%d"
	if len(tsFormat) > 0 {
		f = tsFormat[0]
	}
	sign := callback.Sign(archivetest.SampleKey, "PUBLISH", "push.example.com", "live", "s2", ts.Unix())
	return fmt.Appendf(nil, `{"domain":"push.example.com","app":"live","stream":"s2","publish_timestamp":"%d","event":"PUBLISH","auth_timestamp":`+f+`,"auth_sign":%q}`,
		ts.UnixNano(), ts.Unix(), sign)
}

func TestDayBoundarySplitsBatches(t *testing.T) {
	t.Parallel()
	for _, ack := range []string{server.AckSpool, server.AckStore} {
		t.Run(ack, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			sh, _ := time.LoadLocation("Asia/Shanghai")
			// 23:59:59 in Shanghai, then just after midnight.
			before := time.Date(2026, 11, 26, 23, 59, 59, 0, sh)
			clock := &fakeClock{t: before}
			c := e.config(t)
			c.Ack = ack
			c.Now = clock.Now
			c.PartitionTZ = "Asia/Shanghai"
			c.FlushInterval = time.Hour // only the day change may split
			s := start(t, c)
			post := func(n int) {
				for i := range n {
					r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "s", "PUBLISH", clock.Now().UnixNano()+int64(i)))
					if r.Status != 200 {
						t.Fatalf("%d %s", r.Status, r.Raw)
					}
				}
			}
			post(3)
			clock.Set(before.Add(2 * time.Second))
			post(4)
			stop(t, s)
			keys := archivetest.DataKeys(t, e.store)
			days := map[string]int{}
			for _, k := range keys {
				days[strings.TrimPrefix(strings.SplitN(k, "/", 2)[0], "dt=")] = 0
			}
			for day := range days {
				evs := archivetest.ReadAll(t, e.store, day, day)
				days[day] = len(evs)
				for _, ev := range evs { // a batch never spans two days
					if got := layout.Day(ev.Archive.ReceivedAt, sh); got != day {
						t.Errorf("partition %s holds an event of %s", day, got)
					}
				}
			}
			if days["2026-11-26"] != 3 || days["2026-11-27"] != 4 || len(days) != 2 {
				t.Fatalf("events per day %v (objects %v), want 3 on the 26th and 4 on the 27th", days, keys)
			}
		})
	}
}

func TestRedeliveryStoredOnceAcrossRestart(t *testing.T) {
	t.Parallel()
	for _, ack := range []string{server.AckSpool, server.AckStore} {
		t.Run(ack, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			c := e.config(t)
			c.Ack = ack
			body := archivetest.Event("d.example.com", "redelivered", "PUBLISH", time.Now().UnixNano())
			s := start(t, c)
			// Concurrent duplicates race: exactly one is stored.
			var wg sync.WaitGroup
			var oks, dups atomic.Int32
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := archivetest.Post(t, s.URL()+"/callback", body)
					switch {
					case r.Status == 200 && r.Body["status"] == "ok":
						oks.Add(1)
					case r.Status == 200 && r.Body["status"] == "duplicate":
						dups.Add(1)
					default:
						t.Errorf("%d %s", r.Status, r.Raw)
					}
				}()
			}
			wg.Wait()
			if oks.Load() != 1 || dups.Load() != 7 {
				t.Fatalf("%d stored, %d duplicates; want 1 and 7", oks.Load(), dups.Load())
			}
			stop(t, s)
			s2 := start(t, c) // same spool (spool mode) / same bucket (store mode)
			r := archivetest.Post(t, s2.URL()+"/callback", body)
			if r.Status != 200 || r.Body["status"] != "duplicate" {
				t.Fatalf("redelivery after restart: %d %s", r.Status, r.Raw)
			}
			if s2.Metrics().Duplicates.Value() != 1 {
				t.Errorf("duplicates_total = %d", s2.Metrics().Duplicates.Value())
			}
			stop(t, s2)
			if n := len(archivetest.ReadToday(t, e.store)); n != 1 {
				t.Fatalf("read back %d copies, want 1", n)
			}
		})
	}
}

func TestStoreModeStoresBeforeAnswering(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.config(t)
	c.Ack = server.AckStore
	c.FlushInterval = time.Hour // the answer must not wait for the interval
	s := start(t, c)
	for i := range 5 {
		r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "s", "PUBLISH", int64(i)))
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		// Right after the 200, before any shutdown or flush: the event is in the store.
		found := false
		for _, ev := range archivetest.ReadToday(t, e.store) {
			found = found || ev.Archive.EventID == r.Body["event_id"]
		}
		if !found {
			t.Fatalf("event %d answered 200 but not in the store", i)
		}
	}
	if _, err := os.ReadDir(c.Spool); err == nil {
		if ents, _ := os.ReadDir(c.Spool); len(ents) != 0 {
			t.Errorf("store mode wrote local state: %v", ents)
		}
	}
}

func TestStoreModeStoreDownAnswers503(t *testing.T) {
	t.Parallel()
	gw := versitygw.StartT(t)
	e := newEnv(t, gw)
	c := e.config(t)
	c.Ack = server.AckStore
	c.StoreTimeout = 1500 * time.Millisecond
	s := start(t, c)
	body := archivetest.Event("d.example.com", "down", "PUBLISH", 1)
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	r := archivetest.Post(t, s.URL()+"/callback", body)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.Body["error"] == nil {
		t.Fatalf("store down: %d %v %s, want 503 with Retry-After", r.Status, r.Header, r.Raw)
	}
	if took := time.Since(begin); took > 20*time.Second { // a hang guard, not a speed claim
		t.Fatalf("503 took %s", took)
	}
	if err := gw.StartAgain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The retry is stored (the failed attempt released its dedup reservation).
	archivetest.Eventually(t, 30*time.Second, "the retry to be stored", func() bool {
		r := archivetest.Post(t, s.URL()+"/callback", body)
		return r.Status == 200
	})
	stop(t, s)
	if n := len(archivetest.ReadToday(t, e.store)); n != 1 {
		t.Fatalf("read back %d, want 1", n)
	}
}

func TestSpoolModeStoreDownKeepsAccepting(t *testing.T) {
	t.Parallel()
	gw := versitygw.StartT(t)
	e := newEnv(t, gw)
	c := e.config(t)
	c.FlushInterval = 100 * time.Millisecond
	s := start(t, c)
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	const n = 60
	for i := range n {
		r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "s", "PUBLISH", int64(i)))
		if r.Status != 200 {
			t.Fatalf("event %d with the store down: %d %s", i, r.Status, r.Raw)
		}
		if i%20 == 0 {
			time.Sleep(150 * time.Millisecond) // let segments seal and uploads fail
		}
	}
	resp, err := http.Get(s.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var rz map[string]any
	json.NewDecoder(resp.Body).Decode(&rz)
	resp.Body.Close()
	// The spool keeps accepting (that is what it is for): ready, but degraded with the reason.
	if resp.StatusCode != 200 || rz["status"] != "degraded" || rz["degraded"] == nil {
		t.Errorf("/readyz with the store down: %d %v, want 200 degraded with a reason", resp.StatusCode, rz)
	}
	archivetest.Eventually(t, 10*time.Second, "an upload failure", func() bool { return s.Metrics().UploadFailures.With(storage.KindUnreachable).Value() > 0 })
	if err := gw.StartAgain(context.Background()); err != nil {
		t.Fatal(err)
	}
	archivetest.Eventually(t, 30*time.Second, "the spool to drain", func() bool {
		return s.Metrics().Stored.Value() == n
	})
	if got := len(archivetest.ReadToday(t, e.store)); got != n {
		t.Fatalf("read back %d, want %d", got, n)
	}
}

func TestSpoolFullAnswers503(t *testing.T) {
	t.Parallel()
	gw := versitygw.StartT(t)
	e := newEnv(t, gw)
	c := e.config(t)
	c.SpoolMaxBytes = 2048
	s := start(t, c)
	gw.Stop()
	var full archivetest.Response
	accepted := 0
	for i := range 100 {
		r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "s", "PUBLISH", int64(i)))
		if r.Status == 200 {
			accepted++
			continue
		}
		full = r
		break
	}
	if full.Status != 503 || full.Header.Get("Retry-After") == "" || !strings.Contains(full.Raw, "spool-max-bytes") {
		t.Fatalf("over the spool limit: %d %v %s", full.Status, full.Header, full.Raw)
	}
	if accepted == 0 {
		t.Fatal("nothing accepted before the limit")
	}
	resp, _ := http.Get(s.URL() + "/readyz")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "spool") {
		t.Errorf("/readyz with a full spool: %d %s", resp.StatusCode, b)
	}
	gw.StartAgain(context.Background())
	stop(t, s)
	if got := len(archivetest.ReadToday(t, e.store)); got != accepted {
		t.Fatalf("read back %d, want the %d accepted", got, accepted)
	}
}

func TestTwoInstancesShareABucket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var servers []*server.Server
	for range 2 {
		c := e.config(t) // own spool => own persisted instance id
		c.FlushInterval = 50 * time.Millisecond
		servers = append(servers, start(t, c))
	}
	if servers[0].Instance() == servers[1].Instance() {
		t.Fatalf("both instances are named %s", servers[0].Instance())
	}
	const per = 40
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", fmt.Sprintf("inst%d", i), "PUBLISH", int64(j)))
				if r.Status != 200 {
					t.Errorf("%d %s", r.Status, r.Raw)
				}
				if j%10 == 0 {
					time.Sleep(60 * time.Millisecond) // several segments each
				}
			}
		}()
	}
	wg.Wait()
	for _, s := range servers {
		stop(t, s)
	}
	keys := archivetest.DataKeys(t, e.store)
	byInstance := map[string]int{}
	for _, k := range keys {
		for _, s := range servers {
			if strings.Contains(k, "/"+s.Instance()+"-") {
				byInstance[s.Instance()]++
			}
		}
	}
	if len(byInstance) != 2 || byInstance[servers[0].Instance()]+byInstance[servers[1].Instance()] != len(keys) {
		t.Fatalf("objects %v not attributable to the two instances", keys)
	}
	if got := len(archivetest.ReadToday(t, e.store)); got != 2*per {
		t.Fatalf("read back %d, want %d", got, 2*per)
	}
}

func TestOperationalEndpointsAndKeyReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	keys := filepath.Join(t.TempDir(), "keys.json")
	os.WriteFile(keys, []byte(`{"push.example.com":"`+archivetest.SampleKey+`"}`), 0o600)
	c := e.config(t)
	c.Keys = keys
	c.Now = (&fakeClock{t: archivetest.SampleSignTime}).Now
	s := start(t, c)
	get := func(path string) (int, string) {
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, b := get("/readyz"); code != 200 {
		t.Errorf("/readyz %d %s", code, b)
	}
	signed := archivetest.Sample(t, "signed-publish.json")
	if r := archivetest.Post(t, s.URL()+"/callback", signed); r.Status != 200 {
		t.Fatalf("signed: %d %s", r.Status, r.Raw)
	}
	// A broken keys file keeps the old keys; a new key makes the old signature invalid.
	os.WriteFile(keys, []byte(`{"push.example.com":`), 0o600)
	if err := s.ReloadKeys(); err == nil || strings.Contains(err.Error(), archivetest.SampleKey) {
		t.Fatalf("reload of a broken file: %v", err)
	}
	done := archivetest.Sample(t, "signed-publish_done.json")
	os.WriteFile(keys, []byte(`{"push.example.com":"another-key"}`), 0o600)
	if err := s.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	if r := archivetest.Post(t, s.URL()+"/callback", done); r.Status != 401 {
		t.Fatalf("after key change: %d %s", r.Status, r.Raw)
	}
	code, metrics := get("/metrics")
	for _, want := range []string{
		"livehook_archiver_received_total 2",
		"livehook_archiver_accepted_total 1",
		`livehook_archiver_rejected_total{reason="signature_invalid"} 1`,
		"livehook_archiver_duplicates_total 0",
		"livehook_archiver_spool_bytes ",
		"livehook_archiver_upload_seconds_bucket{le=\"+Inf\"}",
		`livehook_archiver_upload_failures_total{kind="access_denied"} 0`,
		"# TYPE livehook_archiver_upload_seconds histogram",
	} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	if code, _ := get("/nope"); code != 404 {
		t.Errorf("/nope %d", code)
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	c, err := server.ParseFlags([]string{"--listen", "127.0.0.1:0", "--flush-bytes", "64KiB", "--max-body", "1024",
		"--spool-max-bytes", "1GiB", "--allow-domain", "a.example.com", "--allow-domain", "b.example.com,c.example.com",
		"--gzip=false", "--ack", "store", "--partition-tz", "Asia/Shanghai", "--signature-window", "0", "--allow-unsigned"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.FlushBytes != 64<<10 || c.MaxBody != 1024 || c.SpoolMaxBytes != 1<<30 || len(c.AllowDomains) != 3 || c.Gzip || c.Ack != "store" || c.SignatureWindow != 0 {
		t.Fatalf("parsed %+v", c)
	}
	for _, bad := range [][]string{
		{"--ack", "memory"}, {"--flush-bytes", "8XB"}, {"--partition-tz", "Mars/Olympus"}, {"--tls-cert", "x"},
		{"--instance", "a/b"}, {"--max-body", "0"}, {"--log-level", "loud"}, {"extra"},
		{"--commit-window", "-1ms"}, {"--commit-window", "2s"},
	} {
		if _, err := server.ParseFlags(append(bad, "--allow-unsigned"), io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	// --max-body above what a spool record holds is refused, naming the largest allowed value.
	if _, err := server.ParseFlags([]string{"--max-body", "17MiB", "--allow-unsigned"}, io.Discard); err == nil || !strings.Contains(err.Error(), "16MiB") {
		t.Errorf("--max-body 17MiB: %v; want a refusal naming 16MiB", err)
	}
	if c, err := server.ParseFlags([]string{"--commit-window", "0", "--allow-unsigned"}, io.Discard); err != nil || c.CommitWindow != 0 {
		t.Errorf("--commit-window 0 (off): %s %v", c.CommitWindow, err)
	}
	if c, err := server.ParseFlags([]string{"--allow-unsigned"}, io.Discard); err != nil || c.CommitWindow != spool.DefaultCommitWindow {
		t.Errorf("default --commit-window: %s %v", c.CommitWindow, err)
	}
	if c, err := server.ParseFlags([]string{"--store-max-pending", "32MiB", "--allow-unsigned"}, io.Discard); err != nil || c.StoreMaxPending != 32<<20 {
		t.Errorf("--store-max-pending 32MiB: %d %v", c.StoreMaxPending, err)
	}
	for in, want := range map[string]int64{"8MiB": 8 << 20, "64KiB": 64 << 10, "1GiB": 1 << 30, "100": 100, "1.5k": 1536, "2MB": 2e6} {
		if got, err := server.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	dir := t.TempDir()
	certPEM, keyPEM := archivetest.SelfSignedCert(t, "127.0.0.1")
	c := e.config(t)
	c.TLSCert, c.TLSKey = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(c.TLSCert, certPEM, 0o600)
	os.WriteFile(c.TLSKey, keyPEM, 0o600)
	s := start(t, c)
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s", s.URL())
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := cl.Post(s.URL()+"/callback", "text/plain", bytes.NewReader(archivetest.Sample(t, "unsigned-publish.json")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTPS callback: %d", resp.StatusCode)
	}
}

func readyz(t *testing.T, s *server.Server) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(s.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestStoreModeFixedInstanceRestarts: --ack store with a fixed --instance, three runs on one day:
// no run's objects replace another's, every acknowledged event is read back.
func TestStoreModeFixedInstanceRestarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const perRun = 40
	acked := 0
	for run := range 3 {
		c := e.config(t)
		c.Ack = server.AckStore
		c.Instance = "web-1"
		s := start(t, c)
		for i := range perRun {
			r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", fmt.Sprintf("r%d-s%d", run, i), "PUBLISH", int64(1000*run+i)))
			if r.Status != 200 {
				t.Fatalf("run %d event %d: %d %s", run, i, r.Status, r.Raw)
			}
			acked++
		}
		stop(t, s)
	}
	evs := archivetest.ReadToday(t, e.store)
	if len(evs) != acked {
		t.Fatalf("read back %d of %d acknowledged events", len(evs), acked)
	}
	for _, ev := range evs {
		if ev.Archive.Instance != "web-1" {
			t.Fatalf("archive.instance %q, want the configured web-1", ev.Archive.Instance)
		}
	}
}

// TestPermanentStoreErrorThenRecovery: the store answers a permanent error (it refuses the
// archiver's credentials; its bucket is missing) and then recovers. The spool keeps accepting,
// /readyz says degraded with the reason, the failure is counted by kind, nothing is skipped: once
// the store is fixed every acknowledged event is archived.
func TestPermanentStoreErrorThenRecovery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind string
		// fail breaks the store, fix repairs it; both return the bucket the archiver writes to.
		fail func(t *testing.T, gw *versitygw.Server, c *server.Config) (fix func())
	}{
		{storage.KindAccessDenied, func(t *testing.T, gw *versitygw.Server, c *server.Config) func() {
			// The gateway restarts with another root secret: the archiver's signature no longer
			// matches (a rotated or revoked key), until it comes back with the old one.
			secret := gw.SecretKey
			restart := func(key string) {
				if err := gw.Stop(); err != nil {
					t.Fatal(err)
				}
				gw.SecretKey = key
				if err := gw.StartAgain(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			restart(secret + "-rotated")
			return func() { restart(secret) }
		}},
		{storage.KindNoSuchBucket, func(t *testing.T, gw *versitygw.Server, c *server.Config) func() {
			missing := fmt.Sprintf("b-missing-%d", time.Now().UnixNano()%1e12)
			c.Store = "s3://" + missing + "/archive/"
			return func() {
				if err := gw.CreateBucket(context.Background(), missing); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			gw := versitygw.StartT(t)
			e := newEnv(t, gw)
			c := e.config(t)
			c.FlushInterval = 50 * time.Millisecond
			var fix func()
			if tc.kind == storage.KindNoSuchBucket {
				fix = tc.fail(t, gw, &c)
			}
			s := start(t, c)
			if fix == nil {
				fix = tc.fail(t, gw, &c)
			}
			const n = 30
			for i := range n {
				r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "s", "PUBLISH", int64(i)))
				if r.Status != 200 {
					t.Fatalf("event %d with the store refusing (%s): %d %s", i, tc.kind, r.Status, r.Raw)
				}
			}
			archivetest.Eventually(t, 10*time.Second, "a "+tc.kind+" failure", func() bool {
				return s.Metrics().UploadFailures.With(tc.kind).Value() > 0
			})
			code, body := readyz(t, s)
			if code != 200 || body["status"] != "degraded" || !strings.Contains(fmt.Sprint(body["degraded"]), tc.kind) {
				t.Fatalf("/readyz with the store refusing: %d %v; want 200, degraded, naming %s", code, body, tc.kind)
			}
			fix()
			archivetest.Eventually(t, 60*time.Second, "the spool to drain", func() bool { return s.Metrics().Stored.Value() == n })
			if code, body := readyz(t, s); code != 200 || body["status"] != "ready" {
				t.Fatalf("/readyz after recovery: %d %v", code, body)
			}
			stop(t, s)
			bucket := strings.TrimSuffix(strings.TrimPrefix(c.Store, "s3://"), "/archive/")
			if got := len(archivetest.ReadToday(t, archivetest.S3Store(t, gw, bucket, "archive/"))); got != n {
				t.Fatalf("read back %d of %d", got, n)
			}
		})
	}
}

// TestReadyzWhileShuttingDown: /readyz is 503 once shutdown begins.
func TestReadyzWhileShuttingDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := start(t, e.config(t))
	h := s.Handler()
	go s.Shutdown(context.Background())
	archivetest.Eventually(t, 5*time.Second, "/readyz 503", func() bool {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code == 503 && strings.Contains(rec.Body.String(), "shutting down")
	})
}

// TestStoreModeMemoryBudget: --ack store answers 503 with Retry-After past --store-max-pending
// (here smaller than one event), never buffering beyond it.
func TestStoreModeMemoryBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.config(t)
	c.Ack = server.AckStore
	c.StoreMaxPending = 16
	s := start(t, c)
	r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "s", "PUBLISH", 1))
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.Raw), "--store-max-pending") {
		t.Fatalf("event past the store-mode budget: %d %v %s; want 503 with Retry-After naming --store-max-pending", r.Status, r.Header, r.Raw)
	}
}
