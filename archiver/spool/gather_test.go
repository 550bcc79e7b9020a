package spool

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/sink"
)

// batchSizes records the size of every group commit.
type batchSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (b *batchSizes) onCommit(n int, _ time.Duration) {
	b.mu.Lock()
	b.sizes = append(b.sizes, n)
	b.mu.Unlock()
}

func (b *batchSizes) get() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.sizes...)
}

// Open-loop arrivals (each sender does not wait for the others' answers) keep coming while a
// commit holds the two requests that were in flight: the commit waits for them, up to
// CommitTarget, instead of paying one fdatasync for two. With the window off it commits the two.
func TestCommitExtendsForOpenLoopArrivals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		window time.Duration
		want   []int
	}{
		{"extended", time.Second, []int{10}},
		{"window off", -1, []int{2, 1, 1, 1, 1, 1, 1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			load := &sink.Load{}
			var bs batchSizes
			s := open(t, Options{Dir: t.TempDir(), Instance: "inst", Load: load, OnCommit: bs.onCommit,
				LingerGap: 200 * time.Millisecond, CommitWindow: tc.window, CommitTarget: 10})
			var es []*sink.Entry
			load.Enter()
			load.Enter()
			for i := range 10 {
				if i >= 2 {
					time.Sleep(2 * time.Millisecond) // well within the gap
					load.Enter()
				}
				e := entry(i, "2026-11-26")
				if err := s.Submit(e); err != nil {
					t.Fatal(err)
				}
				es = append(es, e)
				if tc.window < 0 && i >= 1 {
					// Closed loop from here: each arrival waits for its commit, as the
					// lone sender after the first two does.
					if err := <-e.Done; err != nil {
						t.Fatal(err)
					}
					load.Exit()
					if i == 1 {
						if err := <-es[0].Done; err != nil {
							t.Fatal(err)
						}
						load.Exit()
					}
				}
			}
			if tc.window >= 0 {
				for _, e := range es {
					if err := <-e.Done; err != nil {
						t.Fatal(err)
					}
				}
			}
			if got := bs.get(); !slices.Equal(got, tc.want) {
				t.Fatalf("commit sizes %v, want %v", got, tc.want)
			}
		})
	}
}

// Closed-loop senders (each sends again only after its answer) bring nothing while a commit
// waits: after one empty extension, the next sink.ExtendBackoff commits are not extended, so such
// senders pay one LingerGap in that many commits. A lone sender is never extended.
func TestCommitExtensionBacksOffForClosedLoopSenders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		senders int
		maxTry  int
	}{
		{1, 0},
		{4, 12}, // 200 events in 50 to 200 commits: a try, then one per 33 (some bring a sender back in time); without the backoff about one per commit
	} {
		load := &sink.Load{}
		s := open(t, Options{Dir: t.TempDir(), Instance: "inst", Load: load,
			CommitWindow: 50 * time.Millisecond, CommitTarget: 64})
		var wg sync.WaitGroup
		const each = 50
		for g := range tc.senders {
			wg.Go(func() {
				for i := range each {
					load.Enter()
					e := entry(g*each+i, "2026-11-26")
					if err := s.Submit(e); err != nil {
						t.Error(err)
						return
					}
					if err := <-e.Done; err != nil {
						t.Error(err)
					}
					load.Exit()
				}
			})
		}
		wg.Wait()
		if tries := s.extend.Tries(); tries > tc.maxTry {
			t.Errorf("%d closed-loop senders: %d commits were extended, want at most %d", tc.senders, tries, tc.maxTry)
		}
	}
}
