package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Each body takes its turn on the shared link, first come first served, after the fixed latency:
// what makes the store, not the CPU, the archiver's bottleneck in the overload scenario.
func TestSlowStoreDelay(t *testing.T) {
	t.Parallel()
	s := &slowStore{Latency: 30 * time.Millisecond, BytesPerSec: 1000}
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		at   time.Duration // after now
		n    int64
		want time.Duration
	}{
		{0, 0, 30 * time.Millisecond},                         // no body: latency only, link untouched
		{0, 500, 530 * time.Millisecond},                      // 500 B at 1000 B/s
		{100 * time.Millisecond, 500, 930 * time.Millisecond}, // queued behind the first: link free at 500ms, done at 1s
		{2 * time.Second, 100, 130 * time.Millisecond},        // link idle again
		{2 * time.Second, -1, 30 * time.Millisecond},          // unknown length: latency only
	}
	for i, tc := range tests {
		if got := s.delay(now.Add(tc.at), tc.n); got != tc.want {
			t.Errorf("request %d (%d bytes at +%s): delay %s, want %s", i, tc.n, tc.at, got, tc.want)
		}
	}
	if got := (&slowStore{Latency: time.Millisecond}).delay(now, 1<<20); got != time.Millisecond {
		t.Errorf("no bandwidth limit: delay %s, want the latency only", got)
	}
}

// The proxy passes requests through with the Host header the client signed (SigV4 covers it),
// and holds each for at least the latency.
func TestSlowStoreProxies(t *testing.T) {
	t.Parallel()
	var gotHost, gotBody string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost = r.Host
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.WriteHeader(http.StatusCreated)
	}))
	defer backend.Close()
	s, err := startSlowStore(backend.URL, 40*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req, _ := http.NewRequest(http.MethodPut, s.URL+"/bucket/key", strings.NewReader("payload"))
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took := time.Since(t0); took < 40*time.Millisecond {
		t.Errorf("answered after %s, want at least the 40ms latency", took)
	}
	if resp.StatusCode != http.StatusCreated || gotBody != "payload" {
		t.Errorf("status %d, body %q reached the server; want 201, %q", resp.StatusCode, gotBody, "payload")
	}
	if want := strings.TrimPrefix(s.URL, "http://"); gotHost != want {
		t.Errorf("server saw Host %q, want the proxy's %q (the one signed)", gotHost, want)
	}
	if _, err := startSlowStore("not a url", 0, 0); err == nil {
		t.Error("startSlowStore(\"not a url\"): no error")
	}
}
