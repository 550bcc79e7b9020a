package server

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
)

// DefaultMaxConnections is the default --max-connections: far above what the Live service opens,
// far below a container's file-descriptor limit; each idle connection costs a few KiB.
const DefaultMaxConnections = 1024

// errNoKeysNoUnsigned is the one line `archiver serve` prints (exit 2) when it was told neither
// how to verify callbacks nor that it may accept them unverified.
var errNoKeysNoUnsigned = errors.New("refusing to start without --keys FILE or --allow-unsigned: " +
	"--keys FILE verifies callbacks of the push domains listed in FILE with their auth_sign_key and refuses other domains (403); " +
	"--allow-unsigned accepts callbacks without a verified signature (archived as signature \"none\") from anyone who can reach the URL")

// registerTrustFlags adds the flags about who may write into the archive and how much a sender
// may make the archiver hold.
func registerTrustFlags(fs *flag.FlagSet, c *Config) {
	fs.BoolVar(&c.AllowUnsigned, "allow-unsigned", c.AllowUnsigned, "accept callbacks of domains that have no key in --keys (or all callbacks, without --keys) unverified, archived with signature \"none\"")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "most client connections served at once; up to as many more are accepted only to be answered 503 with Retry-After and closed, and more wait to be accepted (stalled clients cannot exhaust memory or file descriptors)")
	fs.IntVar(&c.DedupMaxEntries, "dedup-max-entries", c.DedupMaxEntries, "most callbacks remembered for redelivery detection (about 130 bytes each in memory, 32 in the journal); past it the oldest are forgotten first")
}

// validateTrust checks the trust flags.
func (c *Config) validateTrust() []error {
	var errs []error
	if c.Keys == "" && !c.AllowUnsigned {
		errs = append(errs, errNoKeysNoUnsigned)
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("--max-connections %d must be positive (0: the default %d)", c.MaxConnections, DefaultMaxConnections))
	}
	if c.DedupMaxEntries < 0 {
		errs = append(errs, fmt.Errorf("--dedup-max-entries %d must be positive (0: the default %d)", c.DedupMaxEntries, dedup.DefaultMaxEntries))
	}
	return errs
}

// newDedup is the redelivery memory, capped at --dedup-max-entries, its evictions counted.
func (s *Server) newDedup() *dedup.Set {
	d := dedup.NewLimited(dedup.DefaultTTL, s.cfg.DedupMaxEntries)
	evicted := s.metrics.Registry.Counter("livehook_archiver_dedup_evicted_total",
		"Callbacks forgotten by redelivery detection before their 24h because --dedup-max-entries was reached.")
	d.OnEvict = func() { evicted.Inc() }
	return d
}

// openJournal opens the redelivery journal with the same cap as the memory.
func (s *Server) openJournal(path string) (*dedup.Journal, []dedup.Item, error) {
	return dedup.OpenJournalLimited(path, dedup.DefaultTTL, s.cfg.DedupMaxEntries, s.cfg.Now)
}

// limitListener serves at most n connections at once. A connection arriving when all n slots are
// taken gets the slot of an idle keep-alive connection, which is closed (a client opens a new one
// when it needs it; HTTP clients retry a request on a kept-alive connection the server closed):
// idle connections must not keep a sender's new ones waiting. When none is idle, up to n more are
// accepted only to answer their requests 503 (Retry-After, Connection: close) at once: left in the
// kernel's accept queue, they would wait until the sender gave up, and Live retries a delivery that
// got no answer. Past 2n, Accept waits for a slot. A slot is freed when its connection is closed.
type limitListener struct {
	net.Listener
	sem      chan struct{}
	overflow chan struct{}
	open     atomic.Int64
	over     atomic.Int64
	onEvict  func() // counts evictions (metrics); nil: not counted
	done     chan struct{}
	once     sync.Once

	connMu sync.Mutex
	conns  map[*limitConn]struct{} // the connections in slots (per connection, not per request)
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	if n <= 0 {
		n = DefaultMaxConnections
	}
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), overflow: make(chan struct{}, n),
		done: make(chan struct{}), conns: make(map[*limitConn]struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	over := false
	select {
	case l.sem <- struct{}{}:
	default:
		l.evictIdle() // frees a slot at once when a connection was idle
		select {
		case l.sem <- struct{}{}:
		case l.overflow <- struct{}{}:
			over = true
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
	lc := &limitConn{Conn: c, l: l, over: over}
	if over {
		l.over.Add(1)
	} else {
		l.open.Add(1)
		l.connMu.Lock()
		l.conns[lc] = struct{}{}
		l.connMu.Unlock()
	}
	return lc, nil
}

// evictIdle closes one idle kept-alive connection, if any. It scans the slots (at most
// --max-connections), which happens only when they are all taken.
func (l *limitListener) evictIdle() {
	l.connMu.Lock()
	var victim *limitConn
	for c := range l.conns {
		if c.idle.Load() {
			victim = c
			break
		}
	}
	l.connMu.Unlock()
	if victim != nil {
		if l.onEvict != nil {
			l.onEvict()
		}
		victim.Close()
	}
}

// connState (http.Server.ConnState) marks the connections idle between requests: one atomic store
// per state change, nothing shared on the request path.
func (l *limitListener) connState(c net.Conn, st http.ConnState) {
	if lc := asLimitConn(c); lc != nil {
		lc.idle.Store(st == http.StateIdle)
	}
}

func asLimitConn(c net.Conn) *limitConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, _ := c.(*limitConn)
	return lc
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Open is the number of connections being served.
func (l *limitListener) Open() int64 { return l.open.Load() }

// Over is the number of connections past the limit, being refused.
func (l *limitListener) Over() int64 { return l.over.Load() }

type limitConn struct {
	net.Conn
	l    *limitListener
	over bool        // past --max-connections: every request is answered 503 and the connection closed
	idle atomic.Bool // between requests of a kept-alive connection (http.StateIdle)
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.over {
			c.l.over.Add(-1)
			<-c.l.overflow
			return
		}
		c.l.connMu.Lock()
		delete(c.l.conns, c)
		c.l.connMu.Unlock()
		c.l.open.Add(-1)
		<-c.l.sem
	})
	return err
}

type overLimitKey struct{}

// connContext marks the requests of a connection accepted past --max-connections.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc := asLimitConn(c); lc != nil && lc.over {
		return context.WithValue(ctx, overLimitKey{}, true)
	}
	return ctx
}

// overLimit reports whether r came on a connection past --max-connections.
func overLimit(r *http.Request) bool {
	v, _ := r.Context().Value(overLimitKey{}).(bool)
	return v
}
