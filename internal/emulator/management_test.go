package emulator_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
)

const validKey = "0123456789abcdef0123456789abcdef"

// The management API's answer table, in order against one emulator (steps depend on each other).
func TestManagementAPI(t *testing.T) {
	t.Parallel()
	_, base := newEmu(t, nil)
	d := "?domain=" + testDomain
	good := `{"url":"https://hooks.example.com/live?x=1","auth_sign_key":"` + validKey + `","call_back_area":"mainland_china"}`
	steps := []struct {
		name, method, query, body string
		sign                      *signOpts // nil => default signing
		path                      string    // override the path
		wantStatus                int
		wantCode                  string
		wantBody                  string // exact JSON (compared semantically), optional
	}{
		{name: "get without config", method: "GET", query: d, wantStatus: 200, wantBody: `{}`},
		{name: "delete without config", method: "DELETE", query: d, wantStatus: 204},
		{name: "create", method: "PUT", query: d, body: good, wantStatus: 201},
		{name: "read", method: "GET", query: d, wantStatus: 200, wantBody: good},
		{name: "overwrite", method: "PUT", query: d, body: `{"url":"http://hooks.example.com:8080/cb"}`, wantStatus: 200},
		{name: "read overwritten (no key, no area)", method: "GET", query: d, wantStatus: 200,
			wantBody: `{"url":"http://hooks.example.com:8080/cb","auth_sign_key":"","call_back_area":""}`},
		{name: "unknown fields ignored", method: "PUT", query: d, body: `{"url":"https://a.example.com","extra":1}`, wantStatus: 200},
		{name: "delete", method: "DELETE", query: d, wantStatus: 204},
		{name: "read after delete", method: "GET", query: d, wantStatus: 200, wantBody: `{}`},
		{name: "delete again", method: "DELETE", query: d, wantStatus: 204},
		{name: "key of 128", method: "PUT", query: d, body: `{"url":"https://a.example.com","auth_sign_key":"` + strings.Repeat("k", 128) + `"}`, wantStatus: 201},
		{name: "outside area", method: "PUT", query: d, body: `{"url":"https://a.example.com","call_back_area":"outside_mainland_china"}`, wantStatus: 200},

		{name: "get unknown domain", method: "GET", query: "?domain=nope.example.com", wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "put unknown domain", method: "PUT", query: "?domain=nope.example.com", body: good, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "delete unknown domain", method: "DELETE", query: "?domain=nope.example.com", wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "missing domain", method: "GET", query: "", wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "empty domain", method: "GET", query: "?domain=", wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "domain twice", method: "GET", query: d + "&domain=other.example.com", wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "domain too long", method: "GET", query: "?domain=" + strings.Repeat("a", 256), wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "malformed json", method: "PUT", query: d, body: `{"url":`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "empty body", method: "PUT", query: d, body: ``, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "json array", method: "PUT", query: d, body: `[]`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "json null", method: "PUT", query: d, body: `null`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "trailing data", method: "PUT", query: d, body: `{"url":"https://a.example.com"} {}`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "url missing", method: "PUT", query: d, body: `{"auth_sign_key":"` + validKey + `"}`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "url wrong type", method: "PUT", query: d, body: `{"url":5}`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "url ftp", method: "PUT", query: d, body: `{"url":"ftp://a.example.com/x"}`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "url without host", method: "PUT", query: d, body: `{"url":"https://"}`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "url relative", method: "PUT", query: d, body: `{"url":"/callback"}`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "key of 31", method: "PUT", query: d, body: `{"url":"https://a.example.com","auth_sign_key":"` + strings.Repeat("k", 31) + `"}`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "key of 129", method: "PUT", query: d, body: `{"url":"https://a.example.com","auth_sign_key":"` + strings.Repeat("k", 129) + `"}`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "bad area", method: "PUT", query: d, body: `{"url":"https://a.example.com","call_back_area":"mars"}`, wantStatus: 400, wantCode: "LIVE.100011001"},
		{name: "post not allowed", method: "POST", query: d, body: good, wantStatus: 405, wantCode: "LIVE.100011011"},
		{name: "patch not allowed", method: "PATCH", query: d, body: good, wantStatus: 405, wantCode: "LIVE.100011011"},
		{name: "wrong project", method: "GET", query: d, path: "/v1/another-project/notifications/publish", wantStatus: 404, wantCode: "APIGW.0101"},
		{name: "unknown path", method: "GET", query: d, path: "/v2/whatever", wantStatus: 404, wantCode: "APIGW.0101"},
		{name: "body over 1 MiB", method: "PUT", query: d, body: `{"url":"https://a.example.com","x":"` + strings.Repeat("a", 1<<20) + `"}`, wantStatus: 413, wantCode: "APIGW.0201"},
	}
	for _, st := range steps {
		var body []byte
		if st.body != "" || st.method == "PUT" {
			body = []byte(st.body)
		}
		req := mgmt(t, base, st.method, st.query, body, signOpts{})
		if st.path != "" {
			req.URL.Path = st.path
			specSign(req, body, signOpts{date: fixedNow})
		}
		a := do(t, req)
		if a.status != st.wantStatus || a.code != st.wantCode {
			t.Fatalf("%s: got %d %q (%s), want %d %q", st.name, a.status, a.code, a.body, st.wantStatus, st.wantCode)
		}
		if st.wantBody != "" && !jsonEqual(t, a.body, []byte(st.wantBody)) {
			t.Fatalf("%s: body %s, want %s", st.name, a.body, st.wantBody)
		}
		if st.wantStatus == 204 && len(a.body) != 0 {
			t.Errorf("%s: 204 with a body %q", st.name, a.body)
		}
		if st.wantStatus == 405 && a.header.Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow", st.name)
		}
		if bytes.Contains(a.body, []byte(validKey)) && st.method != "GET" {
			t.Errorf("%s: answer echoes the auth_sign_key: %s", st.name, a.body)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("answer is not JSON: %q", a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("want is not JSON: %q", b)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// Signatures from the independent signer pass; every kind of forgery gets 401 APIGW.0301.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	_, base := newEmu(t, nil)
	d := "?domain=" + testDomain
	body := []byte(`{"url":"https://hooks.example.com/cb"}`)
	tests := []struct {
		name string
		req  func() *http.Request
		ok   bool
	}{
		{"spec signer", func() *http.Request { return mgmt(t, base, "PUT", d, body, signOpts{}) }, true},
		{"content-type signed too", func() *http.Request { return mgmt(t, base, "PUT", d, body, signOpts{signContent: true}) }, true},
		{"security token", func() *http.Request { return mgmt(t, base, "PUT", d, body, signOpts{token: "any-temporary-token"}) }, true},
		{"date 14 min off", func() *http.Request {
			return mgmt(t, base, "GET", d, nil, signOpts{date: fixedNow.Add(-14 * time.Minute)})
		}, true},
		{"escaped query", func() *http.Request { return mgmt(t, base, "GET", "?domain=push%2Eexample%2Ecom", nil, signOpts{}) }, true},
		{"wrong secret", func() *http.Request { return mgmt(t, base, "PUT", d, body, signOpts{sk: "not-the-secret"}) }, false},
		{"unknown access key", func() *http.Request { return mgmt(t, base, "PUT", d, body, signOpts{ak: "SOMEONEELSE"}) }, false},
		{"stale date", func() *http.Request {
			return mgmt(t, base, "GET", d, nil, signOpts{date: fixedNow.Add(-16 * time.Minute)})
		}, false},
		{"future date", func() *http.Request {
			return mgmt(t, base, "GET", d, nil, signOpts{date: fixedNow.Add(16 * time.Minute)})
		}, false},
		{"tampered query", func() *http.Request {
			r := mgmt(t, base, "GET", d, nil, signOpts{})
			r.URL.RawQuery = "domain=other.example.com"
			return r
		}, false},
		{"tampered body", func() *http.Request {
			r := mgmt(t, base, "PUT", d, body, signOpts{})
			evil := []byte(`{"url":"https://evil.example.com/cb"}`)
			r.Body, r.ContentLength = nopCloser(evil), int64(len(evil))
			return r
		}, false},
		{"tampered signed content-type", func() *http.Request {
			r := mgmt(t, base, "PUT", d, body, signOpts{signContent: true})
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, false},
		{"tampered token", func() *http.Request {
			r := mgmt(t, base, "PUT", d, body, signOpts{token: "a"})
			r.Header.Set("X-Security-Token", "b")
			return r
		}, false},
		{"no authorization", func() *http.Request {
			r := mgmt(t, base, "GET", d, nil, signOpts{})
			r.Header.Del("Authorization")
			return r
		}, false},
		{"no date header", func() *http.Request {
			r := mgmt(t, base, "GET", d, nil, signOpts{})
			r.Header.Del("X-Sdk-Date")
			return r
		}, false},
		{"garbage authorization", func() *http.Request {
			r := mgmt(t, base, "GET", d, nil, signOpts{})
			r.Header.Set("Authorization", "Bearer x")
			return r
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, tt.req())
			if tt.ok {
				if a.status >= 300 {
					t.Fatalf("got %d %s, want success", a.status, a.body)
				}
				return
			}
			var e struct{ Code, Msg string }
			_ = json.Unmarshal(a.body, &struct {
				Code *string `json:"error_code"`
				Msg  *string `json:"error_msg"`
			}{&e.Code, &e.Msg})
			if a.status != 401 || e.Code != "APIGW.0301" || e.Msg != "Incorrect IAM authentication information: verify aksk signature fail" {
				t.Fatalf("got %d %s, want 401 APIGW.0301", a.status, a.body)
			}
			if bytes.Contains(a.body, []byte(testSK)) {
				t.Fatalf("the answer reveals the secret key")
			}
		})
	}
}

type rc struct{ *bytes.Reader }

func (rc) Close() error { return nil }

func nopCloser(b []byte) rc { return rc{bytes.NewReader(b)} }

func TestRateLimitAndFaults(t *testing.T) {
	t.Parallel()
	s, base := newEmu(t, func(c *emulator.Config) { c.RateLimit = 60 }) // capacity 1
	d := "?domain=" + testDomain
	if a := do(t, mgmt(t, base, "GET", d, nil, signOpts{})); a.status != 200 {
		t.Fatalf("first request: %d %s", a.status, a.body)
	}
	a := do(t, mgmt(t, base, "GET", d, nil, signOpts{}))
	if a.status != 429 || a.code != "APIGW.0308" {
		t.Fatalf("burst: got %d %s, want 429", a.status, a.body)
	}
	if ra := a.header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After = %q, want 1", ra)
	}
	// Unsigned requests are refused before they cost a token.
	r := mgmt(t, base, "GET", d, nil, signOpts{})
	r.Header.Del("Authorization")
	if a := do(t, r); a.status != 401 {
		t.Fatalf("unsigned while throttled: %d, want 401", a.status)
	}

	s.SetFaults(emulator.Faults{FailRate: 1})
	a = do(t, mgmt(t, base, "GET", d, nil, signOpts{}))
	if a.status != 500 || a.code != "LIVE.100011000" {
		t.Fatalf("fail rate 1: got %d %s, want 500 LIVE.100011000", a.status, a.body)
	}
	r = mgmt(t, base, "GET", d, nil, signOpts{sk: "wrong"})
	if a := do(t, r); a.status != 401 {
		t.Fatalf("bad signature with fail rate 1: %d, want 401 (auth first)", a.status)
	}

	// The control API changes faults at run time; fields left out keep their value.
	if a := ctl(t, base, "PUT", "/_emulator/faults", `{"fail_rate":0,"latency":"1ms"}`); a.status != 200 {
		t.Fatalf("PUT faults: %d %s", a.status, a.body)
	}
	var f emulator.Faults
	if a := ctl(t, base, "GET", "/_emulator/faults", nil); json.Unmarshal(a.body, &f) != nil || f != (emulator.Faults{Latency: time.Millisecond}) {
		t.Fatalf("GET faults: %s", a.body)
	}
	if a := do(t, mgmt(t, base, "GET", d, nil, signOpts{})); a.status != 200 {
		t.Fatalf("after clearing faults: %d %s", a.status, a.body)
	}
	for _, bad := range []string{`{"fail_rate":2}`, `{"rate_limit":-1}`, `{"latency":"soon"}`, `{"latency":"-1s"}`, `{"failrate":1}`, `[`} {
		if a := ctl(t, base, "PUT", "/_emulator/faults", bad); a.status != 400 {
			t.Errorf("PUT faults %s: %d, want 400", bad, a.status)
		}
	}

	st := s.Stats()
	want := emulator.Stats{Requests: 6, Throttled: 1, InjectedFailures: 1, ByStatus: map[int]int64{200: 2, 401: 2, 429: 1, 500: 1}}
	if st.Requests != want.Requests || st.Throttled != want.Throttled || st.InjectedFailures != want.InjectedFailures || len(st.ByStatus) != len(want.ByStatus) {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	for k, v := range want.ByStatus {
		if st.ByStatus[k] != v {
			t.Fatalf("stats %+v, want %+v", st, want)
		}
	}
	var viaHTTP emulator.Stats
	if a := ctl(t, base, "GET", "/_emulator/stats", nil); json.Unmarshal(a.body, &viaHTTP) != nil || viaHTTP.Requests != 6 || viaHTTP.ByStatus[429] != 1 {
		t.Fatalf("GET stats: %s", a.body)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	cfg := func(c *emulator.Config) { c.StatePath = path }
	s1, base := newEmu(t, cfg)
	body := []byte(`{"url":"https://hooks.example.com/cb","auth_sign_key":"` + validKey + `"}`)
	if a := do(t, mgmt(t, base, "PUT", "?domain="+testDomain, body, signOpts{})); a.status != 201 {
		t.Fatalf("PUT: %d %s", a.status, a.body)
	}
	if a := ctl(t, base, "POST", "/_emulator/domains", `{"domain":"added.example.com"}`); a.status != 201 {
		t.Fatalf("add domain: %d %s", a.status, a.body)
	}
	if a := ctl(t, base, "POST", "/_emulator/domains", `{"domain":"added.example.com"}`); a.status != 200 {
		t.Fatalf("add domain again: %d %s", a.status, a.body)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v, want mode 0600", fi, err)
	}

	s2, base2 := newEmu(t, func(c *emulator.Config) { c.StatePath = path; c.Domains = nil })
	if n, ok := s2.Config(testDomain); !ok || n.URL != "https://hooks.example.com/cb" || n.AuthSignKey != validKey {
		t.Fatalf("config after restart: %+v %v", n, ok)
	}
	if a := do(t, mgmt(t, base2, "PUT", "?domain=added.example.com", body, signOpts{})); a.status != 201 {
		t.Fatalf("PUT on the added domain after restart: %d %s", a.status, a.body)
	}
	if a := do(t, mgmt(t, base2, "GET", "?domain=other.example.com", nil, signOpts{})); a.status != 200 {
		t.Fatalf("command-line domain after restart: %d %s", a.status, a.body)
	}

	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := emulator.New(emulator.Config{ProjectID: "p", AccessKey: "a", SecretKey: "s", StatePath: path}); err == nil {
		t.Fatal("New accepted a corrupt state file")
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  emulator.Config
		want string
	}{
		{"no credentials", emulator.Config{ProjectID: "p"}, "AccessKey, SecretKey"},
		{"bad fail rate", emulator.Config{ProjectID: "p", AccessKey: "a", SecretKey: "s", FailRate: 1.5}, "fail rate"},
		{"bad domain", emulator.Config{ProjectID: "p", AccessKey: "a", SecretKey: "s", Domains: []string{"a b"}}, "domain"},
	}
	for _, tt := range tests {
		if _, err := emulator.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want mention of %q", tt.name, err, tt.want)
		}
	}
}

// Latency is a lower bound only (no upper-bound timing assertions in unit tests).
func TestLatency(t *testing.T) {
	t.Parallel()
	_, base := newEmu(t, func(c *emulator.Config) { c.Latency = 30 * time.Millisecond })
	start := time.Now()
	if a := do(t, mgmt(t, base, "GET", "?domain="+testDomain, nil, signOpts{})); a.status != 200 {
		t.Fatalf("GET: %d", a.status)
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("answered after %v, before the 30ms latency", el)
	}
}
