// Package server wires `archiver serve`: flags, the store, the durability backend (spool +
// uploader, or the store batcher), dedup, the intake handler, operational endpoints, signals and
// graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/admission"
	"github.com/livehook/terraform-provider-livehook/archiver/backend"
	"github.com/livehook/terraform-provider-livehook/archiver/batcher"
	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/intake"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/relay"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/archiver/uploader"
)

// Server is a running archiver.
type Server struct {
	cfg      Config
	log      *slog.Logger
	loc      *time.Location
	store    storage.Store
	metrics  *metrics.Archiver
	dedup    *dedup.Set
	keys     *intake.KeyRing
	handler  *intake.Handler
	sampler  *intake.Sampler
	admit    *admission.Controller // nil: no overload shedding
	instance string

	backend  backend.Backend
	spool    *spool.Spool // nil with --ack store
	draining atomic.Bool
	digests  *digestState // digest.go
	relay    *relay.Relay // forward.go; nil without --forward

	httpSrv  *http.Server
	ln       net.Listener
	scheme   string
	serveErr chan error
	certs    *certStore // --tls-cert (ops.go)

	adminSrv *http.Server // --admin-listen (ops.go)
	adminLn  net.Listener
	adminErr chan error

	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
}

// New builds the archiver from cfg: opens the store and (spool mode) the spool, recovering what a
// previous process left, and loads the dedup memory. It does not listen yet (see Start).
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		lvl, _ := parseLevel(cfg.LogLevel)
		log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	}
	if cfg.Store == "" {
		abs, _ := filepath.Abs(storage.DefaultDir)
		// The first log line says where data goes when nobody said.
		log.Warn("no --store given: writing the archive to the local directory ./"+storage.DefaultDir+" (use --store s3://BUCKET/PREFIX for S3)", "dir", abs)
	}
	loc, _ := time.LoadLocation(cfg.PartitionTZ) // validated
	s := &Server{cfg: cfg, log: log, loc: loc, metrics: metrics.NewArchiver(intake.Reasons), keys: &intake.KeyRing{}, serveErr: make(chan error, 1)}
	s.metrics.Registry.BuildInfo("livehook_archiver_build_info", Version)

	store, err := storage.Open(ctx, storage.Options{
		URL: cfg.Store, Endpoint: cfg.S3Endpoint, Region: cfg.S3Region,
		AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
		MaxRetries: 1, // the uploader retries with its own backoff
	})
	if err != nil {
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	s.store = store
	if err := s.probeStore(ctx); err != nil {
		return nil, err
	}
	if store, err = s.openDigests(ctx, store); err != nil {
		return nil, err
	}

	if cfg.Keys != "" {
		keys, err := intake.LoadKeysFile(cfg.Keys)
		if err != nil {
			return nil, err
		}
		s.keys.Set(keys)
	}

	bg, bgCancel := context.WithCancel(context.Background())
	s.bgCancel = bgCancel
	ok := false
	var spoolBackend *uploader.Backend
	defer func() {
		if !ok {
			if s.relay != nil {
				s.relay.Close()
			}
			if s.spool != nil {
				_ = s.spool.Close(ctx)
			}
			if spoolBackend != nil {
				spoolBackend.Close()
			}
			s.closeBackground()
		}
	}()

	s.dedup = s.newDedup()
	load := &sink.Load{}
	sampleInstance := ""
	switch cfg.Ack {
	case AckSpool:
		sp, err := spool.Open(ctx, spool.Options{
			Dir: cfg.Spool, Instance: cfg.Instance, Gzip: cfg.Gzip,
			FlushInterval: cfg.FlushInterval, FlushBytes: cfg.FlushBytes, MaxBytes: cfg.SpoolMaxBytes,
			Logger: log, Load: load, MaxRecovered: s.dedup.MaxEntries(), CommitWindow: cfg.CommitWindow,
			OnCommit: func(_ int, took time.Duration) {
				s.metrics.SpoolCommits.Inc()
				s.metrics.SpoolCommitSecs.Observe(took.Seconds())
			},
			OnDamage:   func(n int) { s.metrics.SpoolDamaged.Add(uint64(n)) },
			OnSetAside: func() { s.metrics.SpoolSetAside.Inc() },
		})
		if err != nil {
			return nil, fmt.Errorf("opening the spool: %w", err)
		}
		s.spool, s.instance = sp, sp.Instance()
		sampleInstance = s.instance
		j, items, err := s.openJournal(filepath.Join(cfg.Spool, spool.JournalFile))
		if err != nil {
			return nil, err
		}
		if n := j.Damaged(); n > 0 {
			log.Warn("the redelivery journal had damaged entries; they were skipped (their redeliveries are archived again, as repeats)", "stretches", n)
		}
		s.dedup.Add(items...)
		s.dedup.Add(sp.TakeRecovered()...)
		spoolBackend = uploader.NewBackend(sp, j, store, s.metrics, log, cfg.SpoolMaxBytes)
		s.backend = spoolBackend
	case AckStore:
		// Store mode keeps no local state, so the object names of this process get a random
		// per-process part: a restart or a replica with the same --instance never reuses one.
		keyInstance := layout.ProcessInstance(cfg.Instance)
		s.instance = cfg.Instance
		if s.instance == "" {
			s.instance = keyInstance
		}
		sampleInstance = keyInstance
		s.backend = batcher.New(batcher.Options{
			Store: store, Instance: keyInstance, Gzip: cfg.Gzip,
			FlushInterval: cfg.FlushInterval, FlushBytes: cfg.FlushBytes, MaxPending: cfg.StoreMaxPending,
			Timeout: cfg.StoreTimeout, Metrics: s.metrics, Logger: log,
			Load: load, CommitWindow: cfg.CommitWindow,
		})
		s.loadDedupFromStore(ctx)
	}
	for _, k := range storage.Kinds {
		s.metrics.UploadFailures.With(k) // every kind on /metrics from the start, at 0
	}

	s.sampler = intake.NewSampler(store, sampleInstance, loc, s.metrics, log)
	// Both modes bound the wait: a hung disk or store gives 503, never a hung sender.
	timeout := cfg.StoreTimeout
	s.admit = admission.New(admission.Options{Target: cfg.queueDelayTarget(), Floor: cfg.AdmissionFloor})
	s.handler, err = intake.New(intake.Config{
		Sink: s.backend, Dedup: s.dedup, Keys: s.keys, AllowUnsigned: cfg.AllowUnsigned, AllowDomains: cfg.AllowDomains,
		SignatureWindow: cfg.SignatureWindow, MaxBody: cfg.MaxBody, Location: loc, Instance: s.instance,
		Now: cfg.Now, Timeout: timeout, Metrics: s.metrics, Sampler: s.sampler, Logger: log, Load: load,
		Admission: s.admit,
	})
	if err != nil {
		return nil, err
	}
	s.registerGauges()

	// sampleInstance is this process's object-key instance in both modes: store-mode replicas may
	// share --instance, and one chain per process keeps their digests from forking.
	if err := s.startDigests(ctx, sampleInstance); err != nil {
		return nil, err
	}
	if err := s.startRelay(); err != nil {
		return nil, err
	}
	// Only now: the sampler stores through the digest recorder, which startDigests finished
	// setting up (its journal).
	s.bgWG.Add(2)
	go func() { defer s.bgWG.Done(); s.sampler.Run(bg) }()
	go func() { defer s.bgWG.Done(); s.dedup.RunSweeper(bg, time.Minute, cfg.Now) }()
	s.backend.Start()
	ok = true
	return s, nil
}

// loadDedupFromStore (store mode, which keeps no local state) remembers the events archived in the
// last 24 hours by reading them back, so redeliveries across a restart are still recognised.
func (s *Server) loadDedupFromStore(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now := s.cfg.Now()
	start := time.Now()
	n := 0
	q := readback.Query{From: layout.Day(now.Add(-dedup.DefaultTTL), s.loc), To: layout.Day(now.Add(time.Hour), s.loc)}
	err := readback.Read(ctx, s.store, q, func(ev readback.Event) error {
		if now.Sub(ev.Archive.ReceivedAt) > dedup.DefaultTTL {
			return nil
		}
		id, err := dedup.ParseID(ev.Archive.EventID)
		if err != nil {
			return nil
		}
		s.dedup.Add(dedup.Item{ID: dedup.Key(id, ev.Body), At: ev.Archive.ReceivedAt})
		n++
		return nil
	})
	var bad *readback.BadLinesError
	if errors.As(err, &bad) {
		s.log.Warn("some archived lines of the last 24h are unreadable; redeliveries of those events may be stored twice", "lines", bad.Count, "first", bad.First.Error())
	} else if err != nil {
		s.log.Warn("could not read the last 24h of the archive back for redelivery detection; redeliveries of events archived before this start may be stored twice", "error", err)
		return
	}
	s.log.Info("loaded recent event ids from the archive for redelivery detection", "events", n, "took", time.Since(start).Round(time.Millisecond).String())
}

func (s *Server) registerGauges() {
	r := s.metrics.Registry
	const p = "livehook_archiver_"
	r.GaugeFunc(p+"dedup_entries", "Event identities remembered for redelivery detection.", func() float64 { return float64(s.dedup.Len()) })
	// For alerts: /readyz's answer without its store round trip (scrapes stay cheap).
	r.GaugeFunc(p+"ready", "1 when new events can be made durable (/readyz 200), 0 when not (spool full or failing, store down in store mode, shutting down).", func() float64 {
		h := s.backend.Health()
		return b2f(h.Accepting && len(h.Problems) == 0 && !s.draining.Load())
	})
	r.GaugeFunc(p+"degraded", "1 while events are accepted but not reaching the store (the spool buffers; /readyz says degraded), else 0.", func() float64 {
		return b2f(s.backend.Health().Degraded != "")
	})
	r.GaugeFunc(p+"digest_enabled", "1 when signed digests are written (--digest-key), else 0.", func() float64 {
		return b2f(s.digests != nil && s.digests.writer != nil)
	})
	// Overload control (--max-queue-delay); what it refuses is rejected_total{reason="overloaded"}.
	r.GaugeFunc(p+"admission_in_flight", "Callbacks admitted and not yet answered.", func() float64 { return float64(s.admit.Stats().InFlight) })
	r.GaugeFunc(p+"admission_limit", "Callbacks admitted at once while shedding load (0: not shedding).", func() float64 { return float64(s.admit.Stats().Limit) })
	r.GaugeFunc(p+"queue_delay_seconds", "Smallest wait for durability of the last 100ms: above --max-queue-delay, load is shed.", func() float64 { return s.admit.Stats().Delay.Seconds() })
	s.backend.RegisterGauges(r)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Instance is the name in this process's object keys.
func (s *Server) Instance() string { return s.instance }

// Metrics exposes the counters (tests).
func (s *Server) Metrics() *metrics.Archiver { return s.metrics }

// Store is the archive store.
func (s *Server) Store() storage.Store { return s.store }

// Spool is the spool (nil with --ack store).
func (s *Server) Spool() *spool.Spool { return s.spool }

// Handler is the callback listener's HTTP surface: /callback and /healthz (for a load balancer),
// plus /readyz and /metrics only when there is no --admin-listen (AdminHandler).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	if s.cfg.AdminListen == "" {
		mux = s.adminMux()
	} else {
		mux.HandleFunc("/healthz", healthz)
	}
	callbacks := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if overLimit(r) {
			s.handler.Shed(w, r)
			return
		}
		s.handler.ServeHTTP(w, r)
	})
	mux.Handle("/callback", callbacks)
	mux.Handle("/callback/", callbacks)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": fmt.Sprintf("no such endpoint %s; callbacks go to POST /callback", r.URL.Path)})
	})
	return mux
}

// readyz answers 503 when new events cannot be made durable (the backend cannot take them, the
// store is unreachable in store mode, or the archiver is shutting down), and 200 otherwise; the
// body's state is "degraded", with the reason, while the spool buffers for a failing store.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	h := s.backend.Health()
	problems := h.Problems
	if s.draining.Load() && !slices.Contains(problems, "shutting down") {
		problems = append(problems, "shutting down")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	degraded := h.Degraded
	if err := s.store.Ping(ctx); err != nil {
		if h.StoreBound {
			problems = append(problems, "store unreachable: "+err.Error())
		} else if degraded == "" {
			degraded = "store unreachable (the spool keeps accepting): " + err.Error()
		}
	}
	if len(problems) > 0 || !h.Accepting {
		body := map[string]any{"status": "not ready", "problems": problems}
		if degraded != "" {
			body["degraded"] = degraded
		}
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	if rd := s.relayDegraded(); rd != "" {
		if degraded != "" {
			degraded += "; "
		}
		degraded += rd
	}
	if degraded != "" {
		writeJSON(w, http.StatusOK, map[string]any{"status": "degraded", "degraded": degraded, "store": s.store.String()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "store": s.store.String()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Start listens on cfg.Listen and serves in the background. The real address (port 0 resolved)
// is logged as "listening on http://ADDR" and returned by Addr.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
	}
	lim := newLimitListener(ln, s.cfg.MaxConnections)
	s.metrics.Registry.GaugeFunc("livehook_archiver_connections_open", "Client connections being served (at most --max-connections).",
		func() float64 { return float64(lim.Open()) })
	s.metrics.Registry.GaugeFunc("livehook_archiver_connections_over_limit", "Client connections past --max-connections, being answered 503 and closed.",
		func() float64 { return float64(lim.Over()) })
	lim.onEvict = s.metrics.Registry.Counter("livehook_archiver_connections_evicted_total",
		"Idle kept-alive connections closed to make room for new ones at --max-connections.").Inc
	ln = lim
	s.ln = ln
	s.scheme = "http"
	s.httpSrv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      s.cfg.StoreTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnContext:       connContext,
		ConnState:         lim.connState,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if s.cfg.TLSCert != "" {
		s.certs = &certStore{cert: s.cfg.TLSCert, key: s.cfg.TLSKey,
			notAfter: s.metrics.Registry.Gauge("livehook_archiver_tls_cert_not_after_timestamp_seconds", "Unix time the serving certificate (--tls-cert) expires; SIGHUP reloads it.")}
		if _, err := s.certs.load(); err != nil {
			ln.Close()
			s.httpSrv = nil // never served: Shutdown must not wait for it
			return err
		}
		// GetCertificate, not Certificates: ReloadTLS swaps the pair under running connections.
		s.httpSrv.TLSConfig = &tls.Config{GetCertificate: s.certs.get, MinVersion: tls.VersionTLS12}
		s.scheme = "https"
	}
	// The admin address is bound before any callback is served: a bad --admin-listen fails the
	// start before a callback was acknowledged.
	if err := s.listenAdmin(); err != nil {
		ln.Close()
		s.httpSrv = nil // never served: Shutdown must not wait for it
		return err
	}
	s.log.Info("listening on "+s.URL(), "addr", ln.Addr().String(), "ack", s.cfg.Ack, "store", s.store.String(),
		"instance", s.instance, "signed_domains", s.keys.Domains())
	go func() {
		var err error
		if s.scheme == "https" {
			err = s.httpSrv.ServeTLS(ln, "", "")
		} else {
			err = s.httpSrv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	s.serveAdmin()
	return nil
}

// Addr is the listening address (after Start).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL, e.g. http://127.0.0.1:43210.
func (s *Server) URL() string { return s.scheme + "://" + s.Addr() }

// ReloadKeys re-reads --keys; on error the old keys stay.
func (s *Server) ReloadKeys() error {
	if s.cfg.Keys == "" {
		return nil
	}
	keys, err := intake.LoadKeysFile(s.cfg.Keys)
	if err != nil {
		s.metrics.ReloadFailures.With("keys").Inc()
		s.log.Error("reloading --keys failed; keeping the previous keys", "error", err)
		return err
	}
	s.keys.Set(keys)
	s.log.Info("reloaded --keys", "signed_domains", s.keys.Domains())
	return nil
}

// Shutdown stops accepting (503, then closes the listener), waits for requests in flight, seals
// the spool and uploads it (bounded by cfg.ShutdownTimeout; the rest stays for the next start) or
// flushes the store batcher, then stops everything. Safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	start := time.Now()
	s.log.Info("shutting down: refusing new callbacks, flushing")
	s.draining.Store(true)
	s.handler.SetDraining(true)
	var errs []error
	if s.httpSrv != nil {
		hctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout+5*time.Second)
		if err := s.httpSrv.Shutdown(hctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping the HTTP server: %w", err))
			s.httpSrv.Close()
		}
		cancel()
		if err := <-s.serveErr; err != nil {
			errs = append(errs, err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	if s.relay != nil {
		s.settleRelay(fctx)
		s.relay.Close() // cursors written; the rest is forwarded on the next start
	}
	if err := s.backend.Shutdown(fctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.closeDigests(fctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.stopAdmin(ctx); err != nil {
		errs = append(errs, err)
	}
	s.closeBackground()
	s.log.Info("archiver stopped", "took", time.Since(start).Round(time.Millisecond).String(),
		"accepted", s.metrics.Accepted.Value(), "stored", s.metrics.Stored.Value(), "duplicates", s.metrics.Duplicates.Value())
	return errors.Join(errs...)
}

func (s *Server) closeBackground() {
	if s.bgCancel != nil {
		s.bgCancel()
	}
	s.bgWG.Wait()
}

// Run is `archiver serve`: it parses args, serves until SIGTERM/SIGINT (graceful shutdown, exit
// 0) and re-reads --keys and the TLS certificate on SIGHUP.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "archiver serve: %v\n", err)
		return 2
	}
	lvl, _ := parseLevel(cfg.LogLevel)
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	applyMemoryLimit(cfg.MemoryLimit, cfg.Logger)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	s, err := New(ctx, cfg)
	if err != nil {
		cfg.Logger.Error("archiver cannot start", "error", err)
		return 1
	}
	if err := s.Start(); err != nil {
		cfg.Logger.Error("archiver cannot start", "error", err)
		_ = s.Shutdown(context.Background())
		return 1
	}
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				_ = s.Reload()
				continue
			}
			cfg.Logger.Info("received signal", "signal", sig.String())
			if err := s.Shutdown(context.Background()); err != nil {
				cfg.Logger.Error("shutdown finished with errors", "error", err)
				return 1
			}
			return 0
		case <-ctx.Done():
			if err := s.Shutdown(context.Background()); err != nil {
				cfg.Logger.Error("shutdown finished with errors", "error", err)
				return 1
			}
			return 0
		case err := <-s.serveErr:
			cfg.Logger.Error("HTTP server failed", "error", err)
			s.serveErr <- err
			_ = s.Shutdown(context.Background())
			return 1
		case err := <-s.adminErr: // nil channel without --admin-listen
			cfg.Logger.Error("admin HTTP server failed", "error", err)
			s.adminErr <- err
			_ = s.Shutdown(context.Background())
			return 1
		}
	}
}
