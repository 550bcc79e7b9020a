package compact_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/compact"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
)

// TestCompactMemoryDoesNotGrowWithTheDay: compacting a day holds an index entry per callback, not
// the callbacks: the heap's peak during Compact stays far below the day's uncompressed lines
// (holding them, even once, would exceed the bound).
func TestCompactMemoryDoesNotGrowWithTheDay(t *testing.T) {
	const (
		records = 40_000
		perObj  = 200
	)
	ctx := context.Background()
	st := openStore(t)
	pad := strings.Repeat("p", 1000) // callbacks of about 1 KiB, like real ones with long user_args
	var dayBytes int64
	var lines []byte
	for i := range records {
		body := fmt.Sprintf(`{"stream":"s%06d","user_args":"%s"}`, i, pad)
		inst := []string{"ra", "rb"}[i%2]
		lines = layout.AppendRecord(lines, []byte(body), layout.Archive{ReceivedAt: t0.Add(time.Duration(i) * time.Millisecond), Instance: inst, Signature: "none"})
		if (i+1)%perObj == 0 {
			dayBytes += int64(len(lines))
			obj, err := layout.EncodeObject(lines, true)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Put(ctx, layout.ObjectKey(day, inst, uint64(i/perObj+1), 0, true), obj, layout.ContentType); err != nil {
				t.Fatal(err)
			}
			lines = lines[:0]
		}
	}
	lines = nil

	// Collect garbage eagerly so the sampled heap is close to what Compact keeps alive.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	base := heapBytes()
	var peak uint64
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, heapBytes())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	res, err := compact.Compact(ctx, st, compact.Options{Day: day, FlushBytes: 1 << 20, Gzip: true})
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Kept != records {
		t.Fatalf("kept %d of %d records", res.Kept, records)
	}
	grew := int64(peak) - int64(base)
	t.Logf("day of %d records, %.1f MiB of lines: heap peak %.1f MiB above the start", records, float64(dayBytes)/(1<<20), float64(grew)/(1<<20))
	if limit := dayBytes / 4; grew > limit {
		t.Fatalf("compaction's heap grew by %d bytes for a day of %d bytes of lines (bound %d): it holds the day", grew, dayBytes, limit)
	}
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
