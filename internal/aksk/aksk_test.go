package aksk

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The vectors from the spec: AccessKey/SecretKey, date 20060102T150405Z, only x-sdk-date signed.
func TestSpecVectors(t *testing.T) {
	tests := []struct {
		name, method, path, query, body, want string
	}{
		{"get", "GET", "/path", "limit=1", "", "5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"},
		{"post", "POST", "/path", "key=value", "{\"Name\":\"test\",\"Id\":1}\n", "cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signed := []string{"x-sdk-date"}
			cr := CanonicalRequest(tt.method, tt.path, tt.query, map[string]string{"x-sdk-date": "20060102T150405Z"}, signed, []byte(tt.body))
			got := Signature("SecretKey", StringToSign("20060102T150405Z", cr))
			if got != tt.want {
				t.Fatalf("signature = %s, want %s\ncanonical request:\n%s", got, tt.want, cr)
			}
		})
	}
}

func TestCanonicalURIAndQuery(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/v1/p/notifications/publish", "/v1/p/notifications/publish/"},
		{"/", "/"},
		{"/a%20b/c", "/a%20b/c/"},
	}
	for _, tt := range tests {
		if got := canonicalURI(tt.in); got != tt.want {
			t.Errorf("canonicalURI(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := canonicalQuery("b=2&a=x%2By&a=1&domain=push.example.com"), "a=1&a=x%2By&b=2&domain=push.example.com"; got != want {
		t.Errorf("canonicalQuery = %q, want %q", got, want)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	creds := Credentials{AccessKey: "AK", SecretKey: "SK", SecurityToken: "TOKEN"}
	secrets := func(ak string) (string, bool) { return "SK", ak == "AK" }
	body := []byte(`{"url":"https://x"}`)
	newReq := func() *http.Request {
		r := httptest.NewRequest("PUT", "http://live.example.com/v1/p/notifications/publish?domain=push.example.com", bytes.NewReader(body))
		r.Header.Set(HeaderProjectID, "p")
		Sign(r, body, creds, now)
		return r
	}
	if _, err := Verify(newReq(), body, secrets, now, 15*time.Minute); err != nil {
		t.Fatalf("verify of a fresh signature: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(r *http.Request) []byte
		now    time.Time
		want   error
	}{
		{"tampered body", func(r *http.Request) []byte { return []byte(`{"url":"https://y"}`) }, now, ErrMismatch},
		{"tampered query", func(r *http.Request) []byte { r.URL.RawQuery = "domain=other"; return body }, now, ErrMismatch},
		{"tampered token", func(r *http.Request) []byte { r.Header.Set(HeaderSecurityToken, "x"); return body }, now, ErrMismatch},
		{"stale", func(r *http.Request) []byte { return body }, now.Add(16 * time.Minute), ErrStaleDate},
		{"unsigned", func(r *http.Request) []byte { r.Header.Del("Authorization"); return body }, now, ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReq()
			b := tt.mutate(r)
			if _, err := Verify(r, b, secrets, tt.now, 15*time.Minute); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}
