package liveapi_test

// Integration tests: the client against the real emulator (internal/emulator),
// started in-process on 127.0.0.1 and closed by t.Cleanup.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/aksk"
	"github.com/livehook/terraform-provider-livehook/internal/emulator"
	"github.com/livehook/terraform-provider-livehook/internal/liveapi"
)

const (
	emuProject = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0"
	emuAK      = "EMULATORAK"
	emuSK      = "emulator-secret-key-0123456789"
	pushDomain = "push.example.com"
)

var signKey = strings.Repeat("0123456789abcdef", 2) // 32 characters, the minimum

func startEmulator(t *testing.T, mod func(*emulator.Config)) (*emulator.Server, string) {
	t.Helper()
	cfg := emulator.Config{
		ProjectID: emuProject, AccessKey: emuAK, SecretKey: emuSK,
		Domains: []string{pushDomain, "push2.example.com", "push3.example.com", "push4.example.com"},
	}
	if mod != nil {
		mod(&cfg)
	}
	return emulator.StartT(t, cfg)
}

func emuClient(t *testing.T, base string, mod func(*liveapi.Config)) *liveapi.Client {
	t.Helper()
	cfg := liveapi.Config{
		Endpoint:    base,
		ProjectID:   emuProject,
		Credentials: aksk.Credentials{AccessKey: emuAK, SecretKey: emuSK},
		MinBackoff:  10 * time.Millisecond,
		MaxBackoff:  200 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := liveapi.New(cfg)
	if err != nil {
		t.Fatalf("liveapi.New: %v", err)
	}
	return c
}

// TestEmulatorLifecycle walks one domain through every success status of the spec:
// GET without config, 201 create, GET, 200 overwrite, 204 delete, delete again, GET.
func TestEmulatorLifecycle(t *testing.T) {
	t.Parallel()
	for _, token := range []string{"", "temporary-security-token-abc"} {
		t.Run(fmt.Sprintf("token=%v", token != ""), func(t *testing.T) {
			t.Parallel()
			srv, base := startEmulator(t, nil)
			c := emuClient(t, base, func(c *liveapi.Config) { c.Credentials.SecurityToken = token })
			ctx := context.Background()
			first := liveapi.Notification{URL: "https://hooks.example.com/live", AuthSignKey: signKey, CallBackArea: "mainland_china"}
			second := liveapi.Notification{URL: "http://hooks.example.com/v2?x=1&y=%20", CallBackArea: "outside_mainland_china"}

			if _, err := c.Get(ctx, pushDomain); !errors.Is(err, liveapi.ErrNotFound) {
				t.Fatalf("Get before create = %v, want ErrNotFound", err)
			}
			if created, err := c.Put(ctx, pushDomain, first); err != nil || !created {
				t.Fatalf("first Put = %v, %v; want created (201)", created, err)
			}
			if got, err := c.Get(ctx, pushDomain); err != nil || *got != first {
				t.Fatalf("Get = %+v, %v; want %+v", got, err, first)
			}
			if created, err := c.Put(ctx, pushDomain, second); err != nil || created {
				t.Fatalf("second Put = %v, %v; want overwritten (200)", created, err)
			}
			if n, ok := srv.Config(pushDomain); !ok || n.URL != second.URL || n.AuthSignKey != "" || n.CallBackArea != second.CallBackArea {
				t.Fatalf("emulator holds %+v, %v; want %+v", n, ok, second)
			}
			if err := c.Delete(ctx, pushDomain); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, ok := srv.Config(pushDomain); ok {
				t.Fatal("config still present after Delete")
			}
			if err := c.Delete(ctx, pushDomain); err != nil {
				t.Fatalf("Delete of an already deleted config: %v", err)
			}
			if _, err := c.Get(ctx, pushDomain); !errors.Is(err, liveapi.ErrNotFound) {
				t.Fatalf("Get after delete = %v, want ErrNotFound", err)
			}
			st := srv.Stats()
			want := map[int]int64{200: 4, 201: 1, 204: 2} // GET x3 (two of them empty) + overwrite
			for code, n := range want {
				if st.ByStatus[code] != n {
					t.Errorf("emulator answered %d %d times, want %d (all: %v)", code, st.ByStatus[code], n, st.ByStatus)
				}
			}
			if cs := c.Stats(); cs.Requests != 7 || cs.Retries != 0 {
				t.Errorf("client Stats = %+v, want 7 requests, no retries", cs)
			}
		})
	}
}

// TestEmulatorErrors covers the failure rows of the spec table; none is retried.
func TestEmulatorErrors(t *testing.T) {
	t.Parallel()
	srv, base := startEmulator(t, nil)
	tests := []struct {
		name     string
		mod      func(*liveapi.Config)
		op       string
		domain   string
		n        liveapi.Notification
		wantNil  bool
		wantNF   bool
		status   int
		code     string
		contains string
	}{
		{name: "PUT unknown domain", op: "PUT", domain: "nope.example.com", n: liveapi.Notification{URL: "https://h"}, status: 400, code: "LIVE.100011001", contains: "does not exist"},
		{name: "GET unknown domain", op: "GET", domain: "nope.example.com", wantNF: true, status: 400, code: "LIVE.100011001"},
		{name: "DELETE unknown domain", op: "DELETE", domain: "nope.example.com", wantNil: true},
		{name: "bad url scheme", op: "PUT", domain: "push2.example.com", n: liveapi.Notification{URL: "ftp://h/x"}, status: 400, code: "LIVE.100011001", contains: "url must start with http"},
		{name: "missing url", op: "PUT", domain: "push2.example.com", n: liveapi.Notification{CallBackArea: "mainland_china"}, status: 400, code: "LIVE.100011001", contains: "url is required"},
		{name: "key too short", op: "PUT", domain: "push2.example.com", n: liveapi.Notification{URL: "https://h", AuthSignKey: signKey[:31]}, status: 400, code: "LIVE.100011001", contains: "auth_sign_key must be 32 to 128"},
		{name: "key too long", op: "PUT", domain: "push2.example.com", n: liveapi.Notification{URL: "https://h", AuthSignKey: strings.Repeat("k", 129)}, status: 400, code: "LIVE.100011001", contains: "auth_sign_key must be 32 to 128"},
		{name: "bad area", op: "PUT", domain: "push2.example.com", n: liveapi.Notification{URL: "https://h", CallBackArea: "mars"}, status: 400, code: "LIVE.100011001", contains: "call_back_area must be"},
		{name: "wrong secret", mod: func(c *liveapi.Config) { c.Credentials.SecretKey = "wrong-secret-key-xyz" }, op: "GET", domain: pushDomain, status: 401, code: "APIGW.0301", contains: "HW_ACCESS_KEY/HW_SECRET_KEY"},
		{name: "unknown access key", mod: func(c *liveapi.Config) { c.Credentials.AccessKey = "OTHERAK" }, op: "PUT", domain: pushDomain, n: liveapi.Notification{URL: "https://h"}, status: 401, code: "APIGW.0301", contains: "15 minutes"},
		{name: "wrong project on GET", mod: func(c *liveapi.Config) { c.ProjectID = "ffffffffffffffffffffffffffffffff" }, op: "GET", domain: pushDomain, status: 404, code: "APIGW.0101"},
		{name: "wrong project on DELETE is not 'already gone'", mod: func(c *liveapi.Config) { c.ProjectID = "ffffffffffffffffffffffffffffffff" }, op: "DELETE", domain: pushDomain, status: 404, code: "APIGW.0101"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := emuClient(t, base, tt.mod)
			ctx := context.Background()
			var err error
			switch tt.op {
			case "PUT":
				_, err = c.Put(ctx, tt.domain, tt.n)
			case "GET":
				_, err = c.Get(ctx, tt.domain)
			case "DELETE":
				err = c.Delete(ctx, tt.domain)
			}
			if cs := c.Stats(); cs.Requests != 1 || cs.Retries != 0 {
				t.Errorf("client Stats = %+v, want exactly 1 request (never retried)", cs)
			}
			if tt.wantNil {
				if err != nil {
					t.Fatalf("%s = %v, want nil", tt.op, err)
				}
				return
			}
			if errors.Is(err, liveapi.ErrNotFound) != tt.wantNF {
				t.Errorf("errors.Is(ErrNotFound) = %v for %v", !tt.wantNF, err)
			}
			var ae *liveapi.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not an APIError", err, err)
			}
			if ae.StatusCode != tt.status || ae.Code != tt.code || ae.Attempts != 1 || ae.RequestID == "" || ae.Domain != tt.domain || ae.Operation != tt.op {
				t.Errorf("APIError = %+v, want %s %d %s after 1 attempt with a request ID", ae, tt.op, tt.status, tt.code)
			}
			if ae.Unauthorized() != (tt.status == 401) {
				t.Errorf("Unauthorized() = %v for HTTP %d", ae.Unauthorized(), tt.status)
			}
			if !strings.Contains(err.Error(), tt.contains) || !strings.Contains(err.Error(), ae.RequestID) {
				t.Errorf("error %q lacks %q or the request ID", err, tt.contains)
			}
			for _, secret := range []string{emuSK, "wrong-secret-key-xyz", signKey[:31], strings.Repeat("k", 129)} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a secret: %v", err)
				}
			}
		})
	}
	_ = srv
}

// TestEmulatorRetries: injected 500s and 429s are retried (429 honouring Retry-After).
func TestEmulatorRetries(t *testing.T) {
	t.Parallel()
	t.Run("429 retried", func(t *testing.T) {
		t.Parallel()
		srv, base := startEmulator(t, func(c *emulator.Config) { c.RateLimit = 60 }) // bucket of 1, one token a second
		// No client-side limiter: it will hit the limit.
		c := emuClient(t, base, func(c *liveapi.Config) {
			c.HTTPClient = &http.Client{Transport: trackingTransport{next: http.DefaultTransport}}
		})
		for i := range 3 {
			tr := &callTrack{}
			ctx := context.WithValue(context.Background(), trackKey{}, tr)
			if _, err := c.Put(ctx, pushDomain, liveapi.Notification{URL: fmt.Sprintf("https://h/%d", i)}); err != nil {
				t.Fatalf("Put %d: %v", i, err)
			}
			for j := 1; j < len(tr.statuses); j++ {
				if tr.statuses[j] == 429 && tr.statuses[j-1] == 429 {
					t.Errorf("Put %d was answered 429 twice in a row (Retry-After not honoured?): %v", i, tr.statuses)
				}
			}
		}
		cs, es := c.Stats(), srv.Stats()
		if cs.Throttled == 0 || es.Throttled != cs.Throttled || es.ByStatus[429] != cs.Throttled {
			t.Errorf("client Stats %+v, emulator Stats %+v: want 429s seen and counted alike", cs, es)
		}
		if cs.Retries != cs.Throttled {
			t.Errorf("retries %d != 429s %d", cs.Retries, cs.Throttled)
		}
	})
	t.Run("500 retried until the budget ends", func(t *testing.T) {
		t.Parallel()
		srv, base := startEmulator(t, func(c *emulator.Config) { c.FailRate = 1 })
		c := emuClient(t, base, func(c *liveapi.Config) { c.MaxRetries = 2 })
		_, err := c.Get(context.Background(), pushDomain)
		var ae *liveapi.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 500 || ae.Code != "LIVE.100011000" || ae.Attempts != 3 {
			t.Fatalf("error = %v, want 500 LIVE.100011000 after 3 attempts", err)
		}
		if es := srv.Stats(); es.InjectedFailures != 3 {
			t.Errorf("emulator injected %d failures, want 3", es.InjectedFailures)
		}
	})
}

// callTrack records the statuses one logical call saw on the wire.
type callTrack struct {
	mu       sync.Mutex
	statuses []int
}

type trackKey struct{}

// trackingTransport records each answer's status on the call's callTrack.
type trackingTransport struct{ next http.RoundTripper }

func (tt trackingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := tt.next.RoundTrip(r)
	if tr, ok := r.Context().Value(trackKey{}).(*callTrack); ok {
		st := 0 // a transport error
		if err == nil {
			st = resp.StatusCode
		}
		tr.mu.Lock()
		tr.statuses = append(tr.statuses, st)
		tr.mu.Unlock()
	}
	return resp, err
}

// TestEmulatorLoad is a load test: emulator failing 30% of requests and
// limited to 600/min, client limited to 10/s; 60 mixed calls all succeed, no call is
// answered 429 twice in a row, and a 400 is never retried. Timings are logged, not asserted.
func TestEmulatorLoad(t *testing.T) {
	t.Parallel()
	srv, base := startEmulator(t, func(c *emulator.Config) { c.FailRate = 0.3; c.RateLimit = 600 })
	domains := []string{pushDomain, "push2.example.com", "push3.example.com", "push4.example.com"}
	for _, d := range domains { // so every GET has something to read
		if err := srv.SetConfig(d, emulator.Notification{URL: "https://seed.example.com/" + d}); err != nil {
			t.Fatal(err)
		}
	}
	c := emuClient(t, base, func(c *liveapi.Config) {
		c.RequestsPerSecond = 10
		// 0.3^13 ≈ 1.6e-7 per call: with the default 6 retries (0.3^7 ≈ 2e-4 per call) a
		// 60-call run would fail about once in 80, which a test must not.
		c.MaxRetries = 12
		c.HTTPClient = &http.Client{Transport: trackingTransport{next: http.DefaultTransport}, Timeout: 30 * time.Second}
	})

	type call struct {
		put, bad bool // bad: an invalid body, must end in one 400
		domain   string
		track    *callTrack
		err      error
	}
	var calls []*call
	for i := range 60 {
		calls = append(calls, &call{put: i%2 == 0, domain: domains[i%len(domains)], track: &callTrack{}})
	}
	for i := range 6 {
		calls = append(calls, &call{put: true, bad: true, domain: domains[i%len(domains)], track: &callTrack{}})
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	work := make(chan *call)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for cl := range work {
				cctx := context.WithValue(ctx, trackKey{}, cl.track)
				switch {
				case cl.bad:
					_, cl.err = c.Put(cctx, cl.domain, liveapi.Notification{URL: "https://h", CallBackArea: "nowhere"})
				case cl.put:
					_, cl.err = c.Put(cctx, cl.domain, liveapi.Notification{URL: "https://hooks.example.com/" + cl.domain, AuthSignKey: signKey})
				default:
					var n *liveapi.Notification
					n, cl.err = c.Get(cctx, cl.domain)
					if cl.err == nil && n.URL == "" {
						cl.err = errors.New("empty notification")
					}
				}
			}
		})
	}
	for _, cl := range calls {
		work <- cl
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)

	var maxAttempts int
	for i, cl := range calls {
		st := cl.track.statuses
		maxAttempts = max(maxAttempts, len(st))
		for j := 1; j < len(st); j++ {
			if st[j] == 429 && st[j-1] == 429 {
				t.Errorf("call %d was answered 429 twice in a row: %v", i, st)
			}
		}
		for j, s := range st {
			if s == 400 && j != len(st)-1 {
				t.Errorf("call %d retried after a 400: %v", i, st)
			}
		}
		if cl.bad {
			var ae *liveapi.APIError
			if !errors.As(cl.err, &ae) || ae.StatusCode != 400 || len(st) == 0 || st[len(st)-1] != 400 {
				t.Errorf("invalid call %d = %v (statuses %v), want a 400 APIError", i, cl.err, st)
			}
			continue
		}
		if cl.err != nil {
			t.Errorf("call %d (put=%v %s) failed after %v: %v", i, cl.put, cl.domain, st, cl.err)
		}
		if len(st) == 0 || st[len(st)-1] >= 300 {
			t.Errorf("call %d ended on %v", i, st)
		}
	}
	cs, es := c.Stats(), srv.Stats()
	if cs.Requests != es.Requests {
		t.Errorf("client sent %d requests, emulator counted %d", cs.Requests, es.Requests)
	}
	if es.InjectedFailures == 0 {
		t.Error("no injected failures: the fault injection did not run, the test proves nothing")
	}
	t.Logf("66 calls in %v: %d requests, %d retries, %d throttled (429), %d injected 500s, max %d attempts for one call; emulator statuses %v",
		elapsed.Round(time.Millisecond), cs.Requests, cs.Retries, cs.Throttled, es.InjectedFailures, maxAttempts, es.ByStatus)
}
