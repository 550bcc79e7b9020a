// Package backend is the seam between the server and the two ways the archiver makes an event
// durable before answering 200: the local spool drained by the uploader (--ack spool) and the
// store batcher (--ack store). It also holds what both share: writing one archive object with
// capped exponential retries, failure classification and the never-overwrite rule.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

// Backend makes submitted entries durable.
type Backend interface {
	sink.Sink
	// Start begins background work (uploads); it returns at once.
	Start()
	// Health is the backend's part of /readyz.
	Health() Health
	// RegisterGauges adds the backend's gauges to r.
	RegisterGauges(r *metrics.Registry)
	// Shutdown stops accepting, makes what it accepted durable (bounded by ctx) and stops.
	Shutdown(ctx context.Context) error
}

// Health is what /readyz reports of a backend.
type Health struct {
	// Accepting is false when new events cannot be made durable now (spool full, spool disk
	// failing, memory budget exhausted): /readyz answers 503.
	Accepting bool
	// Problems say why Accepting is false.
	Problems []string
	// Degraded, when not empty, says why the store is not taking objects while the backend still
	// accepts (the spool buffers them): /readyz answers 200 with state "degraded".
	Degraded string
	// StoreBound is true when an event is durable only once it is in the store (no local
	// buffer): an unreachable store is then a reason to answer 503, not a degraded state.
	StoreBound bool
}

// StoreState remembers the outcome of the latest object write, for Health.
type StoreState struct {
	mu      sync.Mutex
	kind    string
	err     string
	since   time.Time // first failure of the current run of failures
	last    time.Time // latest failure
	failing bool
}

func (s *StoreState) ok() {
	s.mu.Lock()
	s.failing = false
	s.mu.Unlock()
}

func (s *StoreState) fail(kind string, err error) {
	s.mu.Lock()
	if !s.failing {
		s.since = time.Now()
	}
	s.failing, s.kind, s.err, s.last = true, kind, err.Error(), time.Now()
	s.mu.Unlock()
}

// Problem describes the current store failure, "" when the last write succeeded.
func (s *StoreState) Problem() string {
	p, _ := s.problem()
	return p
}

// RecentProblem is Problem when the latest failed write is less than d old. A backend that only
// writes when events arrive uses it, so that readiness is not lost for good once no traffic comes
// to prove the store works again.
func (s *StoreState) RecentProblem(d time.Duration) string {
	p, last := s.problem()
	if p == "" || time.Since(last) >= d {
		return ""
	}
	return p
}

func (s *StoreState) problem() (string, time.Time) {
	if s == nil {
		return "", time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failing {
		return "", time.Time{}
	}
	last := s.last
	return fmt.Sprintf("the store has refused archive objects since %s (%s): %s",
		s.since.UTC().Format(time.RFC3339), s.kind, s.err), last
}

// Writer writes archive objects: conditional creates retried with capped exponential backoff
// until the store takes them or ctx ends. It never overwrites: an object whose name holds other
// bytes goes under layout.ConflictKey instead.
type Writer struct {
	Store   storage.Putter
	Metrics *metrics.Archiver
	Log     *slog.Logger
	Backoff backoff.Policy
	State   *StoreState // optional
}

// Put stores body under key (or its conflict name) and returns the key used.
func (w *Writer) Put(ctx context.Context, key string, body []byte, events int) (string, error) {
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := w.Store.Put(ctx, key, body, layout.ContentType)
		if errors.Is(err, storage.ErrExists) {
			w.Metrics.ObjectConflicts.Inc()
			w.Metrics.UploadFailures.With(storage.KindConflict).Inc()
			fresh := layout.ConflictKey(key, body)
			w.Log.Error("archive object name already holds different bytes; never overwritten, writing these events under a fresh name",
				"key", key, "fresh_key", fresh, "events", events)
			if fresh == key { // a conflict key clashing again: give up on this name scheme
				return "", fmt.Errorf("storing %s: %w", key, err)
			}
			key = fresh
			err = w.Store.Put(ctx, key, body, layout.ContentType)
		}
		if err == nil {
			w.Metrics.UploadSeconds.Observe(time.Since(start).Seconds())
			w.Metrics.ObjectsStored.Inc()
			w.Metrics.LastUpload.SetToCurrentTime()
			w.Metrics.Stored.Add(uint64(events))
			if w.State != nil {
				w.State.ok()
			}
			if attempt > 0 {
				w.Log.Info("archive object stored after retries", "key", key, "attempts", attempt+1)
			}
			return key, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("storing %s: %w", key, ctx.Err())
		}
		kind, permanent := storage.Classify(err)
		w.Metrics.UploadFailures.With(kind).Inc()
		if w.State != nil {
			w.State.fail(kind, err)
		}
		wait := w.Backoff.Delay(attempt)
		msg := "storing archive object failed; retrying"
		lvl := slog.LevelWarn
		if permanent {
			msg = "storing archive object failed and will keep failing until an operator fixes the store; retrying"
			lvl = slog.LevelError
		}
		w.Log.Log(ctx, lvl, msg, "key", key, "kind", kind, "attempt", attempt+1, "retry_in", wait.Round(time.Millisecond).String(), "error", err)
		if ctxsleep.Sleep(ctx, wait) != nil {
			return "", fmt.Errorf("storing %s: gave up after %d attempts: %w (last error: %w)", key, attempt+1, ctx.Err(), err)
		}
	}
}
