package emulator

import (
	"golang.org/x/time/rate"

	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"time"
)

// Faults are the management API's injectable misbehaviours, changeable at run time.
// JSON: {"fail_rate":0.1,"rate_limit":300,"latency":"50ms"} (latency as a Go duration string).
type Faults struct {
	FailRate  float64       // 0..1 fraction of requests answered 500 LIVE.100011000
	RateLimit int           // requests per minute, 0 = off
	Latency   time.Duration // added before answering
}

type faultsJSON struct {
	FailRate  *float64 `json:"fail_rate"`
	RateLimit *int     `json:"rate_limit"`
	Latency   *string  `json:"latency"`
}

// MarshalJSON writes latency as a duration string.
func (f Faults) MarshalJSON() ([]byte, error) {
	l := f.Latency.String()
	return json.Marshal(faultsJSON{FailRate: &f.FailRate, RateLimit: &f.RateLimit, Latency: &l})
}

// UnmarshalJSON reads the fields that are present, leaving the others as they are
// (so PUT /_emulator/faults can change one knob).
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a misspelt knob must not be silently ignored
	if err := dec.Decode(&j); err != nil {
		return err
	}
	if j.FailRate != nil {
		f.FailRate = *j.FailRate
	}
	if j.RateLimit != nil {
		f.RateLimit = *j.RateLimit
	}
	if j.Latency != nil {
		d, err := time.ParseDuration(*j.Latency)
		if err != nil {
			return fmt.Errorf("latency %q is not a Go duration such as \"50ms\": %w", *j.Latency, err)
		}
		f.Latency = d
	}
	return nil
}

func validFaults(f Faults) error {
	switch {
	case math.IsNaN(f.FailRate) || f.FailRate < 0 || f.FailRate > 1:
		return fmt.Errorf("fail rate %v must be between 0 and 1", f.FailRate)
	case f.RateLimit < 0:
		return fmt.Errorf("rate limit %d must be 0 (off) or a positive number of requests per minute", f.RateLimit)
	case f.Latency < 0:
		return fmt.Errorf("latency %v must not be negative", f.Latency)
	}
	return nil
}

// SetFaults replaces the faults; out-of-range values are clamped (fail rate to 0..1,
// negative rate limit and latency to 0). The rate-limit bucket restarts full.
func (s *Server) SetFaults(f Faults) {
	if math.IsNaN(f.FailRate) || f.FailRate < 0 {
		f.FailRate = 0
	}
	f.FailRate = min(f.FailRate, 1)
	f.RateLimit = max(f.RateLimit, 0)
	f.Latency = max(f.Latency, 0)
	s.setFaults(f)
	s.log.Info("faults set", "fail_rate", f.FailRate, "rate_limit", f.RateLimit, "latency", f.Latency.String())
}

func (s *Server) setFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.bucket.reset(f.RateLimit, time.Now())
}

// Faults returns the current faults.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Stats counts management API requests (the control API is not counted).
// JSON: {"requests":10,"by_status":{"200":8,"429":2},"throttled":2,"injected_failures":0}.
type Stats struct {
	Requests         int64         `json:"requests"`
	ByStatus         map[int]int64 `json:"by_status"`
	Throttled        int64         `json:"throttled"`
	InjectedFailures int64         `json:"injected_failures"`
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByStatus = maps.Clone(s.stats.ByStatus)
	return st
}

// bucket is the emulator's rate limit, a golang.org/x/time/rate token bucket: capacity is one
// second's share of the per-minute rate (at least 1), refilled continuously, so a client pacing
// itself at the rate is never refused while a burst beyond a second's share is.
type bucket struct {
	lim *rate.Limiter // nil: no limit
}

// grace lets a request arriving this much early still pass: a client pacing itself at
// exactly the limit sees a little jitter on the wire.
const grace = 25 * time.Millisecond

func (b *bucket) reset(perMinute int, now time.Time) {
	if perMinute <= 0 {
		b.lim = nil
		return
	}
	b.lim = rate.NewLimiter(rate.Limit(float64(perMinute)/60), max(perMinute/60, 1))
	b.lim.AllowN(now, 0) // start the refill clock at now, full
}

// take spends a token, or reports how long until one is available.
func (b *bucket) take(now time.Time) (ok bool, retryAfter time.Duration) {
	if b.lim == nil {
		return true, 0
	}
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > grace {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
