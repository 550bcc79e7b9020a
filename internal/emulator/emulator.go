// Package emulator is a local stand-in for Huawei Cloud Live as far as livehook needs it:
// the publish-notification management API (AK/SK checked, rate limited, with injectable
// faults) and the stream side that fires PUBLISH / PUBLISH_DONE callbacks to the
// configured URL. Tests, benchmarks and the demo run against it instead of the cloud.
//
// Choices where the real service is undocumented (see spec/live-api.md):
//   - DELETE of a domain without a config answers 204.
//   - A project ID in the path (or an X-Project-Id header) other than Config.ProjectID
//     answers 404 APIGW.0101, never 400 LIVE.100011001, so that a client treating the
//     latter as "already gone" does not silently succeed against the wrong project.
//   - A failed callback is retried with the identical body (same auth_timestamp and
//     auth_sign): it is the same event redelivered.
package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults for the callback sender.
const (
	DefaultCallbackRetries = 3
	DefaultCallbackTimeout = 5 * time.Second
	DefaultCallbackBackoff = 200 * time.Millisecond

	// MaxBodyBytes caps every request body (management and control API); more => 413.
	MaxBodyBytes = 1 << 20
	// MaxSkew is how far X-Sdk-Date may be from the emulator's clock.
	MaxSkew = 15 * time.Minute
	// maxDeliveries bounds the delivery log so long benchmarks do not grow without limit.
	maxDeliveries = 10000
)

// Config configures a Server. ProjectID, AccessKey and SecretKey are required.
type Config struct {
	ProjectID, AccessKey, SecretKey string
	Domains                         []string      // push domains that exist
	StatePath                       string        // optional JSON file: configs + domains survive restart
	RateLimit                       int           // management API requests per minute; 0 = off; over it => 429 (with Retry-After)
	FailRate                        float64       // 0..1, injected 500 LIVE.100011000 on the management API
	Latency                         time.Duration // added delay on the management API
	UsrArgs                         bool          // spell the callback field "usr_args" (seed) instead of "user_args"
	CallbackRetries                 int           // retries of a failed delivery (0 => default 3; <0 => none)
	CallbackTimeout                 time.Duration // per attempt (default 5s)
	CallbackBackoff                 time.Duration // first backoff (default 200ms), doubling
	Logger                          *slog.Logger
	Now                             func() time.Time // optional clock (signature dates, timestamps); rate limiting uses the real clock
}

// Notification is a domain's publish-notification config, as the management API shows it.
type Notification struct {
	URL          string `json:"url"`
	AuthSignKey  string `json:"auth_sign_key"`
	CallBackArea string `json:"call_back_area"`
}

// Stream identifies a push session (and carries its push URL query and client address).
type Stream struct {
	Domain   string `json:"domain"`
	App      string `json:"app"`
	Stream   string `json:"stream"`
	UserArgs string `json:"user_args"`
	ClientIP string `json:"client_ip"`
}

// Server is the emulator. Create it with New; it is an http.Handler, or call Start.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	nodeIP string
	client *http.Client

	mu       sync.Mutex
	domains  map[string]bool
	configs  map[string]Notification
	sessions map[string]*session
	lastTS   map[string]int64 // last publish_timestamp per stream, so sessions never share one
	faults   Faults
	bucket   bucket
	stats    Stats
	dels     []Delivery

	srvMu  sync.Mutex
	srv    *http.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// New validates cfg, loads the state file when there is one, and returns a Server.
func New(cfg Config) (*Server, error) {
	var missing []string
	if cfg.ProjectID == "" {
		missing = append(missing, "ProjectID")
	}
	if cfg.AccessKey == "" {
		missing = append(missing, "AccessKey")
	}
	if cfg.SecretKey == "" {
		missing = append(missing, "SecretKey")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("emulator: %s must be set", strings.Join(missing, ", "))
	}
	if err := validFaults(Faults{FailRate: cfg.FailRate, RateLimit: cfg.RateLimit, Latency: cfg.Latency}); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	switch {
	case cfg.CallbackRetries == 0:
		cfg.CallbackRetries = DefaultCallbackRetries
	case cfg.CallbackRetries < 0:
		cfg.CallbackRetries = 0
	}
	if cfg.CallbackTimeout <= 0 {
		cfg.CallbackTimeout = DefaultCallbackTimeout
	}
	if cfg.CallbackBackoff <= 0 {
		cfg.CallbackBackoff = DefaultCallbackBackoff
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		now:      cfg.Now,
		nodeIP:   randomNodeIP(),
		domains:  map[string]bool{},
		configs:  map[string]Notification{},
		sessions: map[string]*session{},
		lastTS:   map[string]int64{},
		stats:    Stats{ByStatus: map[int]int64{}},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.client = &http.Client{
		Timeout: cfg.CallbackTimeout,
		// The Live service does not follow redirects: a 3xx is a failed delivery.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, d := range cfg.Domains {
		if err := validDomain(d); err != nil {
			return nil, fmt.Errorf("emulator: push domain %q: %w", d, err)
		}
		s.domains[d] = true
	}
	if cfg.StatePath != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
		// Persist at once so domains given on the command line are in the file too.
		if err := s.persistLocked(); err != nil {
			return nil, err
		}
	}
	s.setFaults(Faults{FailRate: cfg.FailRate, RateLimit: cfg.RateLimit, Latency: cfg.Latency})
	return s, nil
}

// Start listens on addr ("127.0.0.1:0" for tests) and serves in the background. It returns
// the base URL, e.g. "http://127.0.0.1:40123".
func (s *Server) Start(addr string) (string, error) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		return "", errors.New("emulator: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("emulator: listen on %s: %w", addr, err)
	}
	base, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("emulator server stopped", "err", err)
		}
	}(s.srv, s.done)
	return "http://" + ln.Addr().String(), nil
}

// Close stops a started server: it waits briefly for requests in flight, then cancels
// them (callback deliveries included). Closing a server that was never started is a no-op.
func (s *Server) Close() error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.cancel()
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	s.srv = nil
	return err
}

// AddDomain makes a push domain exist (idempotent).
func (s *Server) AddDomain(domain string) {
	if _, err := s.addDomain(domain); err != nil {
		s.log.Error("add domain", "domain", domain, "err", err)
	}
}

func (s *Server) addDomain(domain string) (added bool, err error) {
	if err := validDomain(domain); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.domains[domain] {
		return false, nil
	}
	s.domains[domain] = true
	if err := s.persistLocked(); err != nil {
		delete(s.domains, domain)
		return false, err
	}
	s.log.Info("push domain added", "domain", domain)
	return true, nil
}

// Domains lists the push domains that exist, sorted.
func (s *Server) Domains() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.domains))
}

// Config returns a domain's notification config.
func (s *Server) Config(domain string) (Notification, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.configs[domain]
	return n, ok
}

// SetConfig changes a config behind the provider's back (drift). The domain must exist and
// n must pass the same checks as a PUT.
func (s *Server) SetConfig(domain string, n Notification) error {
	if err := validNotification(n); err != nil {
		return err
	}
	_, err := s.putConfig(domain, n)
	return err
}

// DeleteConfig removes a config behind the provider's back (drift). It reports whether one existed.
func (s *Server) DeleteConfig(domain string) bool {
	existed, err := s.deleteConfig(domain)
	if err != nil {
		s.log.Error("delete config", "domain", domain, "err", err)
	}
	return existed
}

// ErrUnknownDomain is returned for a domain that is not a push domain of the emulator.
var ErrUnknownDomain = errors.New("push domain does not exist")

func (s *Server) putConfig(domain string, n Notification) (created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.domains[domain] {
		return false, fmt.Errorf("%w: %q (add it first)", ErrUnknownDomain, domain)
	}
	old, existed := s.configs[domain]
	s.configs[domain] = n
	if err := s.persistLocked(); err != nil {
		if existed {
			s.configs[domain] = old
		} else {
			delete(s.configs, domain)
		}
		return false, err
	}
	return !existed, nil
}

func (s *Server) deleteConfig(domain string) (existed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, existed := s.configs[domain]
	if !existed {
		return false, nil
	}
	delete(s.configs, domain)
	if err := s.persistLocked(); err != nil {
		s.configs[domain] = old
		return false, err
	}
	return true, nil
}

// newRequestID returns 32 random hex characters.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// randomNodeIP picks a node address in 198.51.100.0/24 (TEST-NET-2): plausible, never routable.
func randomNodeIP() string {
	var b [1]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("198.51.100.%d", 1+int(b[0])%254)
}

// readBody reads at most MaxBodyBytes; tooLarge reports a body over the cap.
func readBody(w http.ResponseWriter, r *http.Request) (body []byte, tooLarge bool, err error) {
	if r.Body == nil {
		return nil, false, nil
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, true, err
	}
	return body, false, err
}
