package dedup

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// idN is a key whose identity prefix is n and whose body hash is body.
func idN(n uint32, body byte) ID {
	var id ID
	binary.BigEndian.PutUint32(id[4:8], n)
	id[0] = byte(n) // spread over the shards
	id[15] = body
	return id
}

func TestKeyIsExactAndKeepsIdentity(t *testing.T) {
	t.Parallel()
	ident := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	a, b := Key(ident, []byte(`{"a":1}`)), Key(ident, []byte(`{"a":2}`))
	if a == b {
		t.Fatal("different bodies share a key")
	}
	if a != Key(ident, []byte(`{"a":1}`)) {
		t.Fatal("the same body gives different keys")
	}
	if prefix(a) != prefix(b) || [8]byte(a[:8]) != [8]byte(ident[:8]) {
		t.Fatal("key does not carry the identity prefix")
	}
}

func TestRepeatOfKnownIdentity(t *testing.T) {
	t.Parallel()
	s := New(time.Hour)
	now := time.Unix(1764115200, 0)
	tests := []struct {
		id                ID
		dup, busy, repeat bool
		commit            bool
	}{
		{id: idN(1, 'a'), commit: true},               // first body
		{id: idN(1, 'a'), dup: true},                  // same body: duplicate
		{id: idN(1, 'b'), repeat: true, commit: true}, // another body, same identity: repeat
		{id: idN(1, 'c'), repeat: true},               // pending...
		{id: idN(1, 'c'), busy: true},                 // ...so a racing copy waits
		{id: idN(2, 'a'), commit: true},               // another identity: not a repeat
	}
	for i, tc := range tests {
		dup, busy, repeat := s.TryReserve(tc.id, now)
		if dup != tc.dup || busy != tc.busy || repeat != tc.repeat {
			t.Fatalf("step %d: dup %v busy %v repeat %v, want %v %v %v", i, dup, busy, repeat, tc.dup, tc.busy, tc.repeat)
		}
		if tc.commit {
			s.Commit(tc.id, now)
		}
	}
	// A released reservation no longer counts for its identity.
	s.Release(idN(1, 'c'))
	s.Release(idN(2, 'a')) // committed: not released
	if _, _, repeat := s.TryReserve(idN(2, 'b'), now); !repeat {
		t.Fatal("identity 2 forgotten by a Release of a committed entry")
	}
}

// The memory is capped: past it the oldest entries go first, counted; the newest stay.
func TestCapEvictsOldestFirst(t *testing.T) {
	t.Parallel()
	const max = 64 * 4 // 4 per shard
	s := NewLimited(time.Hour, max)
	evicted := 0
	s.OnEvict = func() { evicted++ }
	now := time.Unix(1764115200, 0)
	const n = 10_000
	for i := uint32(0); i < n; i++ {
		id := idN(i, 0)
		if dup, busy, _ := s.TryReserve(id, now); dup || busy {
			t.Fatalf("new id %d: dup %v busy %v", i, dup, busy)
		}
		s.Commit(id, now)
	}
	if l := s.Len(); l > max {
		t.Fatalf("Len %d over the cap %d", l, max)
	}
	if evicted != n-s.Len() {
		t.Fatalf("evicted %d, want %d", evicted, n-s.Len())
	}
	for i := uint32(n - 64); i < n; i++ { // the newest are still known
		if !s.Seen(idN(i, 0), now) {
			t.Fatalf("newest id %d evicted", i)
		}
	}
	if s.Seen(idN(0, 0), now) {
		t.Fatal("oldest id kept")
	}
	// The FIFO does not grow without bound under reserve/release churn either.
	for i := uint32(0); i < 100_000; i++ {
		s.TryReserve(idN(n+i, 1), now)
		s.Release(idN(n+i, 1))
	}
	total := 0
	for i := range s.shards {
		total += len(s.shards[i].fifo) - s.shards[i].head
	}
	if total > 2*max+64*1024+64 {
		t.Fatalf("FIFO holds %d slots for %d entries", total, s.Len())
	}
	// Pending reservations are never evicted.
	p := NewLimited(time.Hour, 64)
	for i := uint32(0); i < 640; i++ {
		p.TryReserve(idN(i, 0), now)
	}
	for i := uint32(0); i < 640; i++ {
		if _, busy, _ := p.TryReserve(idN(i, 0), now); !busy {
			t.Fatalf("pending reservation %d was evicted", i)
		}
	}
}

// A torn or damaged entry costs only itself: the entries after it are found again.
func TestJournalResyncsAfterDamage(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764115200, 0)
	clock := func() time.Time { return now }
	items := func(from, to uint32) []Item {
		var out []Item
		for i := from; i < to; i++ {
			out = append(out, Item{ID: idN(i, 9), At: now.Add(-time.Minute)})
		}
		return out
	}
	tests := []struct {
		name   string
		damage func(path string)
		want   int
	}{
		{"short write mid-file", func(path string) {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(appendEntry(nil, Item{ID: idN(999, 9), At: now})[:13]) // a torn entry
			f.Close()
		}, 10},
		{"flipped byte in an entry", func(path string) {
			b, _ := os.ReadFile(path)
			b[len(journalMagic)+3*entrySize+10] ^= 0xff // entry 3's key
			os.WriteFile(path, b, 0o600)
		}, 9},
		{"zeroed entry", func(path string) {
			b, _ := os.ReadFile(path)
			clear(b[len(journalMagic)+2*entrySize : len(journalMagic)+3*entrySize])
			os.WriteFile(path, b, 0o600)
		}, 9},
		{"garbage containing a marker", func(path string) {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(append(entryMarker[:], "garbage-garbage-garbage-garbage-garbage"...))
			f.Close()
		}, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "dedup.journal")
			j, _, err := OpenJournal(path, time.Hour, clock)
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Append(items(0, 5)); err != nil {
				t.Fatal(err)
			}
			tc.damage(path)
			// Appended after the damage, by the same open journal (a short write does not stop it).
			if err := j.Append(items(5, 10)); err != nil {
				t.Fatal(err)
			}
			j.Close()
			_, got, err := OpenJournal(path, time.Hour, clock)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want || got[len(got)-1].ID != idN(9, 9) {
				t.Fatalf("read %d entries (last %x), want %d ending with entry 9", len(got), got[len(got)-1].ID, tc.want)
			}
		})
	}
}

// The journal holds at most the cap: a restart never loads more.
func TestJournalBounded(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764115200, 0)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "dedup.journal")
	const max = 100
	j, _, err := OpenJournalLimited(path, time.Hour, max, clock)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint32(0); i < 1000; i++ {
		if err := j.Append([]Item{{ID: idN(i, 1), At: now}}); err != nil {
			t.Fatal(err)
		}
		if j.Entries() >= 2*max {
			t.Fatalf("journal holds %d entries, cap %d", j.Entries(), max)
		}
	}
	j.Close()
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %o, want 0600", st.Mode().Perm())
	}
	_, items, err := OpenJournalLimited(path, time.Hour, max, clock)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != max || items[0].ID != idN(900, 1) || items[max-1].ID != idN(999, 1) {
		t.Fatalf("reloaded %d items, want the newest %d", len(items), max)
	}
}

// A journal written in the earlier markerless format is still read.
func TestJournalLegacyFormat(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764115200, 0)
	path := filepath.Join(t.TempDir(), "dedup.journal")
	var b []byte
	for i := uint32(0); i < 3; i++ {
		e := make([]byte, 0, legacyEntrySize)
		id := idN(i, 2)
		e = append(e, id[:]...)
		e = binary.BigEndian.AppendUint64(e, uint64(now.UnixNano()))
		e = binary.BigEndian.AppendUint32(e, crc32c(e))
		b = append(b, e...)
	}
	os.WriteFile(path, b, 0o600)
	_, items, err := OpenJournal(path, time.Hour, func() time.Time { return now })
	if err != nil || len(items) != 3 {
		t.Fatalf("legacy journal: %d items, %v", len(items), err)
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
