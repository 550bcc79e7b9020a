package emulator

import (
	"testing"
	"time"
)

// The bucket is driven with explicit times, so this checks its arithmetic, not the clock.
func TestBucket(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		perMinute int
		gaps      []time.Duration // time before each request
		refused   []int           // indexes of requests that must be refused
	}{
		{"off", 0, repeat(0, 50), nil},
		{"60/min burst of 2", 60, []time.Duration{0, 0}, []int{1}},
		{"60/min paced at 1s", 60, repeat(time.Second, 100), nil},
		{"60/min paced with early jitter", 60, []time.Duration{0, 990 * time.Millisecond, 990 * time.Millisecond}, nil},
		{"60/min too fast", 60, []time.Duration{0, 900 * time.Millisecond}, []int{1}},
		{"300/min burst of 5 then refused", 300, repeat(0, 6), []int{5}},
		{"300/min paced at 200ms", 300, repeat(200*time.Millisecond, 200), nil},
		{"300/min refills after a pause", 300, append(repeat(0, 5), time.Second, 0, 0, 0, 0, 0), []int{10}},
		{"30/min: capacity 1", 30, []time.Duration{0, time.Second, time.Second}, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bucket
			now := t0
			b.reset(tt.perMinute, now)
			for i, g := range tt.gaps {
				now = now.Add(g)
				ok, wait := b.take(now)
				want := !contains(tt.refused, i)
				if ok != want {
					t.Fatalf("request %d: allowed=%v, want %v", i, ok, want)
				}
				if !ok && wait <= 0 {
					t.Fatalf("request %d refused with retry-after %v", i, wait)
				}
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://u:p@h.example.com/cb?token=secret": "https://h.example.com/cb?…",
		"http://h/cb": "http://h/cb",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
