package intake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/internal/callback"
)

// instantSink makes every entry durable at once: the benchmark measures intake alone.
type instantSink struct{}

func (instantSink) Submit(e *sink.Entry) error { e.Finish(nil); return nil }

type nopWriter struct {
	h      http.Header
	status *int // if set, the last status written
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(code int) {
	if w.status != nil {
		*w.status = code
	}
}

// BenchmarkHandler is the per-request CPU and allocation cost of intake (parse, validate, dedup,
// archive line), without HTTP parsing or durability.
func BenchmarkHandler(b *testing.B) { benchUnsigned(b, false, "application/json") }

// BenchmarkHandlerPrettyText is BenchmarkHandler for pretty-printed text/plain callbacks: the
// record also keeps archive.body and archive.content_type.
func BenchmarkHandlerPrettyText(b *testing.B) { benchUnsigned(b, true, "text/plain; charset=utf-8") }

func benchUnsigned(b *testing.B, pretty bool, contentType string) {
	h, err := New(Config{Sink: instantSink{}, Dedup: dedup.New(0), AllowUnsigned: true, Metrics: metrics.NewArchiver(Reasons), Instance: "bench-host-0123456789ab", Timeout: benchTimeout})
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, 4096)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"domain":"push.example.com","app":"live","stream":"bench-abcdef-w001-%010d","user_args":"auth_info=yz1TG0PVN/5isfyrGrRj10gKPCWqSS2X02t6QsRrocH+mEq0gQ0g8k6KhalS84sQ+kDprFyqI0yajbYiFmUO8e45B7ryaS+MpJBlYkhwnuFLnRiKK&cdn=hw","client_ip":"116.31.96.221","node_ip":"113.96.102.42","publish_timestamp":"1764115200","event":"PUBLISH"}`, i)
		if pretty {
			var buf bytes.Buffer
			_ = json.Indent(&buf, bodies[i], "", "  ")
			bodies[i] = append(buf.Bytes(), '\n')
		}
	}
	serveBodies(b, h, bodies, contentType, nil)
}

// serveBodies posts bodies in turn for b.N requests (the dedup memory renewed every round so each
// event stays new) and, with status set, fails on an answer other than 200.
func serveBodies(b *testing.B, h *Handler, bodies [][]byte, contentType string, status *int) {
	b.ReportAllocs()
	w := &nopWriter{h: http.Header{}, status: status}
	r := httptest.NewRequest(http.MethodPost, "/callback", nil)
	r.Header.Set("Content-Type", contentType)
	rd := &bytes.Reader{}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		body := bodies[i%len(bodies)]
		if i%len(bodies) == 0 && i > 0 {
			b.StopTimer()
			h.cfg.Dedup = dedup.New(0) // keep events new
			b.StartTimer()
		}
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		r.ContentLength = int64(len(body))
		h.ServeHTTP(w, r)
		if status != nil && *status != http.StatusOK {
			b.Fatalf("status %d", *status)
		}
	}
}

var benchTimeout = 10 * time.Second

// BenchmarkHandlerSigned is BenchmarkHandler for signed callbacks of a domain in --keys (what Live
// sends when the notification has an auth_sign_key): it adds the signature check.
func BenchmarkHandlerSigned(b *testing.B) {
	const key = "0123456789abcdef0123456789abcdef"
	keys := &KeyRing{}
	keys.Set(map[string][]string{"push.example.com": {key}})
	now := time.Unix(1764115300, 0)
	h, err := New(Config{Sink: instantSink{}, Dedup: dedup.New(0), Keys: keys, Metrics: metrics.NewArchiver(Reasons),
		Instance: "bench-host-0123456789ab", Timeout: benchTimeout, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, 4096)
	for i := range bodies {
		stream := fmt.Sprintf("bench-abcdef-w001-%010d", i)
		sign := callback.Sign(key, "PUBLISH", "push.example.com", "live", stream, now.Unix())
		bodies[i] = fmt.Appendf(nil, `{"domain":"push.example.com","app":"live","stream":"%s","user_args":"auth_info=yz1TG0PVN/5isfyrGrRj10gKPCWqSS2X02t6QsRrocH+mEq0gQ0g8k6KhalS84sQ+kDprFyqI0yajbYiFmUO8e45B7ryaS+MpJBlYkhwnuFLnRiKK&cdn=hw","client_ip":"116.31.96.221","node_ip":"113.96.102.42","publish_timestamp":"1764115200","event":"PUBLISH","auth_timestamp":%d,"auth_sign":"%s"}`,
			stream, now.Unix(), sign)
	}
	var status int
	serveBodies(b, h, bodies, "application/json", &status) // the common request: compact application/json
}
