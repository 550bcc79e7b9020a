package bench

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/callback"
)

func TestParseProcStatCPU(t *testing.T) {
	t.Parallel()
	// Fields 14 (utime) and 15 (stime) in clock ticks; the command name may hold spaces and ')'.
	line := "4242 (archiver (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 1000000 2000 18446744073709551615"
	got, err := parseProcStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 325 * clockTick; got != want {
		t.Fatalf("cpu = %s, want %s", got, want)
	}
	for _, bad := range []string{"", "42 no parens", "42 (a) S 1 2", "1 (a) S 1 1 1 0 -1 0 0 0 0 0 x 1 0"} {
		if _, err := parseProcStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseProcStatCPU(%q): no error", bad)
		}
	}
	// This process's own line parses, and CPU only grows.
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		if _, err := parseProcStatCPU(b); err != nil {
			t.Fatalf("/proc/self/stat: %v", err)
		}
	}
}

// The generator's callbacks are distinct, valid JSON and correctly signed (the archiver under
// test verifies them with --keys, so an unsigned or mis-signed body would measure only refusals).
func TestCallbackGenSignsDistinctBodies(t *testing.T) {
	t.Parallel()
	g := &callbackGen{tag: "abc123", group: 2, pubTS: 1764115206}
	seen := map[string]bool{}
	for seq := uint64(1); seq <= 3; seq++ {
		var ev struct {
			Domain, App, Stream, Event string
			AuthTimestamp              int64  `json:"auth_timestamp"`
			AuthSign                   string `json:"auth_sign"`
		}
		b := g.body(seq, 1764115300)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("body %s: %v", b, err)
		}
		if !callback.Valid(ev.AuthSign, olKey, ev.Event, ev.Domain, ev.App, ev.Stream, ev.AuthTimestamp) {
			t.Fatalf("body %s: signature does not verify", b)
		}
		if seen[ev.Stream] {
			t.Fatalf("stream %s repeated", ev.Stream)
		}
		seen[ev.Stream] = true
		if w, s, ok := parseIdentity(b, "abc123"); !ok || w != 2 || s != seq {
			t.Fatalf("identity of %s = (%d, %d, %v), want (2, %d, true)", ev.Stream, w, s, ok, seq)
		}
	}
}

func TestResponseEventID(t *testing.T) {
	t.Parallel()
	if _, ok := responseEventID([]byte(`{"status":"ok","event_id":"00112233445566778899aabbccddeeff"}`)); !ok {
		t.Fatal("a 200 body's event_id was not read")
	}
	for _, bad := range []string{`{}`, `{"event_id":"zz112233445566778899aabbccddeeff"}`, `{"event_id":"0011"}`, ``} {
		if _, ok := responseEventID([]byte(bad)); ok {
			t.Errorf("responseEventID(%q) accepted", bad)
		}
	}
}

// The overload check finds the capacity, then judges the first rate of at least twice it.
func TestOverloadCheck(t *testing.T) {
	t.Parallel()
	row := func(offered int, okPerS float64, p99, maxLat time.Duration, errs int64) *RateResult {
		sent := int64(offered * 5)
		return &RateResult{Offered: offered, Sent: sent, OK: int64(okPerS * 5), Goodput: okPerS, P99: p99, Max: maxLat, Errors: errs}
	}
	ms := time.Millisecond
	tests := []struct {
		name           string
		rows           []*RateResult
		pass, skipped  bool
		valueSubstring string
	}{
		{"graceful", []*RateResult{row(5000, 5000, 3*ms, 9*ms, 0), row(10000, 9000, 80*ms, 300*ms, 0), row(20000, 8000, 120*ms, 400*ms, 0)},
			true, false, "capacity 5000/s"},
		{"collapses", []*RateResult{row(5000, 5000, 3*ms, 9*ms, 0), row(10000, 3000, 2*time.Second, 5*time.Second, 0)},
			false, false, "at 10000/s"},
		{"slow answers", []*RateResult{row(5000, 5000, 3*ms, 9*ms, 0), row(10000, 5000, 200*ms, 1500*ms, 0)},
			false, false, "max 1.50s"},
		{"unanswered", []*RateResult{row(5000, 5000, 3*ms, 9*ms, 0), row(10000, 5000, 200*ms, 900*ms, 7)},
			false, false, "7 unanswered"},
		{"never saturated", []*RateResult{row(5000, 5000, 3*ms, 9*ms, 0), row(10000, 10000, 3*ms, 9*ms, 0)},
			false, true, "no rate of twice"},
	}
	for _, tc := range tests {
		c := overloadCheck(&TargetRun{Name: "spool", Rows: tc.rows})
		if c.Pass != tc.pass || c.Skipped != tc.skipped || !strings.Contains(c.Value, tc.valueSubstring) {
			t.Errorf("%s: pass %v skipped %v value %q; want pass %v skipped %v, value containing %q",
				tc.name, c.Pass, c.Skipped, c.Value, tc.pass, tc.skipped, tc.valueSubstring)
		}
	}
}

// attack against a local server that answers every third request 503 and the rest 200 with an
// event_id: counts by status, the acknowledged ids and latency from the intended send time.
func TestAttackCountsAndLatency(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Stream string }
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.Stream == "" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		time.Sleep(2 * time.Millisecond)
		if n.Add(1)%3 == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		sum := sha256.Sum256([]byte(ev.Stream))
		fmt.Fprintf(w, `{"status":"ok","event_id":"%x"}`+"\n", sum[:16])
	}))
	defer srv.Close()
	r := &runner{log: io.Discard}
	run := &TargetRun{Name: "test", ackedIDs: map[[16]byte]struct{}{}}
	gen := &callbackGen{tag: "abc123", group: 1, pubTS: 1764115206}
	o := DefaultOpenLoop()
	row := r.attack(context.Background(), o.sender(), run.Name, run.ackedIDs, gen, srv.URL+"/callback", os.Getpid(), 200, time.Second)
	if row.Sent < 150 || row.Sent > 250 {
		t.Fatalf("sent %d at 200/s for 1s", row.Sent)
	}
	if row.OK+row.Shed != row.Sent || row.Errors != 0 || row.Other != 0 {
		t.Fatalf("sent %d: ok %d, shed %d, other %d, errors %d (%s)", row.Sent, row.OK, row.Shed, row.Other, row.Errors, row.Err)
	}
	if row.Shed < row.Sent/4 || int64(len(run.ackedIDs)) != row.OK {
		t.Fatalf("shed %d of %d, %d distinct ids acknowledged for %d 200s", row.Shed, row.Sent, len(run.ackedIDs), row.OK)
	}
	if row.P50 < 2*time.Millisecond || row.Max < row.P99 || row.P99 < row.P50 {
		t.Fatalf("latencies p50 %s p99 %s max %s: below the server's 2ms or out of order", row.P50, row.P99, row.Max)
	}
	if row.CPU < 0 {
		t.Fatalf("CPU %s: the process's CPU time went backwards", row.CPU)
	}
}

// attack against a server that never answers every tenth request: those requests are errors and
// enter the latency figures at the sender timeout, so p99 and max show them.
func TestAttackCountsUnansweredAtTimeout(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so the server notices the sender hanging up
		if n.Add(1)%10 == 0 {
			select { // the sender gives up first
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
		fmt.Fprintln(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	r := &runner{log: io.Discard}
	run := &TargetRun{Name: "test", ackedIDs: map[[16]byte]struct{}{}}
	gen := &callbackGen{tag: "abc123", group: 1, pubTS: 1764115206}
	o := DefaultOpenLoop()
	o.Timeout = 300 * time.Millisecond
	row := r.attack(context.Background(), o.sender(), run.Name, run.ackedIDs, gen, srv.URL+"/callback", os.Getpid(), 100, time.Second)
	if row.Errors < row.Sent/20 || row.OK+row.Errors != row.Sent {
		t.Fatalf("sent %d: ok %d, errors %d (%s); want every tenth unanswered", row.Sent, row.OK, row.Errors, row.Err)
	}
	if row.P99 < o.Timeout || row.Max < o.Timeout {
		t.Fatalf("p99 %s, max %s with %d of %d unanswered: below the sender timeout %s", row.P99, row.Max, row.Errors, row.Sent, o.Timeout)
	}
	if row.P50 >= o.Timeout {
		t.Fatalf("p50 %s: at the timeout though 9 in 10 answer at once", row.P50)
	}
}

// Poisson arrivals keep the mean rate, with exponential gaps (their standard deviation equals
// their mean, unlike a metronome's zero), in order, and the same for every target of a run;
// constant arrivals are due at n/rate.
func TestScheduleArrivals(t *testing.T) {
	t.Parallel()
	c := newSchedule("constant", 5000, time.Second)
	if got := c.due(10); got != 2*time.Millisecond {
		t.Errorf("constant: request 10 due at %s, want 2ms", got)
	}
	p := newSchedule("poisson", 5000, 10*time.Second)
	if n := len(p.dues); n < 49000 || n > 51000 {
		t.Fatalf("poisson: %d arrivals in 10s at 5000/s", n)
	}
	var sum, sq float64
	for i := 1; i < len(p.dues); i++ {
		gap := float64(p.dues[i] - p.dues[i-1])
		if gap < 0 {
			t.Fatalf("arrival %d before arrival %d", i, i-1)
		}
		sum += gap
		sq += gap * gap
	}
	n := float64(len(p.dues) - 1)
	mean := sum / n
	sd := math.Sqrt(sq/n - mean*mean)
	if r := sd / mean; r < 0.9 || r > 1.1 {
		t.Errorf("poisson gaps: sd/mean %.2f, want about 1", r)
	}
	if q := newSchedule("poisson", 5000, 10*time.Second); q.dues[1000] != p.dues[1000] {
		t.Error("two schedules of one rate differ")
	}
	if _, stop := p.Pace(11*time.Second, uint64(len(p.dues))); !stop {
		t.Error("Pace did not stop after the last arrival")
	}
	if wait, _ := p.Pace(0, 5); wait != p.dues[5] {
		t.Errorf("Pace(0, 5) = %s, want %s", wait, p.dues[5])
	}
}
