package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/backoff"
	"github.com/livehook/terraform-provider-livehook/internal/callback"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

// Errors of Publish / PublishDone (the control API maps them to statuses).
var (
	ErrInvalidStream = errors.New("invalid stream")                            // 400
	ErrNoConfig      = errors.New("domain has no publish notification config") // 400
	ErrSessionActive = errors.New("stream is already being published")         // 409
	ErrNoSession     = errors.New("no push session for this stream")           // 409
	ErrNotDelivered  = errors.New("callback was not delivered")                // 502, with the Report
)

// Report is the outcome of one callback: the body sent, where, and every attempt.
type Report struct {
	Body      json.RawMessage `json:"body"`
	URL       string          `json:"url"`
	Attempts  []Attempt       `json:"attempts"`
	Delivered bool            `json:"delivered"`
}

// Attempt is one POST of a callback. Status is 0 when no HTTP answer came (Error says why).
// JSON: {"at":"2026-11-26T12:00:00.123Z","status":200,"error":"","duration":"1.2ms"}.
type Attempt struct {
	At       time.Time
	Status   int
	Error    string
	Duration time.Duration
}

type attemptJSON struct {
	At       time.Time `json:"at"`
	Status   int       `json:"status"`
	Error    string    `json:"error"`
	Duration string    `json:"duration"`
}

// MarshalJSON writes the duration as a Go duration string.
func (a Attempt) MarshalJSON() ([]byte, error) {
	return json.Marshal(attemptJSON{At: a.At, Status: a.Status, Error: a.Error, Duration: a.Duration.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (a *Attempt) UnmarshalJSON(b []byte) error {
	var j attemptJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*a = Attempt{At: j.At, Status: j.Status, Error: j.Error}
	if j.Duration != "" {
		d, err := time.ParseDuration(j.Duration)
		if err != nil {
			return fmt.Errorf("attempt duration: %w", err)
		}
		a.Duration = d
	}
	return nil
}

// Delivery is one callback event with all its attempts, as listed by Deliveries.
type Delivery struct {
	Domain    string          `json:"domain"`
	Event     string          `json:"event"`
	URL       string          `json:"url"`
	Body      json.RawMessage `json:"body"`
	Attempts  []Attempt       `json:"attempts"`
	Delivered bool            `json:"delivered"`
}

type session struct {
	publishTS int64
	userArgs  string
	clientIP  string
}

func sessionKey(st Stream) string { return st.Domain + "\x00" + st.App + "\x00" + st.Stream }

// defaultClientIP is used when a Stream names no client (TEST-NET-3, documentation range).
const defaultClientIP = "203.0.113.10"

func validStream(st Stream) error {
	if err := validDomain(st.Domain); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidStream, err)
	}
	if st.App == "" || st.Stream == "" {
		return fmt.Errorf("%w: app and stream are required", ErrInvalidStream)
	}
	return nil
}

// Publish starts a push session for st and fires PUBLISH to the domain's notification URL.
// The session starts even when the callback is not delivered (the stream is live either
// way); then the Report is returned together with an error wrapping ErrNotDelivered.
// A session's publish_timestamp is the start second, made strictly greater than the
// previous session's of the same stream so two sessions never share an identity.
func (s *Server) Publish(ctx context.Context, st Stream) (*Report, error) {
	if err := validStream(st); err != nil {
		return nil, err
	}
	s.mu.Lock()
	n, err := s.callbackTargetLocked(st.Domain)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	key := sessionKey(st)
	if _, ok := s.sessions[key]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s/%s on %s (send publish_done first)", ErrSessionActive, st.App, st.Stream, st.Domain)
	}
	ts := max(s.now().Unix(), s.lastTS[key]+1)
	s.lastTS[key] = ts
	clientIP := st.ClientIP
	if clientIP == "" {
		clientIP = defaultClientIP
	}
	sess := &session{publishTS: ts, userArgs: st.UserArgs, clientIP: clientIP}
	s.sessions[key] = sess
	s.mu.Unlock()
	return s.fire(ctx, callback.EventPublish, st, sess, n)
}

// PublishDone ends st's push session and fires PUBLISH_DONE with the session's
// publish_timestamp, user_args and client_ip. Without a session it returns ErrNoSession.
func (s *Server) PublishDone(ctx context.Context, st Stream) (*Report, error) {
	if err := validStream(st); err != nil {
		return nil, err
	}
	s.mu.Lock()
	key := sessionKey(st)
	sess, ok := s.sessions[key]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s/%s on %s has not been published (or is already done)", ErrNoSession, st.App, st.Stream, st.Domain)
	}
	delete(s.sessions, key) // the stream stops whatever happens to the callback
	n, err := s.callbackTargetLocked(st.Domain)
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("session ended without a callback: %w", err)
	}
	return s.fire(ctx, callback.EventPublishDone, st, sess, n)
}

func (s *Server) callbackTargetLocked(domain string) (Notification, error) {
	if !s.domains[domain] {
		return Notification{}, fmt.Errorf("%w: %q", ErrUnknownDomain, domain)
	}
	n, ok := s.configs[domain]
	if !ok || n.URL == "" {
		return Notification{}, fmt.Errorf("%w: %q (PUT one through the management API first)", ErrNoConfig, domain)
	}
	return n, nil
}

// fire builds the body once and delivers it, retrying with the identical bytes.
func (s *Server) fire(ctx context.Context, event string, st Stream, sess *session, n Notification) (*Report, error) {
	body := s.callbackBody(event, st, sess, n)
	rep := s.deliver(ctx, n.URL, body)
	s.mu.Lock()
	s.dels = append(s.dels, Delivery{Domain: st.Domain, Event: event, URL: n.URL, Body: rep.Body,
		Attempts: rep.Attempts, Delivered: rep.Delivered})
	if len(s.dels) >= 2*maxDeliveries { // trim in chunks: amortised O(1) per delivery
		s.dels = append([]Delivery(nil), s.dels[len(s.dels)-maxDeliveries:]...)
	}
	s.mu.Unlock()
	log := s.log.With("event", event, "domain", st.Domain, "app", st.App, "stream", st.Stream,
		"url", redactURL(n.URL), "attempts", len(rep.Attempts))
	if !rep.Delivered {
		last := rep.Attempts[len(rep.Attempts)-1]
		log.Warn("callback not delivered", "last_status", last.Status, "last_error", last.Error)
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("%w to %s: %w", ErrNotDelivered, redactURL(n.URL), err)
		}
		return rep, fmt.Errorf("%w to %s after %d attempts (last: %s)", ErrNotDelivered, redactURL(n.URL), len(rep.Attempts), describe(last))
	}
	log.Info("callback delivered")
	return rep, nil
}

func describe(a Attempt) string {
	if a.Error != "" {
		return a.Error
	}
	return "HTTP " + strconv.Itoa(a.Status)
}

// callbackBody writes the fields in the documented order, compact, without HTML escaping
// (user_args keeps its & and =).
func (s *Server) callbackBody(event string, st Stream, sess *session, n Notification) []byte {
	argsField := "user_args"
	if s.cfg.UsrArgs {
		argsField = "usr_args"
	}
	var b bytes.Buffer
	b.WriteByte('{')
	field := func(k string, v any) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k))
		b.WriteByte(':')
		b.Write(jsonValue(v))
	}
	field("domain", st.Domain)
	field("app", st.App)
	field("stream", st.Stream)
	field(argsField, sess.userArgs)
	field("client_ip", sess.clientIP)
	field("node_ip", s.nodeIP)
	field("publish_timestamp", strconv.FormatInt(sess.publishTS, 10))
	field("event", event)
	if n.AuthSignKey != "" {
		ts := s.now().Unix()
		field("auth_timestamp", ts)
		field("auth_sign", callback.Sign(n.AuthSignKey, event, st.Domain, st.App, st.Stream, ts))
	}
	b.WriteByte('}')
	return b.Bytes()
}

func jsonValue(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// deliver POSTs body until a 200, at most 1+CallbackRetries times, backing off exponentially.
func (s *Server) deliver(ctx context.Context, target string, body []byte) *Report {
	rep := &Report{Body: json.RawMessage(body), URL: target}
	// Deterministic (no jitter): tests and the demo assert on the delivery schedule.
	policy := backoff.Policy{Initial: s.cfg.CallbackBackoff, Max: time.Minute, Jitter: -1}
	for i := 0; i <= s.cfg.CallbackRetries; i++ {
		if i > 0 && s.cfg.CallbackBackoff > 0 {
			if ctxsleep.Sleep(ctx, policy.Delay(i-1)) != nil {
				return rep
			}
		}
		a := s.attempt(ctx, target, body)
		rep.Attempts = append(rep.Attempts, a)
		if a.Status == http.StatusOK {
			rep.Delivered = true
			return rep
		}
		if ctx.Err() != nil {
			return rep
		}
	}
	return rep
}

func (s *Server) attempt(ctx context.Context, target string, body []byte) Attempt {
	a := Attempt{At: s.now()}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		a.Error = "cannot build the request: " + err.Error()
		a.Duration = time.Since(start)
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "livehook-live-emulator")
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which is in the Report already
		}
		a.Error = err.Error()
		a.Duration = time.Since(start)
		return a
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	a.Status = resp.StatusCode
	a.Duration = time.Since(start)
	return a
}

// redactURL drops the query and user info: a receiver URL may carry a token.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}

// Deliveries lists every callback with its attempts, oldest first. Long runs keep at
// least the newest 10000 (between 10000 and 20000).
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.dels...)
}
