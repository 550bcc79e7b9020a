package relay

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

// Send delivers the request Live sent, byte for byte and with its Content-Type (or none), from
// the archive line, whichever way parse read the line; resign rebuilds the body but keeps the
// Content-Type.
func TestSendAsReceived(t *testing.T) {
	t.Parallel()
	pretty := archivetest.Sample(t, "signed-publish.json")
	compact := archivetest.Compact(t, pretty)
	plain, none, charset := "text/plain; charset=utf-8", "", "application/json; charset=utf-8"
	for _, tc := range []struct {
		name     string
		body     []byte
		ct       *string // archive.content_type
		wantCT   []string
		fastPath bool
	}{
		{"compact application/json", compact, nil, []string{"application/json"}, true},
		{"pretty application/json", pretty, nil, []string{"application/json"}, false},
		{"pretty text/plain", pretty, &plain, []string{plain}, false},
		{"compact with charset", compact, &charset, []string{charset}, false},
		{"compact without Content-Type", compact, &none, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := layout.Archive{ReceivedAt: time.Now(), EventID: "0123456789abcdef0123456789abcdef", RemoteAddr: "127.0.0.1:1",
				Signature: layout.SignatureVerified, Instance: "i", ContentType: tc.ct}
			if !bytes.Equal(tc.body, compact) {
				a.Body = string(tc.body)
			}
			line := layout.AppendRecord(nil, compact, a)
			fast, err := parse(line, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := fast.Domain == ""; got != tc.fastPath { // the fast path decodes only the body and id
				t.Errorf("fast path taken = %v, want %v", got, tc.fastPath)
			}
			full, err := parse(line, true)
			if err != nil {
				t.Fatal(err)
			}
			rc := archivetest.NewReceiver(t, nil)
			var resigned []bool // of each request sent
			for _, d := range []Destination{
				{Name: "asis", URL: rc.URL, Timeout: 5 * time.Second},
				{Name: "resign", URL: rc.URL, Timeout: 5 * time.Second, Resign: true},
			} {
				snd, err := NewSender(d, func(string) (string, bool) { return archivetest.SampleKey, true }, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range []readback.Event{fast, full} {
					if d.Resign && ev.Domain == "" {
						continue // resign always parses fully
					}
					resigned = append(resigned, d.Resign)
					status, _, msg, err := snd.Send(context.Background(), ev, 1, time.Now())
					if err != nil || status != 200 {
						t.Fatalf("%s: Send = %d %s %v", d.Name, status, msg, err)
					}
				}
			}
			got := rc.All()
			if len(got) != len(resigned) {
				t.Fatalf("%d requests, want %d", len(got), len(resigned))
			}
			for i, g := range got {
				if !resigned[i] && !bytes.Equal(g.Body, tc.body) {
					t.Errorf("request %d: body\n%q\nwant Live's\n%q", i, g.Body, tc.body)
				}
				if resigned[i] && (bytes.Equal(g.Body, tc.body) || bytes.Equal(g.Body, compact)) {
					t.Errorf("resigned body not rebuilt: %q", g.Body)
				}
				if ct := g.Header.Values("Content-Type"); !slices.Equal(ct, tc.wantCT) {
					t.Errorf("request %d: Content-Type %q, want %q", i, ct, tc.wantCT)
				}
			}
		})
	}
}

// Retry-After is capped at an hour, for the relay and for archiver replay (both use Send's
// value): a huge number or a far date waits an hour, never overflows into a negative wait.
func TestRetryAfterIsCapped(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{"3600", time.Hour},
		{"7200", time.Hour},
		{"99999999999999999", time.Hour},
		{"99999999999999999999999", 0}, // not a number Retry-After can mean
		{"-5", 0},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(tt.v, now); got != tt.want {
			t.Errorf("Retry-After %q: %v, want %v", tt.v, got, tt.want)
		}
	}
}
