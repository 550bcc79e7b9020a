// Package admission is the archiver's overload control: beyond what it can make durable in time,
// intake answers 503 with Retry-After at once instead of letting requests queue past the sender's
// timeout (Live retries a slow answer, so a queue only adds a retry to the burst).
//
// The signal is queue delay, as in CoDel: the time an accepted request waits for durability. A
// burst that drains within an interval is fine; a standing queue is not, and the sign of one is
// that even the fastest request of a whole interval waited longer than the target. Delay, not a
// fixed in-flight limit, is the signal because the capacity it would have to encode changes all
// the time: fdatasync and Put latency, group-commit batch sizes and CPU left over by other work
// move it by an order of magnitude, while the delay a sender tolerates does not move.
//
// The actuator is an in-flight limit set from that signal (Little's law: at a fixed throughput,
// in-flight requests are proportional to their delay). When an interval's minimum delay is over
// the target, the limit becomes in-flight × target / delay; while it is under, the limit grows
// (doubling below half the target, by a quarter above) until it no longer binds. Shedding at admission, before the body is read,
// costs a refused request almost nothing, and what is admitted still sees a queue of about target:
// the server never idles, so goodput stays at capacity.
package admission

import (
	"math"
	"sync/atomic"
	"time"
)

// Defaults.
const (
	DefaultTarget   = 100 * time.Millisecond
	DefaultInterval = 100 * time.Millisecond
	DefaultFloor    = 64
)

// unlimited is the limit while it does not bind.
const unlimited = math.MaxInt64

// Options configure a Controller.
type Options struct {
	// Target is the standing queue delay tolerated (CoDel's target); <= 0 disables admission
	// control (Admit always says yes).
	Target time.Duration
	// Interval is how often the limit is reconsidered (CoDel's interval); 0 => DefaultInterval.
	Interval time.Duration
	// Floor requests are always admitted, whatever the delay (0 => DefaultFloor): a disk having a
	// slow second must not refuse a lone sender.
	Floor int64
	// Ceiling: a limit grown past it no longer binds (0 => 1<<16).
	Ceiling int64
	// Now is the clock (tests); nil => time.Now.
	Now func() time.Time
}

// Controller decides admission. Safe for concurrent use; Admit and Done are lock-free.
type Controller struct {
	o     Options
	epoch time.Time

	inFlight atomic.Int64
	limit    atomic.Int64

	windowEnd atomic.Int64 // nanoseconds since epoch
	minDelay  atomic.Int64 // the window's smallest delay; math.MaxInt64 = no sample yet
	lastDelay atomic.Int64 // the last window's minimum, for metrics
}

// New returns a controller; nil when o.Target <= 0 (a nil *Controller admits everything).
func New(o Options) *Controller {
	if o.Target <= 0 {
		return nil
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Floor <= 0 {
		o.Floor = DefaultFloor
	}
	if o.Ceiling <= 0 {
		o.Ceiling = 1 << 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Controller{o: o, epoch: o.Now()}
	c.limit.Store(unlimited)
	c.minDelay.Store(math.MaxInt64)
	c.windowEnd.Store(int64(o.Interval))
	return c
}

// Admit reports whether a new request may proceed. When it says yes, Done must follow.
func (c *Controller) Admit() bool {
	if c == nil {
		return true
	}
	n := c.inFlight.Add(1)
	if n > c.o.Floor && n > c.limit.Load() {
		c.inFlight.Add(-1)
		return false
	}
	return true
}

// Done ends an admitted request. delay is how long it waited for durability; measured is false
// when it never waited (refused, a redelivery answered from memory).
func (c *Controller) Done(delay time.Duration, measured bool) {
	if c == nil {
		return
	}
	if measured {
		for d := int64(delay); ; {
			cur := c.minDelay.Load()
			if d >= cur || c.minDelay.CompareAndSwap(cur, d) {
				break
			}
		}
	}
	inFlight := c.inFlight.Add(-1) + 1 // counting this one: the load its delay was measured under
	now := int64(c.o.Now().Sub(c.epoch))
	end := c.windowEnd.Load()
	if now < end || !c.windowEnd.CompareAndSwap(end, now+int64(c.o.Interval)) {
		return
	}
	c.evaluate(time.Duration(c.minDelay.Swap(math.MaxInt64)), inFlight)
}

// evaluate sets the limit from the window that just ended (one caller at a time: the CAS winner).
func (c *Controller) evaluate(minDelay time.Duration, inFlight int64) {
	if minDelay == math.MaxInt64 {
		// No request finished waiting in the whole interval (only refusals or redeliveries
		// answered from memory ended): no evidence either way, so the limit stays. Taken as no
		// delay, they doubled the limit every interval of a stall, whose waiting requests have
		// not finished yet, and switched shedding off when it was needed.
		return
	}
	c.lastDelay.Store(int64(minDelay))
	limit := c.limit.Load()
	target := c.o.Target
	if minDelay > target {
		base := min(limit, inFlight)
		next := max(c.o.Floor, int64(float64(base)*float64(target)/float64(minDelay)))
		c.limit.Store(next)
		return
	}
	if limit == unlimited {
		return
	}
	// Well under the target the queue is gone: double, so that a short stall that shrank the limit
	// to the floor costs a few intervals of shedding, not seconds. Near the target, creep up.
	next := limit + max(1, limit/4)
	if minDelay < target/2 {
		next = 2 * limit
	}
	if next > c.o.Ceiling {
		next = unlimited
	}
	c.limit.Store(next)
}

// Stats are the controller's state for metrics.
type Stats struct {
	InFlight int64
	Limit    int64 // 0: not limiting
	// Delay is the smallest queue delay of the last interval evaluated.
	Delay time.Duration
}

// Stats returns the current figures (zero for a nil controller).
func (c *Controller) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	l := c.limit.Load()
	if l == unlimited {
		l = 0
	}
	return Stats{InFlight: c.inFlight.Load(), Limit: l, Delay: time.Duration(c.lastDelay.Load())}
}
