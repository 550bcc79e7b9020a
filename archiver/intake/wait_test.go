package intake

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
)

// switchSink holds entries (never finishing them) while hold is set, else finishes them at once.
type switchSink struct{ hold atomic.Bool }

func (s *switchSink) Submit(e *sink.Entry) error {
	if !s.hold.Load() {
		e.Finish(nil)
	}
	return nil
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
	if a := load.Active(); a != 0 {
		t.Fatalf("load after all requests: active %d, want 0", a)
	}
}
