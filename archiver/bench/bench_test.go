package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	seq := func(n int) []time.Duration { // 1..n ms
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = time.Duration(i+1) * time.Millisecond
		}
		return s
	}
	ms := time.Millisecond
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{7 * ms}, 99, 7 * ms},
		{"p50 of 1..100", seq(100), 50, 50 * ms},
		{"p99 of 1..100", seq(100), 99, 99 * ms},
		{"p100 is the max", seq(100), 100, 100 * ms},
		{"p0 is the min", seq(100), 0, 1 * ms},
		{"p50 of 1..4 (nearest rank, no interpolation)", seq(4), 50, 2 * ms},
		{"p50 of 1..5", seq(5), 50, 3 * ms},
		{"p99 of 1..10 rounds up to the max", seq(10), 99, 10 * ms},
		{"p99.9 of 1..1000", seq(1000), 99.9, 999 * ms},
		{"p90 of 1..1000", seq(1000), 90, 900 * ms},
	}
	for _, tc := range tests {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("%s: percentile(p%g) = %s, want %s", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestMergeSorted(t *testing.T) {
	t.Parallel()
	got := mergeSorted([][]time.Duration{{5, 1}, nil, {3, 2, 4}})
	for i, v := range got {
		if v != time.Duration(i+1) {
			t.Fatalf("mergeSorted = %v, want 1..5", got)
		}
	}
	if len(got) != 5 {
		t.Fatalf("len %d, want 5", len(got))
	}
}

func TestBitset(t *testing.T) {
	t.Parallel()
	var a, b bitset
	for _, i := range []uint64{0, 1, 63, 64, 1000, 100000} {
		if a.set(i) {
			t.Fatalf("bit %d set before", i)
		}
	}
	if !a.set(1000) {
		t.Fatal("second set of 1000 not reported")
	}
	b.set(1)
	b.set(64)
	b.set(5)
	if a.count() != 6 || b.count() != 3 {
		t.Fatalf("counts %d %d", a.count(), b.count())
	}
	if got := a.andNotCount(b); got != 4 { // 0, 63, 1000, 100000
		t.Fatalf("a &^ b = %d, want 4", got)
	}
	if got := b.andNotCount(a); got != 1 { // 5
		t.Fatalf("b &^ a = %d, want 1", got)
	}
}

func TestRequestTemplateIdentity(t *testing.T) {
	t.Parallel()
	tag := "abc123"
	tmpl, err := newRequestTemplate("127.0.0.1:1", "/callback", tag, 7, 1764115200)
	if err != nil {
		t.Fatal(err)
	}
	size := len(tmpl.buf)
	seen := map[string]bool{}
	for _, seq := range []uint64{0, 1, 9, 10, 12345, 9999999999} {
		tmpl.setSeq(seq)
		if len(tmpl.buf) != size {
			t.Fatal("request size changed")
		}
		head, body, ok := bytes.Cut(tmpl.buf, []byte("\r\n\r\n"))
		if !ok || !bytes.Contains(append(head, "\r\n"...), []byte("Content-Length: "+itoa(len(body))+"\r\n")) {
			t.Fatalf("Content-Length does not match the body:\n%s", tmpl.buf)
		}
		if !bytes.Equal(body, bodyFor(tag, 7, seq, 1764115200)) {
			t.Fatalf("seq %d: body\n%s\nwant\n%s", seq, body, bodyFor(tag, 7, seq, 1764115200))
		}
		w, s, ok := parseIdentity(body, tag)
		if !ok || w != 7 || s != seq {
			t.Fatalf("parseIdentity = %d %d %v, want 7 %d", w, s, ok, seq)
		}
		stream := string(fieldValue(body, streamKey))
		if seen[stream] {
			t.Fatalf("stream %q repeated", stream)
		}
		seen[stream] = true
	}
	if n := len(bodyFor(tag, 0, 0, 1764115200)); n < 420 || n > 520 {
		t.Errorf("body is %d bytes, want about 450", n)
	}
	if _, _, ok := parseIdentity([]byte(`{"stream":"bench-zzzzzz-w001-0000000001"}`), tag); ok {
		t.Error("identity of another run accepted")
	}
	if _, _, ok := parseIdentity([]byte(`{"stream":"bench-abc123-w001-00000"}`), tag); ok {
		t.Error("truncated identity accepted")
	}
}

// A short real load run against an in-process server: every request carries a distinct
// identity, every 200 is counted exactly once, and the server saw exactly what was counted.
func TestRunLoadUniqueIdentities(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		streams = map[string]int{}
		lengths = map[int64]bool{}
		n       int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		n++
		fail := n%10 == 0 // every 10th answered 503: counted as an error, not acknowledged
		streams[string(fieldValue(body, streamKey))]++
		lengths[r.ContentLength] = true
		mu.Unlock()
		if r.URL.Path != "/callback" || r.Method != http.MethodPost {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		if fail {
			http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(okBody)
	}))
	t.Cleanup(srv.Close)
	tag := newRunTag()
	res, err := RunLoad(context.Background(), LoadConfig{
		Addr: strings.TrimPrefix(srv.URL, "http://"), Conns: 4,
		Warmup: 100 * time.Millisecond, Duration: 300 * time.Millisecond, Timeout: 5 * time.Second,
		Tag: tag, PublishTS: 1764115200,
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for s, c := range streams {
		if c != 1 {
			t.Fatalf("stream %q sent %d times", s, c)
		}
	}
	if len(lengths) != 1 {
		t.Errorf("Content-Length varied: %v", lengths)
	}
	answered := res.AllOK + res.AllErrors
	if int(answered) != n || n == 0 {
		t.Fatalf("server saw %d requests, load generator counted %d (200s %d, errors %d)", n, answered, res.AllOK, res.AllErrors)
	}
	if res.AllErrors != int64(n/10) || res.Status[503] == 0 || len(res.ErrorSamples) == 0 {
		t.Errorf("errors %d (status %v, samples %v), want %d 503s", res.AllErrors, res.Status, res.ErrorSamples, n/10)
	}
	if res.OK > res.AllOK || res.Requests > int64(n) || res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Errorf("inconsistent figures: %+v", res)
	}
	var acked int64
	for _, b := range res.acked {
		acked += b.count()
	}
	if acked != res.AllOK {
		t.Errorf("acked bits %d != 200s %d", acked, res.AllOK)
	}
	var perSecond int64
	for _, v := range res.PerSecondOK {
		perSecond += v
	}
	if perSecond != res.AllOK {
		t.Errorf("per-second 200s sum to %d, want %d", perSecond, res.AllOK)
	}

	// Reading the server's view back through the tally finds exactly the acknowledged set plus
	// the 503s as "extra" (they reached the server but were not acknowledged).
	tl := newTally(tag, 4)
	for s := range streams {
		tl.line([]byte(`{"stream":"` + s + `"}`))
	}
	rb := tl.finish(res.acked)
	if rb.Missing != 0 || rb.Duplicates != 0 || rb.Extra != res.AllErrors || rb.Acked != res.AllOK || !rb.OK {
		t.Errorf("read-back %+v, want missing 0, duplicates 0, extra %d, acked %d", rb, res.AllErrors, res.AllOK)
	}
}

func TestRunLoadRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []LoadConfig{
		{Addr: "127.0.0.1:1", Conns: 0, Duration: time.Second},
		{Addr: "127.0.0.1:1", Conns: 1001, Duration: time.Second},
		{Addr: "127.0.0.1:1", Conns: 1, Duration: 0},
	} {
		if _, err := RunLoad(context.Background(), cfg); err == nil {
			t.Errorf("RunLoad(%+v) accepted", cfg)
		}
	}
}

func TestTally(t *testing.T) {
	t.Parallel()
	tag := "t0t0t0"
	acked := make([]bitset, 2)
	acked[0].set(0)
	acked[0].set(1)
	acked[1].set(0)
	line := func(w int, seq uint64, id string) []byte {
		b := bodyFor(tag, w, seq, 1)
		return append(b[:len(b)-1], []byte(`,"archive":{"event_id":"`+id+`"}}`)...)
	}
	id := func(c byte) string { return strings.Repeat(string(c), 32) }
	tl := newTally(tag, 2)
	tl.line(line(0, 0, id('a')))
	tl.line(line(0, 0, id('a'))) // duplicate
	tl.line(line(1, 0, id('b')))
	tl.line(line(1, 5, id('c')))                       // extra: never acknowledged
	tl.line([]byte(`{"stream":"someone-else","x":1}`)) // foreign
	rb := tl.finish(acked)
	want := ReadBack{Lines: 5, UniqueIDs: 3, Acked: 3, Missing: 1, Duplicates: 1, Extra: 1, Foreign: 1}
	if rb.Lines != want.Lines || rb.UniqueIDs != want.UniqueIDs || rb.Acked != want.Acked || rb.Missing != want.Missing ||
		rb.Duplicates != want.Duplicates || rb.Extra != want.Extra || rb.Foreign != want.Foreign || rb.OK {
		t.Fatalf("got %+v, want %+v (OK false)", rb, want)
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	row := func(name string, rps float64, p99 time.Duration) *TargetResult {
		return &TargetResult{Name: name, Load: &LoadResult{ReqPerSec: rps, P99: p99, P50: p99 / 3, OK: int64(rps) * 15}}
	}
	archRow := func(name string, rps float64, p99 time.Duration, rss int64, objects int, lines int64) *TargetResult {
		t := row(name, rps, p99)
		t.PeakRSS = rss
		t.ReadBack = &ReadBack{Objects: objects, Lines: lines, UniqueIDs: lines, Acked: lines, OK: true}
		return t
	}
	good := &Results{Targets: []*TargetResult{
		row("bare", 60000, 10*time.Millisecond),
		row("fsync", 3400, 20*time.Millisecond),
		row("naive", 1900, 40*time.Millisecond),
		archRow("spool", 35000, 15*time.Millisecond, 60<<20, 10, 600000),
		archRow("store", 12000, 50*time.Millisecond, 60<<20, 900, 200000),
		archRow("outage", 30000, 15*time.Millisecond, 90<<20, 20, 900000),
	}}
	checks := evaluate(good)
	good.Checks = checks
	if Failed(checks, false) {
		t.Fatalf("good run failed: %+v", checks)
	}
	if len(checks) < 12 {
		t.Fatalf("only %d checks: %+v", len(checks), checks)
	}

	bad := func(mut func(r *Results)) *Results {
		r := &Results{}
		for _, t := range good.Targets {
			c := *t
			l := *t.Load
			c.Load = &l
			if t.ReadBack != nil {
				rb := *t.ReadBack
				c.ReadBack = &rb
			}
			r.Targets = append(r.Targets, &c)
		}
		mut(r)
		return r
	}
	tests := []struct {
		name      string
		r         *Results
		check     string
		hard      bool
		failsSoft bool // fails even with --no-fail
	}{
		{"spool too slow vs bare", bad(func(r *Results) { r.Target("spool").Load.ReqPerSec = 25000 }), "spool: req/s vs bare", false, false},
		{"spool p99 too high", bad(func(r *Results) { r.Target("spool").Load.P99 = 25 * time.Millisecond }), "spool: p99 vs bare p99", false, false},
		{"spool too many objects", bad(func(r *Results) { r.Target("spool").ReadBack.Objects = 700 }), "spool: objects per 1,000 events", false, false},
		{"spool RSS", bad(func(r *Results) { r.Target("spool").MaxSampledRSS = 200 << 20 }), "spool: peak RSS", false, false},
		{"store too slow", bad(func(r *Results) { r.Target("store").Load.ReqPerSec = 5000 }), "store: req/s vs naive", false, false},
		{"spool lost events", bad(func(r *Results) { r.Target("spool").ReadBack.Missing, r.Target("spool").ReadBack.OK = 1, false }), "spool: events read back = 200s answered", true, true},
		{"outage errors", bad(func(r *Results) { r.Target("outage").Load.AllErrors = 3 }), "outage: errors answered (warm-up included)", true, true},
		{"target crashed", bad(func(r *Results) { r.Target("store").Err = "exited with status 2" }), "store: ran to completion", true, true},
	}
	for _, tc := range tests {
		checks := evaluate(tc.r)
		var found bool
		for _, c := range checks {
			if c.Name == tc.check {
				found = true
				if c.Pass || c.Hard != tc.hard {
					t.Errorf("%s: check %+v, want FAIL hard=%v", tc.name, c, tc.hard)
				}
			}
		}
		if !found {
			t.Errorf("%s: no check %q in %+v", tc.name, tc.check, checks)
		}
		if !Failed(checks, false) {
			t.Errorf("%s: run not failed", tc.name)
		}
		if Failed(checks, true) != tc.failsSoft {
			t.Errorf("%s: with --no-fail, failed=%v want %v", tc.name, !tc.failsSoft, tc.failsSoft)
		}
	}

	// Peers not run: ratio checks are skipped, not failed.
	only := &Results{Targets: []*TargetResult{archRow("spool", 35000, 15*time.Millisecond, 60<<20, 10, 600000)}}
	for _, c := range evaluate(only) {
		if !c.Pass && !c.Skipped {
			t.Errorf("spool alone: %+v fails", c)
		}
	}

	var buf bytes.Buffer
	WriteMarkdown(&buf, good)
	for _, want := range []string{"| archiver spool |", "req/s / naive", "| spool: req/s vs fsync |", "PASS", "does not depend on the flush interval"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, buf.String())
		}
	}
}
