// Package batcher is the --ack store durability backend: group commit to the object store. It
// groups concurrent events into objects and reports each event durable once its object is stored.
package batcher

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/backend"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
)

// Defaults.
const (
	// DefaultMaxPending is the memory budget of events waiting for their object (--store-max-pending).
	// Each pending byte costs about twice (the lines and the encoded object), which leaves a
	// 256 MiB container room for request buffers and the redelivery memory.
	DefaultMaxPending = 48 << 20
	DefaultTimeout    = 10 * time.Second
)

// maxInFlight is how many Puts run while the next batch gathers: with one, events gather into
// fewer, larger objects while a Put runs, which costs the store less than parallel small ones.
const maxInFlight = 1

// retry is the backoff between attempts of one object, bounded in all by Options.Timeout.
var retry = backoff.Policy{Initial: 20 * time.Millisecond, Max: time.Second}

// Options configure --ack store.
type Options struct {
	Store    storage.Putter
	Instance string // the key instance, unique per process (layout.ProcessInstance)
	Gzip     bool
	// FlushInterval caps how long an event waits in memory before its object's Put starts. It is
	// reached only while maxInFlight Puts are already running: an idle store gets a Put at once.
	FlushInterval time.Duration
	FlushBytes    int64 // a batch this large is put at once
	MaxPending    int64 // buffered bytes beyond which Submit answers sink.ErrFull
	// Timeout bounds the retries of one object (the request deadline is the intake's).
	Timeout time.Duration
	Metrics *metrics.Archiver
	Logger  *slog.Logger
	// Load is intake's count of requests in flight. With it, a Put starts no sooner than
	// CommitWindow after the previous one started while other requests are in flight or, once
	// every request in flight is in the batch, unless the last such wait gained nothing
	// (sink.Extender); a batch of CommitTarget events starts at once: larger objects, fewer Puts
	// per event. A lone sender never waits. CommitWindow <= 0: off.
	Load         *sink.Load
	CommitWindow time.Duration
	CommitTarget int
}

type batch struct {
	day     string
	seq     uint64
	lines   []byte
	entries []*sink.Entry
	created time.Time
}

// Batcher is the --ack store backend: group commit to the object store. An event's 200 waits
// for the Put of the object holding it. When no Put is running, a new event's object is put at
// once (latency: one Put). While maxInFlight Puts run, events gather into the next object, which
// is put as soon as one finishes (latency: up to two Puts) or, if Puts are slower than
// FlushInterval, after FlushInterval. So --flush-interval only caps the wait behind a slow store;
// with a healthy store latency is one to two Put round trips, whatever the interval, plus up to
// CommitWindow under concurrent load (Options.Load), which spaces Puts so that each carries more.
type Batcher struct {
	o     Options
	log   *slog.Logger
	w     *backend.Writer
	state backend.StoreState
	ctx   context.Context // cancelled by Abort

	abort context.CancelFunc

	mu           sync.Mutex
	pending      []*batch // at most one per day, oldest first
	inFlight     int
	pendingBytes int64
	seq          uint64
	closed       bool
	timer        *time.Timer
	wg           sync.WaitGroup

	lastStart time.Time   // when the last Put started
	window    *time.Timer // starts the held batches when heldUntil comes (onWindow)
	heldUntil time.Time   // zero: nothing held
	heldFrom  int         // pending events when holding became an extension (all in flight were in); 0: not extending
	extend    sink.Extender
}

// Compile-time check: the batcher is a durability backend.
var _ backend.Backend = (*Batcher)(nil)

// New returns a batcher.
func New(o Options) *Batcher {
	if o.FlushInterval <= 0 {
		o.FlushInterval = spool.DefaultFlushInterval
	}
	if o.FlushBytes <= 0 {
		o.FlushBytes = spool.DefaultFlushBytes
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Batcher{o: o, log: o.Logger.With("component", "batcher"), ctx: ctx, abort: cancel}
	b.w = &backend.Writer{Store: o.Store, Metrics: o.Metrics, Log: b.log, Backoff: retry, State: &b.state}
	b.timer = time.AfterFunc(time.Hour, b.onTimer)
	b.timer.Stop()
	b.window = time.AfterFunc(time.Hour, b.onWindow)
	b.window.Stop()
	if b.o.CommitTarget <= 0 {
		b.o.CommitTarget = spool.DefaultCommitTarget
	}
	return b
}

// Submit adds e to the pending batch of its day; the batch is put at once if the store has a free
// slot, else when a running Put finishes, or at the latest after FlushInterval.
func (b *Batcher) Submit(e *sink.Entry) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return sink.ErrClosed
	}
	if b.pendingBytes+int64(len(e.Line)) > b.o.MaxPending {
		return sink.ErrFull
	}
	var bt *batch
	for _, x := range b.pending {
		if x.day == e.Day {
			bt = x
			break
		}
	}
	if bt == nil {
		bt = &batch{day: e.Day, created: time.Now()}
		b.pending = append(b.pending, bt)
		if len(b.pending) == 1 {
			b.timer.Reset(b.o.FlushInterval)
		}
	}
	bt.lines = append(bt.lines, e.Line...)
	bt.entries = append(bt.entries, e)
	b.pendingBytes += int64(len(e.Line))
	switch {
	case int64(len(bt.lines)) >= b.o.FlushBytes:
		b.startLocked(bt)
	case b.inFlight < maxInFlight && !b.holdLocked(bt):
		b.startLocked(bt)
	}
	return nil
}

// holdLocked reports whether bt, which could start now, should wait for more events first, and
// arms the window that starts it if so. See Options.Load.
func (b *Batcher) holdLocked(bt *batch) bool {
	if b.o.Load == nil || b.o.CommitWindow <= 0 || b.closed || len(bt.entries) >= b.o.CommitTarget {
		return false
	}
	until := b.lastStart.Add(b.o.CommitWindow)
	wait := time.Until(until)
	if wait <= 0 {
		return false
	}
	if b.o.Load.Active() <= b.pendingEventsLocked() { // every request in flight is in a batch
		if len(bt.entries) < 2 {
			return false // a lone sender
		}
		if b.heldFrom == 0 {
			if !b.extend.Try() {
				return false
			}
			b.heldFrom = b.pendingEventsLocked()
		}
	}
	if b.heldUntil.IsZero() {
		b.heldUntil = until
		b.window.Reset(wait)
	}
	return true
}

// unholdLocked ends a hold: its batches start now.
func (b *Batcher) unholdLocked() {
	if !b.heldUntil.IsZero() {
		b.window.Stop()
	}
	b.heldUntil, b.heldFrom = time.Time{}, 0
}

func (b *Batcher) pendingEventsLocked() int {
	n := 0
	for _, x := range b.pending {
		n += len(x.entries)
	}
	return n
}

// onWindow starts the held batches once their window ends.
func (b *Batcher) onWindow() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.heldUntil.IsZero() || time.Now().Before(b.heldUntil) {
		return // a callback of a window that ended or was re-armed since: its own timer is due later
	}
	if b.heldFrom > 0 {
		b.extend.Done(b.pendingEventsLocked() > b.heldFrom)
	}
	b.unholdLocked()
	for len(b.pending) > 0 && b.inFlight < maxInFlight {
		b.startLocked(b.pending[0])
	}
}

// startLocked removes bt from pending and puts it in the background.
func (b *Batcher) startLocked(bt *batch) {
	for i, x := range b.pending {
		if x == bt {
			b.pending = append(b.pending[:i], b.pending[i+1:]...)
			break
		}
	}
	if len(b.pending) == 0 {
		b.timer.Stop()
	}
	b.unholdLocked()
	b.lastStart = time.Now()
	b.seq++
	bt.seq = b.seq
	b.inFlight++
	b.wg.Add(1)
	go b.put(bt)
}

func (b *Batcher) put(bt *batch) {
	defer b.wg.Done()
	key := layout.ObjectKey(bt.day, b.o.Instance, bt.seq, 0, b.o.Gzip)
	body, err := layout.EncodeObject(bt.lines, b.o.Gzip)
	if err == nil {
		ctx, cancel := context.WithTimeout(b.ctx, b.o.Timeout)
		_, err = b.w.Put(ctx, key, body, len(bt.entries))
		cancel()
	}
	if err != nil {
		err = fmt.Errorf("the archive store did not take the event within %s: %w", b.o.Timeout, err)
		b.log.Error("archive object not stored; its events were answered 503", "key", key, "events", len(bt.entries), "error", err)
	}
	for _, e := range bt.entries {
		e.Finish(err)
	}
	b.mu.Lock()
	b.inFlight--
	b.pendingBytes -= int64(len(bt.lines))
	// Group commit: whatever gathered while this Put ran goes next.
	for len(b.pending) > 0 && b.inFlight < maxInFlight && !b.holdLocked(b.pending[0]) {
		b.startLocked(b.pending[0])
	}
	b.mu.Unlock()
}

// onTimer puts batches that waited FlushInterval even when maxInFlight Puts are running.
func (b *Batcher) onTimer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	for len(b.pending) > 0 {
		bt := b.pending[0]
		if wait := b.o.FlushInterval - now.Sub(bt.created); wait > 0 {
			b.timer.Reset(wait)
			return
		}
		b.startLocked(bt)
	}
}

// Start is a no-op: the batcher works as events arrive.
func (b *Batcher) Start() {}

// Health follows the budget, which decides whether events are accepted; a failing store means they cannot be
// made durable (store mode has nowhere else to keep them).
func (b *Batcher) Health() backend.Health {
	b.mu.Lock()
	pending, closed := b.pendingBytes, b.closed
	b.mu.Unlock()
	h := backend.Health{Accepting: true, StoreBound: true}
	if closed {
		h.Accepting = false
		h.Problems = append(h.Problems, "shutting down")
	}
	if pending >= b.o.MaxPending {
		h.Accepting = false
		h.Problems = append(h.Problems, fmt.Sprintf("%d bytes of events wait for the store, at --store-max-pending", pending))
	}
	// A recent failure means events cannot be made durable now; an older one, with no write
	// since, is only reported (the next event tests the store again).
	if p := b.state.RecentProblem(b.o.Timeout); p != "" {
		h.Accepting = false
		h.Problems = append(h.Problems, p)
	} else {
		h.Degraded = b.state.Problem()
	}
	return h
}

// RegisterGauges adds the pending bytes.
func (b *Batcher) RegisterGauges(r *metrics.Registry) {
	r.GaugeFunc("livehook_archiver_store_pending_bytes", "Bytes of events in memory waiting for their object (--ack store).", func() float64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		return float64(b.pendingBytes)
	})
	r.GaugeFunc("livehook_archiver_store_max_pending_bytes", "--store-max-pending.", func() float64 { return float64(b.o.MaxPending) })
}

// Shutdown is Close.
func (b *Batcher) Shutdown(ctx context.Context) error { return b.Close(ctx) }

// Close stops accepting, puts every pending batch and waits for all Puts (bounded by ctx; then
// the remaining Puts are abandoned and their events answered 503).
func (b *Batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	for len(b.pending) > 0 {
		b.startLocked(b.pending[0])
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		b.abort()
		<-done
		return fmt.Errorf("flushing pending archive objects: %w", ctx.Err())
	}
}
