package backoff

import (
	"math"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	tests := []struct {
		name     string
		p        Policy
		attempt  int
		min, max time.Duration
	}{
		{"first, default jitter", Policy{Initial: time.Second, Max: time.Minute}, 0, 500 * time.Millisecond, time.Second},
		{"doubles", Policy{Initial: time.Second, Max: time.Minute, Jitter: -1}, 3, 8 * time.Second, 8 * time.Second},
		{"capped", Policy{Initial: time.Second, Max: 10 * time.Second, Jitter: -1}, 10, 10 * time.Second, 10 * time.Second},
		{"huge attempt does not overflow", Policy{Initial: time.Second, Max: time.Hour, Jitter: -1}, math.MaxInt, time.Hour, time.Hour},
		{"full jitter", Policy{Initial: time.Second, Max: time.Second, Jitter: 1}, 0, 0, time.Second},
		{"zero value", Policy{}, 0, 50 * time.Millisecond, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				if d := tt.p.Delay(tt.attempt); d < tt.min || d > tt.max {
					t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tt.attempt, d, tt.min, tt.max)
				}
			}
		})
	}
}
