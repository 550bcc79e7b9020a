package intake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/internal/callback"
)

const (
	testKey    = "0123456789abcdef0123456789abcdef"
	testOldKey = "fedcba9876543210fedcba9876543210"
	testDomain = "push.example.com"
)

// testNow is the handler's clock in these tests.
var testNow = time.Unix(1764115200, 0) // 2025-11-26T00:00:00Z

// memSink records the archived lines and makes every entry durable at once (unit tests only).
type memSink struct {
	mu    sync.Mutex
	lines [][]byte
}

func (s *memSink) Submit(e *sink.Entry) error {
	s.mu.Lock()
	s.lines = append(s.lines, bytes.Clone(e.Line))
	s.mu.Unlock()
	e.Finish(nil)
	return nil
}

func (s *memSink) events(t *testing.T) []readback.Event {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []readback.Event
	for _, l := range s.lines {
		ev, err := readback.ParseLine(bytes.TrimRight(l, "\n"))
		if err != nil {
			t.Fatalf("archived line unreadable: %v: %s", err, l)
		}
		out = append(out, ev)
	}
	return out
}

type handlerOpts struct {
	allowUnsigned bool
	window        time.Duration
	keys          map[string][]string
}

func newTrustHandler(t *testing.T, o handlerOpts) (*Handler, *memSink) {
	t.Helper()
	sk := &memSink{}
	ring := &KeyRing{}
	if o.keys == nil {
		o.keys = map[string][]string{testDomain: {testKey, testOldKey}}
	}
	ring.Set(o.keys)
	h, err := New(Config{Sink: sk, Dedup: dedup.New(0), Keys: ring, AllowUnsigned: o.allowUnsigned,
		SignatureWindow: o.window, Metrics: metrics.NewArchiver(Reasons), Now: func() time.Time { return testNow },
		Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return h, sk
}

type answer struct {
	Status int
	Body   map[string]string
}

func post(t *testing.T, h http.Handler, body string) answer {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/callback", strings.NewReader(body)))
	a := answer{Status: w.Code}
	_ = json.Unmarshal(w.Body.Bytes(), &a.Body)
	return a
}

// cb builds a callback body. ts is auth_timestamp's JSON text ("" leaves it and auth_sign out);
// sign is auth_sign ("" leaves it out).
type cb struct {
	domain, app, stream, event, pts, ts, sign, extra string
}

func (c cb) body() string {
	if c.app == "" {
		c.app = "live"
	}
	if c.event == "" {
		c.event = callback.EventPublish
	}
	b := fmt.Sprintf(`{"domain":%q,"app":%q,"stream":%q,"event":%q`, c.domain, c.app, c.stream, c.event)
	if c.pts != "" {
		b += `,"publish_timestamp":"` + c.pts + `"`
	}
	if c.ts != "" {
		b += `,"auth_timestamp":` + c.ts
	}
	if c.sign != "" {
		b += `,"auth_sign":"` + c.sign + `"`
	}
	return b + c.extra + "}"
}

// signed is a callback for domain signed with key at auth_timestamp ts.
func signed(key, domain, stream string, ts int64, pts string) cb {
	return cb{domain: domain, stream: stream, pts: pts, ts: strconv.FormatInt(ts, 10),
		sign: callback.Sign(key, callback.EventPublish, domain, "live", stream, ts)}
}

func TestTrustRejections(t *testing.T) {
	t.Parallel()
	now := testNow.Unix()
	pts := strconv.FormatInt(now-10, 10)
	// The boundary-shift forgery: the signed text event+domain+app+stream+auth_timestamp has no
	// separators, so moving stream's trailing digits to the front of auth_timestamp keeps the
	// signature valid. The shifted timestamp is centuries ahead: out of the window.
	genuine := signed(testKey, testDomain, "cam12", now, pts)
	shifted := genuine
	shifted.stream, shifted.ts = "cam1", "2"+genuine.ts
	// The opposite shift makes the timestamp centuries old.
	back := signed(testKey, testDomain, "cam", now, pts)
	back.stream, back.ts = "cam"+back.ts[:1], back.ts[1:]

	zeroTS := signed(testKey, testDomain, "s", now, pts)
	zeroTS.ts = `"0` + zeroTS.ts + `"` // same value after a leading zero: not canonical
	big := func(ts string) cb {        // a signature made over an out-of-range decimal text
		m := signed(testKey, testDomain, "s", 0, pts)
		m.ts = ts
		return m
	}
	variant := func(domain string, c cb) cb { c.domain = domain; return c }
	unsigned := func(domain string) cb { return cb{domain: domain, stream: "s", pts: pts} }
	sTS := func(d int64) cb { return signed(testKey, testDomain, "s", now+d, pts) }

	tests := []struct {
		name          string
		body          string
		allowUnsigned bool
		window        time.Duration
		status        int
		reason        string // expected rejection reason (status >= 400)
		field         string
		signature     string // expected archive.signature (status 200)
	}{
		// 1. secure by default
		{name: "unknown domain refused", body: unsigned("other.example.com").body(), status: 403, reason: ReasonDomainNoKey, field: "domain"},
		{name: "unknown domain with --allow-unsigned", body: unsigned("other.example.com").body(), allowUnsigned: true, status: 200, signature: "none"},
		{name: "keyed domain unsigned", body: unsigned(testDomain).body(), allowUnsigned: true, status: 401, reason: ReasonSignatureMissing},
		{name: "upper-case variant unsigned", body: unsigned("PUSH.EXAMPLE.COM").body(), allowUnsigned: true, status: 401, reason: ReasonSignatureMissing},
		{name: "mixed variant with dot unsigned", body: unsigned("Push.Example.COM.").body(), allowUnsigned: true, status: 401, reason: ReasonSignatureMissing},
		{name: "two trailing dots unsigned", body: unsigned("push.example.com..").body(), allowUnsigned: true, status: 401, reason: ReasonSignatureMissing},
		{name: "a suffix of a keyed domain is another domain", body: variant("Example.COM.", signed(testKey, "push.example.com", "s", now, pts)).body(), status: 403, reason: ReasonDomainNoKey},
		{name: "variant reusing a keyed domain's signature", body: variant("PUSH.example.com.", signed(testKey, testDomain, "s", now, pts)).body(), allowUnsigned: true, status: 401, reason: ReasonSignatureInvalid},
		{name: "variant signed over its own spelling", body: signed(testKey, "PUSH.example.com.", "s", now, pts).body(), status: 200, signature: "verified"},
		// 5. key rotation
		{name: "new key", body: sTS(0).body(), status: 200, signature: "verified"},
		{name: "old key still listed", body: signed(testOldKey, testDomain, "s", now, pts).body(), status: 200, signature: "verified"},
		{name: "unlisted key", body: signed("another-key-another-key-another!", testDomain, "s", now, pts).body(), status: 401, reason: ReasonSignatureInvalid},
		// 2. freshness, any magnitude
		{name: "within window behind", body: sTS(-300).body(), window: 5 * time.Minute, status: 200, signature: "verified"},
		{name: "within window ahead", body: sTS(300).body(), window: 5 * time.Minute, status: 200, signature: "verified"},
		{name: "just behind window", body: sTS(-301).body(), window: 5 * time.Minute, status: 401, reason: ReasonSignatureStale},
		{name: "just ahead of window", body: sTS(301).body(), window: 5 * time.Minute, status: 401, reason: ReasonSignatureStale},
		{name: "centuries ahead", body: sTS(20_000_000_000).body(), window: 5 * time.Minute, status: 401, reason: ReasonSignatureStale},
		{name: "beyond time.Duration ahead", body: sTS(math.MaxInt64 - now).body(), window: 5 * time.Minute, status: 401, reason: ReasonSignatureStale},
		{name: "max int64 with window 0", body: sTS(math.MaxInt64 - now).body(), status: 401, reason: ReasonSignatureStale},
		{name: "ahead with window 0", body: sTS(3600).body(), status: 401, reason: ReasonSignatureStale},
		{name: "old with window 0 (no age bound)", body: signed(testKey, testDomain, "s", now-1e9, "1").body(), status: 200, signature: "verified"},
		{name: "epoch", body: sTS(-now).body(), window: time.Hour, status: 401, reason: ReasonSignatureStale},
		{name: "over int64", body: big("9223372036854775808").body(), window: time.Hour, status: 401, reason: ReasonSignatureInvalid},
		{name: "negative", body: big("-1").body(), window: time.Hour, status: 401, reason: ReasonSignatureInvalid},
		{name: "leading zero", body: zeroTS.body(), window: time.Hour, status: 401, reason: ReasonSignatureInvalid},
		{name: "exponent", body: big("1.7e9").body(), window: time.Hour, status: 401, reason: ReasonSignatureInvalid},
		{name: "boundary shift forward", body: shifted.body(), window: 5 * time.Minute, status: 401, reason: ReasonSignatureStale},
		{name: "boundary shift forward, window 0", body: shifted.body(), status: 401, reason: ReasonSignatureStale},
		{name: "boundary shift back", body: back.body(), window: 5 * time.Minute, status: 401, reason: ReasonSignatureStale},
		{name: "genuine before the shift", body: genuine.body(), window: 5 * time.Minute, status: 200, signature: "verified"},
		{name: "publish after signing", body: signed(testKey, testDomain, "s", now, strconv.FormatInt(now+301, 10)).body(), window: 5 * time.Minute, status: 400, reason: ReasonBadField, field: "publish_timestamp"},
		{name: "publish at signing plus window", body: signed(testKey, testDomain, "s", now, strconv.FormatInt(now+300, 10)).body(), window: 5 * time.Minute, status: 200, signature: "verified"},
		{name: "publish in ms after signing", body: signed(testKey, testDomain, "s", now, strconv.FormatInt((now+3600)*1000, 10)).body(), window: 5 * time.Minute, status: 400, reason: ReasonBadField, field: "publish_timestamp"},
		// 4. smuggled keys
		{name: "DOMAIN next to domain", body: unsigned("other.example.com").body()[:len(unsigned("other.example.com").body())-1] + `,"DOMAIN":"push.example.com"}`, allowUnsigned: true, status: 400, reason: ReasonDuplicateKey, field: "DOMAIN"},
		{name: "Domain before domain", body: `{"Domain":"x","domain":"other.example.com","app":"a","stream":"s","event":"PUBLISH"}`, allowUnsigned: true, status: 400, reason: ReasonDuplicateKey, field: "domain"},
		{name: "long s variant of stream", body: unsigned("o.example.com").body()[:len(unsigned("o.example.com").body())-1] + `,"ſtream":"x"}`, allowUnsigned: true, status: 400, reason: ReasonDuplicateKey, field: "ſtream"},
		{name: "Kelvin variant of an unknown key", body: cb{domain: "o.example.com", stream: "s", extra: `,"kind":1,"\u212aIND":2`}.body(), allowUnsigned: true, status: 400, reason: ReasonDuplicateKey, field: "\u212aIND"},
		{name: "escaped variant", body: cb{domain: "o.example.com", stream: "s", extra: `,"\u0041pp":"x"`}.body(), allowUnsigned: true, status: 400, reason: ReasonDuplicateKey, field: "App"},
		{name: "exact duplicate of an unknown key", body: cb{domain: "o.example.com", stream: "s", extra: `,"x":1,"x":2`}.body(), allowUnsigned: true, status: 400, reason: ReasonDuplicateKey, field: "x"},
		{name: "archive key", body: cb{domain: "o.example.com", stream: "s", extra: `,"archive":{"signature":"verified"}`}.body(), allowUnsigned: true, status: 400, reason: ReasonReservedKey, field: "archive"},
		{name: "ARCHIVE key", body: cb{domain: "o.example.com", stream: "s", extra: `,"ARCHIVE":1`}.body(), allowUnsigned: true, status: 400, reason: ReasonReservedKey, field: "ARCHIVE"},
		{name: "nested archive is data", body: cb{domain: "o.example.com", stream: "s", extra: `,"x":{"archive":1,"ARCHIVE":2}`}.body(), allowUnsigned: true, status: 200, signature: "none"},
		{name: "distinct keys", body: cb{domain: "o.example.com", stream: "s", extra: `,"client_ip":"1","Client_IPs":"2"`}.body(), allowUnsigned: true, status: 200, signature: "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, sk := newTrustHandler(t, handlerOpts{allowUnsigned: tc.allowUnsigned, window: tc.window})
			a := post(t, h, tc.body)
			if a.Status != tc.status {
				t.Fatalf("status %d %v, want %d\nbody %s", a.Status, a.Body, tc.status, tc.body)
			}
			if tc.status != 200 {
				if got := h.cfg.Metrics.Rejected.With(tc.reason).Value(); got != 1 {
					t.Errorf("reason %s counted %d times; answer %v", tc.reason, got, a.Body)
				}
				if tc.field != "" && a.Body["field"] != tc.field {
					t.Errorf("field %q, want %q (%s)", a.Body["field"], tc.field, a.Body["error"])
				}
				if strings.Contains(a.Body["error"], testKey) || strings.Contains(a.Body["error"], testOldKey) {
					t.Errorf("a key leaked into the answer: %s", a.Body["error"])
				}
				if len(sk.lines) != 0 {
					t.Errorf("refused callback archived")
				}
				return
			}
			evs := sk.events(t)
			if len(evs) != 1 || evs[0].Archive.Signature != tc.signature {
				t.Fatalf("archived %d events, signature %q, want one with %q", len(evs), evs[0].Archive.Signature, tc.signature)
			}
		})
	}
}

func TestNewRefusesNoKeysWithoutAllowUnsigned(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{Sink: &memSink{}, Metrics: metrics.NewArchiver(Reasons)}); err == nil {
		t.Fatal("a handler without keys and without AllowUnsigned was built")
	}
}

// Replays cannot hide genuine events: a captured signed callback replayed with other
// publish_timestamp values (not signed) is archived, each as its own event, and the genuine
// callbacks that later carry those values are archived too, marked as repeats. Only a
// byte-identical redelivery is answered "duplicate".
func TestReplayCannotSuppress(t *testing.T) {
	t.Parallel()
	h, sk := newTrustHandler(t, handlerOpts{window: 5 * time.Minute})
	now := testNow.Unix()
	captured := signed(testKey, testDomain, "cam", now-60, strconv.FormatInt(now-70, 10))
	if a := post(t, h, captured.body()); a.Status != 200 || a.Body["status"] != "ok" {
		t.Fatalf("captured: %v", a)
	}
	// The attacker pre-occupies the identities of the next stream starts.
	var poisoned []string
	for i := int64(1); i <= 3; i++ {
		c := captured
		c.pts = strconv.FormatInt(now+i, 10)
		a := post(t, h, c.body())
		if a.Status != 200 || a.Body["status"] != "ok" {
			t.Fatalf("replay %d: %v", i, a)
		}
		poisoned = append(poisoned, a.Body["event_id"])
	}
	// The genuine callbacks for those starts, signed later.
	for i := int64(1); i <= 3; i++ {
		g := signed(testKey, testDomain, "cam", now+i, strconv.FormatInt(now+i, 10))
		a := post(t, h, g.body())
		if a.Status != 200 || a.Body["status"] != "ok" || a.Body["event_id"] != poisoned[i-1] {
			t.Fatalf("genuine %d: %v, want ok with event_id %s", i, a, poisoned[i-1])
		}
		// A byte-identical redelivery of the genuine one is a duplicate.
		if a := post(t, h, g.body()); a.Status != 200 || a.Body["status"] != "duplicate" {
			t.Fatalf("redelivery %d: %v, want duplicate", i, a)
		}
		// The same callback pretty-printed is the same callback after compaction.
		var pretty bytes.Buffer
		json.Indent(&pretty, []byte(g.body()), "", "  ")
		if a := post(t, h, pretty.String()); a.Body["status"] != "duplicate" {
			t.Fatalf("pretty redelivery %d: %v, want duplicate", i, a)
		}
	}
	evs := sk.events(t)
	if len(evs) != 7 {
		t.Fatalf("archived %d events, want 7 (1 captured + 3 replays + 3 genuine)", len(evs))
	}
	for i, ev := range evs {
		wantRepeat := i >= 4
		if ev.Archive.Repeat != wantRepeat {
			t.Errorf("event %d: repeat %v, want %v: %s", i, ev.Archive.Repeat, wantRepeat, ev.Raw)
		}
		if !bytes.Contains(ev.Raw, []byte(`"repeat":true`)) == wantRepeat {
			t.Errorf("event %d: raw line repeat marker wrong: %s", i, ev.Raw)
		}
	}
}

// A different unsigned field under a known identity (unsigned domain) is archived as a repeat.
func TestDifferentBodySameIdentityIsRepeat(t *testing.T) {
	t.Parallel()
	h, sk := newTrustHandler(t, handlerOpts{allowUnsigned: true})
	first := cb{domain: "open.example.com", stream: "s", pts: "1764115000", extra: `,"client_ip":"10.0.0.1"`}
	second := first
	second.extra = `,"client_ip":"10.6.6.6"`
	for i, tc := range []struct {
		c      cb
		status string
	}{{first, "ok"}, {second, "ok"}, {first, "duplicate"}, {second, "duplicate"}} {
		if a := post(t, h, tc.c.body()); a.Body["status"] != tc.status {
			t.Fatalf("post %d: %v, want %s", i, a, tc.status)
		}
	}
	evs := sk.events(t)
	if len(evs) != 2 || evs[0].Archive.Repeat || !evs[1].Archive.Repeat || evs[0].Archive.EventID != evs[1].Archive.EventID {
		t.Fatalf("archived %+v", evs)
	}
}

// errReader yields some bytes, then err.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	return 0, r.err
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// A body read that times out or is cut off is 408 (the sender retries), never 400.
func TestBodyReadFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		status int
		reason string
	}{
		{"deadline", os.ErrDeadlineExceeded, 408, ReasonReadTimeout},
		{"net timeout", fmt.Errorf("read tcp: %w", timeoutErr{}), 408, ReasonReadTimeout},
		{"reset", fmt.Errorf("read tcp: %w", syscall.ECONNRESET), 408, ReasonReadError},
		{"cut off", io.ErrUnexpectedEOF, 408, ReasonReadError},
		{"too large", &http.MaxBytesError{Limit: 10}, 413, ReasonTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, sk := newTrustHandler(t, handlerOpts{allowUnsigned: true})
			r := httptest.NewRequest(http.MethodPost, "/callback", &errReader{data: []byte(`{"domain":"o.exa`), err: tc.err})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || h.cfg.Metrics.Rejected.With(tc.reason).Value() != 1 || len(sk.lines) != 0 {
				t.Fatalf("status %d (%s), want %d %s", w.Code, w.Body, tc.status, tc.reason)
			}
		})
	}
}

// The body buffer grows with the bytes that arrive, not with the announced Content-Length.
func TestBodyBufferNotSizedByContentLength(t *testing.T) {
	r := &errReader{data: []byte(`{"a":1}`), err: io.EOF}
	buf, err := readBody(r, make([]byte, 0, 16))
	if err != nil || cap(buf) > 64 {
		t.Fatalf("buffer cap %d after 7 bytes (err %v)", cap(buf), err)
	}
	// Through the handler: a request announcing the whole --max-body but sending a few bytes.
	h, _ := newTrustHandler(t, handlerOpts{allowUnsigned: true})
	h.cfg.MaxBody = 16 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 64
	for i := 0; i < n; i++ {
		req := httptest.NewRequest(http.MethodPost, "/callback", &errReader{data: []byte(`{"x":`), err: io.ErrUnexpectedEOF})
		req.ContentLength = 16 << 20
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("%d requests announcing 16 MiB each allocated %d bytes", n, grew)
	}
}

// FuzzStale: the freshness check over the whole int64 range agrees with exact (big integer)
// arithmetic, and never panics.
func FuzzStale(f *testing.F) {
	for _, s := range [][3]int64{
		{1764115200, 1764115200, 300}, {1764115500, 1764115200, 300}, {1764115501, 1764115200, 300},
		{math.MaxInt64, 1764115200, 300}, {math.MinInt64, 1764115200, 300}, {math.MaxInt64, math.MinInt64, 0},
		{21764115200, 1764115200, 300}, {0, 1764115200, 0}, {-1, 0, math.MaxInt64 / int64(time.Second)},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, ts, now, wsec int64) {
		if wsec < 0 || wsec > math.MaxInt64/int64(time.Second) {
			wsec = 300
		}
		w := time.Duration(wsec) * time.Second
		_, stale := staleTimestamp(ts, now, w)
		diff := new(big.Int).Sub(big.NewInt(ts), big.NewInt(now))
		bound := wsec
		if bound == 0 {
			bound = int64(DefaultSignatureWindow / time.Second)
		}
		var want bool
		if diff.Sign() > 0 {
			want = diff.Cmp(big.NewInt(bound)) > 0
		} else {
			want = wsec > 0 && new(big.Int).Neg(diff).Cmp(big.NewInt(wsec)) > 0
		}
		if stale != want {
			t.Fatalf("staleTimestamp(%d, %d, %s) = %v, want %v", ts, now, w, stale, want)
		}
	})
}
