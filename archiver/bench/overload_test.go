package bench

import (
	"strings"
	"testing"
	"time"
)

// The overload goal: >= 80% of the peak, every answer within 1 s, all answered; lost data fails
// hard in every mode; the run without overload control is a baseline that never fails the run.
func TestOverloadChecks(t *testing.T) {
	t.Parallel()
	over := func(good float64, maxLat time.Duration, errs int64) *RateResult {
		return &RateResult{Offered: 2000, Goodput: good, Max: maxLat, Errors: errs}
	}
	tests := []struct {
		name     string
		run      OverloadRun
		fail     bool // Failed(checks, false)
		failHard bool // Failed(checks, true)
	}{
		{"met", OverloadRun{Mode: "auto", Peak: 1000, Over: over(900, 950*time.Millisecond, 0)}, false, false},
		{"goodput under 80%", OverloadRun{Mode: "auto", Peak: 1000, Over: over(790, 950*time.Millisecond, 0)}, true, false},
		{"an answer after 1s", OverloadRun{Mode: "auto", Peak: 1000, Over: over(900, 1001*time.Millisecond, 0)}, true, false},
		{"unanswered", OverloadRun{Mode: "200ms", Peak: 1000, Over: over(900, 900*time.Millisecond, 1)}, true, false},
		{"lost data", OverloadRun{Mode: "auto", Peak: 1000, Over: over(900, 900*time.Millisecond, 0), Acked: 10, Found: 9, Missing: 1}, true, true},
		{"off is a baseline", OverloadRun{Mode: "off", Peak: 1000, Over: over(150, 9*time.Second, 0)}, false, false},
		{"off still loses nothing", OverloadRun{Mode: "off", Peak: 1000, Over: over(150, 9*time.Second, 0), Acked: 10, Missing: 1}, true, true},
		{"did not run", OverloadRun{Mode: "auto", Err: "boom"}, true, true},
	}
	for _, tc := range tests {
		res := &OverloadResults{Options: DefaultOverload(), Runs: []*OverloadRun{&tc.run}}
		checks := OverloadChecks(res)
		if got := Failed(checks, false); got != tc.fail {
			t.Errorf("%s: Failed = %v, want %v (%+v)", tc.name, got, tc.fail, checks)
		}
		if got := Failed(checks, true); got != tc.failHard {
			t.Errorf("%s: Failed(no-fail) = %v, want %v", tc.name, got, tc.failHard)
		}
		var b strings.Builder
		WriteOverloadMarkdown(&b, res, checks)
		if !strings.Contains(b.String(), "| "+tc.run.Mode+" |") {
			t.Errorf("%s: the table has no row for %s:\n%s", tc.name, tc.run.Mode, b.String())
		}
	}
}
