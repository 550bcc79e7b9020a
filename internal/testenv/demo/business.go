package demo

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/callback"
)

// business is the demo's "business server": the receiver Live called before the archiver took
// the notification URL, now fed by the archiver's relay (--forward business=URL). Like a real
// one it checks auth_sign with the domain's key and drops repeats by X-Livehook-Event-Id.
type business struct {
	key string
	srv *http.Server
	url string

	mu      sync.Mutex
	ids     map[string]int // X-Livehook-Event-Id -> arrivals
	events  []Event        // first arrivals, in order
	invalid int            // bodies whose signature did not verify
}

func startBusiness(key string) (*business, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &business{key: key, ids: map[string]int{}, url: "http://" + ln.Addr().String() + "/live/callback"}
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

func (b *business) Close() error {
	if err := b.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (b *business) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	e, err := identity(body)
	var f struct {
		TS   json.Number `json:"auth_timestamp"`
		Sign string      `json:"auth_sign"`
	}
	_ = json.Unmarshal(body, &f)
	ts, _ := strconv.ParseInt(f.TS.String(), 10, 64)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil || !callback.Valid(f.Sign, b.key, e.Event, e.Domain, e.App, e.Stream, ts) {
		b.invalid++
		w.WriteHeader(http.StatusUnauthorized) // a dead letter in the archiver: visible in the demo's check
		return
	}
	id := r.Header.Get("X-Livehook-Event-Id")
	if b.ids[id]++; b.ids[id] == 1 {
		b.events = append(b.events, e)
	}
	_, _ = io.WriteString(w, `{"status":"ok"}`)
}

// got returns the events that arrived (each once), how many requests were repeats, and how many
// had an invalid signature.
func (b *business) got() (events []Event, repeats, invalid int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.ids {
		repeats += n - 1
	}
	return append([]Event(nil), b.events...), repeats, b.invalid
}
