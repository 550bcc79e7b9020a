// Package dedup remembers which callbacks were archived in the last TTL (24h) so that a
// redelivered callback is answered 200 without being stored again. The set is in memory; its
// durable part is a journal file in the spool directory (keys of uploaded segments) plus the keys
// still in spool segments, both loaded back on start.
//
// A callback is a redelivery only when it is the same callback again, byte for byte after
// compaction: the memory is keyed by the event identity AND a hash of the compacted body (see
// Key). A different body under a known identity (a replay with another auth_timestamp or
// unsigned field, or a genuine event whose identity a replay pre-occupied) is archived too, and
// reported as a repeat so the archive can mark it.
//
// The memory is bounded (MaxEntries): past the cap the oldest entries are forgotten first.
package dedup

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/sink"
)

// DefaultTTL is how long a callback is remembered.
const DefaultTTL = 24 * time.Hour

// DefaultMaxEntries is the default cap of the memory (--dedup-max-entries): about 130 bytes per
// entry (map, eviction order, identity count), so about 38 MiB at the cap, which leaves most of a
// 256 MiB container limit to connections, request buffers and the store batcher. 300k entries
// are 3.5 callbacks per second around the clock for the 24-hour TTL.
const DefaultMaxEntries = 300_000

// ID is a 16-byte dedup key (see Key). sink.Entry.ID carries it through the spool and journal.
type ID = [16]byte

// Key is the dedup key of a callback: the first 8 bytes of its event identity (layout.EventID,
// binary) followed by the first 8 bytes of a hash of the identity and the compacted body. Two callbacks
// share a key only if they are the same callback (to 64 bits, against a body the attacker does
// not know in advance); the identity prefix lets the set tell a repeat of a known event.
func Key(identity [16]byte, compact []byte) ID {
	// sha256(identity || sha256(body)): no allocation, unlike a streaming hash.Hash.
	body := sha256.Sum256(compact)
	var buf [16 + sha256.Size]byte
	copy(buf[:16], identity[:])
	copy(buf[16:], body[:])
	sum := sha256.Sum256(buf[:])
	var k ID
	copy(k[:8], identity[:8])
	copy(k[8:], sum[:8])
	return k
}

// ParseID decodes 32 hex digits.
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

// Item is one remembered callback.
type Item struct {
	ID ID
	At time.Time // when it was received
}

const (
	shards  = 64
	pending = int64(-1) // reserved, outcome not known yet
)

type entry struct {
	at  int64  // unix nanos of receipt, or pending
	seq uint64 // insertion number: tells the entry's own FIFO slot from a stale one
}

type fifoSlot struct {
	id  ID
	seq uint64
}

type shard struct {
	mu      sync.Mutex
	m       map[ID]entry
	ids     map[uint64]uint32 // identity prefix -> entries with it (archived or pending)
	fifo    []fifoSlot        // insertion order, oldest first (from head)
	head    int
	seq     uint64
	removed int // deletions from m since it was last rebuilt
}

// Set is a concurrency-safe, bounded set of dedup keys with reservations, so that two racing
// deliveries of one callback store it once: the first reserves, the second waits for the first's
// outcome.
type Set struct {
	// OnEvict, if set before the set is used, is called (under a lock: keep it cheap) for each
	// entry forgotten because the set was full.
	OnEvict func()

	ttl      time.Duration
	perShard int
	shards   [shards]shard
}

// Compile-time check: a Set resolves entries' outcomes.
var _ sink.Resolver = (*Set)(nil)

// New returns an empty set remembering callbacks for ttl (<= 0 means DefaultTTL), capped at
// DefaultMaxEntries.
func New(ttl time.Duration) *Set { return NewLimited(ttl, DefaultMaxEntries) }

// NewLimited is New with a cap on the number of entries (<= 0 means DefaultMaxEntries). The cap
// is split over the set's shards, so it holds to within one shard's rounding.
func NewLimited(ttl time.Duration, maxEntries int) *Set {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	per := (maxEntries + shards - 1) / shards
	s := &Set{ttl: ttl, perShard: per}
	for i := range s.shards {
		s.shards[i].m = make(map[ID]entry)
		s.shards[i].ids = make(map[uint64]uint32)
	}
	return s
}

// MaxEntries is the effective cap.
func (s *Set) MaxEntries() int { return s.perShard * shards }

func (s *Set) shard(id ID) *shard { return &s.shards[id[0]%shards] }

func prefix(id ID) uint64 { return binary.BigEndian.Uint64(id[:8]) }

// insert adds id (not present) with value at, evicting the oldest entries past the cap.
// The caller holds sh.mu.
func (s *Set) insert(sh *shard, id ID, at int64) {
	sh.seq++
	sh.m[id] = entry{at: at, seq: sh.seq}
	sh.ids[prefix(id)]++
	s.push(sh, fifoSlot{id: id, seq: sh.seq})
	// Evict oldest first; pending reservations are requeued (they are in flight, bounded by the
	// requests being served). Bounded: each slot is looked at most once per call.
	var requeue []fifoSlot
	for n := len(sh.fifo) - sh.head; len(sh.m) > s.perShard && n > 0; n-- {
		slot := sh.fifo[sh.head]
		sh.head++
		e, ok := sh.m[slot.id]
		if !ok || e.seq != slot.seq {
			continue // stale slot: released, swept or re-inserted since
		}
		if e.at == pending {
			requeue = append(requeue, slot)
			continue
		}
		s.remove(sh, slot.id)
		if s.OnEvict != nil {
			s.OnEvict()
		}
	}
	for _, slot := range requeue {
		s.push(sh, slot)
	}
	s.tidy(sh)
	s.maybeRebuild(sh)
}

// maybeRebuild rebuilds a shard's maps once more entries were deleted from them than they hold
// (at the cap: a shard's worth). The caller holds sh.mu.
func (s *Set) maybeRebuild(sh *shard) {
	if sh.removed >= max(len(sh.m), minRebuild) {
		rebuild(sh)
	}
}

// minRebuild is the fewest deletions after which a shard's maps are rebuilt.
const minRebuild = 256

// rebuild copies a shard's maps (and FIFO) into new ones sized for what they hold. A Go map
// never shrinks, and under steady insert-and-evict churn at the cap its deleted slots make it
// grow again and again; rebuilding once more entries were deleted than remain keeps the maps at
// the size of the live entries, at a copy's cost per that many deletions. The caller holds sh.mu.
func rebuild(sh *shard) {
	m := make(map[ID]entry, len(sh.m)+len(sh.m)/8)
	for id, e := range sh.m {
		m[id] = e
	}
	ids := make(map[uint64]uint32, len(sh.ids)+len(sh.ids)/8)
	for p, n := range sh.ids {
		ids[p] = n
	}
	live := sh.fifo[sh.head:]
	fifo := make([]fifoSlot, len(live), len(live)+max(len(live)/4, 64))
	copy(fifo, live)
	sh.m, sh.ids, sh.fifo, sh.head, sh.removed = m, ids, fifo, 0, 0
}

// push appends a FIFO slot. Before the slice would have to grow, consumed and stale slots are
// dropped in place, and the slice grows only when that leaves too little room: its capacity
// stays within about a quarter above the live entries, instead of append's doubling over a slice
// whose head is consumed. The caller holds sh.mu.
func (s *Set) push(sh *shard, slot fifoSlot) {
	if len(sh.fifo) == cap(sh.fifo) {
		s.refilter(sh)
		live := len(sh.fifo)
		if want := live + max(live/4, 64); cap(sh.fifo) < want {
			f := make([]fifoSlot, live, want)
			copy(f, sh.fifo)
			sh.fifo = f
		}
	}
	sh.fifo = append(sh.fifo, slot)
}

// remove deletes id (present). The caller holds sh.mu.
func (s *Set) remove(sh *shard, id ID) {
	delete(sh.m, id)
	sh.removed++
	p := prefix(id)
	if n := sh.ids[p]; n <= 1 {
		delete(sh.ids, p)
	} else {
		sh.ids[p] = n - 1
	}
}

// tidy keeps the FIFO's dead space bounded: consumed slots are reclaimed, and stale slots (left
// by releases and sweeps) are filtered out once they outnumber the live entries.
func (s *Set) tidy(sh *shard) {
	live := len(sh.fifo) - sh.head
	if sh.head > 1024 && sh.head > live {
		sh.fifo = append(sh.fifo[:0], sh.fifo[sh.head:]...)
		sh.head = 0
	}
	if live > 2*len(sh.m)+1024 {
		s.refilter(sh)
	}
}

// refilter drops stale FIFO slots, keeping the order. The caller holds sh.mu.
func (s *Set) refilter(sh *shard) {
	out := sh.fifo[:0]
	for _, slot := range sh.fifo[sh.head:] {
		if e, ok := sh.m[slot.id]; ok && e.seq == slot.seq {
			out = append(out, slot)
		}
	}
	clear(sh.fifo[len(out):])
	sh.fifo, sh.head = out, 0
}

// pollInterval is how often a delivery racing a pending duplicate checks its outcome. Races are
// rare (a sender retrying before the first attempt was answered), so polling beats a channel per
// reservation on the hot path.
const pollInterval = 2 * time.Millisecond

// Reserve claims id for the caller. dup is true when the same callback was already archived
// within the TTL; the caller must then not store it again. When dup is false the caller owns a
// reservation and must resolve it with Commit or Release (or by passing the set as an Entry's
// Resolver); repeat then tells whether another callback with the same event identity is
// remembered (archived or in flight). If another delivery of the same callback is in progress,
// Reserve waits for its outcome (ctx bounds the wait).
func (s *Set) Reserve(ctx context.Context, id ID, now time.Time) (dup, repeat bool, err error) {
	var timer *time.Timer
	for {
		if dup, busy, repeat := s.TryReserve(id, now); !busy {
			return dup, repeat, nil
		}
		if timer == nil {
			timer = time.NewTimer(pollInterval)
			defer timer.Stop()
		} else {
			timer.Reset(pollInterval)
		}
		select {
		case <-ctx.Done():
			return false, false, ctx.Err()
		case <-timer.C:
		}
	}
}

// TryReserve is Reserve without waiting: busy is true (and nothing reserved) when another
// delivery of the same callback holds a reservation; the caller then waits with Reserve. It lets
// the hot path skip building a deadline context for the rare race.
func (s *Set) TryReserve(id ID, now time.Time) (dup, busy, repeat bool) {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[id]
	switch {
	case ok && e.at == pending:
		return false, true, false
	case ok && now.UnixNano()-e.at <= int64(s.ttl):
		return true, false, false
	case ok: // expired, not swept yet: a new reservation
		s.remove(sh, id)
	}
	repeat = sh.ids[prefix(id)] > 0
	s.insert(sh, id, pending)
	return false, false, repeat
}

// Commit marks a reserved id as archived at t.
func (s *Set) Commit(id ID, t time.Time) {
	sh := s.shard(id)
	sh.mu.Lock()
	if e, ok := sh.m[id]; ok {
		e.at = t.UnixNano()
		sh.m[id] = e
	} else {
		s.insert(sh, id, t.UnixNano())
	}
	sh.mu.Unlock()
}

// Release drops a reservation whose callback was not made durable, so a redelivery stores it.
func (s *Set) Release(id ID) {
	sh := s.shard(id)
	sh.mu.Lock()
	if e, ok := sh.m[id]; ok && e.at == pending {
		s.remove(sh, id)
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

// Add remembers items (seeding from the journal and the spool on start). The latest receipt time
// of an id is kept. Past the cap the earliest added go first.
func (s *Set) Add(items ...Item) {
	for _, it := range items {
		sh := s.shard(it.ID)
		t := it.At.UnixNano()
		sh.mu.Lock()
		if old, ok := sh.m[it.ID]; !ok {
			s.insert(sh, it.ID, t)
		} else if old.at != pending && old.at < t {
			old.at = t
			sh.m[it.ID] = old
		}
		sh.mu.Unlock()
	}
}

// Seen reports whether id is archived and still within the TTL at now.
func (s *Set) Seen(id ID, now time.Time) bool {
	sh := s.shard(id)
	sh.mu.Lock()
	e, ok := sh.m[id]
	sh.mu.Unlock()
	return ok && e.at != pending && now.UnixNano()-e.at <= int64(s.ttl)
}

// Sweep forgets callbacks received more than the TTL before now and returns how many remain.
func (s *Set) Sweep(now time.Time) int {
	cut := now.UnixNano() - int64(s.ttl)
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			if e.at != pending && e.at < cut {
				s.remove(sh, id)
			}
		}
		s.refilter(sh)
		s.maybeRebuild(sh)
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Len is the number of remembered or reserved callbacks.
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
