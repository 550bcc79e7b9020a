package liveapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/aksk"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

const (
	testProject = "0123456789abcdef0123456789abcdef"
	testAK      = "TESTACCESSKEY"
	testSK      = "TestSecretKey-do-not-leak-4242"
	testDomain  = "push.example.com"
)

// fakeClock is a clock that only moves when the client "sleeps", so retry waits are
// observable without timing anything and every attempt gets a later X-Sdk-Date.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	waits []time.Duration
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.t = f.t.Add(d)
	f.mu.Unlock()
	return ctx.Err()
}

func (f *fakeClock) Waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

// newTestClient builds a client for url with a fake clock; mod may adjust the config.
func newTestClient(t *testing.T, url string, mod func(*Config)) (*Client, *fakeClock) {
	t.Helper()
	cfg := Config{
		Endpoint:    url,
		ProjectID:   testProject,
		Credentials: aksk.Credentials{AccessKey: testAK, SecretKey: testSK},
		MaxRetries:  3,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	clk := &fakeClock{t: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	c.now, c.sleep = clk.now, clk.sleep
	return c, clk
}

// answer is one canned HTTP response.
type answer struct {
	status int
	body   string
	header map[string]string
}

// script serves answers in order (the last one repeats) and records every request.
type script struct {
	mu       sync.Mutex
	answers  []answer
	requests []*http.Request
	bodies   [][]byte
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	i := min(len(s.requests), len(s.answers)-1)
	s.requests = append(s.requests, r.Clone(context.Background()))
	s.bodies = append(s.bodies, body)
	a := s.answers[i]
	s.mu.Unlock()
	w.Header().Set("X-Request-Id", fmt.Sprintf("req-%d", i+1))
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

func serve(t *testing.T, answers ...answer) (*script, string) {
	t.Helper()
	s := &script{answers: answers}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func errBody(code, msg string) string {
	b, _ := json.Marshal(map[string]string{"error_code": code, "error_msg": msg})
	return string(b)
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	good := Config{Region: "cn-north-4", ProjectID: testProject, Credentials: aksk.Credentials{AccessKey: testAK, SecretKey: testSK}}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" => success
	}{
		{"defaults", func(*Config) {}, ""},
		{"endpoint override without region", func(c *Config) { c.Region = ""; c.Endpoint = "http://127.0.0.1:9/" }, ""},
		{"missing project", func(c *Config) { c.ProjectID = "" }, "ProjectID is required"},
		{"project with slash", func(c *Config) { c.ProjectID = "a/b" }, "not a valid project ID"},
		{"missing access key", func(c *Config) { c.Credentials.AccessKey = "" }, "Credentials.AccessKey is required"},
		{"missing secret key", func(c *Config) { c.Credentials.SecretKey = "" }, "Credentials.SecretKey is required"},
		{"missing region", func(c *Config) { c.Region = "" }, "Region is required"},
		{"bad region", func(c *Config) { c.Region = "cn north/4" }, "not a valid region"},
		{"bad scheme", func(c *Config) { c.Endpoint = "ftp://live.example.com" }, "must start with https://"},
		{"no host", func(c *Config) { c.Endpoint = "https://" }, "has no host"},
		{"query in endpoint", func(c *Config) { c.Endpoint = "https://h/?a=1" }, "must not contain"},
		{"negative rps", func(c *Config) { c.RequestsPerSecond = -1 }, "RequestsPerSecond"},
		{"negative backoff", func(c *Config) { c.MinBackoff = -time.Second }, "MinBackoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			c, err := New(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want it to mention %q", err, tt.wantErr)
			}
			if c != nil {
				t.Fatal("New returned a client along with an error")
			}
			if strings.Contains(err.Error(), testSK) {
				t.Fatal("config error leaks the secret key")
			}
		})
	}

	c, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.endpoint, "https://live.cn-north-4.myhuaweicloud.com"; got != want {
		t.Errorf("default endpoint = %q, want %q", got, want)
	}
	if c.maxRetries != DefaultMaxRetries || c.minBackoff != DefaultMinBackoff || c.maxBackoff != DefaultMaxBackoff || c.limiter != nil {
		t.Errorf("defaults not applied: retries %d, backoff %s..%s, limiter %v", c.maxRetries, c.minBackoff, c.maxBackoff, c.limiter)
	}
	none := good
	none.MaxRetries = -1
	if c, _ := New(none); c.maxRetries != 0 {
		t.Errorf("MaxRetries -1 => %d retries, want 0", c.maxRetries)
	}
}

// TestRequestShape checks what goes on the wire: path, encoded domain, headers, and a
// signature the shared verifier accepts, with the expected signed headers.
func TestRequestShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		token      string
		wantSigned string
	}{
		{"permanent credentials", "", "host;x-project-id;x-sdk-date"},
		{"temporary credentials", "session-token-value-1234", "host;x-project-id;x-sdk-date;x-security-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, url := serve(t, answer{status: 201})
			c, clk := newTestClient(t, url+"/prefix/", func(c *Config) { c.Credentials.SecurityToken = tt.token })
			domain := "push a&b=c+d.example.com" // nonsense on purpose: must survive encoding
			n := Notification{URL: "https://hooks.example.com/live?x=1&y=<2>", AuthSignKey: strings.Repeat("k", 32), CallBackArea: "mainland_china"}
			created, err := c.Put(context.Background(), domain, n)
			if err != nil || !created {
				t.Fatalf("Put = %v, %v; want true, nil", created, err)
			}
			r := s.requests[0]
			if r.Method != http.MethodPut || r.URL.Path != "/prefix/v1/"+testProject+"/notifications/publish" {
				t.Errorf("request line = %s %s", r.Method, r.URL.Path)
			}
			if got := r.URL.Query()["domain"]; len(got) != 1 || got[0] != domain {
				t.Errorf("domain query = %q, want %q", got, domain)
			}
			for h, want := range map[string]string{
				"Content-Type":     "application/json; charset=UTF-8",
				"X-Project-Id":     testProject,
				"X-Security-Token": tt.token,
				"User-Agent":       "livehook/" + Version + " (+https://github.com/livehook/terraform-provider-livehook)",
				aksk.HeaderDate:    "20261126T100000Z",
			} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("header %s = %q, want %q", h, got, want)
				}
			}
			if !bytes.Contains(s.bodies[0], []byte(`"https://hooks.example.com/live?x=1&y=<2>"`)) {
				t.Errorf("body %s does not carry the URL unescaped", s.bodies[0])
			}
			var got Notification
			if err := json.Unmarshal(s.bodies[0], &got); err != nil || got != n {
				t.Errorf("body = %s (%v), want %+v", s.bodies[0], err, n)
			}
			a, err := aksk.ParseAuthorization(r.Header.Get("Authorization"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(a.SignedHeaders, ";") != tt.wantSigned {
				t.Errorf("SignedHeaders = %v, want %s", a.SignedHeaders, tt.wantSigned)
			}
			secret := func(ak string) (string, bool) { return testSK, ak == testAK }
			if _, err := aksk.Verify(r, s.bodies[0], secret, clk.now(), 15*time.Minute); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
		})
	}
}

func TestUserAgentOverride(t *testing.T) {
	t.Parallel()
	s, url := serve(t, answer{status: 200, body: `{"url":"http://a"}`})
	c, _ := newTestClient(t, url, func(c *Config) { c.UserAgent = "terraform-provider-livehook/1.2.3" })
	if _, err := c.Get(context.Background(), testDomain); err != nil {
		t.Fatal(err)
	}
	if got := s.requests[0].Header.Get("User-Agent"); got != "terraform-provider-livehook/1.2.3" {
		t.Errorf("User-Agent = %q", got)
	}
}

// TestRetryPolicy runs scripted answer sequences and checks how many requests were
// sent, what was waited, and what the caller got.
func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	past := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	future := time.Date(2026, 11, 26, 10, 0, 7, 0, time.UTC).Format(http.TimeFormat) // fake clock + 7s
	busy := errBody("LIVE.100011000", "internal error")
	tests := []struct {
		name      string
		answers   []answer
		wantReq   int
		wantErr   int             // 0 => success, else the APIError status
		wantWaits []time.Duration // nil => not checked (jittered)
	}{
		{"400 never retried", []answer{{status: 400, body: errBody("LIVE.100011001", "bad")}}, 1, 400, []time.Duration{}},
		{"401 never retried", []answer{{status: 401, body: errBody("APIGW.0301", "sig")}}, 1, 401, []time.Duration{}},
		{"403 never retried", []answer{{status: 403}}, 1, 403, []time.Duration{}},
		{"501 not retried", []answer{{status: 501}}, 1, 501, []time.Duration{}},
		{"500 then success", []answer{{status: 500, body: busy}, {status: 200}}, 2, 0, nil},
		{"502 503 504 then success", []answer{{status: 502}, {status: 503}, {status: 504}, {status: 201}}, 4, 0, nil},
		{"5xx outlasts retries", []answer{{status: 500, body: busy}}, 4, 500, nil},
		{"429 Retry-After seconds", []answer{{status: 429, header: map[string]string{"Retry-After": "3"}}, {status: 200}}, 2, 0, []time.Duration{3 * time.Second}},
		{"429 Retry-After HTTP date", []answer{{status: 429, header: map[string]string{"Retry-After": future}}, {status: 201}}, 2, 0, []time.Duration{7 * time.Second}},
		{"503 Retry-After date in the past", []answer{{status: 503, header: map[string]string{"Retry-After": past}}, {status: 200}}, 2, 0, []time.Duration{0}},
		{"429 outlasts retries", []answer{{status: 429, header: map[string]string{"Retry-After": "1"}}}, 4, 429, []time.Duration{time.Second, time.Second, time.Second}},
		{"Retry-After beyond the client's patience", []answer{{status: 429, header: map[string]string{"Retry-After": "3600"}}}, 1, 429, []time.Duration{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, url := serve(t, tt.answers...)
			c, clk := newTestClient(t, url, nil)
			_, err := c.Put(context.Background(), testDomain, Notification{URL: "http://h"})
			if s.count() != tt.wantReq {
				t.Errorf("server saw %d requests, want %d", s.count(), tt.wantReq)
			}
			st := c.Stats()
			if st.Requests != int64(tt.wantReq) || st.Retries != int64(tt.wantReq-1) {
				t.Errorf("Stats = %+v, want %d requests, %d retries", st, tt.wantReq, tt.wantReq-1)
			}
			if tt.wantErr == 0 {
				if err != nil {
					t.Fatalf("Put: %v", err)
				}
			} else {
				var ae *APIError
				if !errors.As(err, &ae) || ae.StatusCode != tt.wantErr {
					t.Fatalf("Put error = %v, want an APIError with status %d", err, tt.wantErr)
				}
				if ae.Attempts != tt.wantReq {
					t.Errorf("APIError.Attempts = %d, want %d", ae.Attempts, tt.wantReq)
				}
			}
			waits := clk.Waits()
			if tt.wantWaits != nil && fmt.Sprint(waits) != fmt.Sprint(tt.wantWaits) {
				t.Errorf("waits = %v, want %v", waits, tt.wantWaits)
			}
			for i, w := range waits {
				if w < 0 || w > MaxRetryAfter {
					t.Errorf("wait %d = %v, out of range", i, w)
				}
			}
			// Every attempt carried the same body.
			for i, b := range s.bodies {
				if !bytes.Equal(b, s.bodies[0]) || len(b) == 0 {
					t.Errorf("attempt %d body = %q, want %q", i+1, b, s.bodies[0])
				}
			}
		})
	}
}

// TestBackoffFullJitter checks the backoff stays in [0, min(max, min*2^(n-1))].
func TestBackoffFullJitter(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t, "http://127.0.0.1:9", func(c *Config) { c.MinBackoff = 100 * time.Millisecond; c.MaxBackoff = time.Second })
	for attempt, ceil := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		var maxSeen time.Duration
		for range 200 {
			d := c.backoff(attempt)
			if d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", attempt, d, ceil)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceil/4 { // 200 uniform draws all below a quarter: not jitter over the whole range
			t.Errorf("backoff(%d) never exceeded %v in 200 draws (ceiling %v)", attempt, maxSeen, ceil)
		}
	}
}

// TestFreshSignaturePerAttempt: every retry is signed again with a new X-Sdk-Date.
func TestFreshSignaturePerAttempt(t *testing.T) {
	t.Parallel()
	s, url := serve(t,
		answer{status: 429, header: map[string]string{"Retry-After": "2"}},
		answer{status: 503, header: map[string]string{"Retry-After": "2"}},
		answer{status: 201})
	c, clk := newTestClient(t, url, func(c *Config) { c.Credentials.SecurityToken = "tok-12345678" })
	if _, err := c.Put(context.Background(), testDomain, Notification{URL: "https://x"}); err != nil {
		t.Fatal(err)
	}
	if s.count() != 3 {
		t.Fatalf("requests = %d, want 3", s.count())
	}
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	seenAuth := map[string]bool{}
	for i, r := range s.requests {
		wantDate := start.Add(time.Duration(2*i) * time.Second)
		if got := r.Header.Get(aksk.HeaderDate); got != wantDate.Format(aksk.DateFormat) {
			t.Errorf("attempt %d X-Sdk-Date = %s, want %s", i+1, got, wantDate.Format(aksk.DateFormat))
		}
		auth := r.Header.Get("Authorization")
		if seenAuth[auth] {
			t.Errorf("attempt %d reused an Authorization header", i+1)
		}
		seenAuth[auth] = true
		secret := func(string) (string, bool) { return testSK, true }
		if _, err := aksk.Verify(r, s.bodies[i], secret, wantDate, time.Minute); err != nil {
			t.Errorf("attempt %d signature: %v", i+1, err)
		}
	}
	_ = clk
}

func TestConnectionRefusedRetriedThenWrapped(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	c, clk := newTestClient(t, "http://"+addr, func(c *Config) { c.MaxRetries = 2 })
	_, err = c.Get(context.Background(), testDomain)
	if err == nil {
		t.Fatal("Get succeeded against a closed port")
	}
	if st := c.Stats(); st.Requests != 3 || st.Retries != 2 {
		t.Errorf("Stats = %+v, want 3 requests, 2 retries", st)
	}
	if len(clk.Waits()) != 2 {
		t.Errorf("waits = %v, want 2 backoffs", clk.Waits())
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error does not wrap ECONNREFUSED: %v", err)
	}
	var ae *APIError
	if errors.As(err, &ae) || errors.Is(err, ErrNotFound) {
		t.Errorf("connection error looks like an API answer: %v", err)
	}
	for _, want := range []string{"http://" + addr, "after 3 attempts", `"push.example.com"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestContextStopsWaiting: cancelling while the client waits out a Retry-After ends
// the call at once with both the API's answer and the cancellation reachable.
func TestContextStopsWaiting(t *testing.T) {
	t.Parallel()
	s, url := serve(t, answer{status: 429, header: map[string]string{"Retry-After": "120"}, body: errBody("APIGW.0308", "throttled")})
	c, err := New(Config{Endpoint: url, ProjectID: testProject, Credentials: aksk.Credentials{AccessKey: testAK, SecretKey: testSK}})
	if err != nil {
		t.Fatal(err)
	}
	sleeping := make(chan time.Duration, 1)
	c.sleep = func(ctx context.Context, d time.Duration) error {
		sleeping <- d
		return ctxsleep.Sleep(ctx, d) // the real wait, which only cancellation can end in time
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Get(ctx, testDomain); done <- err }()
	if d := <-sleeping; d != 120*time.Second {
		t.Errorf("waiting %v, want the Retry-After of 120s", d)
	}
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error does not wrap context.Canceled: %v", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 429 {
		t.Errorf("error does not carry the 429 APIError: %v", err)
	}
	if s.count() != 1 {
		t.Errorf("requests = %d, want 1", s.count())
	}
}

// TestRetryAfterPastDeadline: a Retry-After that would outlive ctx's deadline ends the call now.
func TestRetryAfterPastDeadline(t *testing.T) {
	t.Parallel()
	s, url := serve(t, answer{status: 503, header: map[string]string{"Retry-After": "60"}})
	c, clk := newTestClient(t, url, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Get(ctx, testDomain)
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 503 {
		t.Fatalf("error = %v, want the 503 APIError", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("error should say the deadline stopped the retries: %v", err)
	}
	if s.count() != 1 || len(clk.Waits()) != 0 {
		t.Errorf("requests = %d, waits = %v; want 1 request and no wait", s.count(), clk.Waits())
	}
}

// TestLimiter: every attempt goes through the limiter, and its waits honour ctx.
func TestLimiter(t *testing.T) {
	t.Parallel()
	s, url := serve(t, answer{status: 503}, answer{status: 200, body: `{"url":"http://a"}`})
	c, _ := newTestClient(t, url, func(c *Config) { c.RequestsPerSecond = 0.001 }) // one token, then 1000 s per token
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Get(ctx, testDomain) // first attempt uses the token; the retry must wait for the limiter
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want it to wrap context.DeadlineExceeded", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 503 {
		t.Errorf("error should carry the 503 that was being retried: %v", err)
	}
	if !strings.Contains(err.Error(), "rate limit") {
		t.Errorf("error should name the client-side rate limit: %v", err)
	}
	if s.count() != 1 {
		t.Errorf("requests = %d, want 1 (the retry is held by the limiter)", s.count())
	}
}

func TestNotFoundMapping(t *testing.T) {
	t.Parallel()
	unknown := errBody("LIVE.100011001", "domain push.example.com does not exist")
	tests := []struct {
		name     string
		op       string
		answer   answer
		wantNF   bool // errors.Is(err, ErrNotFound)
		wantAPI  int  // status of an APIError reachable by errors.As; 0 none
		wantNil  bool
		wantNote *Notification
	}{
		{"get ok", "GET", answer{status: 200, body: `{"url":"https://h/cb","auth_sign_key":"` + strings.Repeat("s", 32) + `","call_back_area":"mainland_china"}`}, false, 0, true,
			&Notification{URL: "https://h/cb", AuthSignKey: strings.Repeat("s", 32), CallBackArea: "mainland_china"}},
		{"get unknown domain", "GET", answer{status: 400, body: unknown}, true, 400, false, nil},
		{"get empty url", "GET", answer{status: 200, body: `{"url":"","call_back_area":""}`}, true, 0, false, nil},
		{"get missing url", "GET", answer{status: 200, body: `{}`}, true, 0, false, nil},
		{"get empty body", "GET", answer{status: 200}, true, 0, false, nil},
		{"get other 400", "GET", answer{status: 400, body: errBody("LIVE.100011004", "https only")}, false, 400, false, nil},
		{"get 404 is not silently gone", "GET", answer{status: 404}, false, 404, false, nil},
		{"get garbage 200", "GET", answer{status: 200, body: `<html>`}, false, 0, false, nil},
		{"delete 204", "DELETE", answer{status: 204}, false, 0, true, nil},
		{"delete 200", "DELETE", answer{status: 200}, false, 0, true, nil},
		{"delete already gone", "DELETE", answer{status: 400, body: unknown}, false, 0, true, nil},
		{"delete 404", "DELETE", answer{status: 404}, false, 0, true, nil},
		{"delete 404 from the gateway (wrong project)", "DELETE", answer{status: 404, body: errBody("APIGW.0101", "no such API")}, false, 404, false, nil},
		{"delete other 400", "DELETE", answer{status: 400, body: errBody("LIVE.103011022", "state forbids")}, false, 400, false, nil},
		{"delete 403", "DELETE", answer{status: 403, body: errBody("APIGW.0302", "forbidden")}, false, 403, false, nil},
		{"put unknown domain", "PUT", answer{status: 400, body: unknown}, false, 400, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, url := serve(t, tt.answer)
			c, _ := newTestClient(t, url, nil)
			var err error
			var got *Notification
			switch tt.op {
			case "GET":
				got, err = c.Get(context.Background(), testDomain)
			case "DELETE":
				err = c.Delete(context.Background(), testDomain)
			case "PUT":
				_, err = c.Put(context.Background(), testDomain, Notification{URL: "http://x"})
			}
			if s.count() != 1 {
				t.Errorf("requests = %d, want 1", s.count())
			}
			if tt.wantNil != (err == nil) {
				t.Fatalf("err = %v, want nil: %v", err, tt.wantNil)
			}
			if errors.Is(err, ErrNotFound) != tt.wantNF {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, !tt.wantNF, tt.wantNF)
			}
			var ae *APIError
			if ok := errors.As(err, &ae); ok != (tt.wantAPI != 0) || ok && ae.StatusCode != tt.wantAPI {
				t.Errorf("errors.As APIError = %v (%v), want status %d", ok, err, tt.wantAPI)
			}
			if tt.wantNote != nil && (got == nil || *got != *tt.wantNote) {
				t.Errorf("Get = %+v, want %+v", got, tt.wantNote)
			}
			if err != nil && !strings.Contains(err.Error(), testDomain) {
				t.Errorf("error %q does not name the domain", err)
			}
		})
	}
}

func TestPutCreatedFlag(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]bool{201: true, 200: false, 204: false} {
		_, url := serve(t, answer{status: status})
		c, _ := newTestClient(t, url, nil)
		got, err := c.Put(context.Background(), testDomain, Notification{URL: "http://x"})
		if err != nil || got != want {
			t.Errorf("Put answered %d = %v, %v; want %v, nil", status, got, err, want)
		}
	}
}

func TestBadDomainNoRequest(t *testing.T) {
	t.Parallel()
	s, url := serve(t, answer{status: 200})
	c, _ := newTestClient(t, url, nil)
	for _, d := range []string{"", strings.Repeat("a", 256)} {
		if _, err := c.Get(context.Background(), d); err == nil {
			t.Errorf("Get(%d-char domain) succeeded", len(d))
		}
		if _, err := c.Put(context.Background(), d, Notification{URL: "http://x"}); err == nil {
			t.Errorf("Put(%d-char domain) succeeded", len(d))
		}
		if err := c.Delete(context.Background(), d); err == nil {
			t.Errorf("Delete(%d-char domain) succeeded", len(d))
		}
	}
	if s.count() != 0 {
		t.Errorf("invalid domains reached the server %d times", s.count())
	}
}

func TestAPIErrorWording(t *testing.T) {
	t.Parallel()
	html := "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>" + strings.Repeat("x", 1000) + "</body></html>"
	tests := []struct {
		name    string
		op      string
		answer  answer
		retries int
		want    []string
		exact   string
	}{
		{"spec example", "PUT", answer{status: 400, body: errBody("LIVE.100011001", "Invalid request parameter"), header: map[string]string{"X-Request-Id": "abc"}}, 0, nil,
			`Live API PUT for domain "push.example.com" failed: HTTP 400 LIVE.100011001: Invalid request parameter (request ID abc, after 1 attempt); ` +
				`check that the domain exists as a push domain in this project and region, that url is an http:// or https:// URL, auth_sign_key is 32 to 128 characters and call_back_area is mainland_china or outside_mainland_china`},
		{"401 hint", "GET", answer{status: 401, body: errBody("APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail")}, 0,
			[]string{"HTTP 401 APIGW.0301", "verify aksk signature fail", "access_key/secret_key", "HW_ACCESS_KEY/HW_SECRET_KEY", "clock", "15 minutes", "request ID req-1"}, ""},
		{"html body", "GET", answer{status: 502, body: html}, 1, []string{"HTTP 502: <html> <head><title>502 Bad Gateway</title>", "…", "after 2 attempts"}, ""},
		{"empty body", "DELETE", answer{status: 500}, 0, []string{"HTTP 500: Internal Server Error"}, ""},
		{"request id from body", "GET", answer{status: 401, body: `{"error_code":"APIGW.0301","error_msg":"m","request_id":"body-id"}`, header: map[string]string{"X-Request-Id": ""}}, 0, []string{"request ID body-id"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, url := serve(t, tt.answer)
			c, _ := newTestClient(t, url, func(c *Config) {
				c.MaxRetries = tt.retries
				if tt.retries == 0 {
					c.MaxRetries = -1
				}
			})
			var err error
			switch tt.op {
			case "GET":
				_, err = c.Get(context.Background(), testDomain)
			case "DELETE":
				err = c.Delete(context.Background(), testDomain)
			case "PUT":
				_, err = c.Put(context.Background(), testDomain, Notification{URL: "http://x"})
			}
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if tt.exact != "" && msg != tt.exact {
				t.Errorf("error =\n%s\nwant\n%s", msg, tt.exact)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if len(msg) > 1000 || strings.Contains(msg, "\n") {
				t.Errorf("error is not a capped one-liner (%d chars)", len(msg))
			}
			var ae *APIError
			if errors.As(err, &ae) && tt.answer.status == 401 && !ae.Unauthorized() {
				t.Error("Unauthorized() = false for a 401")
			}
		})
	}
}

// TestNoSecretsInLogsOrErrors drives every path that logs or builds an error with
// secrets in play, and greps the debug log and the error strings for them.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	const (
		token   = "SECURITY-TOKEN-VALUE-abcdef123456"
		signKey = "AuthSignKey-0123456789-abcdefghijklmnop"
	)
	var mu sync.Mutex
	var signatures []string
	var step atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := aksk.ParseAuthorization(r.Header.Get("Authorization"))
		mu.Lock()
		signatures = append(signatures, a.Signature)
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Request-Id", "rid-"+r.Method)
		switch {
		case r.Method == http.MethodPut && step.Add(1) == 1:
			// A server that echoes everything back in its error: key, header, signature.
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "upstream said: %s auth=%s token=%s", body, r.Header.Get("Authorization"), r.Header.Get("X-Security-Token"))
		case r.Method == http.MethodPut:
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, errBody("LIVE.100011001", "invalid auth_sign_key "+signKey+" with "+r.Header.Get("Authorization")))
		case r.Method == http.MethodGet:
			fmt.Fprintf(w, `{"url":"https://h/cb","auth_sign_key":%q,"call_back_area":"mainland_china"}`, signKey)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error_code":"APIGW.0301","error_msg":"bad signature for token %s, sk %s"}`, token, testSK)
		}
	}))
	t.Cleanup(srv.Close)

	var logBuf bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logBuf, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, _ := newTestClient(t, srv.URL, func(c *Config) {
		c.Credentials.SecurityToken = token
		c.Logger = logger
		c.MaxRetries = 1
	})
	ctx := context.Background()
	var errs []error
	_, err := c.Put(ctx, testDomain, Notification{URL: "https://h/cb", AuthSignKey: signKey})
	errs = append(errs, err)
	n, err := c.Get(ctx, testDomain)
	if err != nil || n.AuthSignKey != signKey {
		t.Fatalf("Get = %+v, %v; the caller must still get the key", n, err)
	}
	errs = append(errs, c.Delete(ctx, testDomain))

	logMu.Lock()
	logs := logBuf.String()
	logMu.Unlock()
	// The log must be there and useful, or the absence of secrets proves nothing.
	for _, want := range []string{`"method":"PUT"`, `"method":"GET"`, `"method":"DELETE"`, `"status":503`, `"status":401`, `"attempt":2`,
		`"request_id":"rid-GET"`, `"duration"`, `\"auth_sign_key\":\"***\"`, "Signature=***", `"X-Security-Token":"***"`, "Access=" + testAK} {
		if !strings.Contains(logs, want) {
			t.Errorf("debug log lacks %s", want)
		}
	}
	secrets := map[string]string{"secret key": testSK, "security token": token, "auth_sign_key": signKey}
	mu.Lock()
	for i, s := range signatures {
		if s == "" {
			t.Fatalf("request %d was not signed", i)
		}
		secrets[fmt.Sprintf("signature %d", i)] = s
	}
	mu.Unlock()
	for i, e := range errs {
		if e == nil {
			t.Fatalf("call %d unexpectedly succeeded", i)
		}
	}
	for what, v := range secrets {
		if strings.Contains(logs, v) {
			t.Errorf("the debug log contains the %s", what)
		}
		for i, e := range errs {
			if strings.Contains(e.Error(), v) {
				t.Errorf("error %d contains the %s: %v", i, what, e)
			}
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestStatsCountsThrottled(t *testing.T) {
	t.Parallel()
	_, url := serve(t, answer{status: 429, header: map[string]string{"Retry-After": "1"}}, answer{status: 429}, answer{status: 200, body: `{"url":"http://a"}`})
	c, _ := newTestClient(t, url, nil)
	if _, err := c.Get(context.Background(), testDomain); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Stats(), (Stats{Requests: 3, Retries: 2, Throttled: 2}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// TestErrorTextRedactedBeforeShortened: a secret echoed in a non-JSON error body across the
// 200-character cut of the message leaves no piece of itself behind.
func TestErrorTextRedactedBeforeShortened(t *testing.T) {
	t.Parallel()
	for _, at := range []int{0, maxSnippet - 5, maxSnippet - 1} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			t.Parallel()
			body := strings.Repeat("x", at) + testSK + " <html>upstream error</html>"
			_, url := serve(t, answer{status: 400, body: body})
			c, err := New(Config{Endpoint: url, ProjectID: testProject, Credentials: aksk.Credentials{AccessKey: testAK, SecretKey: testSK}, MaxRetries: -1})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Get(context.Background(), testDomain)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v, want an *APIError", err)
			}
			if strings.Contains(ae.Message, testSK[:5]) || strings.Contains(err.Error(), testSK[:5]) {
				t.Fatalf("error text keeps part of the secret key: %q", ae.Message)
			}
		})
	}
}
