package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// writeSegment writes a segment file of n records of about width bytes each and returns its
// bytes and the offsets where each frame starts.
func writeSegment(t *testing.T, path string, n, width int) ([]byte, []int) {
	t.Helper()
	b := appendHeader(nil, "inst", true)
	var starts []int
	pad := strings.Repeat("p", width)
	for i := range n {
		starts = append(starts, len(b))
		var id [16]byte
		id[0], id[1], id[2] = byte(i), byte(i>>8), byte(i>>16)
		b = appendRecord(b, time.Unix(1764115200+int64(i), 0), id, "2026-11-26", fmt.Appendf(nil, "{\"n\":%d,\"p\":\"%s\"}\n", i, pad))
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b, starts
}

// Read delivers exactly the records a scan of the whole file finds (intact, damaged in the
// middle, torn at the end, zero-filled tail), and sets the same damaged bytes aside.
func TestReadStreamsLikeAWholeFileScan(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		damage func(b []byte, starts []int) []byte
	}{
		{"intact", func(b []byte, _ []int) []byte { return b }},
		{"flipped byte in a middle record", func(b []byte, s []int) []byte { b[s[50]+20] ^= 0xff; return b }},
		{"bad length in a middle record", func(b []byte, s []int) []byte { copy(b[s[10]:], []byte{0xff, 0xff, 0xff, 0xff}); return b }},
		{"torn last record", func(b []byte, s []int) []byte { return b[:s[len(s)-1]+30] }},
		{"zero-filled tail", func(b []byte, _ []int) []byte { return append(b, make([]byte, 4096)...) }},
		{"garbage tail", func(b []byte, _ []int) []byte { return append(b, "not a frame at all"...) }},
		{"only a header", func(b []byte, s []int) []byte { return b[:s[0]] }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := open(t, Options{Dir: filepath.Join(dir, "spool")})
			path := filepath.Join(dir, "seg")
			b, starts := writeSegment(t, path, 100, 200)
			b = tc.damage(b, starts)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			hlen := starts[0]
			var want []string
			var wantDamage int
			_ = scanFrames(b, hlen, func(r Record) error {
				want = append(want, fmt.Sprintf("%x %d %s %s", r.ID, r.ReceivedAt.UnixNano(), r.Day, r.Line))
				return nil
			}, func(start, end int) { wantDamage += end - start })
			var got []string
			err := s.Read(&Segment{Path: path}, func(r Record) error {
				got = append(got, fmt.Sprintf("%x %d %s %s", r.ID, r.ReceivedAt.UnixNano(), r.Day, r.Line))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "") != strings.Join(want, "") || len(got) != len(want) {
				t.Fatalf("Read delivered %d records, a whole-file scan %d (or different ones)", len(got), len(want))
			}
			aside, _ := os.ReadFile(path + ".damaged")
			if len(aside) != wantDamage {
				t.Fatalf("%d damaged bytes set aside, want %d", len(aside), wantDamage)
			}
			if wantDamage > 0 && !bytes.Contains(b, aside[:min(len(aside), 8)]) {
				t.Fatal("the bytes set aside are not from the segment")
			}
		})
	}
}

// Reading a segment holds one record at a time: after reading a 6 MiB segment the spool keeps
// well under 1 MiB, not a buffer the size of the segment.
//
// Not parallel: it measures the heap.
func TestReadKeepsNoSegmentBuffer(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Options{Dir: filepath.Join(dir, "spool")})
	path := filepath.Join(dir, "seg")
	b, _ := writeSegment(t, path, 14_000, 400)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 0
	if err := s.Read(&Segment{Path: path}, func(Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	kept := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("read %d records of a %d KiB segment; %d KiB kept", n, len(b)>>10, kept>>10)
	if n != 14_000 {
		t.Fatalf("read %d records, want 14000", n)
	}
	if kept > 1<<20 {
		t.Errorf("the spool keeps %d KiB after reading a %d KiB segment; it must read frame by frame", kept>>10, len(b)>>10)
	}
	runtime.KeepAlive(s)
}

// Recovery keeps the event IDs of the newest MaxRecovered records, oldest first, however many
// the spool holds (a full spool holds millions; the dedup memory keeps only its cap of them).
func TestRecoveredIDsBounded(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		max  int
		want int // records expected, the newest
	}{
		{"unbounded", 0, 250},
		{"bound above the count", 1000, 250},
		{"bound equal to the count", 250, 250},
		{"bound inside the last segment", 60, 60},
		{"bound across segments", 180, 180},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// Two segments of 100 and 150 records; IDs number the records in order.
			n := 0
			for seq, count := range []int{100, 150} {
				b := appendHeader(nil, "inst", true)
				for range count {
					var id [16]byte
					id[0], id[1] = byte(n), byte(n>>8)
					b = appendRecord(b, time.Unix(1764115200+int64(n), 0), id, "2026-11-26", []byte("{}\n"))
					n++
				}
				if err := os.WriteFile(segPath(dir, uint64(seq+1)), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s := open(t, Options{Dir: dir, MaxRecovered: tc.max})
			items := s.TakeRecovered()
			if len(items) != tc.want {
				t.Fatalf("%d recovered IDs, want %d", len(items), tc.want)
			}
			for i, it := range items {
				want := n - tc.want + i
				if got := int(it.ID[0]) | int(it.ID[1])<<8; got != want {
					t.Fatalf("item %d is record %d, want %d (the newest, oldest first)", i, got, want)
				}
			}
			if again := s.TakeRecovered(); again != nil {
				t.Fatalf("TakeRecovered a second time gave %d items", len(again))
			}
		})
	}
}
