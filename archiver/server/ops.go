package server

// The operating surface of `archiver serve`: the admin listener (/metrics, /readyz, /healthz off the
// internet-facing callback port), TLS certificate reload, and the digest metrics.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
)

// Version is the archiver's version for the build-info metric (main sets it from the release tag).
var Version = "dev"

// adminMux serves what operators and Prometheus read: /metrics, /readyz and /healthz.
func (s *Server) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", healthz)
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/metrics", s.metrics.Registry.Handler())
	return mux
}

// AdminHandler is the admin listener's HTTP surface: /metrics, /readyz, /healthz.
func (s *Server) AdminHandler() http.Handler {
	mux := s.adminMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": fmt.Sprintf("no such endpoint %s; the admin listener serves /metrics, /readyz and /healthz", r.URL.Path)})
	})
	return mux
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// listenAdmin binds --admin-listen (plain HTTP: it belongs on a private network, like the
// Prometheus scrape). The address is logged as "admin endpoints on http://ADDR" (not "listening
// on", which names the callback listener).
func (s *Server) listenAdmin() error {
	if s.cfg.AdminListen == "" {
		s.log.Warn("no --admin-listen: /metrics and /readyz are served on the callback listener, which faces the senders; give --admin-listen ADDR (e.g. :9090) to serve them only there")
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.AdminListen)
	if err != nil {
		return fmt.Errorf("--admin-listen %s: %w", s.cfg.AdminListen, err)
	}
	s.adminLn = ln
	return nil
}

// serveAdmin serves the admin endpoints on the listener listenAdmin bound (none: nothing to do).
func (s *Server) serveAdmin() {
	ln := s.adminLn
	if ln == nil {
		return
	}
	s.adminSrv = &http.Server{
		Handler:           s.AdminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.adminErr = make(chan error, 1)
	go func() {
		err := s.adminSrv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.adminErr <- err
	}()
	s.log.Info("admin endpoints (/metrics, /readyz, /healthz) on "+s.AdminURL(), "admin_addr", ln.Addr().String())
}

// AdminURL is the admin listener's base URL ("" without --admin-listen).
func (s *Server) AdminURL() string {
	if s.adminLn == nil {
		return ""
	}
	return "http://" + s.adminLn.Addr().String()
}

// stopAdmin closes the admin listener last, so /readyz says "shutting down" and /metrics can be
// scraped while the spool drains.
func (s *Server) stopAdmin(ctx context.Context) error {
	if s.adminSrv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.adminSrv.Shutdown(ctx); err != nil {
		s.adminSrv.Close()
	}
	return <-s.adminErr
}

// certStore holds the serving certificate; SIGHUP swaps it (crypto/tls asks for it per handshake).
type certStore struct {
	cert, key string
	cur       atomic.Pointer[tls.Certificate]
	notAfter  *metrics.Gauge
}

func (c *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil }

// load reads the pair; on error the certificate in use stays.
func (c *certStore) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return nil, fmt.Errorf("loading --tls-cert %s / --tls-key %s: %w", c.cert, c.key, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parsing --tls-cert %s: %w", c.cert, err)
	}
	cert.Leaf = leaf
	c.cur.Store(&cert)
	c.notAfter.Set(float64(leaf.NotAfter.Unix()))
	return &cert, nil
}

// ReloadTLS re-reads --tls-cert and --tls-key. A pair that does not load (missing, malformed, key
// not matching) is logged and the certificate in use stays; new connections get the new one.
func (s *Server) ReloadTLS() error {
	if s.certs == nil {
		return nil
	}
	cert, err := s.certs.load()
	if err != nil {
		s.metrics.ReloadFailures.With("tls").Inc()
		s.log.Error("reloading the TLS certificate failed; keeping the previous certificate", "error", err)
		return err
	}
	s.log.Info("reloaded the TLS certificate", "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// Reload is SIGHUP: --keys, --forward-config and the TLS certificate, each keeping its old value
// on error.
func (s *Server) Reload() error {
	return errors.Join(s.ReloadKeys(), s.ReloadForward(), s.ReloadTLS())
}
