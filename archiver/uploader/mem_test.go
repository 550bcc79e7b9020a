package uploader

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
)

// hashStore keeps only a hash of each object, so the heap measured below is the uploader's.
type hashStore struct {
	mu   sync.Mutex
	sums map[string][32]byte
}

func (h *hashStore) Put(_ context.Context, key string, body []byte, _ string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sums[key] = sha256.Sum256(body)
	return nil
}

// Uploading a segment holds neither the segment's bytes nor a copy of its uncompressed lines,
// only the encoded object and the event IDs for the journal: after uploading a 6 MiB segment the
// uploader and spool keep less than a third of it.
//
// Not parallel: it measures the heap.
func TestUploadKeepsNoCopyOfTheLines(t *testing.T) {
	dir := t.TempDir()
	const segBytes = 6 << 20
	sp, err := spool.Open(context.Background(), spool.Options{Dir: dir, Instance: "inst", Gzip: true, FlushBytes: 64 << 20, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Release()
	pad := strings.Repeat("x", 400)
	total := 0
	for i := 0; total < segBytes; {
		var batch []*sink.Entry // one group commit's worth at a time: the queue is bounded
		for ; len(batch) < 2000 && total < segBytes; i++ {
			e := entry(i, "2026-11-26")
			e.ID[2], e.ID[3] = byte(i>>16), byte(i>>24)
			e.Line = fmt.Appendf(nil, "{\"n\":%d,\"pad\":\"%s%d\"}\n", i, pad, i*7919)
			total += len(e.Line)
			if err := sp.Submit(e); err != nil {
				t.Fatal(err)
			}
			batch = append(batch, e)
		}
		for _, e := range batch {
			if err := <-e.Done; err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := &hashStore{sums: map[string][32]byte{}}
	u := New(Options{Store: st, Spool: sp, Metrics: metrics.NewArchiver(nil), Backoff: fast})

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	kept := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("segment of %d KiB of lines: %d KiB kept after the upload", total>>10, kept>>10)
	if len(st.sums) != 1 {
		t.Fatalf("%d objects stored, want 1", len(st.sums))
	}
	if kept > int64(total)/3 {
		t.Errorf("the uploader keeps %d KiB after uploading a %d KiB segment; it must not keep a copy of the lines", kept>>10, total>>10)
	}
	runtime.KeepAlive(u)
	runtime.KeepAlive(sp)
}
