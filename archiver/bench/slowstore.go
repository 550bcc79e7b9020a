package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

// slowStore is an in-process reverse proxy in front of the S3 server that makes it slow in a way
// the archiver's durability path, not the CPU, becomes the bottleneck: every request is held for
// a fixed latency, and request bodies go over one shared link of a fixed bandwidth, first come
// first served (a store, or a network path to it, that takes so many bytes a second). On a
// 2-vCPU machine that loads the generator too, a fast local VersityGW is never the bottleneck;
// behind this, store mode's capacity is about bandwidth / bytes per event.
//
// The Host header is passed on unchanged, so the archiver's SigV4 signature (made for the proxy's
// address) verifies at the server.
type slowStore struct {
	Latency     time.Duration // added to every request
	BytesPerSec int64         // of request bodies, shared by all requests; <= 0: no limit

	srv *http.Server
	ln  net.Listener
	URL string // http://127.0.0.1:PORT

	mu       sync.Mutex
	linkFree time.Time // when the link has sent every body admitted so far
}

// startSlowStore proxies 127.0.0.1:<free port> to target.
func startSlowStore(target string, latency time.Duration, bytesPerSec int64) (*slowStore, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("slow store: target %q is not a URL: %v", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("slow store: %w", err)
	}
	s := &slowStore{Latency: latency, BytesPerSec: bytesPerSec, ln: ln, URL: "http://" + ln.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps req.Host: the signature's host
	s.srv = &http.Server{Handler: s.handler(rp), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// delay is how long a request with a body of n bytes is held: the latency plus its turn on the link.
func (s *slowStore) delay(now time.Time, n int64) time.Duration {
	d := s.Latency
	if s.BytesPerSec <= 0 || n <= 0 {
		return d
	}
	s.mu.Lock()
	start := now
	if s.linkFree.After(now) {
		start = s.linkFree
	}
	s.linkFree = start.Add(time.Duration(float64(n) / float64(s.BytesPerSec) * float64(time.Second)))
	done := s.linkFree
	s.mu.Unlock()
	return d + done.Sub(now)
}

func (s *slowStore) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := ctxsleep.Sleep(req.Context(), s.delay(time.Now(), req.ContentLength)); err != nil {
			return // the client gave up
		}
		next.ServeHTTP(w, req)
	})
}

// Close stops the proxy and its connections.
func (s *slowStore) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return s.srv.Close()
	}
	return nil
}
