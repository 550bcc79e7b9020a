package ctxsleep_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

func TestSleep(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		d       time.Duration
		want    error
		minWait time.Duration
	}{
		{"full wait", live, 20 * time.Millisecond, nil, 20 * time.Millisecond},
		{"zero", live, 0, nil, 0},
		{"negative", live, -time.Second, nil, 0},
		{"cancelled", done, time.Hour, context.Canceled, 0},
		{"cancelled zero", done, 0, context.Canceled, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := ctxsleep.Sleep(tc.ctx, tc.d)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Sleep = %v, want %v", err, tc.want)
			}
			if took := time.Since(start); took < tc.minWait || took > tc.minWait+10*time.Second {
				t.Fatalf("Sleep took %s, want at least %s", took, tc.minWait)
			}
		})
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := ctxsleep.Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sleep = %v, want DeadlineExceeded", err)
	}
}
