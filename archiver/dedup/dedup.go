// Package dedup remembers which events were archived in the last TTL (24h) so that a redelivered
// callback is answered 200 without being stored again. The set is in memory; its durable part is
// a journal file in the spool directory (ids of uploaded segments) plus the ids still in spool
// segments, both loaded back on start.
package dedup

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/sink"
)

// DefaultTTL is how long an event identity is remembered.
const DefaultTTL = 24 * time.Hour

// ID is a binary event ID (layout.EventID is its hex form).
type ID = [16]byte

// ParseID decodes the 32-hex-digit form of layout.EventID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 32 {
		return id, errors.New("event id must be 32 hex digits")
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, err
	}
	return id, nil
}

// Item is one remembered event.
type Item struct {
	ID ID
	At time.Time // when it was received
}

const (
	shards  = 64
	pending = int64(-1) // reserved, outcome not known yet
)

type shard struct {
	mu sync.Mutex
	m  map[ID]int64 // unix nanos of receipt, or pending
}

// Set is a concurrency-safe set of event IDs with reservations, so that two racing deliveries of
// one event store it once: the first reserves, the second waits for the first's outcome.
type Set struct {
	ttl    time.Duration
	shards [shards]shard
}

// Compile-time check: a Set resolves entries' outcomes.
var _ sink.Resolver = (*Set)(nil)

// New returns an empty set remembering events for ttl (<= 0 means DefaultTTL).
func New(ttl time.Duration) *Set {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	s := &Set{ttl: ttl}
	for i := range s.shards {
		s.shards[i].m = make(map[ID]int64)
	}
	return s
}

func (s *Set) shard(id ID) *shard { return &s.shards[id[0]%shards] }

// pollInterval is how often a delivery racing a pending duplicate checks its outcome. Races are
// rare (a sender retrying before the first attempt was answered), so polling beats a channel per
// reservation on the hot path.
const pollInterval = 2 * time.Millisecond

// Reserve claims id for the caller. dup is true when id was already archived within the TTL; the
// caller must then not store it again. When dup is false the caller owns a reservation and must
// resolve it with Commit or Release (or by passing the set as an Entry's Resolver). If another
// delivery of the same event is in progress, Reserve waits for its outcome (ctx bounds the wait).
func (s *Set) Reserve(ctx context.Context, id ID, now time.Time) (dup bool, err error) {
	var timer *time.Timer
	for {
		if dup, busy := s.TryReserve(id, now); !busy {
			return dup, nil
		}
		if timer == nil {
			timer = time.NewTimer(pollInterval)
			defer timer.Stop()
		} else {
			timer.Reset(pollInterval)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-timer.C:
		}
	}
}

// TryReserve is Reserve without waiting: busy is true (and nothing reserved) when another
// delivery of the same event holds a reservation; the caller then waits with Reserve. It lets the
// hot path skip building a deadline context for the rare race.
func (s *Set) TryReserve(id ID, now time.Time) (dup, busy bool) {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	at, ok := sh.m[id]
	switch {
	case !ok || (at != pending && now.UnixNano()-at > int64(s.ttl)):
		sh.m[id] = pending
		return false, false
	case at != pending:
		return true, false
	}
	return false, true
}

// Commit marks a reserved id as archived at t.
func (s *Set) Commit(id ID, t time.Time) {
	sh := s.shard(id)
	sh.mu.Lock()
	sh.m[id] = t.UnixNano()
	sh.mu.Unlock()
}

// Release drops a reservation whose event was not made durable, so a redelivery stores it.
func (s *Set) Release(id ID) {
	sh := s.shard(id)
	sh.mu.Lock()
	if sh.m[id] == pending {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
}

// Resolve implements sink.Resolver: durable => Commit, failed => Release.
func (s *Set) Resolve(e *sink.Entry, err error) {
	if err == nil {
		s.Commit(e.ID, e.ReceivedAt)
	} else {
		s.Release(e.ID)
	}
}

// Add remembers items (seeding from the journal and the spool on start). Older entries win
// nothing: the latest receipt time is kept.
func (s *Set) Add(items ...Item) {
	for _, it := range items {
		sh := s.shard(it.ID)
		t := it.At.UnixNano()
		sh.mu.Lock()
		if old, ok := sh.m[it.ID]; !ok || (old != pending && old < t) {
			sh.m[it.ID] = t
		}
		sh.mu.Unlock()
	}
}

// Seen reports whether id is archived and still within the TTL at now.
func (s *Set) Seen(id ID, now time.Time) bool {
	sh := s.shard(id)
	sh.mu.Lock()
	at, ok := sh.m[id]
	sh.mu.Unlock()
	return ok && at != pending && now.UnixNano()-at <= int64(s.ttl)
}

// Sweep forgets events received more than the TTL before now and returns how many remain.
func (s *Set) Sweep(now time.Time) int {
	cut := now.UnixNano() - int64(s.ttl)
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for id, at := range sh.m {
			if at != pending && at < cut {
				delete(sh.m, id)
			}
		}
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Len is the number of remembered or reserved events.
func (s *Set) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// RunSweeper sweeps every interval until ctx is done.
func (s *Set) RunSweeper(ctx context.Context, interval time.Duration, now func() time.Time) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Sweep(now())
		}
	}
}
