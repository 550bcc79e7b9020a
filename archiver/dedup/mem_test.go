package dedup

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"
)

// The default cap fits a 256 MiB container with room to spare: measured bytes per entry (map,
// FIFO and identity count) times DefaultMaxEntries stays under 48 MiB.
//
// Not parallel: it measures the heap.
func TestMemoryAtDefaultCap(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := New(time.Hour)
	now := time.Unix(1764115200, 0)
	for i := uint32(0); i < DefaultMaxEntries; i++ {
		var ident [16]byte
		binary.BigEndian.PutUint32(ident[:4], i*2654435761) // spread like hashes
		binary.BigEndian.PutUint32(ident[4:8], i)
		s.Commit(Key(ident, nil), now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d entries: %.1f MiB heap, %d bytes per entry", s.Len(), float64(used)/(1<<20), used/int64(s.Len()))
	if s.Len() < DefaultMaxEntries*99/100 || s.Len() > DefaultMaxEntries || used > 48<<20 {
		t.Fatalf("%d entries use %d bytes; the default cap must stay under 48 MiB", s.Len(), used)
	}
	runtime.KeepAlive(s)
}
