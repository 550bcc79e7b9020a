package bench

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the nearest-rank method:
// the smallest value such that at least p% of the values are <= it. Exact, no interpolation,
// so p99 of 100 samples is the 99th smallest. 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	// The epsilon keeps float error (99.9/100*1000 = 999.0000000000001) from moving up a rank.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// mergeSorted concatenates the per-worker latency slices and sorts the result.
func mergeSorted(parts [][]time.Duration) []time.Duration {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	all := make([]time.Duration, 0, n)
	for _, p := range parts {
		all = append(all, p...)
	}
	slices.Sort(all)
	return all
}

// bitset records which sequence numbers of one worker were acknowledged (or read back).
type bitset []uint64

func (b *bitset) set(i uint64) (wasSet bool) {
	w := int(i / 64)
	if w >= len(*b) {
		*b = append(*b, make([]uint64, w-len(*b)+1+len(*b)/2)...)
	}
	m := uint64(1) << (i % 64)
	wasSet = (*b)[w]&m != 0
	(*b)[w] |= m
	return wasSet
}

func (b bitset) count() int64 {
	var n int
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return int64(n)
}

// andNotCount counts the bits set in b but not in o.
func (b bitset) andNotCount(o bitset) int64 {
	var n int
	for i, w := range b {
		if i < len(o) {
			w &^= o[i]
		}
		n += bits.OnesCount64(w)
	}
	return int64(n)
}
