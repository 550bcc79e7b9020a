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
