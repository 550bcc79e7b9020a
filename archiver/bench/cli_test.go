package bench

import (
	"slices"
	"testing"
)

func TestParsePositiveInts(t *testing.T) {
	t.Parallel()
	if got, err := ParsePositiveInts(" 1000, 5000 ,7"); err != nil || !slices.Equal(got, []int{1000, 5000, 7}) {
		t.Errorf("ParsePositiveInts = %v, %v; want [1000 5000 7]", got, err)
	}
	for _, s := range []string{"", "1000,", "1000,x", "0", "5,-1"} {
		if got, err := ParsePositiveInts(s); err == nil {
			t.Errorf("ParsePositiveInts(%q) = %v, want an error", s, got)
		}
	}
}
