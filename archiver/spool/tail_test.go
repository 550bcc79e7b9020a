package spool

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// holdFrom retains every segment at or after its value.
type holdFrom struct{ seq atomic.Uint64 }

func (h *holdFrom) Retains(seq uint64) bool { return seq >= h.seq.Load() }

// A consumer sees committed records of the active segment at once (no seal needed), woken by
// Changed; an uploaded segment it holds stays on disk until ReleaseRetained after it moved on.
func TestTailAndRetention(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir(), Instance: "i", FlushInterval: time.Hour, FlushBytes: 1 << 20})
	h := &holdFrom{}
	s.SetRetainer(h)
	changed := s.Changed()
	submit(t, s, entry(1, "2026-11-26"))
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up after a commit")
	}
	segs := s.Segments()
	if len(segs) != 1 || segs[0].Sealed || segs[0].Records != 1 {
		t.Fatalf("segments after one commit: %+v", segs)
	}
	var got []string
	var end int64
	if err := ReadRange(segs[0].Path, 0, segs[0].Size, func(r Record, next int64) error {
		got, end = append(got, string(r.Line)), next
		return nil
	}); err != nil || len(got) != 1 || end != segs[0].Size {
		t.Fatalf("ReadRange: %v %q end %d size %d", err, got, end, segs[0].Size)
	}
	submit(t, s, entry(2, "2026-11-26"))
	segs = s.Segments()
	got = nil
	if err := ReadRange(segs[0].Path, end, segs[0].Size, func(r Record, _ int64) error {
		got = append(got, string(r.Line))
		return nil
	}); err != nil || len(got) != 1 || got[0] != "{\"n\":2}\n" {
		t.Fatalf("ReadRange from the cursor: %v %q", err, got)
	}

	if err := s.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	seg, err := s.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(seg); err != nil { // "uploaded", still held
		t.Fatal(err)
	}
	if _, err := os.Stat(seg.Path); err != nil || s.Pending() != 0 {
		t.Fatalf("a held segment was deleted or still queued for upload: %v, pending %d", err, s.Pending())
	}
	if v := s.Segments(); len(v) != 1 || !v[0].Uploaded || v[0].Seq != seg.Seq {
		t.Fatalf("held segment not listed as uploaded: %+v", v)
	}
	before := s.Bytes()
	s.ReleaseRetained() // still held: nothing happens
	if _, err := os.Stat(seg.Path); err != nil {
		t.Fatal("released a segment still held")
	}
	h.seq.Store(seg.Seq + 1)
	s.ReleaseRetained()
	if _, err := os.Stat(seg.Path); !os.IsNotExist(err) || s.Bytes() >= before || len(s.Segments()) != 0 {
		t.Fatalf("passed segment not deleted: %v, bytes %d -> %d", err, before, s.Bytes())
	}
}

// ReadRange skips damaged bytes and goes on with the next intact record.
func TestReadRangeSkipsDamage(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir(), Instance: "i", FlushInterval: time.Hour, FlushBytes: 1 << 20})
	for i := range 3 {
		submit(t, s, entry(i, "2026-11-26"))
	}
	v := s.Segments()[0]
	b, _ := os.ReadFile(v.Path)
	var offs []int64
	_ = ReadRange(v.Path, 0, v.Size, func(_ Record, next int64) error { offs = append(offs, next); return nil })
	b[offs[0]+10] ^= 0xff // inside the second record
	if err := os.WriteFile(v.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := ReadRange(v.Path, 0, v.Size, func(r Record, _ int64) error { got = append(got, string(r.Line)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "{\"n\":0}\n" || got[1] != "{\"n\":2}\n" {
		t.Errorf("records around the damage: %q", got)
	}
}
