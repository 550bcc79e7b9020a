package emulator_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
)

// receiver is an httptest callback endpoint answering statuses from a script (then 200).
type receiver struct {
	mu     sync.Mutex
	script []int
	bodies [][]byte
	ctypes []string
	*httptest.Server
}

func newReceiver(t *testing.T, script ...int) *receiver {
	rv := &receiver{script: script}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rv.mu.Lock()
		rv.bodies = append(rv.bodies, b)
		rv.ctypes = append(rv.ctypes, r.Header.Get("Content-Type"))
		status := 200
		if len(rv.script) > 0 {
			status, rv.script = rv.script[0], rv.script[1:]
		}
		rv.mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"result":"ok"}`))
	}))
	t.Cleanup(rv.Close)
	return rv
}

func (rv *receiver) got() [][]byte {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([][]byte(nil), rv.bodies...)
}

// specAuthSign is the callback signature from spec/callback.md, written independently of package callback.
func specAuthSign(key, event, domain, app, stream string, ts int64) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(event + domain + app + stream + strconv.FormatInt(ts, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// keysInOrder returns the top-level keys of a JSON object in the order they appear.
func keysInOrder(t *testing.T, body []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("callback body is not a JSON object: %s", body)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func putConfig(t *testing.T, base string, n emulator.Notification) {
	t.Helper()
	b, _ := json.Marshal(n)
	if a := do(t, mgmt(t, base, "PUT", "?domain="+testDomain, b, signOpts{})); a.status != 201 && a.status != 200 {
		t.Fatalf("PUT config: %d %s", a.status, a.body)
	}
}

type cbBody struct {
	Domain, App, Stream, Event string
	UserArgs                   *string         `json:"user_args"`
	UsrArgs                    *string         `json:"usr_args"`
	ClientIP                   string          `json:"client_ip"`
	NodeIP                     string          `json:"node_ip"`
	PublishTimestamp           json.RawMessage `json:"publish_timestamp"`
	AuthTimestamp              json.RawMessage `json:"auth_timestamp"`
	AuthSign                   *string         `json:"auth_sign"`
}

func TestCallbacks(t *testing.T) {
	t.Parallel()
	stream := emulator.Stream{Domain: testDomain, App: "live", Stream: "room_1001", UserArgs: "auth_info=a+b/c==&cdn=hw", ClientIP: "116.31.96.221"}
	signedOrder := []string{"domain", "app", "stream", "user_args", "client_ip", "node_ip", "publish_timestamp", "event", "auth_timestamp", "auth_sign"}
	tests := []struct {
		name      string
		usrArgs   bool
		key       string
		script    []int // receiver answers for PUBLISH
		wantOrder []string
		wantTries int
	}{
		{"signed", false, validKey, nil, signedOrder, 1},
		{"unsigned", false, "", nil, signedOrder[:8], 1},
		{"usr_args spelling", true, validKey, nil, append([]string{"domain", "app", "stream", "usr_args"}, signedOrder[4:]...), 1},
		{"retried after 500", false, validKey, []int{500}, signedOrder, 2},
		{"retried after 204 and 302", false, validKey, []int{204, 302}, signedOrder, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, base := newEmu(t, func(c *emulator.Config) { c.UsrArgs = tt.usrArgs })
			rv := newReceiver(t, tt.script...)
			putConfig(t, base, emulator.Notification{URL: rv.URL + "/hook?token=x", AuthSignKey: tt.key})

			var pub emulator.Report
			a := ctl(t, base, "POST", "/_emulator/publish", stream)
			if a.status != 200 || json.Unmarshal(a.body, &pub) != nil {
				t.Fatalf("publish: %d %s", a.status, a.body)
			}
			if !pub.Delivered || len(pub.Attempts) != tt.wantTries || pub.URL != rv.URL+"/hook?token=x" {
				t.Fatalf("publish report: %s", a.body)
			}
			for i, at := range pub.Attempts {
				want := 200
				if i < len(tt.script) {
					want = tt.script[i]
				}
				if at.Status != want || at.Error != "" || !at.At.Equal(fixedNow) {
					t.Fatalf("attempt %d: %+v, want status %d", i, at, want)
				}
			}
			done, err := s.PublishDone(context.Background(), stream)
			if err != nil || !done.Delivered || len(done.Attempts) != 1 {
				t.Fatalf("PublishDone: %v %+v", err, done)
			}

			got := rv.got()
			if len(got) != tt.wantTries+1 {
				t.Fatalf("receiver got %d posts, want %d", len(got), tt.wantTries+1)
			}
			for i := 1; i < tt.wantTries; i++ {
				if !bytes.Equal(got[i], got[0]) {
					t.Fatalf("retry %d sent a different body:\n%s\n%s", i, got[i], got[0])
				}
			}
			if !bytes.Equal(got[0], pub.Body) {
				t.Fatalf("report body %s differs from the body sent %s", pub.Body, got[0])
			}
			for _, ct := range rv.ctypes {
				if ct != "application/json" {
					t.Fatalf("Content-Type %q", ct)
				}
			}
			var bodies []cbBody
			for i, raw := range [][]byte{got[0], got[len(got)-1]} {
				if k := keysInOrder(t, raw); !equalStrings(k, tt.wantOrder) {
					t.Fatalf("body %d keys %v, want %v", i, k, tt.wantOrder)
				}
				var b cbBody
				if err := json.Unmarshal(raw, &b); err != nil {
					t.Fatal(err)
				}
				bodies = append(bodies, b)
			}
			p, d := bodies[0], bodies[1]
			if p.Event != "PUBLISH" || d.Event != "PUBLISH_DONE" || p.Domain != testDomain || p.App != "live" || p.Stream != "room_1001" || p.ClientIP != "116.31.96.221" || p.NodeIP == "" {
				t.Fatalf("bodies: %+v %+v", p, d)
			}
			args := p.UserArgs
			if tt.usrArgs {
				args = p.UsrArgs
			}
			if args == nil || *args != stream.UserArgs || !bytes.Contains(got[0], []byte(`"auth_info=a+b/c==&cdn=hw"`)) {
				t.Fatalf("user args not carried verbatim: %s", got[0])
			}
			wantTS := `"` + strconv.FormatInt(fixedNow.Unix(), 10) + `"`
			if string(p.PublishTimestamp) != wantTS || string(d.PublishTimestamp) != wantTS {
				t.Fatalf("publish_timestamp %s / %s, want the string %s in both", p.PublishTimestamp, d.PublishTimestamp, wantTS)
			}
			for _, b := range bodies {
				if tt.key == "" {
					continue
				}
				ts, err := strconv.ParseInt(string(b.AuthTimestamp), 10, 64)
				if err != nil || ts != fixedNow.Unix() {
					t.Fatalf("auth_timestamp %s is not the send time as a number", b.AuthTimestamp)
				}
				if want := specAuthSign(tt.key, b.Event, b.Domain, b.App, b.Stream, ts); b.AuthSign == nil || *b.AuthSign != want {
					t.Fatalf("%s auth_sign does not verify by the spec formula", b.Event)
				}
			}

			dels := s.Deliveries()
			if len(dels) != 2 || dels[0].Event != "PUBLISH" || dels[1].Event != "PUBLISH_DONE" || len(dels[0].Attempts) != tt.wantTries || !dels[1].Delivered {
				t.Fatalf("deliveries: %+v", dels)
			}
			var viaHTTP []emulator.Delivery
			if a := ctl(t, base, "GET", "/_emulator/deliveries", nil); a.status != 200 || json.Unmarshal(a.body, &viaHTTP) != nil || len(viaHTTP) != 2 || !bytes.Equal(viaHTTP[0].Body, got[0]) {
				t.Fatalf("GET deliveries: %d %s", a.status, a.body)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCallbackErrors(t *testing.T) {
	t.Parallel()
	s, base := newEmu(t, func(c *emulator.Config) { c.CallbackRetries = 2 })
	down := newReceiver(t, 500, 503, 500, 500)
	st := emulator.Stream{Domain: testDomain, App: "live", Stream: "s1"}

	// No config yet.
	if a := ctl(t, base, "POST", "/_emulator/publish", st); a.status != 400 {
		t.Fatalf("publish without config: %d %s", a.status, a.body)
	}
	putConfig(t, base, emulator.Notification{URL: down.URL})

	// Never delivered: 502 with the report of 1+2 attempts; the session started anyway.
	var rep emulator.Report
	a := ctl(t, base, "POST", "/_emulator/publish", st)
	if a.status != 502 || json.Unmarshal(a.body, &rep) != nil || rep.Delivered || len(rep.Attempts) != 3 || rep.Attempts[2].Status != 500 {
		t.Fatalf("undeliverable publish: %d %s", a.status, a.body)
	}
	if _, err := s.Publish(context.Background(), st); !errors.Is(err, emulator.ErrSessionActive) {
		t.Fatalf("second publish of a live stream: %v, want ErrSessionActive", err)
	}
	if a := ctl(t, base, "POST", "/_emulator/publish", st); a.status != 409 {
		t.Fatalf("second publish over HTTP: %d, want 409", a.status)
	}
	rep2, err := s.PublishDone(context.Background(), st)
	if err != nil || !rep2.Delivered || len(rep2.Attempts) != 2 {
		t.Fatalf("publish_done: %v %+v", err, rep2)
	}
	if a := ctl(t, base, "POST", "/_emulator/publish_done", st); a.status != 409 {
		t.Fatalf("publish_done without a session: %d %s, want 409", a.status, a.body)
	}
	// A new session of the same stream gets a later publish_timestamp even within the same second.
	r3, err := s.Publish(context.Background(), st)
	if err != nil || !bytes.Contains(r3.Body, []byte(`"publish_timestamp":"`+strconv.FormatInt(fixedNow.Unix()+1, 10)+`"`)) {
		t.Fatalf("second session: %v %s", err, r3.Body)
	}

	// A receiver that is not listening: transport errors are reported per attempt.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	putConfig(t, base, emulator.Notification{URL: gone.URL})
	st2 := emulator.Stream{Domain: testDomain, App: "live", Stream: "s2"}
	rep4, err := s.Publish(context.Background(), st2)
	if !errors.Is(err, emulator.ErrNotDelivered) || rep4 == nil || len(rep4.Attempts) != 3 || rep4.Attempts[0].Error == "" || rep4.Attempts[0].Status != 0 {
		t.Fatalf("publish to a closed port: %v %+v", err, rep4)
	}

	// The config goes away while a stream is live: the session still ends, without a callback.
	if !s.DeleteConfig(testDomain) {
		t.Fatal("no config to delete")
	}
	if _, err := s.PublishDone(context.Background(), st2); !errors.Is(err, emulator.ErrNoConfig) {
		t.Fatalf("publish_done without config: %v, want ErrNoConfig", err)
	}
	if _, err := s.PublishDone(context.Background(), st2); !errors.Is(err, emulator.ErrNoSession) {
		t.Fatalf("publish_done after the session ended: %v, want ErrNoSession", err)
	}

	bad := []struct {
		name, path string
		body       any
		want       int
	}{
		{"unknown domain", "/_emulator/publish", emulator.Stream{Domain: "nope.example.com", App: "a", Stream: "s"}, 400},
		{"missing app", "/_emulator/publish", emulator.Stream{Domain: testDomain, Stream: "s"}, 400},
		{"missing stream", "/_emulator/publish_done", emulator.Stream{Domain: testDomain, App: "a"}, 400},
		{"malformed", "/_emulator/publish", `{"domain":`, 400},
		{"unknown field", "/_emulator/publish", `{"domain":"` + testDomain + `","app":"a","stream":"s","usr_args":"x"}`, 400},
		{"empty", "/_emulator/publish", ``, 400},
		{"GET not allowed", "/_emulator/publish", nil, 405},
		{"huge", "/_emulator/publish", `{"domain":"` + string(bytes.Repeat([]byte("a"), 1<<20)) + `"}`, 413},
	}
	for _, b := range bad {
		method := "POST"
		if b.want == 405 {
			method = "GET"
		}
		if a := ctl(t, base, method, b.path, b.body); a.status != b.want || a.code == "" {
			t.Errorf("%s: %d %s, want %d with an error body", b.name, a.status, a.body, b.want)
		}
	}
}

func TestControlAPI(t *testing.T) {
	t.Parallel()
	s, base := newEmu(t, nil)
	n := emulator.Notification{URL: "https://drift.example.com/cb", AuthSignKey: validKey, CallBackArea: "outside_mainland_china"}
	steps := []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/_emulator/healthz", nil, 200},
		{"GET", "/_emulator/configs?domain=" + testDomain, nil, 404},
		{"PUT", "/_emulator/configs?domain=" + testDomain, n, 200},
		{"GET", "/_emulator/configs?domain=" + testDomain, nil, 200},
		{"PUT", "/_emulator/configs?domain=" + testDomain, emulator.Notification{URL: "ftp://x"}, 400},
		{"PUT", "/_emulator/configs?domain=nope.example.com", n, 400},
		{"PUT", "/_emulator/configs", n, 400},
		{"DELETE", "/_emulator/configs?domain=" + testDomain, nil, 204},
		{"DELETE", "/_emulator/configs?domain=" + testDomain, nil, 404},
		{"POST", "/_emulator/domains", map[string]string{"domain": "new.example.com"}, 201},
		{"POST", "/_emulator/domains", map[string]string{"domain": ""}, 400},
		{"POST", "/_emulator/domains", `{"domain":"a b"}`, 400},
		{"GET", "/_emulator/domains", nil, 200},
		{"GET", "/_emulator/stats", nil, 200},
		{"DELETE", "/_emulator/stats", nil, 204},
		{"GET", "/_emulator/deliveries", nil, 200},
		{"POST", "/_emulator/faults", nil, 405},
		{"GET", "/_emulator/nothing", nil, 404},
		{"GET", "/_emulator", nil, 404},
	}
	for _, st := range steps {
		a := ctl(t, base, st.method, st.path, st.body)
		if a.status != st.want {
			t.Fatalf("%s %s: %d %s, want %d", st.method, st.path, a.status, a.body, st.want)
		}
		if st.want >= 400 && a.code == "" {
			t.Errorf("%s %s: %d without an error body: %s", st.method, st.path, a.status, a.body)
		}
	}
	if a := ctl(t, base, "GET", "/_emulator/deliveries", nil); string(bytes.TrimSpace(a.body)) != "[]" {
		t.Errorf("empty deliveries = %s, want []", a.body)
	}
	// Drift is visible to the management API.
	if err := s.SetConfig(testDomain, n); err != nil {
		t.Fatal(err)
	}
	a := do(t, mgmt(t, base, "GET", "?domain="+testDomain, nil, signOpts{}))
	var got emulator.Notification
	if json.Unmarshal(a.body, &got) != nil || got != n {
		t.Fatalf("GET after drift: %s", a.body)
	}
	if !s.DeleteConfig(testDomain) || s.DeleteConfig(testDomain) {
		t.Fatal("DeleteConfig should report true once, then false")
	}
	if err := s.SetConfig("nope.example.com", n); !errors.Is(err, emulator.ErrUnknownDomain) {
		t.Fatalf("SetConfig on an unknown domain: %v", err)
	}
	s.AddDomain("go.example.com")
	if a := do(t, mgmt(t, base, "GET", "?domain=go.example.com", nil, signOpts{})); a.status != 200 {
		t.Fatalf("GET on a domain added from Go: %d", a.status)
	}
}
