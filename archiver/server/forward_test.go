package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/replay"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
	"github.com/livehook/terraform-provider-livehook/internal/callback"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

// signedAt is a compact, signed callback for stream at time ts (sequence n in publish_timestamp
// keeps events distinct).
func signedAt(stream, event string, n int, ts time.Time) []byte {
	sign := callback.Sign(archivetest.SampleKey, event, "push.example.com", "live", stream, ts.Unix())
	return fmt.Appendf(nil, `{"domain":"push.example.com","app":"live","stream":%q,"publish_timestamp":"%d","event":%q,"auth_timestamp":%d,"auth_sign":%q}`,
		stream, 1700000000+n, event, ts.Unix(), sign)
}

func keysFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(p, []byte(`{"push.example.com":"`+archivetest.SampleKey+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fieldsOf pulls the signed fields out of a forwarded body.
func checkSigned(t *testing.T, body []byte) {
	t.Helper()
	ev, err := readback.ParseLine(append(bytes.TrimSuffix(slices.Clone(body), []byte("}")), []byte(`,"archive":{"received_at":"2026-01-01T00:00:00.000000000Z","event_id":"x","remote_addr":"","signature":"none","publish_time":null,"instance":"i"}}`)...))
	if err != nil {
		t.Fatalf("forwarded body %s: %v", body, err)
	}
	var f struct {
		TS   int64  `json:"auth_timestamp"`
		Sign string `json:"auth_sign"`
	}
	if err := jsonUnmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	if !callback.Valid(f.Sign, archivetest.SampleKey, ev.Event, ev.Domain, ev.App, ev.Stream, f.TS) {
		t.Errorf("forwarded body's signature is not valid: %s", body)
	}
}

func forwardConfig(t *testing.T, c *server.Config) {
	c.Keys = keysFile(t)
	c.AllowUnsigned = false
	c.FlushInterval = 300 * time.Millisecond // uploads (and so retention) happen during the test
	c.ForwardBackoff = backoff.Policy{Initial: 50 * time.Millisecond, Max: time.Second}
}

// Two destinations, one answering 503 for 20 s: both get every acknowledged event, in
// acceptance order, byte for byte, with a valid signature; the healthy one gets each within
// tens of milliseconds, the flapping one catches up.
func TestForwardTwoDestinationsOneFlapping(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	healthy := archivetest.NewReceiver(t, nil)
	var firstMu sync.Mutex
	var first time.Time
	outage := 20 * time.Second
	flapping := archivetest.NewReceiver(t, func(_ int, _ *http.Request) int {
		firstMu.Lock()
		defer firstMu.Unlock()
		if first.IsZero() {
			first = time.Now()
		}
		if time.Since(first) < outage {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	c := e.config(t)
	forwardConfig(t, &c)
	c.Forward = []string{"healthy=" + healthy.URL, "flapping=" + flapping.URL}
	s := start(t, c)

	var sent [][]byte
	for i := range 60 {
		ev := callback.EventPublish
		if i%2 == 1 {
			ev = callback.EventPublishDone
		}
		b := signedAt("s"+strconv.Itoa(i/2), ev, i/2, time.Now())
		if r := archivetest.Post(t, s.URL()+"/callback", b); r.Status != 200 {
			t.Fatalf("post %d: %d %s", i, r.Status, r.Raw)
		}
		sent = append(sent, b)
		time.Sleep(100 * time.Millisecond) // spread over the first part of the outage
	}
	archivetest.Eventually(t, 10*time.Second, "the healthy destination gets every event", func() bool { return len(healthy.Accepted()) >= len(sent) })
	archivetest.Eventually(t, outage+30*time.Second, "the flapping destination catches up", func() bool { return len(flapping.Accepted()) >= len(sent) })
	archive := archivetest.ReadToday(t, e.store)
	ids := map[string]string{}
	for _, ev := range archive {
		ids[string(ev.Body)] = ev.Archive.EventID
	}
	for name, rc := range map[string]*archivetest.Receiver{"healthy": healthy, "flapping": flapping} {
		got := rc.Accepted()
		if len(got) != len(sent) {
			for i, g := range got {
				t.Logf("%s %d: attempt %d id %s %s", name, i, g.Attempt, g.EventID, g.Body)
			}
			t.Errorf("%s: %d events delivered, want %d (no repeats without a crash)", name, len(got), len(sent))
			continue
		}
		for i, g := range got {
			if !bytes.Equal(g.Body, sent[i]) {
				t.Errorf("%s: event %d out of order or altered:\n got %s\nwant %s", name, i, g.Body, sent[i])
				break
			}
			if g.EventID == "" || g.EventID != ids[string(sent[i])] {
				t.Errorf("%s: event %d has X-Livehook-Event-Id %q, archive says %q", name, i, g.EventID, ids[string(sent[i])])
			}
			if g.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s: Content-Type %q", name, g.Header.Get("Content-Type"))
			}
			checkSigned(t, g.Body)
		}
	}
	if n := len(flapping.All()) - len(flapping.Accepted()); n == 0 {
		t.Error("the flapping destination was never refused; the test proves nothing")
	}
	if att := flapping.Accepted()[0].Attempt; att < 2 {
		t.Errorf("first delivery to the flapping destination has X-Livehook-Attempt %d, want a retry", att)
	}
	m := metricsText(t, s.URL())
	for _, want := range []string{
		`archiver_forward_delivered_total{destination="healthy"} 60`,
		`archiver_forward_delivered_total{destination="flapping"} 60`,
		`archiver_forward_queue_events{destination="flapping"} 0`,
		`archiver_forward_delivery_seconds_count{destination="healthy"} 60`,
		`archiver_forward_lag_seconds{destination="healthy"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(m, `archiver_forward_attempts_total{destination="flapping",outcome="retry"}`) || strings.Contains(m, `archiver_forward_attempts_total{destination="flapping",outcome="retry"} 0`) {
		t.Error("no retries counted for the flapping destination")
	}
	// The healthy destination is not held back by the flapping one: its deliveries were fast.
	if p := histogramQuantileBelow(m, "healthy", 0.25); p < 0.8 {
		t.Errorf("only %.0f%% of the healthy destination's deliveries within 250ms of receipt", p*100)
	}
}

// histogramQuantileBelow is the share of a destination's deliveries at most le seconds after receipt.
func histogramQuantileBelow(m, dest string, le float64) float64 {
	var below, count float64
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, `archiver_forward_delivery_seconds_bucket{destination="`+dest+`",le="`+strconv.FormatFloat(le, 'g', -1, 64)+`"} `) {
			below, _ = strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		}
		if strings.HasPrefix(line, `archiver_forward_delivery_seconds_count{destination="`+dest+`"} `) {
			count, _ = strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		}
	}
	if count == 0 {
		return 0
	}
	return below / count
}

// A destination that takes 2 s per request does not slow the answer to Live: the ack latency
// with it is compared, as a ratio, with an archiver without destinations in the same run.
func TestForwardSlowDestinationKeepsAckLatency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	slow := archivetest.NewReceiver(t, func(int, *http.Request) int { time.Sleep(2 * time.Second); return 200 })
	plainCfg := e.config(t)
	forwardConfig(t, &plainCfg)
	plainCfg.Store += "plain/"
	plain := start(t, plainCfg)
	fwdCfg := e.config(t)
	forwardConfig(t, &fwdCfg)
	fwdCfg.Store += "fwd/"
	fwdCfg.Forward = []string{"slow=" + slow.URL}
	fwd := start(t, fwdCfg)

	var with, without []time.Duration
	for i := range 40 { // interleaved, so both see the same machine load
		for _, x := range []struct {
			s   *server.Server
			out *[]time.Duration
		}{{plain, &without}, {fwd, &with}} {
			b := signedAt("slow"+strconv.Itoa(i), callback.EventPublish, i, time.Now())
			began := time.Now()
			if r := archivetest.Post(t, x.s.URL()+"/callback", b); r.Status != 200 {
				t.Fatalf("post: %d %s", r.Status, r.Raw)
			}
			*x.out = append(*x.out, time.Since(began))
		}
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	ratio := float64(med(with)) / float64(med(without))
	t.Logf("median ack latency: %v with a 2s destination, %v without; ratio %.2f", med(with), med(without), ratio)
	if ratio > 3 || med(with) > time.Second {
		t.Errorf("a slow destination slows the answer to Live: ratio %.2f", ratio)
	}
	archivetest.Eventually(t, 10*time.Second, "the slow destination answers", func() bool { return len(slow.All()) > 0 })
}

// A 400 makes a dead letter (counted, kept locally and in the store, with status and error);
// archiver replay --dead-letters delivers it once the receiver is fixed.
func TestForwardRejectedBecomesDeadLetterAndReplays(t *testing.T) {
	e := newEnv(t, nil)
	rc := archivetest.NewReceiver(t, func(int, *http.Request) int { return http.StatusBadRequest })
	c := e.config(t)
	forwardConfig(t, &c)
	c.Forward = []string{"biz=" + rc.URL}
	s := start(t, c)
	var sent [][]byte
	cts := [][]string{{"application/json"}, {"text/plain; charset=utf-8"}, {"application/json"}}
	for i := range 3 {
		b := signedAt("dl"+strconv.Itoa(i), callback.EventPublish, i, time.Now())
		if i == 1 { // a dead letter keeps the request as Live sent it, too
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			b = pretty.Bytes()
		}
		if r := archivetest.PostAs(t, s.URL()+"/callback", cts[i], b); r.Status != 200 {
			t.Fatalf("post: %d %s", r.Status, r.Raw)
		}
		sent = append(sent, b)
	}
	archivetest.Eventually(t, 10*time.Second, "3 dead letters counted", func() bool {
		return strings.Contains(metricsText(t, s.URL()), `archiver_forward_dead_letters_total{destination="biz",reason="rejected"} 3`)
	})
	if n := len(rc.All()); n != 3 {
		t.Errorf("a 400 was retried: %d requests for 3 events", n)
	}
	local, err := os.ReadFile(filepath.Join(c.Spool, "relay", "biz", "deadletters.jsonl"))
	if err != nil || bytes.Count(local, []byte("\n")) != 3 || !bytes.Contains(local, []byte(`"status":400`)) || !bytes.Contains(local, []byte(`"reason":"rejected"`)) {
		t.Errorf("local dead letters: %v\n%s", err, local)
	}
	day := layout.Day(time.Now(), time.UTC)
	if keys := archivetest.Keys(t, e.store, layout.DeadLetterDayPrefix(day)+"biz/"); len(keys) != 3 {
		t.Errorf("dead letters in the store: %v", keys)
	}
	stop(t, s)
	// Every destination passed every event, so a clean shutdown keeps no segment for the relay.
	if segs, _ := filepath.Glob(filepath.Join(c.Spool, "seg-*")); len(segs) != 0 {
		t.Errorf("spool not drained after shutdown: %v", segs)
	}

	rc.SetAnswer(nil) // fixed
	t.Setenv("AWS_ACCESS_KEY_ID", e.gw.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.gw.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	var out, errb bytes.Buffer
	args := []string{"--dead-letters", "--from", day, "--store", c.Store, "--s3-endpoint", e.gw.Endpoint, "--to-url", rc.URL}
	if code := replay.Run(context.Background(), append(args, "--dry-run"), &out, &errb); code != 0 || bytes.Count(out.Bytes(), []byte("\n")) != 3 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if len(rc.All()) != 3 {
		t.Fatal("--dry-run sent something")
	}
	out.Reset()
	if code := replay.Run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, errb.String())
	}
	got := rc.Accepted()
	if len(got) != 3 {
		t.Fatalf("replay delivered %d events, want 3", len(got))
	}
	for i, g := range got {
		if !bytes.Equal(g.Body, sent[i]) {
			t.Errorf("replayed event %d:\n got %s\nwant %s", i, g.Body, sent[i])
		}
		if ct := g.Header.Values("Content-Type"); !slices.Equal(ct, cts[i]) {
			t.Errorf("replayed event %d: Content-Type %q, want %q", i, ct, cts[i])
		}
		checkSigned(t, archivetest.Compact(t, g.Body))
	}
}

// resign: the receiver gets auth_timestamp set to the send time and a signature valid under the
// domain's key, though the event waited an hour (the clock is moved while the receiver refuses);
// a destination without resign gets the original bytes.
func TestForwardResign(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	clock := &fakeClock{t: time.Now().UTC()}
	var mu sync.Mutex
	refused := false
	rc := archivetest.NewReceiver(t, func(_ int, r *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.RawQuery == "" && !refused { // the resign destination's first attempt
			refused = true
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	cfgFile := filepath.Join(t.TempDir(), "forward.yaml")
	if err := os.WriteFile(cfgFile, []byte("destinations:\n  - name: fresh\n    url: "+rc.URL+"\n    resign: true\n  - name: asis\n    url: "+rc.URL+"?asis\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e.config(t)
	forwardConfig(t, &c)
	c.ForwardBackoff = backoff.Policy{Initial: 2 * time.Second, Max: 2 * time.Second, Jitter: -1}
	c.Now = clock.Now
	c.ForwardConfig = cfgFile
	s := start(t, c)
	sentAt := clock.Now()
	b := signedAt("rs", callback.EventPublish, 1, sentAt)
	if r := archivetest.Post(t, s.URL()+"/callback", b); r.Status != 200 {
		t.Fatalf("post: %d %s", r.Status, r.Raw)
	}
	archivetest.Eventually(t, 5*time.Second, "the refused first attempt", func() bool { mu.Lock(); defer mu.Unlock(); return refused })
	later := sentAt.Add(time.Hour)
	clock.Set(later)
	archivetest.Eventually(t, 10*time.Second, "both destinations deliver", func() bool { return len(rc.Accepted()) >= 2 })
	for _, g := range rc.Accepted() {
		var f struct {
			TS int64 `json:"auth_timestamp"`
		}
		if err := jsonUnmarshal(g.Body, &f); err != nil {
			t.Fatal(err)
		}
		checkSigned(t, g.Body)
		if g.Header.Get("X-Livehook-Attempt") == "1" { // as is
			if !bytes.Equal(g.Body, b) {
				t.Errorf("destination without resign got\n%s\nwant the original\n%s", g.Body, b)
			}
			continue
		}
		if f.TS != later.Unix() || bytes.Equal(g.Body, b) {
			t.Errorf("re-signed body %s: auth_timestamp %d, want the send time %d", g.Body, f.TS, later.Unix())
		}
	}
}

// Bad forwarding configuration: exit 2 and one line naming what is wrong.
func TestForwardBadConfigExits2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad url", []string{"--forward", "biz=ftp://x"}, `url "ftp://x" is not an http:// or https:// URL`},
		{"no url", []string{"--forward", "biz"}, `want NAME=URL`},
		{"bad name", []string{"--forward", "Biz=http://x/"}, `name "Biz" must be`},
		{"duplicate", []string{"--forward", "biz=http://x/", "--forward-config", write("dup.yaml", "destinations:\n  - name: biz\n    url: http://y/\n")}, `destination name "biz" is used twice`},
		{"unknown option", []string{"--forward-config", write("unk.yaml", "destinations:\n  - name: biz\n    url: http://y/\n    retry: 3\n")}, `field retry not found`},
		{"missing file", []string{"--forward-config", filepath.Join(dir, "nope.yaml")}, `--forward-config: open`},
		{"purge a configured one", []string{"--forward", "biz=http://x/", "--forward-purge", "biz"}, `--forward-purge biz: biz is a configured destination`},
		{"purge a bad name", []string{"--forward-purge", "../x"}, `--forward-purge "../x": not a destination name`},
		{"bad header name", []string{"--forward-config", write("hname.yaml", "destinations:\n  - name: biz\n    url: http://y/\n    headers:\n      \"X-T(o)ken\": a\n")}, `header "X-T(o)ken" cannot be set`},
		{"bad header value", []string{"--forward-config", write("hval.yaml", "destinations:\n  - name: biz\n    url: http://y/\n    headers:\n      X-Token: \"a\\x01b\"\n")}, `header "X-Token" has a control character in its value`},
		{"bad ca_file", []string{"--forward-config", write("ca.yaml", "destinations:\n  - name: biz\n    url: https://y/\n    ca_file: "+write("ca.pem", "not a certificate\n")+"\n")}, `holds no PEM certificate`},
		{"missing ca_file", []string{"--forward-config", write("ca2.yaml", "destinations:\n  - name: biz\n    url: https://y/\n    ca_file: "+filepath.Join(dir, "none.pem")+"\n")}, `ca_file: open`},
		{"store mode", []string{"--ack", "store", "--forward", "biz=http://x/"}, `--forward needs the spool: --ack store keeps no local record to forward from; use --ack spool`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := server.Run(context.Background(), append([]string{"--spool", t.TempDir(), "--listen", "127.0.0.1:0", "--allow-unsigned"}, tt.args...), &out, &errb)
			msg := strings.TrimSuffix(errb.String(), "\n")
			if code != 2 || strings.Contains(msg, "\n") || !strings.Contains(msg, tt.want) || !strings.HasPrefix(msg, "archiver serve: ") {
				t.Errorf("exit %d, stderr %q: want 2 and one line with %q", code, errb.String(), tt.want)
			}
		})
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// A destination down longer than the spool can hold: its oldest events (already in the archive)
// become dead letters and the archive keeps answering 200; /readyz stays ready but says
// "degraded", naming the destination.
func TestForwardDeadDestinationNeverFillsTheSpool(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rc := archivetest.NewReceiver(t, func(int, *http.Request) int { return http.StatusServiceUnavailable })
	c := e.config(t)
	forwardConfig(t, &c)
	c.AllowUnsigned = true
	c.Keys = ""
	c.SpoolMaxBytes = 128 << 10 // about 3 s of this test's traffic: room for slow uploads on a busy machine
	c.FlushBytes = 4 << 10
	c.FlushInterval = 100 * time.Millisecond
	c.ForwardLagDegraded = 500 * time.Millisecond
	c.Forward = []string{"down=" + rc.URL}
	s := start(t, c)
	n := 0
	for i := range 800 { // about 2.5 times the spool budget
		r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "s", "PUBLISH", int64(i)))
		if r.Status != 200 {
			t.Fatalf("event %d refused because a destination is down: %d %s", i, r.Status, r.Raw)
		}
		n++
		time.Sleep(10 * time.Millisecond)
	}
	code, body := readyz(t, s)
	if code != 200 || body["status"] != "degraded" || !strings.Contains(fmt.Sprint(body["degraded"]), "forwarding lags: down") {
		t.Errorf("/readyz with a lagging destination: %d %v", code, body)
	}
	m := metricsText(t, s.URL())
	if !strings.Contains(m, `archiver_forward_dead_letters_total{destination="down",reason="spool_full"}`) || strings.Contains(m, `archiver_forward_dead_letters_total{destination="down",reason="spool_full"} 0`) {
		t.Errorf("no spool_full dead letters counted")
	}
	if s.Spool().Bytes() > c.SpoolMaxBytes {
		t.Errorf("spool holds %d bytes, over its %d budget", s.Spool().Bytes(), c.SpoolMaxBytes)
	}
	stop(t, s)
	if got := len(archivetest.ReadToday(t, e.store)); got != n {
		t.Errorf("archive holds %d events, want %d", got, n)
	}
}

// Retry-After is honoured (the backoff alone would retry after 50 ms), and an event older than
// max_age becomes a dead letter with the last status.
func TestForwardRetryAfterAndMaxAge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rc := archivetest.NewReceiver(t, func(n int, _ *http.Request) int {
		if n == 0 {
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	rc.RetryAfter = "2"
	down := archivetest.NewReceiver(t, func(int, *http.Request) int { return http.StatusBadGateway })
	cfgFile := filepath.Join(t.TempDir(), "forward.yaml")
	if err := os.WriteFile(cfgFile, []byte("destinations:\n  - name: slowdown\n    url: "+rc.URL+"\n  - name: down\n    url: "+down.URL+"\n    max_age: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e.config(t)
	forwardConfig(t, &c)
	c.ForwardBackoff = backoff.Policy{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	c.ForwardConfig = cfgFile
	s := start(t, c)
	if r := archivetest.Post(t, s.URL()+"/callback", signedAt("ra", callback.EventPublish, 1, time.Now())); r.Status != 200 {
		t.Fatalf("post: %d %s", r.Status, r.Raw)
	}
	archivetest.Eventually(t, 10*time.Second, "delivered after Retry-After", func() bool { return len(rc.Accepted()) == 1 })
	all := rc.All()
	if gap := all[1].At.Sub(all[0].At); gap < 1900*time.Millisecond {
		t.Errorf("retried %v after a 429 with Retry-After: 2", gap)
	}
	if all[1].Attempt != 2 || all[1].EventID != all[0].EventID {
		t.Errorf("retry: attempt %d, id %q vs %q", all[1].Attempt, all[1].EventID, all[0].EventID)
	}
	archivetest.Eventually(t, 10*time.Second, "a max_age dead letter", func() bool {
		return strings.Contains(metricsText(t, s.URL()), `archiver_forward_dead_letters_total{destination="down",reason="max_age"} 1`)
	})
	local, _ := os.ReadFile(filepath.Join(c.Spool, "relay", "down", "deadletters.jsonl"))
	if !bytes.Contains(local, []byte(`"reason":"max_age","status":502,"error":"HTTP 502:`)) {
		t.Errorf("max_age dead letter lacks the last status and error:\n%s", local)
	}
}

// A long wait before a retry (Retry-After: 3600) ends when the event passes max_age: it becomes a
// dead letter then, not an hour later.
func TestForwardMaxAgeEndsRetryWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	down := archivetest.NewReceiver(t, func(int, *http.Request) int { return http.StatusServiceUnavailable })
	down.RetryAfter = "3600"
	cfgFile := filepath.Join(t.TempDir(), "forward.yaml")
	if err := os.WriteFile(cfgFile, []byte("destinations:\n  - name: down\n    url: "+down.URL+"\n    max_age: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e.config(t)
	forwardConfig(t, &c)
	c.ForwardConfig = cfgFile
	s := start(t, c)
	if r := archivetest.Post(t, s.URL()+"/callback", signedAt("wait", callback.EventPublish, 1, time.Now())); r.Status != 200 {
		t.Fatalf("post: %d %s", r.Status, r.Raw)
	}
	archivetest.Eventually(t, 10*time.Second, "a max_age dead letter during the Retry-After wait", func() bool {
		return strings.Contains(metricsText(t, s.URL()), `archiver_forward_dead_letters_total{destination="down",reason="max_age"} 1`)
	})
	if n := len(down.All()); n != 1 {
		t.Errorf("%d requests, want 1 (the wait was not cut short by a retry)", n)
	}
}

// An https destination with a private CA (ca_file) gets the events; the same destination without
// the CA cannot be reached (the TLS error is retried, never skipped).
func TestForwardHTTPSWithCAFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var mu sync.Mutex
	var got [][]byte
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
	}))
	t.Cleanup(tlsSrv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "forward.yaml")
	if err := os.WriteFile(cfgFile, []byte("destinations:\n  - name: private\n    url: "+tlsSrv.URL+"/cb\n    ca_file: "+ca+"\n    headers: {X-Env: test}\n  - name: noca\n    url: "+tlsSrv.URL+"/noca\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e.config(t)
	forwardConfig(t, &c)
	c.ForwardConfig = cfgFile
	s := start(t, c)
	b := signedAt("tls", callback.EventPublish, 1, time.Now())
	if r := archivetest.Post(t, s.URL()+"/callback", b); r.Status != 200 {
		t.Fatalf("post: %d %s", r.Status, r.Raw)
	}
	archivetest.Eventually(t, 10*time.Second, "delivered over https", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	archivetest.Eventually(t, 10*time.Second, "the destination without the CA fails", func() bool {
		return !strings.Contains(metricsText(t, s.URL()), `archiver_forward_attempts_total{destination="noca",outcome="error"} 0`)
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !bytes.Equal(got[0], b) {
		t.Errorf("https receiver got %q", got)
	}
}

// A removed destination's queue is kept across restarts (also with no destination left), and
// resumes where it stopped when the destination is added back; --forward-purge drops it.
func TestForwardRemovedQueueKeptUntilPurged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rc := archivetest.NewReceiver(t, func(int, *http.Request) int { return http.StatusServiceUnavailable })
	c := e.config(t)
	forwardConfig(t, &c)
	c.Forward = []string{"biz=" + rc.URL}
	s := start(t, c)
	b := signedAt("kept", callback.EventPublish, 1, time.Now())
	if r := archivetest.Post(t, s.URL()+"/callback", b); r.Status != 200 {
		t.Fatalf("post: %d %s", r.Status, r.Raw)
	}
	archivetest.Eventually(t, 5*time.Second, "a refused attempt", func() bool { return len(rc.All()) > 0 })
	stop(t, s)
	segs := func() []string { g, _ := filepath.Glob(filepath.Join(c.Spool, "seg-*")); return g }

	// Removed: no destination configured, the queue (segment + cursor) is kept.
	c2 := c
	c2.Forward = nil
	s = start(t, c2)
	if r := archivetest.Post(t, s.URL()+"/callback", signedAt("kept", callback.EventPublishDone, 1, time.Now())); r.Status != 200 {
		t.Fatalf("post: %d %s", r.Status, r.Raw)
	}
	stop(t, s)
	if len(segs()) == 0 {
		t.Fatal("the removed destination's queue was not kept")
	}

	// Added back: it resumes where it stopped and gets both events, in order.
	rc.SetAnswer(nil)
	s = start(t, c)
	archivetest.Eventually(t, 10*time.Second, "both events after the destination is back", func() bool { return len(rc.Accepted()) == 2 })
	if got := rc.Accepted(); !bytes.Equal(got[0].Body, b) || !bytes.Contains(got[1].Body, []byte("PUBLISH_DONE")) {
		t.Errorf("resumed deliveries: %s / %s", got[0].Body, got[1].Body)
	}
	stop(t, s)

	// Removed again with an undelivered event, then purged: nothing is kept.
	rc.SetAnswer(func(int, *http.Request) int { return http.StatusServiceUnavailable })
	s = start(t, c)
	if r := archivetest.Post(t, s.URL()+"/callback", signedAt("purged", callback.EventPublish, 2, time.Now())); r.Status != 200 {
		t.Fatalf("post: %d %s", r.Status, r.Raw)
	}
	stop(t, s)
	if len(segs()) == 0 {
		t.Fatal("an undelivered event's segment was not kept")
	}
	// Its local dead letters are a record, not queue state: the purge keeps them.
	dlFile := filepath.Join(c.Spool, "relay", "biz", "deadletters.jsonl")
	dl := []byte(`{"destination":"biz","reason":"rejected","event":{}}` + "\n")
	if err := os.WriteFile(dlFile, dl, 0o600); err != nil {
		t.Fatal(err)
	}
	c3 := c2
	c3.ForwardPurge = []string{"biz"}
	s = start(t, c3)
	stop(t, s)
	if _, err := os.Stat(filepath.Join(c.Spool, "relay", "biz", "cursor")); !os.IsNotExist(err) {
		t.Errorf("purged queue's cursor still on disk: %v", err)
	}
	if b, err := os.ReadFile(dlFile); err != nil || !bytes.Equal(b, dl) {
		t.Errorf("local dead letters after the purge: %v %q, want them kept", err, b)
	}
	if g := segs(); len(g) != 0 {
		t.Errorf("segments kept after the purge: %v", g)
	}
}

// Relay and archiver replay send each callback as Live sent it: the spec's pretty-printed signed
// samples and other layouts byte for byte, with the Content-Type as received (or none), so the
// receiver's own auth_sign check, raw-body hash or content-type check passes. A compact
// application/json callback's archive line carries no extra member.
func TestForwardExactBytesAndContentType(t *testing.T) { // not parallel: replay reads AWS_* from the environment
	e := newEnv(t, nil)
	rc := archivetest.NewReceiver(t, nil)
	c := e.config(t)
	forwardConfig(t, &c)
	c.SignatureWindow = 0 // the spec's samples were signed in 2020
	c.Forward = []string{"biz=" + rc.URL}
	s := start(t, c)

	compact := signedAt("exact-compact", callback.EventPublish, 1, time.Now())
	var tabs bytes.Buffer
	if err := json.Indent(&tabs, signedAt("exact-tabs", callback.EventPublish, 2, time.Now()), "", "\t"); err != nil {
		t.Fatal(err)
	}
	crlf := bytes.ReplaceAll(tabs.Bytes(), []byte("\n"), []byte("\r\n"))
	sent := []struct {
		name   string
		ct     []string
		body   []byte
		asSent bool // the compact application/json case: no archive.body, no archive.content_type
	}{
		{"spec sample PUBLISH", []string{"application/json"}, archivetest.Sample(t, "signed-publish.json"), false},
		{"spec sample PUBLISH_DONE, text/plain", []string{"text/plain; charset=utf-8"}, archivetest.Sample(t, "signed-publish_done.json"), false},
		{"compact application/json", []string{"application/json"}, compact, true},
		{"tabs and CRLF, charset", []string{"application/json; charset=UTF-8"}, append(crlf, "\r\n"...), false},
		{"no Content-Type", nil, signedAt("exact-none", callback.EventPublishDone, 3, time.Now()), false},
	}
	for _, m := range sent {
		if r := archivetest.PostAs(t, s.URL()+"/callback", m.ct, m.body); r.Status != 200 {
			t.Fatalf("%s: %d %s", m.name, r.Status, r.Raw)
		}
	}
	archivetest.Eventually(t, 10*time.Second, "every callback forwarded", func() bool { return len(rc.Accepted()) >= len(sent) })
	check := func(how string, got []archivetest.Received) {
		t.Helper()
		if len(got) != len(sent) {
			t.Fatalf("%s: %d requests, want %d", how, len(got), len(sent))
		}
		for i, g := range got {
			m := sent[i]
			if !bytes.Equal(g.Body, m.body) {
				t.Errorf("%s: %s: body\n%q\nwant the bytes Live sent\n%q", how, m.name, g.Body, m.body)
			}
			if ct := g.Header.Values("Content-Type"); !slices.Equal(ct, m.ct) {
				t.Errorf("%s: %s: Content-Type %q, want %q", how, m.name, ct, m.ct)
			}
			checkSigned(t, archivetest.Compact(t, g.Body))
		}
	}
	check("relay", rc.Accepted())

	stop(t, s) // uploads what the spool holds
	archived := archivetest.ReadToday(t, e.store)
	if len(archived) != len(sent) {
		t.Fatalf("%d archived, want %d", len(archived), len(sent))
	}
	for _, ev := range archived {
		if !bytes.Equal(ev.Body, compact) {
			continue
		}
		if a := archivetest.ArchiveField(t, ev.Raw); bytes.Contains(a, []byte(`"content_type"`)) || bytes.Contains(a, []byte(`"body"`)) {
			t.Errorf("a compact application/json callback's archive has extra members: %s", a)
		}
	}

	to := archivetest.NewReceiver(t, nil)
	t.Setenv("AWS_ACCESS_KEY_ID", e.gw.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.gw.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	var out, errb bytes.Buffer
	from, until := archivetest.Today()
	args := []string{"--from", from, "--to", until, "--store", c.Store, "--s3-endpoint", e.gw.Endpoint, "--to-url", to.URL}
	if code := replay.Run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, errb.String())
	}
	check("archiver replay --to-url", to.Accepted())
}
