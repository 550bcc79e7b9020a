package admission

import (
	"sync"
	"testing"
	"time"
)

// clock is a manual clock for the controller's intervals.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(target time.Duration, floor int64) (*Controller, *clock) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	return New(Options{Target: target, Interval: 100 * time.Millisecond, Floor: floor, Now: clk.now}), clk
}

// admitN admits up to n requests and returns how many were admitted.
func admitN(c *Controller, n int) int {
	ok := 0
	for range n {
		if c.Admit() {
			ok++
		}
	}
	return ok
}

// finish ends k admitted requests, each having waited delay.
func finish(c *Controller, k int, delay time.Duration) {
	for range k {
		c.Done(delay, true)
	}
}

func TestDisabledAdmitsEverything(t *testing.T) {
	t.Parallel()
	for _, target := range []time.Duration{0, -time.Second} {
		c := New(Options{Target: target})
		if c != nil {
			t.Fatalf("New(Target %s) = %v, want nil (disabled)", target, c)
		}
		if got := admitN(c, 100_000); got != 100_000 {
			t.Fatalf("a disabled controller admitted %d of 100000", got)
		}
		c.Done(time.Hour, true) // no panic on nil
		if s := c.Stats(); s != (Stats{}) {
			t.Fatalf("Stats of nil = %+v", s)
		}
	}
}

// A standing queue (even the fastest request of an interval waited longer than the target) lowers
// the limit to about what gives the target delay (Little's law), and the excess is shed.
func TestStandingQueueSheds(t *testing.T) {
	t.Parallel()
	c, clk := newTest(50*time.Millisecond, 4)
	if got := admitN(c, 1000); got != 1000 {
		t.Fatalf("before any delay was seen, admitted %d of 1000", got)
	}
	finish(c, 500, 200*time.Millisecond) // 500 still in flight, every wait 4x the target
	clk.add(150 * time.Millisecond)
	c.Done(200*time.Millisecond, true) // the first completion after the interval evaluates it
	s := c.Stats()
	// 500 in flight (counting the one finishing) x 50ms / 200ms = 125.
	if s.Limit != 125 {
		t.Fatalf("limit after a 200ms standing queue with 500 in flight = %d, want 125 (stats %+v)", s.Limit, s)
	}
	if s.Delay != 200*time.Millisecond {
		t.Fatalf("delay = %s, want 200ms", s.Delay)
	}
	if got := admitN(c, 10); got != 0 {
		t.Fatalf("with %d in flight over the limit %d, admitted %d of 10; want all shed", s.InFlight, s.Limit, got)
	}
	if got := c.Stats().InFlight; got != s.InFlight {
		t.Fatalf("in flight %d after 10 refusals, want %d: a refused request must not stay counted", got, s.InFlight)
	}
	// Drain to below the limit: admission resumes up to it.
	finish(c, 499-100, 200*time.Millisecond)
	if got := admitN(c, 100); got != 25 {
		t.Fatalf("with 100 in flight and limit 125, admitted %d of 100, want 25", got)
	}
}

// A burst that drains within the interval is not a standing queue: one fast request in the
// interval keeps the limit off.
func TestBurstIsNotOverload(t *testing.T) {
	t.Parallel()
	c, clk := newTest(50*time.Millisecond, 4)
	admitN(c, 1000)
	finish(c, 998, 900*time.Millisecond)
	c.Done(time.Millisecond, true)
	clk.add(101 * time.Millisecond)
	c.Done(900*time.Millisecond, true)
	if s := c.Stats(); s.Limit != 0 {
		t.Fatalf("a burst with one fast request per interval set limit %d (stats %+v); want no limit", s.Limit, s)
	}
}

// Once the delay is back under the target the limit grows each interval until it stops binding.
func TestLimitRecovers(t *testing.T) {
	t.Parallel()
	c, clk := newTest(50*time.Millisecond, 4)
	admitN(c, 100)
	clk.add(101 * time.Millisecond)
	finish(c, 1, 5*time.Second) // limit = 100*50ms/5s = 1 -> the floor
	if s := c.Stats(); s.Limit != 4 {
		t.Fatalf("limit = %d, want the floor 4", s.Limit)
	}
	finish(c, 99, time.Millisecond)
	prev := int64(4)
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("the limit never stopped binding")
		}
		admitN(c, 1)
		clk.add(101 * time.Millisecond)
		finish(c, 1, time.Millisecond)
		l := c.Stats().Limit
		if l == 0 {
			break
		}
		if l <= prev {
			t.Fatalf("interval %d: limit %d did not grow from %d", i, l, prev)
		}
		prev = l
	}
}

// The floor is always admitted, whatever the delay.
func TestFloorAlwaysAdmitted(t *testing.T) {
	t.Parallel()
	c, clk := newTest(time.Millisecond, 8)
	admitN(c, 50)
	clk.add(time.Second)
	finish(c, 50, time.Minute)
	if got := admitN(c, 20); got != 8 {
		t.Fatalf("admitted %d, want the floor 8", got)
	}
}

// Many goroutines admitting and finishing at once keep the in-flight count exact (run with -race).
func TestConcurrentCountsBalance(t *testing.T) {
	t.Parallel()
	c := New(Options{Target: time.Millisecond, Interval: time.Microsecond, Floor: 2})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				if c.Admit() {
					c.Done(time.Duration(g*i)*time.Microsecond, i%3 != 0)
				}
			}
		}()
	}
	wg.Wait()
	if s := c.Stats(); s.InFlight != 0 {
		t.Fatalf("in flight after everything finished = %d, want 0", s.InFlight)
	}
}

// An interval in which only unmeasured requests ended (refusals, redeliveries answered from
// memory) says nothing about the queue: during a stall, whose waiting requests have not finished,
// they must not grow the limit back.
func TestUnmeasuredIntervalKeepsTheLimit(t *testing.T) {
	t.Parallel()
	c, clk := newTest(50*time.Millisecond, 4)
	admitN(c, 100)
	clk.add(101 * time.Millisecond)
	finish(c, 1, 5*time.Second) // a standing queue: the limit drops to the floor
	if l := c.Stats().Limit; l != 4 {
		t.Fatalf("limit = %d, want the floor 4", l)
	}
	for i := range 5 { // the stall goes on; only unmeasured requests end
		admitN(c, 1)
		clk.add(101 * time.Millisecond)
		c.Done(0, false)
		if l := c.Stats().Limit; l != 4 {
			t.Fatalf("interval %d of unmeasured requests: limit %d, want it kept at 4", i, l)
		}
	}
}
