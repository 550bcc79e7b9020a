package batcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

func entry(i int, day string) *sink.Entry {
	e := sink.NewEntry()
	e.ID[0], e.ID[1] = byte(i), byte(i>>8)
	e.Day, e.ReceivedAt = day, time.Unix(1764115200+int64(i), 0)
	e.Line = fmt.Appendf(nil, "{\"n\":%d}\n", i)
	return e
}

func TestBatcherGroupCommit(t *testing.T) {
	t.Parallel()
	st := archivetest.NewMemStore()
	st.Gate = make(chan struct{})
	b := New(Options{Store: st, Instance: "i", FlushInterval: time.Hour, Metrics: metrics.NewArchiver(nil)})
	first := entry(0, "2026-11-26")
	if err := b.Submit(first); err != nil {
		t.Fatal(err)
	}
	<-st.Began // the store was idle: the first event's Put starts at once
	var rest []*sink.Entry
	for i := 1; i <= 10; i++ { // these gather while that Put runs
		e := entry(i, "2026-11-26")
		rest = append(rest, e)
		if err := b.Submit(e); err != nil {
			t.Fatal(err)
		}
	}
	close(st.Gate)
	for _, e := range append(rest, first) {
		if err := <-e.Done; err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st.Puts() != 2 {
		t.Fatalf("%d Puts for 11 events, want 2 (one while idle, one for what gathered)", st.Puts())
	}
	if err := b.Submit(entry(99, "2026-11-26")); !errors.Is(err, sink.ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
}

func TestBatcherFailureAnswersEveryEvent(t *testing.T) {
	t.Parallel()
	st := archivetest.NewMemStore()
	st.Fail = 1 << 30
	b := New(Options{Store: st, Instance: "i", Timeout: 100 * time.Millisecond, Metrics: metrics.NewArchiver(nil)})
	e := entry(1, "2026-11-26")
	b.Submit(e)
	if err := <-e.Done; err == nil || !strings.Contains(err.Error(), "did not take the event") {
		t.Fatalf("outcome %v, want a store error", err)
	}
	if st.Puts() < 2 {
		t.Errorf("%d attempts, want retries within the timeout", st.Puts())
	}
}

// TestBatcherMemoryBudget: past MaxPending, Submit answers sink.ErrFull (intake's 503 with
// Retry-After) and Health says it is not accepting; room returns once the store takes the batch.
func TestBatcherMemoryBudget(t *testing.T) {
	t.Parallel()
	st := archivetest.NewMemStore()
	st.Gate = make(chan struct{})
	b := New(Options{Store: st, Instance: "i", FlushInterval: time.Hour, MaxPending: 64, Metrics: metrics.NewArchiver(nil)})
	var accepted []*sink.Entry
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		e := entry(i, "2026-11-26")
		if err = b.Submit(e); err == nil {
			accepted = append(accepted, e)
		}
	}
	if !errors.Is(err, sink.ErrFull) || len(accepted) == 0 {
		t.Fatalf("after %d events Submit = %v; want sink.ErrFull past the budget", len(accepted), err)
	}
	if h := b.Health(); h.Accepting {
		t.Fatalf("Health %+v while over budget; want not accepting", h)
	}
	close(st.Gate)
	for _, e := range accepted {
		if err := <-e.Done; err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Submit(entry(200, "2026-11-26")); err != nil {
		t.Fatalf("Submit after the store caught up: %v", err)
	}
	b.Close(context.Background())
}

// With other requests in flight, a Put waits up to CommitWindow after the previous one started
// for them and for new arrivals, up to CommitTarget events: open-loop arrivals every 2ms share
// objects instead of taking one Put each. A lone sender (one request in flight) is put at once,
// and closed-loop senders stop being held after one window gains nothing.
func TestBatcherCommitWindow(t *testing.T) {
	t.Parallel()
	t.Run("open loop", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			window   time.Duration
			maxPuts  int
			minPuts  int
			describe string
		}{
			{time.Second, 3, 1, "held: 12 events in at most 3 objects (target 8)"},
			{0, 12, 7, "off: about one Put per event"},
		} {
			st := archivetest.NewMemStore()
			load := &sink.Load{}
			b := New(Options{Store: st, Instance: "i", FlushInterval: time.Hour, Metrics: metrics.NewArchiver(nil),
				Load: load, CommitWindow: tc.window, CommitTarget: 8})
			var es []*sink.Entry
			for i := range 12 {
				load.Enter() // open loop: nobody has been answered yet
				e := entry(i, "2026-11-26")
				if err := b.Submit(e); err != nil {
					t.Fatal(err)
				}
				es = append(es, e)
				time.Sleep(2 * time.Millisecond)
			}
			if err := b.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				if err := <-e.Done; err != nil {
					t.Fatal(err)
				}
			}
			if n := st.Puts(); n > tc.maxPuts || n < tc.minPuts {
				t.Errorf("window %s: %d Puts for 12 events; want %s", tc.window, n, tc.describe)
			}
		}
	})
	t.Run("lone sender", func(t *testing.T) {
		t.Parallel()
		st := archivetest.NewMemStore()
		load := &sink.Load{}
		b := New(Options{Store: st, Instance: "i", FlushInterval: time.Hour, Metrics: metrics.NewArchiver(nil),
			Load: load, CommitWindow: time.Hour})
		for i := range 5 {
			load.Enter()
			e := entry(i, "2026-11-26")
			if err := b.Submit(e); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-e.Done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("event %d of a lone sender was held (window 1h)", i)
			}
			load.Exit()
		}
	})
	t.Run("closed loop", func(t *testing.T) {
		t.Parallel()
		st := archivetest.NewMemStore()
		load := &sink.Load{}
		const window = 200 * time.Millisecond
		b := New(Options{Store: st, Instance: "i", FlushInterval: time.Hour, Metrics: metrics.NewArchiver(nil),
			Load: load, CommitWindow: window})
		began := time.Now()
		const rounds = 10
		for r := range rounds { // two senders, each sending again only once answered
			load.Enter()
			load.Enter()
			a, c := entry(2*r, "2026-11-26"), entry(2*r+1, "2026-11-26")
			if err := b.Submit(a); err != nil {
				t.Fatal(err)
			}
			if err := b.Submit(c); err != nil {
				t.Fatal(err)
			}
			for _, e := range []*sink.Entry{a, c} {
				if err := <-e.Done; err != nil {
					t.Fatal(err)
				}
				load.Exit()
			}
		}
		// One window to learn that holding gains nothing (the first batch of each round starts
		// at once when the store is idle for longer than the window, so at most two are held).
		if took := time.Since(began); took > 3*window {
			t.Errorf("%d closed-loop rounds took %s; want at most a couple of %s windows", rounds, took, window)
		}
	})
}
