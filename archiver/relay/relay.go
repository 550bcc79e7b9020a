// Package relay passes every archived callback on to the servers that need it (archiver serve
// --forward, --forward-config). It is a consumer of the spool: each destination has one
// goroutine that tails the spool's committed records (woken by each group commit, so a healthy
// destination gets an event within milliseconds of its 200) and a durable cursor (segment,
// offset) under <spool>/relay/<name>/. The spool keeps an uploaded segment until every
// destination, configured or removed but not purged, has passed it. Delivery is at least once:
// the cursor is written a little after the deliveries it covers, so a crash repeats at most those.
// Order is the spool's order, which is the order the instance accepted the events.
//
// Failures: 2xx is delivered; timeouts, connection errors, 408, 429 and 5xx are retried with
// capped, jittered exponential backoff (internal/backoff) that honours Retry-After; other
// statuses, events older than max_age, and (when the spool is nearly full and the archive already
// holds them) the lagging destination's oldest events become dead letters: appended to
// <spool>/relay/<name>/deadletters.jsonl and stored under _deadletter/ (layout.DeadLetterKey).
package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// DefaultBackoff is the delay between attempts of one event: 200ms doubling to 30s, jittered.
var DefaultBackoff = backoff.Policy{Initial: 200 * time.Millisecond, Max: 30 * time.Second}

// DefaultLagDegraded is the lag at which /readyz names a destination as degraded.
const DefaultLagDegraded = 30 * time.Second

// Header names set on every forwarded request.
const (
	HeaderEventID = "X-Livehook-Event-Id"
	HeaderAttempt = "X-Livehook-Attempt"
)

// Dead-letter reasons (the reason label).
const (
	ReasonRejected   = "rejected"   // a status that is not retried (4xx other than 408/429, 3xx)
	ReasonMaxAge     = "max_age"    // older than the destination's max_age
	ReasonSpoolFull  = "spool_full" // the spool needed the room; the event is in the archive
	ReasonUnreadable = "unreadable" // not an archive record
)

// Options configure a Relay.
type Options struct {
	Spool *spool.Spool
	Dir   string // where cursors and local dead letters live (<spool>/relay)
	Store storage.Putter
	// Key returns a domain's current signing key (for resign).
	Key         func(domain string) (string, bool)
	Registry    *metrics.Registry
	Logger      *slog.Logger
	Instance    string
	Backoff     backoff.Policy // zero: DefaultBackoff
	LagDegraded time.Duration  // zero: DefaultLagDegraded
	Now         func() time.Time
	// Purge names removed destinations whose kept queue is dropped at start.
	Purge []string
	// Pressure is the share of the spool budget above which lagging destinations shed their
	// oldest (already archived) events as dead letters; zero: 0.9.
	Pressure float64
}

// Relay forwards spooled events to destinations.
type Relay struct {
	o   Options
	log *slog.Logger
	m   *relayMetrics

	storeBackoff backoff.Policy // between the tries of a dead-letter upload

	mu      sync.Mutex
	workers map[string]*worker
	parked  map[string]*position // removed destinations whose queue is kept
	holds   atomic.Pointer[[]*position]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// position is a destination's durable cursor: the next record is at byte off of segment seq,
// after idx records of it. seq is read by Retains from the spool's lock; the rest belongs to the
// goroutine that owns the position.
type position struct {
	seq atomic.Uint64
	off int64
	idx atomic.Int64
}

// New loads the cursors under o.Dir and starts nothing (see Start).
func New(o Options, dests []Destination) (*Relay, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Backoff == (backoff.Policy{}) {
		o.Backoff = DefaultBackoff
	}
	if o.LagDegraded <= 0 {
		o.LagDegraded = DefaultLagDegraded
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Pressure <= 0 {
		o.Pressure = 0.9
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the relay directory: %w", err)
	}
	r := &Relay{o: o, log: o.Logger.With("component", "relay"), workers: map[string]*worker{}, parked: map[string]*position{},
		storeBackoff: backoff.Policy{Initial: time.Second, Max: 5 * time.Second}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.m = newMetrics(o.Registry, r)
	for _, name := range o.Purge {
		if !ValidName(name) {
			continue
		}
		des, err := os.ReadDir(filepath.Join(o.Dir, name))
		if err != nil {
			continue
		}
		// The cursor and queue state go; the local dead-letter file and pending dead-letter
		// uploads are records, not queue state, and stay.
		purged := false
		for _, de := range des {
			if de.Name() == deadLettersFile || de.Name() == pendingDir {
				continue
			}
			if err := os.RemoveAll(filepath.Join(o.Dir, name, de.Name())); err != nil {
				return nil, fmt.Errorf("--forward-purge %s: %w", name, err)
			}
			purged = true
		}
		_ = os.Remove(filepath.Join(o.Dir, name)) // when empty
		if !purged {
			continue
		}
		r.log.Warn("purged the kept queue of a removed destination; its undelivered events are in the archive (archiver replay)", "destination", name)
	}
	des, err := os.ReadDir(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("reading the relay directory: %w", err)
	}
	for _, de := range des {
		if !de.IsDir() || !nameRE.MatchString(de.Name()) {
			continue
		}
		p, ok, err := loadCursor(r.cursorPath(de.Name()))
		if err != nil {
			return nil, err
		}
		if ok {
			r.parked[de.Name()] = p
		}
	}
	for _, d := range dests {
		if err := r.add(d); err != nil {
			return nil, err
		}
	}
	for name := range r.parked {
		r.log.Warn("a removed destination's queue is kept until it is added back or purged (archiver serve --forward-purge NAME)", "destination", name, "dir", filepath.Join(o.Dir, name))
	}
	r.publishHolds()
	return r, nil
}

// Start runs the destinations' goroutines and the shedding of parked queues.
func (r *Relay) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.workers {
		r.start(w)
	}
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.shedParked() }()
	go func() { defer r.wg.Done(); r.retryPending() }()
}

func (r *Relay) start(w *worker) {
	r.wg.Add(1)
	go func() { defer r.wg.Done(); w.run() }()
}

// add makes a worker for d (mu held or not yet shared), from its kept cursor or at the end.
func (r *Relay) add(d Destination) error {
	w, err := newWorker(r, d)
	if err != nil {
		return err
	}
	if p, ok := r.parked[d.Name]; ok {
		w.pos = p
		delete(r.parked, d.Name)
	} else {
		w.pos = r.endPosition()
		if err := writeCursor(r.cursorPath(d.Name), w.pos); err != nil {
			return err
		}
		r.log.Info("new destination starts with the events accepted from now on (archiver replay backfills older ones)", "destination", d.Name)
	}
	r.workers[d.Name] = w
	return nil
}

// endPosition is the end of what the spool has committed.
func (r *Relay) endPosition() *position {
	p := &position{}
	segs := r.o.Spool.Segments()
	if len(segs) == 0 {
		p.seq.Store(0)
		return p
	}
	last := segs[len(segs)-1]
	if last.Sealed {
		p.seq.Store(last.Seq + 1) // the next segment, from its start
		return p
	}
	p.seq.Store(last.Seq)
	p.off = last.Size
	p.idx.Store(int64(last.Records))
	return p
}

func (r *Relay) publishHolds() {
	var hs []*position
	for _, w := range r.workers {
		hs = append(hs, w.pos)
	}
	for _, p := range r.parked {
		hs = append(hs, p)
	}
	r.holds.Store(&hs)
}

// Retains implements spool.Retainer: some destination has not passed segment seq.
func (r *Relay) Retains(seq uint64) bool {
	hs := r.holds.Load()
	if hs == nil {
		return false
	}
	for _, p := range *hs {
		if p.seq.Load() <= seq {
			return true
		}
	}
	return false
}

// Reload replaces the destinations: changed ones restart from their cursor (one whose new
// configuration cannot be built keeps running with its previous one, and its error is
// returned), removed ones are parked (their queue kept), added ones start at the end (or from
// their parked cursor).
func (r *Relay) Reload(dests []Destination) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := map[string]Destination{}
	for _, d := range dests {
		want[d.Name] = d
	}
	var errs []error
	for name, w := range r.workers {
		d, ok := want[name]
		if !ok {
			w.stop()
			delete(r.workers, name)
			r.parked[name] = w.pos
			r.log.Warn("destination removed; its queue is kept until it is added back or purged (archiver serve --forward-purge NAME)", "destination", name)
			continue
		}
		delete(want, name)
		if equalDest(d, w.d) && bytes.Equal(caSum(d.CAFile), w.ca) {
			continue
		}
		// The replacement is built before the running worker stops: when it cannot be (its
		// ca_file is unreadable or garbage, say mid-rotation), the destination keeps delivering
		// with its previous configuration, and the next reload tries again.
		nw, err := newWorker(r, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w (it keeps its previous configuration)", err))
			continue
		}
		w.stop()
		nw.pos = w.pos
		r.workers[name] = nw
		r.start(nw)
	}
	for _, d := range want {
		if err := r.add(d); err != nil {
			errs = append(errs, err)
			continue
		}
		r.start(r.workers[d.Name])
	}
	r.publishHolds()
	r.o.Spool.ReleaseRetained()
	return errors.Join(errs...)
}

// caSum identifies the bytes of a ca_file (nil: none, or unreadable): a renewed CA under the
// same path rebuilds the destination's client on reload, which the config alone does not show.
func caSum(path string) []byte {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

func equalDest(a, b Destination) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// Settle waits (at most until ctx ends) until every configured destination has passed every
// segment the spool holds: at shutdown, after the spool sealed its last segment, so that a
// healthy destination gets the last events now and the uploaded segments need not be kept.
func (r *Relay) Settle(ctx context.Context) bool {
	for {
		segs := r.o.Spool.Segments()
		done := true
		r.mu.Lock()
		for _, w := range r.workers {
			if len(segs) > 0 && w.pos.seq.Load() <= segs[len(segs)-1].Seq {
				done = false
			}
		}
		r.mu.Unlock()
		if done {
			return true
		}
		if ctxsleep.Sleep(ctx, 20*time.Millisecond) != nil {
			return false
		}
	}
}

// Close stops every destination, writing their cursors.
func (r *Relay) Close() {
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.workers {
		w.persist(true)
	}
}

// Lagging names the destinations whose oldest undelivered event is older than LagDegraded.
func (r *Relay) Lagging() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	now := r.o.Now()
	for name, w := range r.workers {
		if lag := w.lag(now); lag > r.o.LagDegraded {
			out = append(out, fmt.Sprintf("%s (%s behind)", name, lag.Round(time.Second)))
		}
	}
	slices.Sort(out)
	return out
}

// Queue is what one destination has not passed of the spool.
type Queue struct {
	Name   string
	Events int64
	// From and To are the partition days of its oldest and newest queued events ("" when their
	// segment cannot be read): the range archiver replay would send them from.
	From, To string
}

// Queues lists the destinations, removed ones included, with events in the spool they have not
// passed, by name. For after Close: a running destination owns its position.
func (r *Relay) Queues() []Queue {
	segs := r.o.Spool.Segments()
	type at struct {
		seq      uint64
		off, idx int64
	}
	pos := map[string]at{}
	r.mu.Lock()
	for name, w := range r.workers {
		pos[name] = at{w.pos.seq.Load(), w.pos.off, w.pos.idx.Load()}
	}
	for name, p := range r.parked {
		pos[name] = at{p.seq.Load(), p.off, p.idx.Load()}
	}
	r.mu.Unlock()
	var out []Queue
	to, toRead := "", false // the newest queued day: the same for every destination, read once
	for name, p := range pos {
		n := queued(segs, p.seq, p.idx)
		if n == 0 {
			continue
		}
		q := Queue{Name: name, Events: n}
		for _, v := range segs {
			if v.Seq < p.seq {
				continue
			}
			from := int64(0)
			if v.Seq == p.seq {
				from = p.off
			}
			if q.From = segmentDay(v.Path, from, v.Size, true); q.From != "" {
				break
			}
		}
		if !toRead {
			for i := len(segs) - 1; i >= 0 && to == ""; i-- {
				to = segmentDay(segs[i].Path, 0, segs[i].Size, false)
			}
			toRead = true
		}
		q.To = to
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b Queue) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// queued counts the spool's events at or after record idx of segment seq.
func queued(segs []spool.View, seq uint64, idx int64) int64 {
	n := int64(0)
	for _, v := range segs {
		switch {
		case v.Seq > seq:
			n += int64(v.Records)
		case v.Seq == seq:
			n += max(0, int64(v.Records)-idx)
		}
	}
	return n
}

// segmentDay is the partition day of the first (or last) record in bytes from..to of a segment.
func segmentDay(path string, from, to int64, first bool) string {
	day := ""
	errFound := errors.New("found")
	_ = spool.ReadRange(path, from, to, func(rec spool.Record, _ int64) error {
		day = rec.Day
		if first {
			return errFound
		}
		return nil
	})
	return day
}

// underPressure: the spool is near its budget.
func (r *Relay) underPressure() bool {
	sp := r.o.Spool
	return sp.MaxBytes() > 0 && float64(sp.Bytes()) >= r.o.Pressure*float64(sp.MaxBytes())
}

// oldestUploaded reports whether v is the spool's oldest segment and already in the archive:
// the one a lagging destination gives up when the spool needs room.
func oldestUploaded(segs []spool.View, seq uint64) bool {
	return len(segs) > 0 && segs[0].Seq == seq && segs[0].Uploaded
}

// shedParked turns the oldest events of removed destinations into dead letters when the spool
// needs the room (a parked queue must not make the archive refuse callbacks). The file and store
// I/O runs outside r.mu (Lagging for /readyz, the metrics and Reload take it): what it needs is
// copied under the lock, and the new cursor is stored under it again, only if that destination is
// still parked at the same place (Reload may have added it back meanwhile: its worker then owns
// the position, and delivers those events as well, at least once).
//
// As a worker's persist does, the written cursor never passes dead letters that are not in the
// local file: when that write fails, they stay collected and are written again on the next
// passes, and the cursor is written once they are. The position in memory, which holds the
// spool's segments, moves on as soon as they are in the store or a pending upload, though: the
// local write fails most likely because the spool's disk is full, and holding the segments then
// would keep it full and the archive refusing callbacks, while the store already has their full
// lines (the local file only references spool_full ones). Dead letters in neither keep the
// position where it is.
func (r *Relay) shedParked() {
	type job struct {
		name string
		p    *position
		seq  uint64
		off  int64
		dl   *deadLetters
	}
	// unwritten is, by destination, the last job whose dead letters (its own and those of the
	// destination's earlier jobs, which it took over) are not all written yet.
	unwritten := map[string]*job{}
	for {
		if ctxsleep.Sleep(r.ctx, time.Second) != nil {
			return
		}
		if len(unwritten) > 0 {
			for name, j := range unwritten {
				err := j.dl.flush(r.ctx)
				r.passShed(j.name, j.p, j.seq, j.off, len(j.dl.ls) == 0, err == nil)
				if err == nil {
					delete(unwritten, name)
				}
			}
			r.o.Spool.ReleaseRetained()
		}
		if !r.underPressure() {
			continue
		}
		segs := r.o.Spool.Segments()
		if len(segs) == 0 {
			continue
		}
		v := segs[0]
		var jobs []*job
		r.mu.Lock()
		for name, p := range r.parked {
			if j, ok := unwritten[name]; ok && j.p == p && len(j.dl.ls) > 0 {
				continue // in neither the store nor a pending upload: retried above, the position stays
			}
			if p.seq.Load() < v.Seq { // its segment is gone: it is at the oldest one
				p.seq.Store(v.Seq)
				p.off = 0
				p.idx.Store(0)
			}
			if p.seq.Load() == v.Seq && v.Uploaded {
				jobs = append(jobs, &job{name, p, v.Seq, p.off, nil})
			}
		}
		r.mu.Unlock()
		for _, j := range jobs {
			j.dl = newDeadLetters(r, j.name)
			if u, ok := unwritten[j.name]; ok && u.p == j.p {
				j.dl = u.dl // after its local lines not written yet, in order
			}
			_ = spool.ReadRange(v.Path, j.off, v.Size, func(rec spool.Record, _ int64) error {
				j.dl.add(rec, v.Seq, j.off, ReasonSpoolFull, 0, "destination removed and the spool needed the room", 0)
				return nil
			})
			// The events are in the archive (v.Uploaded); the spool needs the room.
			err := j.dl.flush(r.ctx)
			r.passShed(j.name, j.p, j.seq, j.off, len(j.dl.ls) == 0, err == nil)
			if err != nil {
				unwritten[j.name] = j
			} else {
				delete(unwritten, j.name)
			}
		}
		r.o.Spool.ReleaseRetained()
	}
}

// passShed moves a parked position past segment seq, from off of it where its shedding began,
// when stored (its dead letters are in the store or a pending upload) and it is still parked
// there, and writes its cursor when also written (they are in the local file).
func (r *Relay) passShed(name string, p *position, seq uint64, off int64, stored, written bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.parked[name] != p {
		return
	}
	if stored && p.seq.Load() == seq && p.off == off {
		p.seq.Store(seq + 1)
		p.off = 0
		p.idx.Store(0)
	}
	if written && p.seq.Load() > seq {
		if err := writeCursor(r.cursorPath(name), p); err != nil {
			r.log.Error("writing a removed destination's cursor", "destination", name, "error", err)
		}
	}
}

// deadLettersFile is a destination's local dead-letter file, beside its cursor.
const deadLettersFile = "deadletters.jsonl"

func (r *Relay) cursorPath(name string) string { return filepath.Join(r.o.Dir, name, "cursor") }

// loadCursor reads "seq off idx".
func loadCursor(path string) (*position, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading relay cursor: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return nil, false, fmt.Errorf("relay cursor %s is damaged (%q); delete it to start that destination at the newest event", path, strings.TrimSpace(string(b)))
	}
	seq, err1 := strconv.ParseUint(f[0], 10, 64)
	off, err2 := strconv.ParseInt(f[1], 10, 64)
	idx, err3 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || off < 0 || idx < 0 {
		return nil, false, fmt.Errorf("relay cursor %s is damaged (%q); delete it to start that destination at the newest event", path, strings.TrimSpace(string(b)))
	}
	p := &position{off: off}
	p.seq.Store(seq)
	p.idx.Store(idx)
	return p, true, nil
}

func writeCursor(path string, p *position) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing relay cursor: %w", err)
	}
	b := fmt.Appendf(nil, "%d %d %d\n", p.seq.Load(), p.off, p.idx.Load())
	if err := fsutil.WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("writing relay cursor: %w", err)
	}
	return nil
}

// newClient is the HTTP client of one destination: its CA, no redirects (a 3xx is an answer).
func newClient(d Destination) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	if d.CAFile != "" {
		pool, err := loadCA(d.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// snippet is a short, one-line excerpt of a receiver's answer for dead letters and logs. A
// receiver may echo the request: long hex strings (an auth_sign, a key) are masked, so a
// signature never reaches the logs this way.
func snippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 200))
	s := strings.Join(strings.Fields(strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, string(b))), " ")
	return longHex.ReplaceAllString(s, "[masked]")
}

var longHex = regexp.MustCompile(`[0-9a-fA-F]{24,}`)

// deadLetterHead is what every dead letter says: whose, why, and when.
type deadLetterHead struct {
	Destination string    `json:"destination"`
	Reason      string    `json:"reason"`
	Status      int       `json:"status,omitempty"`
	Error       string    `json:"error,omitempty"`
	Attempts    int       `json:"attempts"`
	DeadAt      time.Time `json:"dead_at"`
}

// deadLetter is one line of a dead-letter file or object.
type deadLetter struct {
	deadLetterHead                 // embedded untagged: its fields are the line's own
	Event          json.RawMessage `json:"event"` // the archive line
}

// deadLetterRef is the local line of a spool_full dead letter: that event is in the archive
// (dt=Day/, its event_id) and its full line in the store's dead-letter object, so the local file,
// which lives on the spool's disk outside its byte budget, does not copy the line the spool just
// needed the room of.
type deadLetterRef struct {
	deadLetterHead
	EventID string `json:"event_id"`
	Day     string `json:"day"`
}

// deadLetters collects one destination's dead letters of one segment stretch and writes them
// (locally, fsynced, then to the store) in one go.
type deadLetters struct {
	r     *Relay
	name  string
	day   string
	seq   uint64
	off   int64
	ls    [][]byte // full lines, for the store
	local []byte   // the local file's lines: full ones, or references for spool_full
	n     map[string]int
	// storeAfter: the store and the pending upload both failed while the local write did too;
	// while that still fails, the full lines wait until then for the next round of tries, so
	// that a worker, which flushes at every persist, does not spend each delivery on them. A
	// flush that returns nil has written everything (or dropped the full lines of a failed
	// upload, the local file having them).
	storeAfter time.Time
}

func newDeadLetters(r *Relay, name string) *deadLetters {
	return &deadLetters{r: r, name: name, n: map[string]int{}}
}

func (d *deadLetters) add(rec spool.Record, seq uint64, off int64, reason string, status int, msg string, attempts int) {
	ev := json.RawMessage(strings.TrimSpace(string(rec.Line)))
	if !json.Valid(ev) {
		ev, _ = json.Marshal(string(rec.Line))
	}
	head := deadLetterHead{Destination: d.name, Reason: reason, Status: status, Error: msg, Attempts: attempts, DeadAt: d.r.o.Now().UTC()}
	b, _ := json.Marshal(deadLetter{deadLetterHead: head, Event: ev})
	if len(d.ls) == 0 {
		d.day, d.seq, d.off = rec.Day, seq, off
	}
	b = append(b, '\n')
	d.ls = append(d.ls, b)
	if reason == ReasonSpoolFull {
		b, _ = json.Marshal(deadLetterRef{deadLetterHead: head, EventID: hex.EncodeToString(rec.ID[:]), Day: rec.Day})
		b = append(b, '\n')
	}
	d.local = append(d.local, b...)
	d.n[reason]++
}

// flush writes the collected dead letters: appended and fsynced to the local file (the durable
// record on this host; for spool_full, a reference to the archived event), and one object in the
// store with the full lines (retried a few times, else kept as a pending upload that
// retryPending stores). Each copy is written once. When the local write fails, the store still
// gets them (shedding runs when the spool's disk is nearly full, where the local write is the
// likely one to fail), the local lines stay collected for the next flush, and flush returns the
// error: the cursor must not pass them (persist, shedParked). Lines that reached neither the
// store nor a pending upload stay collected for the store too when the local write failed; when
// it succeeded, the local file is their copy.
func (d *deadLetters) flush(ctx context.Context) error {
	if len(d.ls) == 0 && len(d.local) == 0 {
		return nil
	}
	path := filepath.Join(d.r.o.Dir, d.name, deadLettersFile)
	var localErr error
	if len(d.local) > 0 {
		if localErr = appendSync(path, d.local); localErr != nil {
			d.r.log.Error("writing dead letters locally failed; they stay collected and the cursor stays before them", "destination", d.name, "path", path, "error", localErr)
		} else {
			events := 0
			for reason, n := range d.n {
				d.r.m.dead.WithLabelValues(d.name, reason).Add(float64(n))
				events += n
			}
			d.r.log.Warn("events became dead letters", "destination", d.name, "events", events, "reasons", d.n, "path", path)
			d.local, d.n = d.local[:0], map[string]int{}
		}
	}
	if len(d.ls) > 0 && (localErr == nil || !time.Now().Before(d.storeAfter)) {
		if d.store(ctx, path) || localErr == nil {
			d.ls = d.ls[:0]
		} else {
			d.storeAfter = time.Now().Add(d.r.storeBackoff.Max)
		}
	}
	return localErr
}

// store puts the collected full lines in the store as one object, or else writes them as a
// pending upload; it reports whether either worked (true without a store: there is no copy to
// make).
func (d *deadLetters) store(ctx context.Context, path string) bool {
	if d.r.o.Store == nil {
		return true
	}
	var body []byte
	for _, l := range d.ls {
		body = append(body, l...)
	}
	key := layout.DeadLetterKey(d.day, d.name, d.r.o.Instance, d.seq, d.off)
	var err error
	for i := range 3 {
		if i > 0 {
			_ = ctxsleep.Sleep(ctx, d.r.storeBackoff.Delay(i-1))
		}
		if key, err = putDeadLetters(ctx, d.r.o.Store, d.r.log, d.name, key, body); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err == nil {
		d.r.log.Info("stored dead letters", "destination", d.name, "events", len(d.ls), "key", key)
		return true
	}
	// Kept as a pending upload that retryPending stores later (the local file has them too, but
	// spool_full ones only as references).
	pending := filepath.Join(d.r.o.Dir, d.name, pendingDir, filepath.Base(key))
	perr := writePending(pending, key, body)
	d.r.log.Error("storing dead letters failed; they are kept as a pending upload retried in the background",
		"destination", d.name, "key", key, "path", path, "pending", pending, "error", err, "pending_error", perr)
	return perr == nil
}

// putDeadLetters stores one dead-letter object and returns the name it got.
func putDeadLetters(ctx context.Context, store storage.Putter, log *slog.Logger, name, key string, body []byte) (string, error) {
	err := store.Put(ctx, key, body, "application/x-ndjson")
	if errors.Is(err, storage.ErrExists) {
		// The name holds other bytes (the same events decided again after a crash, at another
		// dead_at): never overwritten, these go under a fresh name, as backend.Writer.Put does.
		// The same bytes are no conflict (Put returns nil).
		fresh := layout.ConflictKey(key, body)
		log.Error("dead-letter object name already holds different bytes; never overwritten, writing these under a fresh name",
			"destination", name, "key", key, "fresh_key", fresh)
		key = fresh
		err = store.Put(ctx, key, body, "application/x-ndjson")
	}
	return key, err
}

// pendingDir holds, per destination, the dead-letter objects whose upload failed: each file is
// the object key, a newline, and the object's bytes.
const pendingDir = "pending"

// pendingBackoff paces the background retries of pending dead-letter uploads.
var pendingBackoff = backoff.Policy{Initial: 10 * time.Second, Max: 5 * time.Minute}

func writePending(path, key string, body []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append([]byte(key+"\n"), body...), 0o600)
}

// retryPending stores the pending dead-letter uploads in the background, with capped backoff
// while the store keeps failing.
func (r *Relay) retryPending() {
	for attempt := 0; ; {
		if ctxsleep.Sleep(r.ctx, pendingBackoff.Delay(attempt)) != nil {
			return
		}
		if r.uploadPending(r.ctx) != nil {
			attempt++
		} else {
			attempt = 0
		}
	}
}

// uploadPending makes one pass over the pending dead-letter uploads of every destination.
func (r *Relay) uploadPending(ctx context.Context) error {
	if r.o.Store == nil {
		return nil
	}
	_, err := StorePending(ctx, r.o.Dir, r.o.Store, r.log)
	if err != nil {
		r.log.Warn("pending dead-letter uploads still fail; retrying later", "error", err)
	}
	return err
}

// PendingUploads is what one pass over a destination's pending dead-letter uploads did.
type PendingUploads struct {
	Name    string
	Stored  int // stored in the archive and removed locally
	Failed  int // kept: reading, storing or removing it failed
	Damaged int // kept: not a pending upload (no _deadletter/ key on its first line)
}

// StorePending makes one pass over the pending dead-letter uploads under dir (a relay's
// directory, <spool>/relay), storing each as the relay does and removing it once stored. It is
// exported for archiver drain, which must not leave them on a spool that is about to go. The
// error joins the failures; a damaged file is logged and counted, not an error.
func StorePending(ctx context.Context, dir string, store storage.Putter, log *slog.Logger) ([]PendingUploads, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*", pendingDir, "*"))
	var out []PendingUploads
	var errs []error
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") { // an atomic write's temporary file
			continue
		}
		name := filepath.Base(filepath.Dir(filepath.Dir(f)))
		if len(out) == 0 || out[len(out)-1].Name != name { // Glob sorts, so by destination
			out = append(out, PendingUploads{Name: name})
		}
		res := &out[len(out)-1]
		b, err := os.ReadFile(f)
		if err != nil {
			res.Failed++
			errs = append(errs, err)
			continue
		}
		key, body, ok := bytes.Cut(b, []byte("\n"))
		if !ok || !strings.HasPrefix(string(key), layout.DeadLetterPrefix) {
			res.Damaged++
			log.Error("a pending dead-letter upload is damaged; left in place", "destination", name, "path", f)
			continue
		}
		stored, err := putDeadLetters(ctx, store, log, name, string(key), body)
		if err != nil {
			res.Failed++
			errs = append(errs, fmt.Errorf("storing %s: %w", f, err))
			continue
		}
		if err := os.Remove(f); err != nil {
			res.Failed++
			errs = append(errs, err)
			continue
		}
		res.Stored++
		log.Info("stored a pending dead-letter upload", "destination", name, "key", stored)
	}
	return out, errors.Join(errs...)
}

// appendSync appends b to path and fsyncs it; a failed append is cut off again.
func appendSync(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		w := bufio.NewWriter(f)
		_, err = w.Write(b)
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			// A partial append (the disk filled up) is cut off, so that the retry's lines do not
			// follow half a line.
			_ = f.Truncate(size)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// parse decodes what delivery needs from an archive line: the body (the line without the archive
// field livehook writes last, or archive.body) and its Content-Type, and the event id; with full,
// also domain and event (filters, resign). The common case (a compact application/json request)
// is a scan for the archive field, a third of readback's strict parse, which takes anything
// unusual, such as archive.content_type or archive.body.
func parse(line []byte, full bool) (readback.Event, error) {
	line = bytes.TrimRight(line, "\n")
	if !full && !bytes.HasPrefix(line, []byte(`{"raw":`)) {
		if i := bytes.LastIndex(line, archiveMark); i > 0 {
			rest := line[i+len(archiveMark):]
			// `,"` never occurs inside a JSON string, so these are members of the archive object.
			asSent := !bytes.Contains(rest, contentTypeMark) && !bytes.Contains(rest, bodyMark)
			if j := bytes.Index(rest, eventIDMark); j >= 0 && asSent {
				id := rest[j+len(eventIDMark):]
				if k := bytes.IndexByte(id, '"'); k == 32 {
					body := make([]byte, i+1)
					copy(body, line[:i])
					body[i] = '}'
					return readback.Event{Body: body, Archive: layout.Archive{EventID: string(id[:k])}}, nil
				}
			}
		}
	}
	return readback.ParseLine(slices.Clone(line))
}

var (
	archiveMark = []byte(`,"archive":{"received_at":"`)
	eventIDMark = []byte(`","event_id":"`)
	// archive members that make the request differ from the rebuilt one
	contentTypeMark = []byte(`,"content_type":`)
	bodyMark        = []byte(`,"body":`)
)
