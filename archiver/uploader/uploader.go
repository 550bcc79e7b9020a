// Package uploader moves events from the archiver into the store. Uploader serves --ack spool: it
// turns each sealed spool segment into one object per day (deterministic key and bytes, so a
// re-upload after a crash overwrites identically), retries until the store takes them, journals
// the segment's event IDs for dedup, and only then deletes the segment. Batcher serves --ack
// store: it groups concurrent events into objects and reports each event durable once its object
// is stored.
package uploader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

// Backoff defaults for retried object writes.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// Options configure an Uploader.
type Options struct {
	Store      storage.Putter
	Spool      *spool.Spool
	Journal    *dedup.Journal // nil: uploaded IDs are not journalled
	Metrics    *metrics.Archiver
	Logger     *slog.Logger
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// UnreadableDelay is the first wait before re-reading a segment that failed to read
	// (default 1s, growing linearly).
	UnreadableDelay time.Duration
}

// Uploader drains sealed spool segments into the store. One goroutine (Run) at a time.
type Uploader struct {
	o   Options
	log *slog.Logger

	// reused across segments to keep memory flat
	parts []*part
	items []dedup.Item
}

type part struct {
	day   string
	lines []byte
	n     int
}

// New returns an uploader.
func New(o Options) *Uploader {
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.UnreadableDelay <= 0 {
		o.UnreadableDelay = time.Second
	}
	return &Uploader{o: o, log: o.Logger.With("component", "uploader")}
}

// unreadableAttempts is how often a segment that cannot be read is retried before it is set
// aside, so that one damaged file does not stop every upload behind it.
const unreadableAttempts = 5

// Run uploads sealed segments as they appear. It returns nil once the spool is closed and empty,
// or ctx's error when ctx ends first (what is left stays in the spool for the next start).
func (u *Uploader) Run(ctx context.Context) error {
	failures := 0
	for {
		seg, err := u.o.Spool.Next(ctx)
		if errors.Is(err, spool.ErrDrained) {
			return nil
		}
		if err != nil {
			return err
		}
		err = u.Upload(ctx, seg)
		switch {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			failures++
			u.o.Metrics.UploadFailures.Inc()
			if failures < unreadableAttempts {
				u.log.Error("spool segment cannot be read for upload; retrying", "segment", seg.Path, "attempt", failures, "error", err)
				if ctxsleep.Sleep(ctx, time.Duration(failures)*u.o.UnreadableDelay) != nil {
					return ctx.Err()
				}
				continue
			}
			failures = 0
			dst, qerr := u.o.Spool.Quarantine(seg)
			u.log.Error("spool segment cannot be read; set aside so uploads continue (its events are NOT in the archive; inspect the file)",
				"segment", seg.Path, "moved_to", dst, "error", err, "quarantine_error", qerr)
		}
	}
}

// Upload stores one segment's objects (retrying until success or ctx ends), journals its event
// IDs, and removes it from the spool.
func (u *Uploader) Upload(ctx context.Context, seg *spool.Segment) error {
	for _, p := range u.parts {
		p.lines, p.n = p.lines[:0], 0
	}
	parts := u.parts[:0]
	u.items = u.items[:0]
	err := u.o.Spool.Read(seg, func(rec spool.Record) error {
		var p *part
		for _, x := range parts { // a segment holds one day, two around midnight
			if x.day == rec.Day {
				p = x
				break
			}
		}
		if p == nil {
			if len(parts) < len(u.parts) {
				p = u.parts[len(parts)]
			} else {
				p = &part{}
				u.parts = append(u.parts, p)
			}
			p.day = rec.Day
			parts = append(parts, p)
		}
		p.lines = append(p.lines, rec.Line...)
		p.n++
		u.items = append(u.items, dedup.Item{ID: rec.ID, At: rec.ReceivedAt})
		return nil
	})
	if err != nil {
		// Unreadable segment (I/O error): leave it in place, it is retried on the next start.
		return fmt.Errorf("reading spool segment %d for upload: %w", seg.Seq, err)
	}
	// Part numbers follow the order in which days first appear: deterministic for given bytes.
	for i, p := range parts {
		key := layout.ObjectKey(p.day, seg.Instance, seg.Seq, i, seg.Gzip)
		body, err := layout.EncodeObject(p.lines, seg.Gzip)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", key, err)
		}
		if err := u.put(ctx, key, body, p.n); err != nil {
			return err
		}
	}
	if u.o.Journal != nil {
		if err := u.o.Journal.Append(u.items); err != nil {
			// The events are safely stored; only redelivery detection across a restart suffers.
			u.log.Error("could not journal uploaded event IDs; redeliveries of them after a restart may be stored twice", "segment", seg.Seq, "error", err)
		}
	}
	if err := u.o.Spool.Remove(seg); err != nil {
		u.log.Error("could not remove an uploaded spool segment; it will be uploaded again (same keys, same bytes)", "segment", seg.Seq, "error", err)
	}
	// Shrink buffers after an unusually large segment.
	for _, p := range u.parts {
		if cap(p.lines) > 64<<20 {
			p.lines = nil
		}
	}
	return nil
}

// put writes one object, retrying with capped exponential backoff and full jitter until the store
// takes it or ctx ends.
func (u *Uploader) put(ctx context.Context, key string, body []byte, events int) error {
	return putRetry(ctx, u.o.Store, u.o.Metrics, u.log, u.o.MinBackoff, u.o.MaxBackoff, key, body, events)
}

func putRetry(ctx context.Context, store storage.Putter, m *metrics.Archiver, log *slog.Logger, minB, maxB time.Duration, key string, body []byte, events int) error {
	backoff := minB
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := store.Put(ctx, key, body, layout.ContentType)
		if err == nil {
			m.UploadSeconds.Observe(time.Since(start).Seconds())
			m.ObjectsStored.Inc()
			m.Stored.Add(uint64(events))
			if attempt > 1 {
				log.Info("archive object stored after retries", "key", key, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("storing %s: %w", key, ctx.Err())
		}
		m.UploadFailures.Inc()
		wait := time.Duration(rand.Int64N(int64(backoff)) + 1)
		log.Warn("storing archive object failed; retrying", "key", key, "attempt", attempt, "retry_in", wait.Round(time.Millisecond).String(), "error", err)
		if ctxsleep.Sleep(ctx, wait) != nil {
			return fmt.Errorf("storing %s: gave up after %d attempts: %w (last error: %w)", key, attempt, ctx.Err(), err)
		}
		backoff = min(2*backoff, maxB)
	}
}
