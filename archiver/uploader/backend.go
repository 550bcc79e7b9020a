package uploader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/livehook/terraform-provider-livehook/archiver/backend"
	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// Backend is the --ack spool durability backend: events are acknowledged once fsynced to the
// spool, and the uploader drains sealed segments into the store in the background. It keeps
// accepting while the store fails (the spool exists for this), until the spool is full.
type Backend struct {
	Spool   *spool.Spool
	journal *dedup.Journal
	up      *Uploader
	state   backend.StoreState
	log     *slog.Logger
	maxB    int64

	cancel   context.CancelFunc
	done     chan error
	stopping atomic.Bool
}

var _ backend.Backend = (*Backend)(nil)

// NewBackend wraps an open spool (and its journal, which Shutdown closes) for the server.
func NewBackend(sp *spool.Spool, j *dedup.Journal, store storage.Putter, m *metrics.Archiver, log *slog.Logger, maxBytes int64) *Backend {
	b := &Backend{Spool: sp, journal: j, log: log, maxB: maxBytes}
	b.up = New(Options{Store: store, Spool: sp, Journal: j, Metrics: m, Logger: log, State: &b.state})
	return b
}

// Submit appends to the spool.
func (b *Backend) Submit(e *sink.Entry) error { return b.Spool.Submit(e) }

// Start runs the uploader.
func (b *Backend) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan error, 1)
	go func() { b.done <- b.up.Run(ctx) }()
}

// Health is 503 when the spool cannot take events (full, disk failing, shutting down); degraded
// while the store refuses objects.
func (b *Backend) Health() backend.Health {
	h := backend.Health{Accepting: true, Degraded: b.state.Problem()}
	if b.stopping.Load() {
		h.Accepting = false
		h.Problems = append(h.Problems, "shutting down")
	}
	if b.Spool.Full() {
		h.Accepting = false
		h.Problems = append(h.Problems, fmt.Sprintf("spool holds %d bytes, at its limit (--spool-max-bytes %d); the store is not taking the backlog", b.Spool.Bytes(), b.maxB))
	}
	if err := b.Spool.DiskProblem(); err != nil {
		h.Accepting = false
		h.Problems = append(h.Problems, "spool disk failing: "+err.Error())
	}
	return h
}

// RegisterGauges adds the spool's gauges.
func (b *Backend) RegisterGauges(r *metrics.Registry) {
	const p = "livehook_archiver_"
	r.GaugeFunc(p+"spool_bytes", "Bytes in the local spool (not yet uploaded).", func() float64 { return float64(b.Spool.Bytes()) })
	r.GaugeFunc(p+"spool_segments_pending", "Sealed spool segments waiting for upload.", func() float64 { return float64(b.Spool.Pending()) })
	r.GaugeFunc(p+"spool_max_bytes", "--spool-max-bytes.", func() float64 { return float64(b.maxB) })
}

// Shutdown seals the spool and keeps uploading until it is empty or ctx ends (the rest stays in
// the spool for the next start), then closes the journal and releases the spool's lock.
func (b *Backend) Shutdown(ctx context.Context) error {
	b.stopping.Store(true)
	var errs []error
	if err := b.Spool.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	if b.done != nil {
		select {
		case err := <-b.done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			b.cancel()
			_ = <-b.done // the upload loop's error is moot: the shutdown is already late
			b.log.Warn("shutdown timeout reached with spool segments not yet uploaded; they stay in the spool and are uploaded on the next start",
				"segments", b.Spool.Pending(), "bytes", b.Spool.Bytes())
		}
		b.cancel()
	}
	b.Close()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// Close releases the journal and the spool's lock (after Shutdown, or when start-up fails).
func (b *Backend) Close() {
	if b.journal != nil {
		b.journal.Close()
		b.journal = nil
	}
	_ = b.Spool.Release()
}
