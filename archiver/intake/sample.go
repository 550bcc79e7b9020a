package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/jsonscan"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// Sample limits.
const (
	SampleEvery     = 10 * time.Second // at most one sample per reason per interval
	SampleBodyLimit = 4 << 10          // body bytes kept in a sample
	SamplesPerDay   = 1000             // at most this many samples per partition day
	sampleQueue     = 32
	samplePutTime   = 10 * time.Second
	sampleDrain     = 5 * time.Second // writing queued samples at shutdown
)

// Sample is what is written under _rejected/dt=YYYY-MM-DD/: enough to see what a sender got wrong,
// never a key or a signature.
type Sample struct {
	Reason        string    `json:"reason"`
	Status        int       `json:"status"`
	Error         string    `json:"error"`
	Field         string    `json:"field,omitempty"`
	ReceivedAt    time.Time `json:"received_at"`
	RemoteAddr    string    `json:"remote_addr"`
	Method        string    `json:"method"`
	Path          string    `json:"path"`
	ContentType   string    `json:"content_type,omitempty"`
	Body          string    `json:"body"`
	BodyBytes     int       `json:"body_bytes"`
	BodyTruncated bool      `json:"body_truncated"`
}

type queuedSample struct {
	key  string
	body []byte
}

// Sampler writes a rate-limited sample of rejected requests to the store, off the request path.
type Sampler struct {
	store    storage.Putter
	instance string
	loc      *time.Location
	metrics  *metrics.Archiver
	log      *slog.Logger

	mu       sync.Mutex
	last     map[string]time.Time
	day      string // partition day of dayCount
	dayCount int
	seq      atomic.Uint64
	q        chan queuedSample
}

// NewSampler returns a sampler; call Run to write samples.
func NewSampler(store storage.Putter, instance string, loc *time.Location, m *metrics.Archiver, log *slog.Logger) *Sampler {
	if loc == nil {
		loc = time.UTC
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sampler{store: store, instance: instance, loc: loc, metrics: m, log: log.With("component", "rejected-samples"),
		last: make(map[string]time.Time), q: make(chan queuedSample, sampleQueue)}
	// Sample numbers start at the current time in nanoseconds so that a restarted instance never
	// reuses one.
	s.seq.Store(uint64(time.Now().UnixNano()))
	return s
}

// Offer queues a sample of a rejected request unless its reason was sampled in the last
// SampleEvery, the day's SamplesPerDay are used up, or the queue is full. It never blocks. It reports whether the sample was taken.
func (s *Sampler) Offer(rej *Rejection, now time.Time, r *http.Request, body []byte) bool {
	s.mu.Lock()
	if last, ok := s.last[rej.Reason]; ok && now.Sub(last) < SampleEvery && now.Sub(last) > -SampleEvery {
		s.mu.Unlock()
		s.metrics.SamplesDropped.Inc()
		return false
	}
	day := layout.Day(now, s.loc)
	if day != s.day {
		s.day, s.dayCount = day, 0
	}
	if s.dayCount >= SamplesPerDay {
		s.mu.Unlock()
		s.metrics.SamplesDropped.Inc()
		return false
	}
	s.dayCount++
	s.last[rej.Reason] = now
	s.mu.Unlock()

	redacted := Redact(body)
	smp := Sample{
		Reason: rej.Reason, Status: rej.Status, Error: rej.Msg, Field: rej.Field,
		ReceivedAt: now.UTC(), RemoteAddr: r.RemoteAddr, Method: r.Method, Path: truncate(r.URL.Path, 256),
		ContentType: truncate(r.Header.Get("Content-Type"), 256), BodyBytes: len(body),
	}
	if len(redacted) > SampleBodyLimit {
		redacted, smp.BodyTruncated = redacted[:runeCut(redacted, SampleBodyLimit)], true
	}
	smp.Body = string(redacted) // invalid UTF-8 becomes U+FFFD when marshalled
	b, err := json.Marshal(smp)
	if err != nil {
		return false
	}
	key := layout.RejectedKey(day, s.instance, s.seq.Add(1))
	select {
	case s.q <- queuedSample{key: key, body: append(b, '\n')}:
		return true
	default:
		s.metrics.SamplesDropped.Inc()
		return false
	}
}

// Run writes queued samples until ctx is done, then writes what is still queued (bounded by
// sampleDrain). A sample that cannot be written is dropped: it is diagnostics, not data.
func (s *Sampler) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sampleDrain)
			defer cancel()
			for {
				select {
				case q := <-s.q:
					s.write(dctx, q)
				default:
					return
				}
			}
		case q := <-s.q:
			// Not cancelled by shutdown: a Put in progress finishes (bounded by samplePutTime).
			s.write(context.WithoutCancel(ctx), q)
		}
	}
}

func (s *Sampler) write(ctx context.Context, q queuedSample) {
	pctx, cancel := context.WithTimeout(ctx, samplePutTime)
	err := s.store.Put(pctx, q.key, q.body, "application/json")
	cancel()
	if err != nil {
		s.metrics.SamplesDropped.Inc()
		s.log.Warn("could not write a rejected-request sample; dropped", "key", q.key, "error", err)
		return
	}
	s.metrics.RejectedSamples.Inc()
}

// sensitiveKey reports whether a JSON key's value must not be kept in a sample.
func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"auth_sign", "key", "secret", "token", "password", "signature"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Redact returns a copy of body with the string value of every sensitive key ("auth_sign",
// "auth_sign_key", anything named like a key, secret, token, password or signature) replaced by
// "REDACTED". It works on malformed JSON too (it only looks for "name" : "value" patterns).
func Redact(body []byte) []byte {
	out := make([]byte, 0, len(body))
	i := 0
	for i < len(body) {
		q := bytes.IndexByte(body[i:], '"')
		if q < 0 {
			break
		}
		q += i
		end := jsonscan.StringEnd(body, q)
		if end < 0 {
			break
		}
		out = append(out, body[i:end]...)
		i = end
		// After a key: optional blanks, ':', optional blanks, then a string value?
		j := skipBlanks(body, end)
		if j >= len(body) || body[j] != ':' {
			continue
		}
		j = skipBlanks(body, j+1)
		if j >= len(body) || body[j] != '"' {
			continue
		}
		vend := jsonscan.StringEnd(body, j)
		if !sensitiveKey(string(body[q+1 : end-1])) {
			continue
		}
		out = append(out, body[end:j]...)
		out = append(out, `"REDACTED"`...)
		if vend < 0 { // unterminated value: drop the rest
			return out
		}
		i = vend
	}
	return append(out, body[i:]...)
}
