package archivetest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Received is one request a Receiver got.
type Received struct {
	Body    []byte
	Header  http.Header
	EventID string // X-Livehook-Event-Id
	Attempt int    // X-Livehook-Attempt
	Status  int    // what the receiver answered
	At      time.Time
}

// Receiver is a "business server" for relay tests: it records every request and answers with
// the status Answer returns (200 when Answer is nil). It listens on 127.0.0.1 and stops at cleanup.
type Receiver struct {
	URL string
	// RetryAfter, if set before the first request, is sent with every 429 and 503.
	RetryAfter string

	mu     sync.Mutex
	answer func(n int, r *http.Request) int // n: 0-based request number
	got    []Received
	srv    *httptest.Server
}

// NewReceiver starts a receiver answering with answer (nil: always 200).
func NewReceiver(t testing.TB, answer func(n int, r *http.Request) int) *Receiver {
	rc := &Receiver{answer: answer}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc.srv.Listener = ln
	rc.srv.Start()
	rc.URL = rc.srv.URL + "/live/callback"
	t.Cleanup(rc.srv.Close)
	return rc
}

// SetAnswer changes the behaviour.
func (rc *Receiver) SetAnswer(answer func(n int, r *http.Request) int) {
	rc.mu.Lock()
	rc.answer = answer
	rc.mu.Unlock()
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	n, answer := len(rc.got), rc.answer
	rc.mu.Unlock()
	status := http.StatusOK
	if answer != nil {
		status = answer(n, r) // may block (a slow receiver)
	}
	att, _ := strconv.Atoi(r.Header.Get("X-Livehook-Attempt"))
	rc.mu.Lock()
	rc.got = append(rc.got, Received{Body: body, Header: r.Header.Clone(), EventID: r.Header.Get("X-Livehook-Event-Id"), Attempt: att, Status: status, At: at})
	rc.mu.Unlock()
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if ra := rc.RetryAfter; ra != "" {
			w.Header().Set("Retry-After", ra)
		}
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"status":"`+http.StatusText(status)+`"}`)
}

// All is every request so far, in arrival order.
func (rc *Receiver) All() []Received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Received(nil), rc.got...)
}

// Accepted is the requests answered 2xx, in arrival order.
func (rc *Receiver) Accepted() []Received {
	var out []Received
	for _, r := range rc.All() {
		if r.Status >= 200 && r.Status < 300 {
			out = append(out, r)
		}
	}
	return out
}
