package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/internal/callback"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

// persistEvery bounds how often a busy destination writes its cursor: a crash repeats at most
// the deliveries of this long.
const persistEvery = 100 * time.Millisecond

// maxRetryAfter caps a receiver's Retry-After (relay and archiver replay).
const maxRetryAfter = time.Hour

// worker delivers one destination's events, in spool order, one at a time.
type worker struct {
	r   *Relay
	d   Destination
	ca  []byte // caSum of d.CAFile when snd was built
	snd *Sender
	log *slog.Logger
	pos *position

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	started atomic.Bool

	headAt atomic.Int64 // received_at (unix ns) of the event being delivered; 0 when caught up

	pmu         sync.Mutex // guards the persisted state (run and Close/stop)
	dirty       bool
	lastPersist time.Time

	shedSeq uint64 // segment (seq+1) whose remaining events are shed as dead letters
	dl      *deadLetters
}

func newWorker(r *Relay, d Destination) (*worker, error) {
	log := r.log.With("destination", d.Name)
	ca := caSum(d.CAFile) // before the client reads it: a change in between rebuilds it again
	snd, err := NewSender(d, r.o.Key, log)
	if err != nil {
		return nil, err
	}
	w := &worker{r: r, d: d, ca: ca, snd: snd, log: log, done: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancel(r.ctx)
	w.dl = newDeadLetters(r, d.Name)
	for _, o := range []string{"delivered", "retry", "rejected", "error"} {
		r.m.attempts.WithLabelValues(d.Name, o)
	}
	r.m.delivered.WithLabelValues(d.Name)
	for _, reason := range []string{ReasonRejected, ReasonMaxAge, ReasonSpoolFull, ReasonUnreadable} {
		r.m.dead.WithLabelValues(d.Name, reason)
	}
	return w, nil
}

func (w *worker) stop() {
	w.cancel()
	if w.started.Load() {
		<-w.done
	}
	w.persist(true)
}

// lag is the age of the oldest undelivered event.
func (w *worker) lag(now time.Time) time.Duration {
	at := w.headAt.Load()
	if at == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, at))
}

// persist writes the cursor when it moved (force) or when it moved and persistEvery passed. It
// first flushes the pending dead letters: the cursor never passes a dead letter that is not on
// disk (if they cannot be written, the cursor stays, and a restart decides those events again).
func (w *worker) persist(force bool) {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	if w.dl.flush(w.ctx) != nil {
		return
	}
	if !w.dirty || !force && time.Since(w.lastPersist) < persistEvery {
		return
	}
	if err := writeCursor(w.r.cursorPath(w.d.Name), w.pos); err != nil {
		w.log.Error("writing the relay cursor failed; after a restart, events since the last written cursor are delivered again", "error", err)
		return
	}
	w.dirty, w.lastPersist = false, time.Now()
}

func (w *worker) moveTo(seq uint64) {
	w.pmu.Lock()
	w.pos.seq.Store(seq)
	w.pos.off = 0
	w.pos.idx.Store(0)
	w.dirty = true
	w.pmu.Unlock()
	w.persist(true)
	w.r.o.Spool.ReleaseRetained()
}

func (w *worker) advance(next int64) {
	w.pmu.Lock()
	w.pos.off = next
	w.pos.idx.Add(1)
	w.dirty = true
	w.pmu.Unlock()
}

func (w *worker) run() {
	w.started.Store(true)
	defer close(w.done)
	sp := w.r.o.Spool
	tick := time.NewTicker(persistEvery)
	defer tick.Stop()
	for w.ctx.Err() == nil {
		changed := sp.Changed()
		segs := sp.Segments()
		i := 0
		for i < len(segs) && segs[i].Seq < w.pos.seq.Load() {
			i++
		}
		if i == len(segs) { // caught up with everything committed
			w.headAt.Store(0)
			w.persist(false)
			w.wait(changed, tick.C)
			continue
		}
		v := segs[i]
		if v.Seq != w.pos.seq.Load() { // its segment left the spool (empty or set aside)
			w.moveTo(v.Seq)
		}
		if w.pos.off >= v.Size || w.pos.off == 0 && v.Records == 0 {
			if v.Sealed {
				w.moveTo(v.Seq + 1)
				continue
			}
			w.headAt.Store(0)
			// Not forced: a caught-up destination wakes at every group commit, and an fsync'd
			// cursor write each time would compete with the spool's own fsyncs. The ticker
			// writes it within persistEvery once the destination is idle.
			w.persist(false)
			w.wait(changed, tick.C)
			continue
		}
		err := spool.ReadRange(v.Path, w.pos.off, v.Size, func(rec spool.Record, next int64) error {
			return w.handle(rec, v, next)
		})
		w.persist(false) // dead letters are durable before the cursor passes them
		if err != nil && w.ctx.Err() == nil {
			w.log.Error("reading the spool for the relay failed; retrying", "segment", v.Path, "error", err)
			_ = ctxsleep.Sleep(w.ctx, time.Second)
		}
	}
	// Stopped: the store gets its chance at the last dead letters with a live context (stop's
	// persist would flush them with the ended one).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = w.dl.flush(ctx)
}

func (w *worker) wait(changed <-chan struct{}, tick <-chan time.Time) {
	select {
	case <-changed:
	case <-tick:
	case <-w.ctx.Done():
	}
}

// handle delivers one record (retrying until delivered, dead, or stopped) and moves past it.
func (w *worker) handle(rec spool.Record, v spool.View, next int64) error {
	off := w.pos.off
	ev, err := parse(rec.Line, w.d.Resign || len(w.d.Domains) > 0 || len(w.d.Events) > 0)
	if err != nil {
		w.dl.add(rec, v.Seq, off, ReasonUnreadable, 0, err.Error(), 0)
		w.advance(next)
		return nil
	}
	if !w.d.Wants(ev.Domain, ev.Event) {
		w.advance(next)
		return nil
	}
	w.headAt.Store(rec.ReceivedAt.UnixNano())
	if w.shedSeq == v.Seq+1 {
		w.dl.add(rec, v.Seq, off, ReasonSpoolFull, 0, "the spool needed the room while this destination lagged", 0)
		w.advance(next)
		return nil
	}
	var lastStatus int
	var lastErr string
	for attempt := 1; ; attempt++ {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		now := w.r.o.Now()
		if now.Sub(rec.ReceivedAt) > w.d.MaxAge {
			w.dead(rec, v.Seq, off, ReasonMaxAge, lastStatus, orDefault(lastErr, "older than max_age "+w.d.MaxAge.String()), attempt-1)
			w.advance(next)
			return nil
		}
		if w.shed(v.Seq) {
			w.dl.add(rec, v.Seq, off, ReasonSpoolFull, lastStatus, orDefault(lastErr, "the spool needed the room while this destination lagged"), attempt-1)
			w.advance(next)
			return nil
		}
		began := time.Now()
		status, retryAfter, msg, err := w.snd.Send(w.ctx, ev, attempt, now)
		switch {
		case err == nil && status >= 200 && status < 300:
			w.r.m.attempts.WithLabelValues(w.d.Name, "delivered").Inc()
			w.r.m.delivered.WithLabelValues(w.d.Name).Inc()
			w.r.m.latency.WithLabelValues(w.d.Name).Observe(time.Since(rec.ReceivedAt).Seconds())
			w.advance(next)
			w.persist(false)
			return nil
		case err != nil:
			if w.ctx.Err() != nil {
				return w.ctx.Err()
			}
			w.r.m.attempts.WithLabelValues(w.d.Name, "error").Inc()
			lastStatus, lastErr = 0, err.Error()
		case retryable(status):
			w.r.m.attempts.WithLabelValues(w.d.Name, "retry").Inc()
			lastStatus, lastErr = status, msg
		default:
			w.r.m.attempts.WithLabelValues(w.d.Name, "rejected").Inc()
			w.dead(rec, v.Seq, off, ReasonRejected, status, msg, attempt)
			w.advance(next)
			return nil
		}
		wait := max(w.r.o.Backoff.Delay(attempt-1), retryAfter) // Send caps retryAfter at maxRetryAfter
		if attempt == 1 || attempt%10 == 0 {
			w.log.Warn("forwarding failed; retrying", "event_id", ev.Archive.EventID, "attempt", attempt,
				"status", lastStatus, "error", lastErr, "took", time.Since(began).Round(time.Millisecond).String(), "retry_in", wait.Round(time.Millisecond).String())
		}
		// Wait in short steps, so that spool pressure and max_age are noticed during long waits.
		for until := time.Now().Add(wait); time.Now().Before(until); {
			if ctxsleep.Sleep(w.ctx, min(100*time.Millisecond, time.Until(until))) != nil {
				return w.ctx.Err()
			}
			if w.shed(v.Seq) || w.r.o.Now().Sub(rec.ReceivedAt) > w.d.MaxAge {
				break
			}
		}
	}
}

// shed decides that this destination gives up the rest of segment seq: the spool is near its
// budget, and seq is the oldest segment and already in the archive.
func (w *worker) shed(seq uint64) bool {
	if w.shedSeq == seq+1 {
		return true
	}
	if !w.r.underPressure() || !oldestUploaded(w.r.o.Spool.Segments(), seq) {
		return false
	}
	w.log.Error("the spool is nearly full and this destination lags: its oldest events become dead letters (they are in the archive; archiver replay --dead-letters re-sends them)", "segment", seq)
	w.shedSeq = seq + 1
	return true
}

// dead records one dead letter and writes it now.
func (w *worker) dead(rec spool.Record, seq uint64, off int64, reason string, status int, msg string, attempts int) {
	w.dl.add(rec, seq, off, reason, status, msg, attempts)
	_ = w.dl.flush(w.ctx) // on failure they stay collected, and persist retries them
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// retryable: statuses that say "later" rather than "never".
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// Sender makes the HTTP requests of one destination (the relay's worker, archiver replay).
type Sender struct {
	d      Destination
	client *http.Client
	key    func(domain string) (string, bool)
	log    *slog.Logger
	noKey  map[string]bool // domains already warned about (resign without a key)
}

// NewSender returns d's sender; key gives a domain's current signing key (resign).
func NewSender(d Destination, key func(domain string) (string, bool), log *slog.Logger) (*Sender, error) {
	c, err := newClient(d)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.Name, err)
	}
	if key == nil {
		key = func(string) (string, bool) { return "", false }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{d: d, client: c, key: key, log: log, noKey: map[string]bool{}}, nil
}

// Send makes one attempt of ev: its body byte for byte with its Content-Type (or none), as Live
// sent it, so the receiver's own auth_sign check, raw-body hash or content-type check passes.
// With resign the body is rebuilt (compact, new auth_timestamp and auth_sign), necessarily other
// bytes; the Content-Type stays. It returns the status, the Retry-After delay, a one-line excerpt
// of a non-2xx answer, or the transport error. Not safe for concurrent use.
func (s *Sender) Send(ctx context.Context, ev readback.Event, attempt int, now time.Time) (int, time.Duration, string, error) {
	body, contentType, hasContentType := ev.Request()
	if s.d.Resign {
		if key, ok := s.key(ev.Domain); ok {
			b, err := Resign(ev.Body, key, now)
			if err == nil {
				body = b
			}
		} else if !s.noKey[ev.Domain] {
			s.noKey[ev.Domain] = true
			s.log.Warn("resign: the domain has no key in --keys; forwarding its callbacks as received", "domain", ev.Domain)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, s.d.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.d.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, "", err
	}
	for k, v := range s.d.Headers {
		req.Header.Set(k, v)
	}
	if hasContentType {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set(HeaderEventID, ev.Archive.EventID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return 0, 0, "", fmt.Errorf("no answer within timeout %s", s.d.Timeout)
		}
		return 0, 0, "", fmt.Errorf("request failed: %w", unwrapURL(err))
	}
	defer resp.Body.Close()
	var msg string
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		msg = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, snippet(resp.Body))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After"), time.Now()), msg, nil
}

// Retryable reports whether an attempt's outcome says "later" rather than "never".
func Retryable(status int, err error) bool { return err != nil || retryable(status) }

// unwrapURL drops url.Error's "Post "URL": " prefix (the URL is in every log line's destination).
func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// retryAfter reads Retry-After: delay-seconds or an HTTP date, at most maxRetryAfter (so that
// the relay and archiver replay, which both take Send's value, wait no longer, and a huge number
// cannot overflow into a negative wait).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		if n >= uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, min(t.Sub(now), maxRetryAfter))
	}
	return 0
}

// Resign returns body with auth_timestamp set to now and auth_sign recomputed with key; the other
// fields keep their order and bytes.
func Resign(body []byte, key string, now time.Time) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("resign: the body is not a JSON object")
	}
	var keys []string
	var vals []json.RawMessage
	str := map[string]string{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("resign: %w", err)
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("resign: %w", err)
		}
		keys, vals = append(keys, k), append(vals, v)
		var s string
		if json.Unmarshal(v, &s) == nil {
			str[k] = s
		}
	}
	ts := now.Unix()
	sign, _ := json.Marshal(callback.Sign(key, str["event"], str["domain"], str["app"], str["stream"], ts))
	set := map[string]json.RawMessage{"auth_timestamp": json.RawMessage(strconv.FormatInt(ts, 10)), "auth_sign": sign}
	out := []byte{'{'}
	for i, k := range keys {
		if v, ok := set[k]; ok {
			vals[i] = v
			delete(set, k)
		}
		if i > 0 {
			out = append(out, ',')
		}
		kb, _ := json.Marshal(k)
		out = append(append(append(out, kb...), ':'), vals[i]...)
	}
	for _, k := range []string{"auth_timestamp", "auth_sign"} {
		if v, ok := set[k]; ok {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(append(out, `"`+k+`":`...), v...)
		}
	}
	return append(out, '}'), nil
}
