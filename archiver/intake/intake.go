// Package intake is the archiver's HTTP front: it receives publish callbacks on POST /callback,
// validates them (size, UTF-8, JSON object, required fields, event name, allowed domain,
// signature), turns each into one archive line and hands it to the durability backend, answering
// 200 only once the backend says the event is durable. Redeliveries are answered 200 without
// being stored again.
package intake

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/admission"
	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/internal/callback"
)

// DefaultMaxBody is the default --max-body.
const DefaultMaxBody = 64 << 10

// DefaultSignatureWindow is the default --signature-window.
const DefaultSignatureWindow = 5 * time.Minute

// Config configures a Handler.
type Config struct {
	Sink  sink.Sink
	Dedup *dedup.Set // nil: no redelivery detection
	// Keys holds the domains whose callbacks must be signed. A domain without a key is refused
	// (403) unless AllowUnsigned is set; then it is archived with signature "none".
	Keys          *KeyRing
	AllowUnsigned bool
	AllowDomains  []string // empty: every domain is allowed
	// SignatureWindow bounds |now - auth_timestamp| of a signed callback; 0 drops the bound on
	// age, but an auth_timestamp ahead of the clock by more than DefaultSignatureWindow is still
	// refused (it is never genuine, and the shifted-boundary forgery produces exactly that).
	SignatureWindow time.Duration
	MaxBody         int64
	Location        *time.Location // partition time zone (nil => UTC)
	Instance        string
	Now             func() time.Time
	// Timeout bounds how long a request waits for durability (and for a racing duplicate); then
	// 503. 0 => only the client's own disconnect ends the wait.
	Timeout time.Duration
	Metrics *metrics.Archiver // required
	Sampler *Sampler          // nil: no rejected samples
	Logger  *slog.Logger
	// Load, if set, counts the requests in flight for the backend's group commit (sink.Load).
	Load *sink.Load
	// Admission, if set, sheds requests (503 + Retry-After, before the body is read) while the
	// wait for durability has a standing queue; nil admits everything.
	Admission *admission.Controller
}

// Handler serves POST /callback (and every path below it).
type Handler struct {
	cfg      Config
	allow    map[string]struct{}
	rejected map[string]*metrics.Counter
	log      *slog.Logger
	draining atomic.Bool
	lastWarn atomic.Int64 // unix nanos of the last 5xx logged at Warn
}

// warnAllowed rate-limits Warn logs of 5xx answers to one per second (a full spool would
// otherwise log every request).
func (h *Handler) warnAllowed() bool {
	now := time.Now().UnixNano()
	last := h.lastWarn.Load()
	return now-last >= int64(time.Second) && h.lastWarn.CompareAndSwap(last, now)
}

// Compile-time check.
var _ http.Handler = (*Handler)(nil)

// New checks cfg and returns a handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Sink == nil {
		return nil, errors.New("intake: no sink")
	}
	if cfg.Metrics == nil {
		return nil, errors.New("intake: no metrics")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Keys == nil {
		if !cfg.AllowUnsigned {
			return nil, errors.New("intake: no keys and unsigned callbacks not allowed: every callback would be refused")
		}
		cfg.Keys = &KeyRing{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, log: cfg.Logger.With("component", "intake"), rejected: make(map[string]*metrics.Counter)}
	if len(cfg.AllowDomains) > 0 {
		h.allow = make(map[string]struct{}, len(cfg.AllowDomains))
		for _, d := range cfg.AllowDomains {
			h.allow[CanonicalDomain(d)] = struct{}{}
		}
	}
	for _, r := range Reasons {
		h.rejected[r] = cfg.Metrics.Rejected.With(r)
	}
	return h, nil
}

// SetDraining makes new requests answer 503 (shutdown in progress).
func (h *Handler) SetDraining(v bool) { h.draining.Store(v) }

// reqState is the per-request scratch space, pooled so that the hot path allocates little.
type reqState struct {
	body    []byte
	compact []byte
	line    []byte
	resp    []byte
	fields  Fields
	entry   *sink.Entry
	timer   *time.Timer // bounds the wait for durability; pooled with the rest
}

var statePool = sync.Pool{New: func() any {
	return &reqState{
		body:    make([]byte, 0, 2048),
		compact: make([]byte, 0, 2048),
		line:    make([]byte, 0, 2560),
		resp:    make([]byte, 0, 96),
		entry:   sink.NewEntry(),
	}
}}

// maxPooled keeps one huge request from pinning its buffers in the pool.
const maxPooled = 64 << 10

func putState(st *reqState) {
	if cap(st.body) > maxPooled || cap(st.compact) > maxPooled || cap(st.line) > maxPooled {
		return
	}
	st.entry.Line = nil
	st.entry.Resolver = nil
	statePool.Put(st)
}

var (
	jsonContentType = []string{"application/json"}
	allowPost       = []string{http.MethodPost}
	retryOverloaded = []string{"1"}
)

// ServeHTTP handles one callback.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.cfg.Metrics
	m.Received.Inc()
	if r.Method != http.MethodPost {
		w.Header()["Allow"] = allowPost
		h.fail(w, r, nil, reject(http.StatusMethodNotAllowed, ReasonMethod, "", "method %s is not allowed on %s; the Live service POSTs callbacks", r.Method, r.URL.Path))
		return
	}
	if h.draining.Load() {
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Connection", "close")
		h.fail(w, r, nil, reject(http.StatusServiceUnavailable, ReasonShuttingDown, "", "%s", sink.ErrClosed.Error()))
		return
	}
	max := h.cfg.MaxBody
	if r.ContentLength > max {
		h.fail(w, r, nil, tooLarge(r.ContentLength, max))
		return
	}
	adm := h.cfg.Admission
	if !adm.Admit() {
		w.Header()["Retry-After"] = retryOverloaded
		h.fail(w, r, nil, reject(http.StatusServiceUnavailable, ReasonOverloaded, "",
			"the archiver is over capacity (callbacks are waiting longer than --max-queue-delay to be made durable); retry after Retry-After seconds"))
		return
	}
	ld := h.cfg.Load
	ld.Enter()
	st := statePool.Get().(*reqState)
	pooled := true
	var submitted time.Time // set when the event went to the backend: its wait is the queue delay
	var waited time.Duration
	defer func() {
		ld.Exit()
		adm.Done(waited, !submitted.IsZero())
		if pooled {
			putState(st)
		}
	}()

	body, err := readBody(http.MaxBytesReader(w, r.Body, max), st.body[:0])
	st.body = body
	if err != nil {
		h.fail(w, r, nil, readFailure(err, max))
		return
	}
	compact, rej := prepare(st.compact[:0], body)
	st.compact = compact
	if rej == nil {
		rej = parseFields(compact, &st.fields)
	}
	if rej != nil {
		h.fail(w, r, body, rej)
		return
	}
	f := &st.fields
	domainKey := CanonicalDomain(f.Domain) // no copy when already canonical
	if h.allow != nil {
		if _, ok := h.allow[domainKey]; !ok {
			h.fail(w, r, body, reject(http.StatusForbidden, ReasonDomainNotAllowed, "domain",
				"domain %q is not allowed here (not in --allow-domain)", truncate(f.Domain, 256)))
			return
		}
	}
	now := h.cfg.Now()
	signature := layout.SignatureNone
	publishTime := layout.ParsePublishTimestamp(f.PublishTimestamp)
	// A domain the operator named (--allow-domain or --keys) is its own metric label; any other is
	// "other", so callbacks cannot create series.
	named := h.allow != nil
	if keys, ok := h.cfg.Keys.verifiersCanonical(domainKey); ok {
		named = true
		if rej := h.verify(f, keys, now, publishTime); rej != nil {
			h.fail(w, r, body, rej)
			return
		}
		signature = layout.SignatureVerified
	} else if !h.cfg.AllowUnsigned {
		h.fail(w, r, body, reject(http.StatusForbidden, ReasonDomainNoKey, "domain",
			"domain %q has no key in --keys, and unsigned callbacks are not accepted (--allow-unsigned is off); add the domain and its auth_sign_key to the keys file", truncate(f.Domain, 256)))
		return
	}

	identTS, hasIdent := f.IdentityTimestamp()
	id := layout.EventIDBytes(f.Domain, f.App, f.Stream, f.Event, identTS)
	idHex := hex.EncodeToString(id[:])
	key := id
	reserved, repeat := false, false
	if h.cfg.Dedup != nil && hasIdent {
		key = dedup.Key(id, compact)
		// The deadline context is built only for the rare race with a pending duplicate: per
		// request it was a tenth of intake's CPU (allocations and a timer).
		dup, busy, rep := h.cfg.Dedup.TryReserve(key, now)
		repeat = rep
		if busy {
			ctx, cancel := r.Context(), context.CancelFunc(func() {})
			if h.cfg.Timeout > 0 {
				ctx, cancel = context.WithTimeout(ctx, h.cfg.Timeout)
			}
			var err error
			dup, repeat, err = h.cfg.Dedup.Reserve(ctx, key, now)
			cancel()
			if err != nil {
				h.fail(w, r, nil, reject(http.StatusServiceUnavailable, ReasonUnavailable, "",
					"timed out waiting for a concurrent delivery of the same event; retry"))
				return
			}
		}
		if dup {
			m.Duplicates.Inc()
			h.ok(w, st, "duplicate", idHex)
			return
		}
		reserved = true
	}
	a := layout.Archive{
		ReceivedAt:  now,
		EventID:     idHex,
		RemoteAddr:  r.RemoteAddr,
		Signature:   signature,
		PublishTime: publishTime,
		Instance:    h.cfg.Instance,
		Repeat:      repeat,
		ContentType: requestContentType(r.Header),
	}
	if !bytes.Equal(body, compact) { // what the relay rebuilds from the line is not what Live sent
		a.Body = string(body)
	}
	st.line = layout.AppendRecord(st.line[:0], compact, a)

	e := st.entry
	e.ID, e.Day, e.ReceivedAt, e.Line = key, layout.Day(now, h.cfg.Location), now, st.line
	e.Resolver = nil
	if reserved {
		e.Resolver = h.cfg.Dedup
	}
	select { // a stale outcome of an abandoned wait must not be read as ours
	case _ = <-e.Done:
	default:
	}
	if adm != nil {
		submitted = time.Now()
	}
	err = h.cfg.Sink.Submit(e)
	if err != nil {
		submitted = time.Time{}
		if reserved {
			h.cfg.Dedup.Release(key)
		}
		h.unavailable(w, r, err)
		return
	}
	ok, err := h.wait(st, r)
	if adm != nil {
		waited = time.Since(submitted)
	}
	if !ok {
		// The backend still owns e (and resolves the reservation); never reuse it.
		pooled = false
		h.unavailable(w, r, err)
		return
	} else if err != nil {
		h.unavailable(w, r, err)
		return
	}
	m.Accepted.Inc()
	label := metrics.OtherDomain
	if named {
		label = domainKey
	}
	m.AcceptedDomain.With(label).Inc()
	if h.log.Enabled(r.Context(), slog.LevelDebug) { // the attributes cost only when asked for
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "accepted callback", slog.String("domain", f.Domain), slog.String("app", f.App),
			slog.String("stream", f.Stream), slog.String("event", f.Event), slog.String("event_id", idHex), slog.Bool("repeat", repeat))
	}
	h.ok(w, st, "ok", idHex)
}

// Shed answers a request the archiver has no room for (its connection is past --max-connections)
// 503 with Retry-After and closes the connection, after reading the body (bounded by MaxBody) so
// that the close does not reset the answer away.
func (h *Handler) Shed(w http.ResponseWriter, r *http.Request) {
	h.cfg.Metrics.Received.Inc()
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	w.Header()["Retry-After"] = retryOverloaded
	w.Header().Set("Connection", "close")
	h.fail(w, r, nil, reject(http.StatusServiceUnavailable, ReasonOverloaded, "",
		"the archiver is serving --max-connections connections; retry after Retry-After seconds"))
}

// wait waits for the outcome of st.entry. ok is false when the wait was given up (Timeout, or the
// client went away): err then says why. A pooled timer bounds it: a context per request
// (WithTimeout) cost allocations, a timer and the parent context's child map every time.
func (h *Handler) wait(st *reqState, r *http.Request) (ok bool, err error) {
	e := st.entry
	if h.cfg.Timeout <= 0 {
		select {
		case err = <-e.Done:
			return true, err
		case <-r.Context().Done():
			return false, fmt.Errorf("the client went away before the event was durable: %w", r.Context().Err())
		}
	}
	if st.timer == nil {
		st.timer = time.NewTimer(h.cfg.Timeout)
	} else {
		st.timer.Reset(h.cfg.Timeout) // stopped or fired and drained (Go 1.23 timers): no stale tick
	}
	select {
	case err = <-e.Done:
		st.timer.Stop()
		return true, err
	case <-st.timer.C:
		return false, fmt.Errorf("the event was not durable within %s: %w", h.cfg.Timeout, context.DeadlineExceeded)
	}
}

// noContentType is archive.content_type of a request without a Content-Type header.
var noContentType = ""

// requestContentType is archive.content_type for a request's headers: nil for exactly
// "application/json" (the member is left out), else the first Content-Type value ("" for none).
// It points into h (or at noContentType): no allocation per request.
func requestContentType(h http.Header) *string {
	v := h["Content-Type"]
	switch {
	case len(v) == 0:
		return &noContentType
	case v[0] == layout.DefaultContentType:
		return nil
	}
	return &v[0]
}

func tooLarge(n, max int64) *Rejection {
	if n > 0 {
		return reject(http.StatusRequestEntityTooLarge, ReasonTooLarge, "", "the body is %d bytes, over the %d-byte limit (--max-body)", n, max)
	}
	return reject(http.StatusRequestEntityTooLarge, ReasonTooLarge, "", "the body is over the %d-byte limit (--max-body)", max)
}

// readBody reads r into buf, growing it only as bytes arrive (never by the announced
// Content-Length, which costs a sender nothing to inflate).
func readBody(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// readFailure classifies a failed body read. Only an over-long body is the sender's fault (413);
// a read that timed out or was cut off is 408 so the sender retries, never 400 (which Live does
// not retry: the event would be lost).
func readFailure(err error, max int64) *Rejection {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(-1, max)
	}
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return reject(http.StatusRequestTimeout, ReasonReadTimeout, "", "the body did not arrive in time (%v); retry", err)
	}
	return reject(http.StatusRequestTimeout, ReasonReadError, "", "the body was cut off before its end (%v); retry", err)
}

// verify checks auth_sign for a domain that has keys: present, made with one of the keys
// (constant time per key), fresh, and not reporting a stream that started after the signing.
func (h *Handler) verify(f *Fields, keys []*callback.Verifier, now time.Time, publishTime *time.Time) *Rejection {
	if f.AuthSign == nil {
		return reject(http.StatusUnauthorized, ReasonSignatureMissing, "auth_sign",
			"domain %q requires a signature but auth_sign is missing; set the same auth_sign_key in the Live notification config and in --keys", truncate(f.Domain, 256))
	}
	sign, ok := authSign(f.AuthSign)
	if !ok {
		return reject(http.StatusUnauthorized, ReasonSignatureInvalid, "auth_sign", "auth_sign must be a string (64 lower-case hex digits)")
	}
	if f.AuthTimestamp == nil {
		return reject(http.StatusUnauthorized, ReasonSignatureMissing, "auth_timestamp",
			"domain %q requires a signature but auth_timestamp is missing", truncate(f.Domain, 256))
	}
	ts, ok := authTimestamp(f.AuthTimestamp)
	if !ok {
		return reject(http.StatusUnauthorized, ReasonSignatureInvalid, "auth_timestamp",
			"auth_timestamp must be unix seconds in plain decimal (no sign, no leading zeros), as an integer or a string of digits")
	}
	valid := false
	for _, key := range keys { // every key, whatever matched: the time says nothing about which
		if key.Valid(sign, f.Event, f.Domain, f.App, f.Stream, ts) {
			valid = true
		}
	}
	if !valid {
		return reject(http.StatusUnauthorized, ReasonSignatureInvalid, "auth_sign",
			"auth_sign does not match: the body was altered or signed with an auth_sign_key that is not in --keys for domain %q", truncate(f.Domain, 256))
	}
	if msg, stale := staleTimestamp(ts, now.Unix(), h.cfg.SignatureWindow); stale {
		return reject(http.StatusUnauthorized, ReasonSignatureStale, "auth_timestamp", "%s", msg)
	}
	if publishTime != nil {
		limit := satAdd(ts, windowSeconds(h.cfg.SignatureWindow))
		if pt := publishTime.Unix(); pt > limit {
			return reject(http.StatusBadRequest, ReasonBadField, "publish_timestamp",
				"publish_timestamp %d is after auth_timestamp %d plus the signature window: a stream cannot start after the callback reporting it was signed", pt, ts)
		}
	}
	return nil
}

// windowSeconds is the freshness bound in whole seconds; a window of 0 (no age bound) still
// bounds how far ahead a timestamp may be, by DefaultSignatureWindow.
func windowSeconds(w time.Duration) int64 {
	return int64(windowOrDefault(w) / time.Second)
}

// satAdd is a + b (b >= 0), saturating at math.MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// staleTimestamp reports whether auth_timestamp ts (unix seconds, any int64) is outside window of now
// (unix seconds): behind by more than window (unless window is 0), or ahead by more than window
// (DefaultSignatureWindow when window is 0). The difference is computed in uint64, which holds
// the distance between any two int64 values exactly: no overflow, no saturation, whatever the
// magnitude. msg says which way and by how much.
func staleTimestamp(ts, now int64, window time.Duration) (msg string, stale bool) {
	var off uint64
	ahead := ts > now
	if ahead {
		off = uint64(ts) - uint64(now)
	} else {
		off = uint64(now) - uint64(ts)
	}
	switch {
	case ahead && off > uint64(windowSeconds(window)):
		return fmt.Sprintf("auth_timestamp %d is %s ahead of the archiver's clock, outside --signature-window %s; a forged or altered callback, or a clock to fix",
			ts, seconds(off), windowOrDefault(window)), true
	case !ahead && window > 0 && off > uint64(windowSeconds(window)):
		return fmt.Sprintf("auth_timestamp %d is %s behind the archiver's clock, outside --signature-window %s; a replayed callback, or a clock to fix",
			ts, seconds(off), window), true
	}
	return "", false
}

func windowOrDefault(w time.Duration) time.Duration {
	if w <= 0 {
		return DefaultSignatureWindow
	}
	return w
}

// seconds renders a distance in seconds as a duration when it fits one, else as a count.
func seconds(s uint64) string {
	if s < uint64(math.MaxInt64/int64(time.Second)) {
		return (time.Duration(s) * time.Second).String()
	}
	return strconv.FormatUint(s, 10) + "s"
}

func (h *Handler) ok(w http.ResponseWriter, st *reqState, status, id string) {
	b := append(st.resp[:0], `{"status":"`...)
	b = append(b, status...)
	b = append(b, `","event_id":"`...)
	b = append(b, id...)
	b = append(b, "\"}\n"...)
	st.resp = b
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// unavailable answers 503 for a backend error.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	reason, retry := ReasonUnavailable, "1"
	switch {
	case errors.Is(err, sink.ErrFull):
		reason, retry = ReasonSpoolFull, "30"
	case errors.Is(err, sink.ErrClosed):
		reason, retry = ReasonShuttingDown, "5"
	}
	w.Header().Set("Retry-After", retry)
	h.fail(w, r, nil, &Rejection{Status: http.StatusServiceUnavailable, Reason: reason, Msg: err.Error()})
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// fail answers a rejection, counts it, and offers a sample (4xx with a body only).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, body []byte, rej *Rejection) {
	if c := h.rejected[rej.Reason]; c != nil {
		c.Inc()
	}
	b, _ := json.Marshal(errorBody{Error: rej.Msg, Field: rej.Field})
	w.Header()["Content-Type"] = jsonContentType
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(rej.Status)
	_, _ = w.Write(append(b, '\n'))
	sampled := false
	if h.cfg.Sampler != nil && rej.Status < 500 {
		sampled = h.cfg.Sampler.Offer(rej, h.cfg.Now(), r, body)
	}
	level := slog.LevelDebug
	if sampled || (rej.Status >= 500 && h.warnAllowed()) {
		level = slog.LevelWarn
	}
	if h.log.Enabled(r.Context(), level) {
		h.log.Log(r.Context(), level, "callback refused", "status", rej.Status, "reason", rej.Reason,
			"field", rej.Field, "error", rej.Msg, "remote_addr", r.RemoteAddr, "path", r.URL.Path)
	}
}
