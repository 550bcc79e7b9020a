package sessions

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgress(t *testing.T) {
	pr := Progress{Day: "2026-11-03", DayIndex: 2, Days: 33, Records: 123456}
	for _, tc := range []struct {
		name     string
		terminal bool
		age      time.Duration
		want     string
	}{
		{"not a terminal", false, time.Minute, ""},
		{"fast read", true, 0, ""},
		{"slow read on a terminal", true, 3 * time.Second, "\r\033[Karchiver sessions: reading dt=2026-11-03 (day 3 of 33), 123456 records, 3s"},
	} {
		var b bytes.Buffer
		p := newProgress(&b, tc.terminal)
		p.start = time.Now().Add(-tc.age)
		p.report(pr)
		if b.String() != tc.want {
			t.Errorf("%s: printed %q, want %q", tc.name, b.String(), tc.want)
		}
		// A message clears a showing progress line first; done clears it at the end.
		p.printf("note\n")
		p.report(pr) // throttled: too soon after the last one
		p.done()
		rest := strings.TrimPrefix(b.String(), tc.want)
		wantRest := "note\n"
		if tc.want != "" {
			wantRest = "\r\033[Knote\n"
		}
		if rest != wantRest {
			t.Errorf("%s: then printed %q, want %q", tc.name, rest, wantRest)
		}
	}
}
