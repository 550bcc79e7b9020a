package dedup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/sink"
)

func TestReserveCommitRelease(t *testing.T) {
	t.Parallel()
	s := New(time.Hour)
	now := time.Unix(1764115200, 0)
	ctx := context.Background()
	a, b := ID{1}, ID{2}
	if dup, _, _ := s.Reserve(ctx, a, now); dup {
		t.Fatal("first delivery reported duplicate")
	}
	s.Commit(a, now)
	if dup, _, _ := s.Reserve(ctx, a, now.Add(time.Minute)); !dup {
		t.Fatal("redelivery not reported duplicate")
	}
	if dup, _, _ := s.Reserve(ctx, a, now.Add(2*time.Hour)); dup {
		t.Fatal("delivery after the TTL reported duplicate")
	}
	s.Release(a) // pending again after the TTL-expired reserve: released
	if dup, _, _ := s.Reserve(ctx, b, now); dup {
		t.Fatal("b duplicate")
	}
	s.Release(b)
	if dup, _, _ := s.Reserve(ctx, b, now); dup {
		t.Fatal("released event reported duplicate")
	}
	// A racing delivery waits for the pending one and times out when it never resolves.
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := s.Reserve(tctx, b, now); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reserve on a pending id: %v, want deadline", err)
	}
}

func TestConcurrentDuplicatesStoredOnce(t *testing.T) {
	t.Parallel()
	s := New(time.Hour)
	now := time.Now()
	var stored, dups atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dup, _, err := s.Reserve(context.Background(), ID{7}, now)
			if err != nil {
				t.Error(err)
				return
			}
			if dup {
				dups.Add(1)
				return
			}
			stored.Add(1)
			time.Sleep(5 * time.Millisecond) // the durable write
			s.Resolve(&sink.Entry{ID: ID{7}, ReceivedAt: now}, nil)
		}()
	}
	wg.Wait()
	if stored.Load() != 1 || dups.Load() != 49 {
		t.Fatalf("stored %d, duplicates %d; want 1 and 49", stored.Load(), dups.Load())
	}
}

func TestJournal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "dedup.journal")
	now := time.Unix(1764115200, 0)
	clock := func() time.Time { return now }
	j, items, err := OpenJournal(path, time.Hour, clock)
	if err != nil || len(items) != 0 {
		t.Fatalf("open: %v, %d items", err, len(items))
	}
	old := Item{ID: ID{1}, At: now.Add(-2 * time.Hour)}
	live := []Item{{ID: ID{2}, At: now.Add(-time.Minute)}, {ID: ID{3}, At: now}}
	if err := j.Append(append([]Item{old}, live...)); err != nil {
		t.Fatal(err)
	}
	j.Close()
	// Torn tail: half an entry.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(make([]byte, entrySize/2))
	f.Close()
	j2, items, err := OpenJournal(path, time.Hour, clock)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if len(items) != 2 || items[0].ID != live[0].ID || items[1].ID != live[1].ID || !items[1].At.Equal(now) {
		t.Fatalf("reopened items %+v, want the 2 live ones", items)
	}
	if st, _ := os.Stat(path); st.Size() != int64(len(journalMagic))+2*entrySize {
		t.Fatalf("compacted journal is %d bytes, want %d", st.Size(), len(journalMagic)+2*entrySize)
	}
	s := New(time.Hour)
	s.Add(items...)
	if !s.Seen(ID{3}, now) || s.Seen(ID{1}, now) {
		t.Fatal("seeded set wrong")
	}
	if n := s.Sweep(now.Add(time.Hour - 30*time.Second)); n != 1 {
		t.Fatalf("sweep kept %d, want 1", n)
	}
}

func TestTryReserve(t *testing.T) {
	t.Parallel()
	s := New(time.Hour)
	now := time.Unix(1764115200, 0)
	id := ID{9}
	if dup, busy, _ := s.TryReserve(id, now); dup || busy {
		t.Fatalf("first TryReserve = dup %v busy %v, want a reservation", dup, busy)
	}
	if dup, busy, _ := s.TryReserve(id, now); dup || !busy {
		t.Fatalf("TryReserve of a pending id = dup %v busy %v, want busy", dup, busy)
	}
	s.Commit(id, now)
	if dup, busy, _ := s.TryReserve(id, now.Add(time.Minute)); !dup || busy {
		t.Fatalf("TryReserve of an archived id = dup %v busy %v, want dup", dup, busy)
	}
	if dup, busy, _ := s.TryReserve(id, now.Add(2*time.Hour)); dup || busy {
		t.Fatalf("TryReserve after the TTL = dup %v busy %v, want a new reservation", dup, busy)
	}
}
