package dedup

import (
	"encoding/binary"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// The default cap fits a 256 MiB container with room to spare: measured bytes per entry (map,
// FIFO and identity count) times DefaultMaxEntries stays under 44 MiB.
//
// Not parallel: it measures the heap.
func TestMemoryAtDefaultCap(t *testing.T) {
	// Filling up to the cap, and a long run past it (evicting the oldest all the time, as a busy
	// archiver does): neither the FIFO of insertion order nor the maps (which never shrink, and
	// grow under delete-and-insert churn) may keep slack beyond the live entries.
	for _, tc := range []struct {
		name    string
		inserts uint32
		limit   int64
	}{
		{"filled to the cap", DefaultMaxEntries, 44 << 20},
		{"five times the cap inserted", 5 * DefaultMaxEntries, 44 << 20},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := New(time.Hour)
		now := time.Unix(1764115200, 0)
		for i := uint32(0); i < tc.inserts; i++ {
			var ident [16]byte
			binary.BigEndian.PutUint32(ident[:4], i*2654435761) // spread like hashes
			binary.BigEndian.PutUint32(ident[4:8], i)
			id := Key(ident, nil)
			if dup, busy, _ := s.TryReserve(id, now); dup || busy {
				t.Fatalf("%s: insert %d: dup %v, busy %v", tc.name, i, dup, busy)
			}
			s.Commit(id, now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("%s: %d entries: %.1f MiB heap, %d bytes per entry", tc.name, s.Len(), float64(used)/(1<<20), used/int64(s.Len()))
		if s.Len() < DefaultMaxEntries*99/100 || s.Len() > s.MaxEntries() || used > tc.limit {
			t.Errorf("%s: %d entries use %.1f MiB; the default cap must stay under %d MiB", tc.name, s.Len(), float64(used)/(1<<20), tc.limit>>20)
		}
		runtime.KeepAlive(s)
	}
}

// Once the entries expire and are swept, the set gives their memory back: a quiet archiver after a
// busy day does not keep a full cap's worth of empty maps.
//
// Not parallel: it measures the heap.
func TestMemoryAfterSweep(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := New(time.Hour)
	now := time.Unix(1764115200, 0)
	for i := uint32(0); i < DefaultMaxEntries; i++ {
		var ident [16]byte
		binary.BigEndian.PutUint32(ident[:4], i*2654435761)
		binary.BigEndian.PutUint32(ident[4:8], i)
		s.Commit(Key(ident, nil), now)
	}
	if n := s.Sweep(now.Add(2 * time.Hour)); n != 0 {
		t.Fatalf("%d entries left after sweeping them all", n)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("after sweeping %d entries: %.1f MiB heap", DefaultMaxEntries, float64(used)/(1<<20))
	if used > 2<<20 {
		t.Errorf("an empty set holds %.1f MiB after a sweep; the maps and FIFO must be rebuilt", float64(used)/(1<<20))
	}
	runtime.KeepAlive(s)
}

// Compacting a journal of many entries streams it: what compaction allocates does not grow with
// the journal (a journal at twice the default cap is 19 MiB of entries). The newest entries of
// the cap are kept, in order.
//
// Not parallel: it measures the heap.
func TestJournalCompactionMemoryIsFlat(t *testing.T) {
	now := time.Unix(1764115200, 0)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "dedup.journal")
	const capN, total = 100_000, 250_000
	j, _, err := OpenJournalLimited(path, time.Hour, capN, clock)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	batch := make([]Item, 0, 10_000)
	for i := uint32(0); i < total; i++ {
		at := now
		if i%10 == 0 {
			at = now.Add(-2 * time.Hour) // expired: dropped by compaction
		}
		batch = append(batch, Item{ID: idN(i, 3), At: at})
		if len(batch) == cap(batch) {
			j.mu.Lock()
			_, err := j.f.Write(encodeItems(batch)) // no compaction on the way
			j.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	j.mu.Lock()
	_, _, err = j.compact(false)
	j.mu.Unlock()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("compacting %d entries (%d live, cap %d) allocated %d KiB", total, total*9/10, capN, alloc>>10)
	if alloc > 1<<20 {
		t.Errorf("compaction allocated %d KiB; it must stream the journal (at most 1 MiB)", alloc>>10)
	}
	if j.Entries() != capN {
		t.Errorf("%d entries after compaction, want the cap %d", j.Entries(), capN)
	}
	j.Close()
	_, items, err := OpenJournalLimited(path, time.Hour, capN, clock)
	if err != nil {
		t.Fatal(err)
	}
	// The newest capN live entries: live ones are those with i%10 != 0, the last is total-1.
	if len(items) != capN || items[len(items)-1].ID != idN(total-1, 3) {
		t.Fatalf("reloaded %d items ending in %x, want %d ending in %x", len(items), items[len(items)-1].ID, capN, idN(total-1, 3))
	}
	for k := 1; k < len(items); k++ {
		a := binary.BigEndian.Uint32(items[k-1].ID[4:8])
		b := binary.BigEndian.Uint32(items[k].ID[4:8])
		if b <= a || b%10 == 0 {
			t.Fatalf("item %d: entry %d after %d: not the live entries in order", k, b, a)
		}
	}
}

func encodeItems(items []Item) []byte {
	var b []byte
	for _, it := range items {
		b = appendEntry(b, it)
	}
	return b
}
