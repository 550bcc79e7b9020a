// Package uploader serves --ack spool: it turns each sealed spool segment into one object per day
// (deterministic key and bytes, so a re-upload after a crash is the same conditional create and
// counts as done), retries with capped backoff until the store takes them, journals the segment's
// event IDs for dedup, and only then deletes the segment. Backend wraps spool and uploader as the
// server's durability backend.
package uploader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/backend"
	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

// DefaultBackoff is the delay policy between attempts of one object (and of a segment that cannot
// be read or removed): during an outage the store sees at most one attempt per 5s, and the backlog
// starts uploading within 5s of its return.
var DefaultBackoff = backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// Options configure an Uploader.
type Options struct {
	Store   storage.Putter
	Spool   *spool.Spool
	Journal *dedup.Journal // nil: uploaded IDs are not journalled
	Metrics *metrics.Archiver
	Logger  *slog.Logger
	Backoff backoff.Policy // zero => DefaultBackoff
	State   *backend.StoreState
}

// Uploader drains sealed spool segments into the store. One goroutine (Run) at a time.
type Uploader struct {
	o   Options
	log *slog.Logger
	w   *backend.Writer

	// stored is the segment whose objects are stored but whose removal failed: it is not
	// uploaded again, only its removal is retried. Spool.Next returns it until it is removed,
	// so there is at most one.
	stored *spool.Segment

	// reused across segments to keep memory flat
	parts []*part
	items []dedup.Item
}

// part is one object of a segment: its day's lines, encoded as they are read.
type part struct {
	day string
	enc layout.ObjectEncoder
	n   int
}

// New returns an uploader.
func New(o Options) *Uploader {
	if o.Backoff == (backoff.Policy{}) {
		o.Backoff = DefaultBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.State == nil {
		o.State = &backend.StoreState{}
	}
	u := &Uploader{o: o, log: o.Logger.With("component", "uploader")}
	u.w = &backend.Writer{Store: o.Store, Metrics: o.Metrics, Log: u.log, Backoff: o.Backoff, State: o.State}
	return u
}

// unreadableAttempts is how often a segment that cannot be read is retried before it is set
// aside (renamed, never deleted), so that one failing file does not stop every upload behind it.
const unreadableAttempts = 5

// Run uploads sealed segments as they appear, oldest first, never skipping one the store refuses.
// It returns nil once the spool is closed and empty, or ctx's error when ctx ends first (what is
// left stays in the spool for the next start).
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
		if seg == u.stored {
			err = u.remove(seg)
		} else {
			err = u.Upload(ctx, seg)
		}
		switch {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			return ctx.Err()
		case seg == u.stored:
			wait := u.o.Backoff.Delay(failures)
			failures++
			u.log.Error("could not remove an uploaded spool segment; its objects are stored, retrying the removal only", "segment", seg.Path, "retry_in", wait.Round(time.Millisecond).String(), "error", err)
			if ctxsleep.Sleep(ctx, wait) != nil {
				return ctx.Err()
			}
		default:
			failures++
			if failures < unreadableAttempts {
				wait := u.o.Backoff.Delay(failures - 1)
				u.log.Error("spool segment cannot be read for upload; retrying", "segment", seg.Path, "attempt", failures, "retry_in", wait.Round(time.Millisecond).String(), "error", err)
				if ctxsleep.Sleep(ctx, wait) != nil {
					return ctx.Err()
				}
				continue
			}
			failures = 0
			dst, qerr := u.o.Spool.Quarantine(seg) // counted by the spool (OnSetAside)
			u.log.Error("spool segment cannot be read; set aside (not deleted) so uploads continue: its events are NOT in the archive, inspect the file",
				"segment", seg.Path, "moved_to", dst, "error", err, "quarantine_error", qerr)
		}
	}
}

func (u *Uploader) remove(seg *spool.Segment) error {
	if err := u.o.Spool.Remove(seg); err != nil {
		u.stored = seg
		return err
	}
	u.stored = nil
	return nil
}

// Upload stores one segment's objects (retrying until success or ctx ends), journals its event
// IDs, and removes it from the spool. Damaged records are set aside by the spool's reader.
func (u *Uploader) Upload(ctx context.Context, seg *spool.Segment) error {
	parts := u.parts[:0]
	u.items = u.items[:0]
	// Each line goes into its day's encoder as the spool reads its record: neither the segment
	// nor a copy of its uncompressed lines is held.
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
			p.day, p.n = rec.Day, 0
			p.enc.Reset(seg.Gzip)
			parts = append(parts, p)
		}
		p.enc.Write(rec.Line)
		p.n++
		u.items = append(u.items, dedup.Item{ID: rec.ID, At: rec.ReceivedAt})
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading spool segment %d for upload: %w", seg.Seq, err)
	}
	// Part numbers follow the order in which days first appear: deterministic for given bytes.
	for i, p := range parts {
		key := layout.ObjectKey(p.day, seg.Instance, seg.Seq, i, seg.Gzip)
		body, err := p.enc.Bytes()
		if err != nil {
			return fmt.Errorf("encoding %s: %w", key, err)
		}
		if _, err := u.w.Put(ctx, key, body, p.n); err != nil {
			return err
		}
	}
	if u.o.Journal != nil {
		if err := u.o.Journal.Append(u.items); err != nil {
			// The events are safely stored; only redelivery detection across a restart suffers.
			u.log.Error("could not journal uploaded event IDs; redeliveries of them after a restart may be stored twice", "segment", seg.Seq, "error", err)
		}
	}
	if err := u.remove(seg); err != nil {
		return err
	}
	// Keep the buffers of the usual one or two objects a segment makes; drop the rest, and any
	// left unusually large by a big segment.
	for i, p := range u.parts {
		if i >= 2 || p.enc.Cap() > maxKeptObject {
			p.enc.Release()
			u.parts[i] = nil
		}
	}
	u.parts = slices.DeleteFunc(u.parts, func(p *part) bool { return p == nil })
	if cap(u.items) > maxKeptItems {
		u.items = nil
	}
	return nil
}

// Bounds on what an uploader keeps between segments.
const (
	maxKeptObject = 16 << 20
	maxKeptItems  = 1 << 16
)
