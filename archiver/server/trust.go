package server

import (
	"errors"
	"flag"
	"fmt"
	"net"
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
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "most client connections served at once; more wait to be accepted (stalled clients cannot exhaust memory or file descriptors)")
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

// limitListener serves at most n connections at once: Accept waits for a slot, and a slot is
// freed when its connection is closed.
type limitListener struct {
	net.Listener
	sem  chan struct{}
	open atomic.Int64
	done chan struct{}
	once sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	if n <= 0 {
		n = DefaultMaxConnections
	}
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	l.open.Add(1)
	return &limitConn{Conn: c, l: l}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Open is the number of connections being served.
func (l *limitListener) Open() int64 { return l.open.Load() }

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		<-c.l.sem
	})
	return err
}
