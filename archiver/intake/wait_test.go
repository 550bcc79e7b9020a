package intake

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
)

// switchSink holds entries (finishing them only in release) while hold is set, else finishes
// them at once.
type switchSink struct {
	hold atomic.Bool
	mu   sync.Mutex
	held []*sink.Entry
}

func (s *switchSink) Submit(e *sink.Entry) error {
	if !s.hold.Load() {
		e.Finish(nil)
		return nil
	}
	s.mu.Lock()
	s.held = append(s.held, e)
	s.mu.Unlock()
	return nil
}

// release finishes the held entries, as a real backend eventually does.
func (s *switchSink) release(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.held {
		e.Finish(err)
	}
	s.held = nil
}

// A backend that never answers gives 503 after Timeout; the next requests (reusing pooled
// request state and its timer) are answered normally, and the load counter returns to zero.
func TestWaitTimeoutThenNormal(t *testing.T) {
	t.Parallel()
	sk := &switchSink{}
	load := &sink.Load{}
	h, err := New(Config{Sink: sk, Dedup: dedup.New(0), AllowUnsigned: true, Metrics: metrics.NewArchiver(Reasons), Timeout: 50 * time.Millisecond, Load: load})
	if err != nil {
		t.Fatal(err)
	}
	post := func(i int) int {
		body := fmt.Sprintf(`{"domain":"d.example.com","app":"a","stream":"s%d","event":"PUBLISH","publish_timestamp":"%d"}`, i, i)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/callback", strings.NewReader(body)))
		return w.Code
	}
	sk.hold.Store(true)
	if code := post(0); code != http.StatusServiceUnavailable {
		t.Fatalf("held entry: status %d, want 503", code)
	}
	sk.hold.Store(false)
	for i := 1; i <= 5; i++ {
		if code := post(i); code != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200", i, code)
		}
	}
	// The abandoned entry still counts as on its way until its backend finishes it.
	if a := load.Active(); a != 1 {
		t.Fatalf("load with one entry held by the backend: active %d, want 1", a)
	}
	sk.release(nil)
	if a := load.Active(); a != 0 {
		t.Fatalf("load after all requests: active %d, want 0", a)
	}
}

// activeAtFinish finishes each entry at once and records the load right after: what the spool's
// writer sees when it gathers its next batch, before the answered handlers have run again.
type activeAtFinish struct {
	load *sink.Load
	seen []int
}

func (s *activeAtFinish) Submit(e *sink.Entry) error {
	e.Finish(nil)
	s.seen = append(s.seen, s.load.Active())
	return nil
}

// A request stops counting in sink.Load when its entry is finished, not when its handler returns:
// otherwise the group commit lingers for requests it has already answered. Requests that never
// reach the backend (rejected, duplicates) leave the count when they are answered.
func TestLoadExitsWhenEntryFinishes(t *testing.T) {
	t.Parallel()
	load := &sink.Load{}
	sk := &activeAtFinish{load: load}
	h, err := New(Config{Sink: sk, Dedup: dedup.New(0), AllowUnsigned: true, Metrics: metrics.NewArchiver(Reasons), Load: load})
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{
		`{"domain":"d.example.com","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":"1"}`,
		`{"domain":"d.example.com","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":"1"}`, // duplicate
		`{"domain":"d.example.com"`, // malformed
		`{"domain":"d.example.com","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":"2"}`,
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/callback", strings.NewReader(body)))
		if a := load.Active(); a != 0 {
			t.Fatalf("request %d (status %d): active %d after the answer, want 0", i, w.Code, a)
		}
	}
	if len(sk.seen) != 2 || sk.seen[0] != 0 || sk.seen[1] != 0 {
		t.Fatalf("active right after each Finish = %v, want [0 0]", sk.seen)
	}
}
