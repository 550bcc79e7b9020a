// Package ctxsleep is the one way this module waits out a delay (a retry backoff, an injected
// latency, a benchmark phase) while still giving up at once when the context ends.
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx is done. It returns nil after the full wait and ctx.Err() when the
// context ended first (also when d <= 0 and ctx is already done).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
