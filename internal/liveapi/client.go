// Package liveapi is a client for the Huawei Cloud Live "publish notification" API
// (PUT/GET/DELETE /v1/{project_id}/notifications/publish?domain=). It signs every
// attempt with AK/SK, retries throttling and server errors with jittered exponential
// backoff, rate-limits itself, and turns failures into errors a person can act on.
// It has no Terraform types so that tests, tools and the provider can all use it.
package liveapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/livehook/terraform-provider-livehook/internal/aksk"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

const (
	// DefaultEndpointTemplate is the public endpoint; the region is substituted.
	DefaultEndpointTemplate = "https://live.%s.myhuaweicloud.com"
	// DefaultMaxRetries is used when Config.MaxRetries is 0.
	DefaultMaxRetries = 6
	// DefaultMinBackoff and DefaultMaxBackoff bound the exponential backoff.
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
	// DefaultAttemptTimeout bounds one HTTP attempt of the default HTTP client, so a
	// hung connection becomes a retryable error instead of a hang.
	DefaultAttemptTimeout = 60 * time.Second
	// MaxRetryAfter is the longest Retry-After the client waits for; a server asking
	// for more ends the retries (an unbounded sleep would look like a hang).
	MaxRetryAfter = 5 * time.Minute

	// CodeInvalidParameter is the catch-all "invalid request parameter" code the Live API
	// answers (with 400), also for a domain that does not exist.
	CodeInvalidParameter = "LIVE.100011001"
	// maxBody caps what is read of any response: the real answers are tiny.
	maxBody = 1 << 20
	// maxSnippet caps the part of a non-JSON error body quoted in errors and logs.
	maxSnippet = 200
	maxDomain  = 255
)

// Version is the product version in the User-Agent; set by ldflags or by the provider.
var Version = "dev"

// ErrNotFound means the domain has no publish notification (or does not exist).
var ErrNotFound = errors.New("publish notification not found")

// Config configures a Client. ProjectID and the key pair are required, and Region
// unless Endpoint is given.
type Config struct {
	Endpoint          string           // optional override, e.g. http://127.0.0.1:8080; default from Region
	Region            string           // e.g. cn-north-4
	ProjectID         string           // required
	Credentials       aksk.Credentials // AccessKey, SecretKey required; SecurityToken for temporary credentials
	MaxRetries        int              // attempts after the first: 0 => DefaultMaxRetries, <0 => none
	RequestsPerSecond float64          // client-side limiter applied to every attempt; 0 = off
	HTTPClient        *http.Client     // optional
	UserAgent         string           // optional; default "livehook/<Version> (+https://github.com/livehook/terraform-provider-livehook)"
	Logger            *slog.Logger     // optional; requests/responses at Debug with secrets masked
	MinBackoff        time.Duration    // optional; default 200ms
	MaxBackoff        time.Duration    // optional; default 10s
}

// Notification is a domain's publish notification config.
type Notification struct {
	URL          string `json:"url"`
	AuthSignKey  string `json:"auth_sign_key,omitempty"`
	CallBackArea string `json:"call_back_area,omitempty"`
}

// Stats counts what the client did, for tests and benchmarks.
type Stats struct {
	Requests  int64 // HTTP attempts sent (including retries)
	Retries   int64 // attempts after the first of a call
	Throttled int64 // 429 answers seen
}

// Client talks to the Live API. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	endpoint   string // for error messages: scheme://host
	projectID  string
	creds      aksk.Credentials
	maxRetries int
	limiter    *rate.Limiter
	rps        float64
	hc         *http.Client
	ua         string
	log        *slog.Logger
	minBackoff time.Duration
	maxBackoff time.Duration

	// Seams for unit tests: the clock used for signing and Retry-After dates, and the wait between attempts.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	requests, retries, throttled atomic.Int64
}

// New validates cfg and returns a Client; the error names the field to fix.
func New(cfg Config) (*Client, error) {
	var problems []string
	if strings.TrimSpace(cfg.ProjectID) == "" {
		problems = append(problems, "ProjectID is required (the project ID of the region, shown on the console's \"My Credentials\" page)")
	} else if strings.ContainsAny(cfg.ProjectID, "/?#%") || strings.TrimSpace(cfg.ProjectID) != cfg.ProjectID {
		problems = append(problems, fmt.Sprintf("ProjectID %q is not a valid project ID (it must not contain spaces, '/', '?', '#' or '%%')", cfg.ProjectID))
	}
	if cfg.Credentials.AccessKey == "" {
		problems = append(problems, "Credentials.AccessKey is required")
	}
	if cfg.Credentials.SecretKey == "" {
		problems = append(problems, "Credentials.SecretKey is required")
	}
	if cfg.RequestsPerSecond < 0 {
		problems = append(problems, fmt.Sprintf("RequestsPerSecond must be 0 (off) or positive, got %v", cfg.RequestsPerSecond))
	}
	if cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 {
		problems = append(problems, "MinBackoff and MaxBackoff must not be negative")
	}

	raw := strings.TrimSpace(cfg.Endpoint)
	if raw == "" {
		region := strings.TrimSpace(cfg.Region)
		switch {
		case region == "":
			problems = append(problems, "Region is required when Endpoint is not set (e.g. cn-north-4)")
		case !validRegion(region):
			problems = append(problems, fmt.Sprintf("Region %q is not a valid region name (letters, digits and '-', e.g. cn-north-4)", cfg.Region))
		default:
			raw = fmt.Sprintf(DefaultEndpointTemplate, region)
		}
	}
	var base *url.URL
	if raw != "" {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("Endpoint %q is not a valid URL: %v", raw, err))
		case u.Scheme != "http" && u.Scheme != "https":
			problems = append(problems, fmt.Sprintf("Endpoint %q must start with https:// (or http:// for a local emulator)", raw))
		case u.Host == "":
			problems = append(problems, fmt.Sprintf("Endpoint %q has no host", raw))
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			problems = append(problems, fmt.Sprintf("Endpoint %q must not contain user info, a query or a fragment", raw))
		default:
			u.Path = strings.TrimRight(u.Path, "/")
			u.RawPath = ""
			base = u
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid Live API client configuration: %s", strings.Join(problems, "; "))
	}

	c := &Client{
		base:       base,
		endpoint:   base.Scheme + "://" + base.Host,
		projectID:  cfg.ProjectID,
		creds:      cfg.Credentials,
		maxRetries: cfg.MaxRetries,
		rps:        cfg.RequestsPerSecond,
		hc:         cfg.HTTPClient,
		ua:         cfg.UserAgent,
		log:        cfg.Logger,
		minBackoff: cfg.MinBackoff,
		maxBackoff: cfg.MaxBackoff,
		now:        time.Now,
		sleep:      ctxsleep.Sleep,
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.minBackoff == 0 {
		c.minBackoff = DefaultMinBackoff
	}
	if c.maxBackoff == 0 {
		c.maxBackoff = DefaultMaxBackoff
	}
	if c.maxBackoff < c.minBackoff {
		c.maxBackoff = c.minBackoff
	}
	if c.rps > 0 {
		// Burst 1: requests are spaced evenly, which is what a per-minute server quota wants.
		c.limiter = rate.NewLimiter(rate.Limit(c.rps), 1)
	}
	if c.hc == nil {
		c.hc = &http.Client{
			Timeout:   DefaultAttemptTimeout,
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirect would be re-sent with a signature for the old host; show it instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.ua == "" {
		c.ua = "livehook/" + Version + " (+https://github.com/livehook/terraform-provider-livehook)"
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func validRegion(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.requests.Load(), Retries: c.retries.Load(), Throttled: c.throttled.Load()}
}

// Put creates or overwrites the domain's publish notification. created is true when
// the API answered 201 (a new config) and false for 200 (an existing one overwritten).
func (c *Client) Put(ctx context.Context, domain string, n Notification) (created bool, err error) {
	if err := checkDomain(http.MethodPut, domain); err != nil {
		return false, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)              // send "a&b" in a callback URL as is, not as "a\u0026b"
	if err := enc.Encode(n); err != nil { // cannot happen for a struct of strings; kept for honesty
		return false, fmt.Errorf("Live API PUT for domain %q: encoding the body: %w", domain, err)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	res, err := c.do(ctx, http.MethodPut, domain, body, n.AuthSignKey)
	if err != nil {
		return false, err
	}
	if res.status >= 200 && res.status < 300 {
		return res.status == http.StatusCreated, nil
	}
	return false, res.apiError(c, http.MethodPut, domain, n.AuthSignKey)
}

// Get reads the domain's publish notification. A domain without one, or one the API
// does not know, gives an error satisfying errors.Is(err, ErrNotFound).
func (c *Client) Get(ctx context.Context, domain string) (*Notification, error) {
	if err := checkDomain(http.MethodGet, domain); err != nil {
		return nil, err
	}
	res, err := c.do(ctx, http.MethodGet, domain, nil, "")
	if err != nil {
		return nil, err
	}
	if res.status == http.StatusOK {
		var n Notification
		if len(bytes.TrimSpace(res.body)) > 0 {
			if err := json.Unmarshal(res.body, &n); err != nil {
				return nil, fmt.Errorf("Live API GET for domain %q: the answer (HTTP 200, request ID %s) is not the expected JSON object: %v",
					domain, orNone(res.requestID), err)
			}
		}
		if n.URL == "" {
			return nil, fmt.Errorf("Live API GET for domain %q: %w (the domain has no callback URL configured)", domain, ErrNotFound)
		}
		return &n, nil
	}
	apiErr := res.apiError(c, http.MethodGet, domain, "")
	if res.status == http.StatusBadRequest && apiErr.Code == CodeInvalidParameter {
		// The API's catch-all for an unknown domain; the official provider reads it as "gone" too.
		return nil, &notFoundError{apiErr}
	}
	return nil, apiErr
}

// Delete removes the domain's publish notification. A config that is already gone
// (204, a 404 that is not the gateway's "no such API", or the API's 400
// LIVE.100011001) is not an error.
func (c *Client) Delete(ctx context.Context, domain string) error {
	if err := checkDomain(http.MethodDelete, domain); err != nil {
		return err
	}
	res, err := c.do(ctx, http.MethodDelete, domain, nil, "")
	if err != nil {
		return err
	}
	if res.status >= 200 && res.status < 300 {
		return nil
	}
	apiErr := res.apiError(c, http.MethodDelete, domain, "")
	switch {
	case res.status == http.StatusBadRequest && apiErr.Code == CodeInvalidParameter:
		return nil
	case res.status == http.StatusNotFound && !strings.HasPrefix(apiErr.Code, "APIGW."):
		// A 404 from the gateway itself (APIGW.0101: no such API, e.g. a wrong project ID or
		// endpoint) says nothing about the config; treating it as "gone" would hide the mistake.
		return nil
	}
	return apiErr
}

func checkDomain(op, domain string) error {
	if domain == "" {
		return fmt.Errorf("Live API %s: the push domain name is empty", op)
	}
	if len(domain) > maxDomain {
		return fmt.Errorf("Live API %s: the push domain name is %d characters long, the API allows at most %d", op, len(domain), maxDomain)
	}
	return nil
}

// notFoundError is ErrNotFound with the API's answer still reachable via errors.As.
type notFoundError struct{ api *APIError }

func (e *notFoundError) Error() string   { return ErrNotFound.Error() + ": " + e.api.Error() }
func (e *notFoundError) Unwrap() []error { return []error{ErrNotFound, e.api} }

// response is the final answer of one call, after retries.
type response struct {
	status    int
	header    http.Header
	body      []byte
	requestID string
	attempts  int
}

// do sends one logical call, retrying as the policy allows. It returns a response for
// any HTTP answer (the caller decides what the status means) and an error only when
// no answer could be had: connection errors after the retries, or ctx ending.
// secret is an extra value (the auth_sign_key being sent) to keep out of logs and errors.
func (c *Client) do(ctx context.Context, method, domain string, body []byte, secret string) (*response, error) {
	u := c.base.JoinPath("v1", c.projectID, "notifications", "publish")
	u.RawQuery = url.Values{"domain": {domain}}.Encode()
	target := u.String()

	var last *response
	var lastErr error
	sent := 0
	for attempt := 1; ; attempt++ {
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return nil, c.giveUp(method, domain, attempt-1, last, lastErr, secret,
					fmt.Errorf("waiting for the client-side rate limit (%g requests/s): %w", c.rps, ctxOr(ctx, err)))
			}
		}
		if attempt > 1 {
			c.retries.Add(1)
		}
		res, err := c.attempt(ctx, method, target, body, attempt, secret)
		sent = attempt
		if err != nil && ctx.Err() != nil {
			// Our own deadline or cancellation, not the server's fault: stop now.
			if last == nil && lastErr == nil {
				return nil, fmt.Errorf("Live API %s for domain %q: request to %s interrupted (%s): %w", method, domain, c.endpoint, plural(attempt), err)
			}
			return nil, c.giveUp(method, domain, attempt-1, last, lastErr, secret, ctx.Err())
		}
		last, lastErr = res, err

		retryable, wait := c.shouldRetry(res, err, attempt)
		if !retryable || attempt > c.maxRetries {
			break
		}
		if wait > MaxRetryAfter {
			return nil, c.giveUp(method, domain, attempt, last, lastErr, secret,
				fmt.Errorf("the server asked to retry after %s, longer than the client waits (%s)", wait, MaxRetryAfter))
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait { // deadlines are wall-clock, not c.now
			return nil, c.giveUp(method, domain, attempt, last, lastErr, secret,
				fmt.Errorf("the next retry (in %s) would be after the deadline: %w", wait.Round(time.Millisecond), context.DeadlineExceeded))
		}
		c.log.DebugContext(ctx, "Live API retry scheduled", "method", method, "domain", domain, "attempt", attempt, "wait", wait)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, c.giveUp(method, domain, attempt, last, lastErr, secret, err)
		}
	}
	if lastErr != nil {
		return nil, c.connError(method, domain, sent, lastErr)
	}
	return last, nil
}

// giveUp builds the error for a call that stops before the policy ran out: the last
// outcome (an APIError or a connection error), joined with why we stopped (reason).
func (c *Client) giveUp(method, domain string, attempts int, last *response, lastErr error, secret string, reason error) error {
	switch {
	case lastErr != nil:
		return fmt.Errorf("%w; gave up: %w", c.connError(method, domain, attempts, lastErr), reason)
	case last != nil:
		return fmt.Errorf("%w; gave up retrying: %w", last.apiError(c, method, domain, secret), reason)
	default:
		return fmt.Errorf("Live API %s for domain %q: no request sent to %s: %w", method, domain, c.endpoint, reason)
	}
}

func (c *Client) connError(method, domain string, n int, err error) error {
	return fmt.Errorf("Live API %s for domain %q: cannot reach %s (%s): %w", method, domain, c.endpoint, plural(n), err)
}

// ctxOr prefers the context's own error so errors.Is(err, context.DeadlineExceeded)
// holds when the limiter refuses a wait that would outlive the deadline.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok {
		return fmt.Errorf("%v (deadline %s): %w", err, dl.Format(time.RFC3339), context.DeadlineExceeded)
	}
	return err
}

// attempt sends one signed HTTP request. It returns a response for any HTTP answer and
// an error for transport failures (which include reading the body).
func (c *Client) attempt(ctx context.Context, method, target string, body []byte, attempt int, secret string) (*response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body) // a fresh reader each attempt: the same bytes are re-sent
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Accept", "application/json")
	req.Header.Set(aksk.HeaderProjectID, c.projectID)
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	}
	aksk.Sign(req, body, c.creds, c.now()) // afresh each attempt: the date is part of the signature

	debug := c.log.Enabled(ctx, slog.LevelDebug)
	if debug {
		c.log.DebugContext(ctx, "Live API request",
			"method", method, "url", target, "attempt", attempt,
			"headers", maskHeaders(req.Header), "body", c.maskBody(body, secret))
	}
	c.requests.Add(1)
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		if debug {
			c.log.DebugContext(ctx, "Live API request failed", "method", method, "url", target, "attempt", attempt,
				"duration", time.Since(start), "error", c.redact(err.Error(), secret))
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	res := &response{status: resp.StatusCode, header: resp.Header, body: data, requestID: requestID(resp.Header, data), attempts: attempt}
	if resp.StatusCode == http.StatusTooManyRequests {
		c.throttled.Add(1)
	}
	if debug {
		c.log.DebugContext(ctx, "Live API response",
			"method", method, "url", target, "attempt", attempt, "status", resp.StatusCode,
			"duration", time.Since(start), "request_id", res.requestID, "body", c.maskBody(data, secret))
	}
	if err != nil {
		return nil, fmt.Errorf("reading the HTTP %d answer: %w", resp.StatusCode, err)
	}
	return res, nil
}

// shouldRetry applies the policy: 429, 5xx except 501, and transport errors (but not
// certificate problems, which no retry fixes). wait honours Retry-After, else full jitter.
func (c *Client) shouldRetry(res *response, err error, attempt int) (bool, time.Duration) {
	if err != nil {
		var certErr *tls.CertificateVerificationError
		if errors.As(err, &certErr) {
			return false, 0
		}
		return true, c.backoff(attempt)
	}
	if res.status != http.StatusTooManyRequests && (res.status < 500 || res.status == http.StatusNotImplemented) {
		return false, 0
	}
	if d, ok := parseRetryAfter(res.header.Get("Retry-After"), c.now()); ok {
		return true, d
	}
	return true, c.backoff(attempt)
}

// backoff is "full jitter" (internal/backoff with Jitter 1): uniform in
// [0, min(max, min*2^(attempt-1))].
func (c *Client) backoff(attempt int) time.Duration {
	if c.minBackoff <= 0 || c.maxBackoff <= 0 {
		return 0
	}
	return backoff.Policy{Initial: c.minBackoff, Max: c.maxBackoff, Jitter: 1}.Delay(attempt - 1)
}

// parseRetryAfter reads delay-seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(24*time.Hour/time.Second) { // avoid overflow; anything this large is "too long" anyway
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func plural(n int) string {
	if n == 1 {
		return "after 1 attempt"
	}
	return fmt.Sprintf("after %d attempts", n)
}

func orNone(id string) string {
	if id == "" {
		return "none"
	}
	return id
}
