package sessions_test

import (
	"context"
	"flag"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions/sessionstest"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// About 500 callbacks per stream and month: -bench-streams 2000 is a month of ~1M callbacks.
var (
	benchStreams = flag.Int("bench-streams", 200, "streams in the generated month of BenchmarkReadMonth")
	benchArchive = flag.String("bench-archive", "", "directory for BenchmarkReadMonth's archive, kept afterwards (e.g. to time the archiver binary on it); default a temporary one")
)

// BenchmarkReadMonth lists the sessions of a generated month (31 days; copies, quirks and
// sessions across midnight included) from a gzip file store. It reports callbacks read per
// second and the peak Go heap in use while reading (sampled every 20ms), for the default sort
// buffer and for a small one that spills to temporary files.
func BenchmarkReadMonth(b *testing.B) {
	st, dir := fileStore(b)
	if *benchArchive != "" {
		dir = *benchArchive
		var err error
		if st, err = storage.Open(context.Background(), storage.Options{URL: "file://" + dir}); err != nil {
			b.Fatal(err)
		}
	}
	res, err := sessionstest.Write(testCtx(b), st, sessionstest.Spec{From: "2026-11-01", Days: 31, Streams: *benchStreams, Seed: 1, Gzip: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d callbacks in %d objects in %s", res.Records, res.Objects, dir)
	for _, bc := range []struct {
		name  string
		spill int
	}{{"buffer=default", 0}, {"buffer=16k", 1 << 14}} {
		b.Run(bc.name, func(b *testing.B) {
			var records int64
			var peak uint64
			for b.Loop() {
				runtime.GC()
				stop := sampleHeap(&peak)
				stats, err := sessions.Read(testCtx(b), st, sessions.Query{From: "2026-11-01", To: "2026-11-30"},
					sessions.ReadOptions{Options: sessions.Options{SpillAfter: bc.spill, TempDir: b.TempDir()}}, func(sessions.Session) error { return nil })
				stop()
				if err != nil {
					b.Fatal(err)
				}
				records += stats.Records
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "callbacks/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// sampleHeap records the largest HeapInuse until the returned stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for !done.Load() {
			runtime.ReadMemStats(&m)
			*peak = max(*peak, m.HeapInuse)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() { done.Store(true); wg.Wait() }
}
