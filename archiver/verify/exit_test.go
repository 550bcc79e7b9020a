package verify

import "testing"

// TestExitCode: pending objects are never a clean result (a planted object looks pending until
// its instance's next digest), and problems outrank them.
func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		sum  Summary
		want int
	}{
		{Summary{}, ExitClean},
		{Summary{Pending: 1}, ExitPending},
		{Summary{Problems: 1, Pending: 1}, ExitProblems},
		{Summary{Problems: 2}, ExitProblems},
	} {
		if got := exitCode(c.sum); got != c.want {
			t.Errorf("exitCode(%+v) = %d, want %d", c.sum, got, c.want)
		}
	}
}
