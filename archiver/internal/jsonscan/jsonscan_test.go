package jsonscan

import "testing"

func TestValueEnd(t *testing.T) {
	tests := []struct {
		in   string
		at   int
		want int
	}{
		{`{"a":"x\"y","b":1}`, 5, 11},
		{`{"a":{"b":["}",2]},"c":3}`, 5, 18},
		{`{"a":12,"b":1}`, 5, 7},
		{`{"a":true}`, 5, 9},
		{`{"a": null }`, 6, 10},
		{`{"a":"open`, 5, -1},
		{`{"a":{"b":1`, 5, -1},
		{`{"a":12`, 5, -1}, // a number must be followed by a delimiter
		{`{"a":,`, 5, -1},
		{`{"a":`, 5, -1},
	}
	for _, tt := range tests {
		if got := ValueEnd(tt.in, tt.at); got != tt.want {
			t.Errorf("ValueEnd(%q, %d) = %d, want %d", tt.in, tt.at, got, tt.want)
		}
		if got := ValueEnd([]byte(tt.in), tt.at); got != tt.want {
			t.Errorf("ValueEnd([]byte(%q), %d) = %d, want %d", tt.in, tt.at, got, tt.want)
		}
	}
}

func FuzzValueEnd(f *testing.F) {
	for _, s := range []string{`{"a":"x\"y","b":1}`, `{"a":{"b":["}",2]}}`, `[1,2]`, `"\\"`} {
		f.Add(s, 0)
	}
	f.Fuzz(func(t *testing.T, s string, i int) {
		if i < 0 || i > len(s) {
			return
		}
		if e := ValueEnd(s, i); e != -1 && (e <= i || e > len(s)) {
			t.Fatalf("ValueEnd(%q, %d) = %d: outside (i, len]", s, i, e)
		}
		if ValueEnd(s, i) != ValueEnd([]byte(s), i) {
			t.Fatalf("string and []byte disagree on %q at %d", s, i)
		}
	})
}
