package sessions

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions/sessionstest"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// FuzzDecodePartial: a damaged temporary file gives an error, never a panic or a huge
// allocation, and what encodes decodes to the same partial.
func FuzzDecodePartial(f *testing.F) {
	p := partial{key: key{domain: "d.example.com", app: "live", stream: "s\x00\xff", pts: 1794301200}, listed: true,
		pub:  seen{ok: true, first: time.Unix(1794301201, 5).UTC(), verified: true},
		done: seen{ok: true, first: time.Unix(-5, 999999999).UTC()}}
	f.Add(encodePartial(nil, &p))
	f.Add(encodePartial(nil, &partial{}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{fPub, 0, 0, 0, 2, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 1000 {
			var got partial
			ok, err := decodePartial(r, &got)
			if err != nil || !ok {
				return
			}
			again := encodePartial(nil, &got)
			var back partial
			if ok, err := decodePartial(bufio.NewReader(bytes.NewReader(again)), &back); !ok || err != nil || back.key != got.key ||
				back.listed != got.listed || !sameSeen(back.pub, got.pub) || !sameSeen(back.done, got.done) {
				t.Fatalf("round trip: %+v -> %+v (%v)", got, back, err)
			}
		}
	})
}

func sameSeen(a, b seen) bool {
	return a.ok == b.ok && a.verified == b.verified && a.first.Equal(b.first)
}

// TestCompactedRunsGiveSameSessions: with a tiny sort buffer and at most 3 temporary files
// (merged as they pile up), a generated archive gives exactly the sessions of an unspilled read.
func TestCompactedRunsGiveSameSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	st, err := storage.Open(ctx, storage.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sessionstest.Write(ctx, st, sessionstest.Spec{From: "2026-11-01", Days: 4, Streams: 25, MeanDuration: 4 * time.Hour, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	q := Query{From: "2026-11-01", To: "2026-11-04"}
	days, _ := q.Days()
	collect := func(spill, runs int) ([]string, int) {
		p, err := NewPairer(q, Options{SpillAfter: spill, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		p.sorter.maxRuns = runs
		most := 0
		for _, day := range days {
			err := readback.Read(ctx, st, readback.Query{From: day, To: day}, func(e readback.Event) error {
				most = max(most, len(p.sorter.files))
				return p.Add(day, e)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		var out []string
		if _, err := p.Finish(func(s Session) error { out = append(out, string(s.AppendJSON(nil))); return nil }); err != nil {
			t.Fatal(err)
		}
		return out, most
	}
	want, _ := collect(0, 0)
	got, most := collect(7, 3)
	if len(want) < 100 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("compacted: %d sessions, unspilled: %d", len(got), len(want))
	}
	if most > 3 || most == 0 {
		t.Errorf("at most %d temporary files were open, want 1..3", most)
	}
}
