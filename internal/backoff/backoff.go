// Package backoff is the one retry-delay policy of livehook: exponential growth up to a cap, with
// jitter so that many clients retrying the same outage do not return in lockstep.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy describes the delays between attempts. The zero value is usable: 100ms doubling to 30s,
// jittered by half.
type Policy struct {
	Initial time.Duration // delay before the second attempt (default 100ms)
	Max     time.Duration // cap of any delay (default 30s)
	// Jitter is the random share of each delay, 0..1: 0.5 draws from [d/2, d]; 1 is "full jitter"
	// [0, d]. Negative means none. Zero selects 0.5.
	Jitter float64
}

func (p Policy) norm() Policy {
	if p.Initial <= 0 {
		p.Initial = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 30 * time.Second
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	switch {
	case p.Jitter == 0:
		p.Jitter = 0.5
	case p.Jitter < 0:
		p.Jitter = 0
	case p.Jitter > 1:
		p.Jitter = 1
	}
	return p
}

// Delay is the wait after failed attempt number attempt (0 for the first failure). It never
// overflows: past the cap every delay is the (jittered) cap.
func (p Policy) Delay(attempt int) time.Duration {
	p = p.norm()
	d := p.Initial
	for i := 0; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	if d > p.Max || d <= 0 {
		d = p.Max
	}
	if p.Jitter > 0 {
		d -= time.Duration(rand.Float64() * p.Jitter * float64(d))
	}
	return d
}
