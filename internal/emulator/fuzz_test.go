package emulator_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
)

// FuzzServeHTTP: no input makes the emulator panic, and every answer has an X-Request-Id
// and, when it is an error, a JSON error body. The seeds run with every `go test`;
// `go test -fuzz=FuzzServeHTTP ./internal/emulator` explores further.
func FuzzServeHTTP(f *testing.F) {
	seeds := []struct{ method, target, body string }{
		{"PUT", "/v1/" + testProject + "/notifications/publish?domain=" + testDomain, `{"url":"http://127.0.0.1:1/cb"}`},
		{"PUT", "/v1/" + testProject + "/notifications/publish?domain=" + testDomain, `{"url":"http//[::1"}`},
		{"PUT", "/v1/" + testProject + "/notifications/publish?domain=%zz", `{`},
		{"GET", "/v1//notifications/publish", ""},
		{"POST", "/_emulator/publish", `{"domain":"` + testDomain + `","app":"a","stream":"b"}`},
		{"POST", "/_emulator/publish_done", `{"domain":null}`},
		{"PUT", "/_emulator/faults", `{"latency":"1h","fail_rate":1e309}`},
		{"PUT", "/_emulator/configs?domain=" + testDomain, `{"url":"http://127.0.0.1:1/x","auth_sign_key":"\u0000"}`},
		{"POST", "/_emulator/domains", `{"domain":"` + strings.Repeat("é", 200) + `"}`},
		{"DELETE", "/_emulator/deliveries", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.body, true)
		f.Add(s.method, s.target, s.body, false)
	}
	s, err := emulator.New(emulator.Config{ProjectID: testProject, AccessKey: testAK, SecretKey: testSK,
		Domains: []string{testDomain}, CallbackRetries: -1, CallbackTimeout: 100 * time.Millisecond,
		Now: func() time.Time { return fixedNow }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target, body string, sign bool) {
		if !validMethod(method) || !strings.HasPrefix(target, "/") {
			return
		}
		// Callbacks may only go to a closed loopback port: tests never reach the network.
		if strings.Count(body, "://") != strings.Count(body, "://127.0.0.1:1/") {
			return
		}
		req, err := http.NewRequest(method, "http://emu.local"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Host = "emu.local"
		if sign {
			specSign(req, []byte(body), signOpts{date: fixedNow})
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if !requestIDRe.MatchString(w.Header().Get("X-Request-Id")) {
			t.Fatalf("no X-Request-Id")
		}
		if w.Code >= 400 && !bytes.Contains(w.Body.Bytes(), []byte(`"error_code"`)) {
			if !(w.Code == 502 && bytes.Contains(w.Body.Bytes(), []byte(`"attempts"`))) {
				t.Fatalf("%d without an error body: %s", w.Code, w.Body)
			}
		}
		// Undo fault changes an input made (a latency of 1h would stall the next ones).
		s.SetFaults(emulator.Faults{})
	})
}

func validMethod(m string) bool {
	switch m {
	case "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS":
		return true
	}
	return false
}
