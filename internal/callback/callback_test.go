package callback

import "testing"

// Worked examples from spec/callback.md.
func TestSignSpecExamples(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	tests := []struct{ event, ts, want string }{
		{EventPublish, "1587954140", "fa5addca9ea94589d2a7f936a82e2ef3af10bf7ffc665e278c05214537e2ed41"},
		{EventPublishDone, "1587954140", "fe71cd27e6df78034898faef20237ead1f13540de1b340b7644e8444c5024308"},
		{EventPublishDone, "1587957740", "81e8ae49c0fdae76b7c7475ee190023df61bb54c8143a21b4a91dd76d3f34987"},
	}
	for _, tt := range tests {
		var ts int64
		for _, c := range tt.ts {
			ts = ts*10 + int64(c-'0')
		}
		if got := Sign(key, tt.event, "push.example.com", "live", "example_stream", ts); got != tt.want {
			t.Errorf("Sign(%s, %d) = %s, want %s", tt.event, ts, got, tt.want)
		}
		if !Valid(tt.want, key, tt.event, "push.example.com", "live", "example_stream", ts) {
			t.Errorf("Valid rejected the spec example for %s", tt.event)
		}
		if Valid(tt.want, key, tt.event, "push.example.com", "live", "other", ts) {
			t.Errorf("Valid accepted a signature for another stream")
		}
	}
}

// The Verifier agrees with Valid on the spec examples and their near misses, and allocates nothing
// per call (it runs for every signed callback the archiver receives).
func TestVerifierAgreesWithValid(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	const good = "fa5addca9ea94589d2a7f936a82e2ef3af10bf7ffc665e278c05214537e2ed41"
	v := NewVerifier(key)
	other := NewVerifier(key + "x")
	flip := []byte(good)
	flip[63] = '0'
	tests := []struct {
		name, sign, stream string
		ts                 int64
		key                *Verifier
		want               bool
	}{
		{"spec example", good, "example_stream", 1587954140, v, true},
		{"another stream", good, "other", 1587954140, v, false},
		{"another timestamp", good, "example_stream", 1587954141, v, false},
		{"another key", good, "example_stream", 1587954140, other, false},
		{"last digit changed", string(flip), "example_stream", 1587954140, v, false},
		{"upper-case hex", "FA5ADDCA9EA94589D2A7F936A82E2EF3AF10BF7FFC665E278C05214537E2ED41", "example_stream", 1587954140, v, false},
		{"too short", good[:62], "example_stream", 1587954140, v, false},
		{"too long", good + "00", "example_stream", 1587954140, v, false},
		{"empty", "", "example_stream", 1587954140, v, false},
	}
	for _, tc := range tests {
		got := tc.key.Valid(tc.sign, EventPublish, "push.example.com", "live", tc.stream, tc.ts)
		if got != tc.want {
			t.Errorf("%s: Verifier.Valid = %v, want %v", tc.name, got, tc.want)
		}
		k := key
		if tc.key == other {
			k = key + "x"
		}
		if old := Valid(tc.sign, k, EventPublish, "push.example.com", "live", tc.stream, tc.ts); old != got {
			t.Errorf("%s: Verifier.Valid = %v but Valid = %v", tc.name, got, old)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		v.Valid(good, EventPublish, "push.example.com", "live", "example_stream", 1587954140)
	}); n != 0 {
		t.Errorf("Verifier.Valid allocates %.0f times per call, want 0", n)
	}
}

func BenchmarkValid(b *testing.B) {
	const key = "0123456789abcdef0123456789abcdef"
	const good = "fa5addca9ea94589d2a7f936a82e2ef3af10bf7ffc665e278c05214537e2ed41"
	b.Run("Valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Valid(good, key, EventPublish, "push.example.com", "live", "example_stream", 1587954140)
		}
	})
	b.Run("Verifier", func(b *testing.B) {
		v := NewVerifier(key)
		b.ReportAllocs()
		for b.Loop() {
			v.Valid(good, EventPublish, "push.example.com", "live", "example_stream", 1587954140)
		}
	})
}
