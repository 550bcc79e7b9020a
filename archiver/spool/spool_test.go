package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/sink"
)

func open(t *testing.T, o Options) *Spool {
	t.Helper()
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close(context.Background())
		s.Release()
	})
	return s
}

func entry(i int, day string) *sink.Entry {
	e := sink.NewEntry()
	e.ID[0], e.ID[1] = byte(i), byte(i>>8)
	e.Day = day
	e.ReceivedAt = time.Unix(1764115200+int64(i), 0)
	e.Line = fmt.Appendf(nil, "{\"n\":%d}\n", i)
	return e
}

func submit(t *testing.T, s *Spool, e *sink.Entry) {
	t.Helper()
	if err := s.Submit(e); err != nil {
		t.Fatal(err)
	}
	if err := <-e.Done; err != nil {
		t.Fatal(err)
	}
}

// collect reads every sealed segment (without removing them).
func collect(t *testing.T, s *Spool) (segs []*Segment, recs []Record) {
	t.Helper()
	s.smu.Lock()
	segs = append(segs, s.sealed...)
	s.smu.Unlock()
	for _, seg := range segs {
		err := s.Read(seg, func(r Record) error {
			r.Line = append([]byte(nil), r.Line...)
			recs = append(recs, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return segs, recs
}

func TestGroupCommitConcurrent(t *testing.T) {
	t.Parallel()
	s := open(t, Options{Dir: t.TempDir(), Instance: "inst-a", Gzip: true})
	const n = 500
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			submit(t, s, entry(i, "2026-11-26"))
		}()
	}
	wg.Wait()
	if err := s.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	segs, recs := collect(t, s)
	for _, seg := range segs {
		if seg.Instance != "inst-a" || !seg.Gzip {
			t.Fatalf("segment %+v, want inst-a with gzip", seg)
		}
	}
	if len(recs) != n {
		t.Fatalf("read %d records, want %d", len(recs), n)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		want := fmt.Sprintf("{\"n\":%d}\n", int(r.ID[0])|int(r.ID[1])<<8)
		if string(r.Line) != want || r.Day != "2026-11-26" {
			t.Fatalf("record %+v: line %q, want %q", r, r.Line, want)
		}
		seen[want] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records, want %d", len(seen), n)
	}
	// Shutdown: everything sealed, nothing lost.
	for i := n; i < n+50; i++ {
		e := entry(i, "2026-11-26")
		if err := s.Submit(e); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := <-e.Done; err != nil {
				t.Error(err)
			}
		}()
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, recs := collect(t, s); len(recs) != n+50 {
		t.Fatalf("%d records after close, want %d", len(recs), n+50)
	}
}

func TestRecoveryTruncatesTornTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	inst := s.Instance()
	for i := range 10 {
		submit(t, s, entry(i, "2026-11-26"))
	}
	// Simulate kill -9 in the middle of an append: a partial record after the valid ones, and
	// no orderly close (the writer is stopped, the active segment is left as it is on disk).
	path := s.w.act.seg.Path
	good := s.w.act.seg.Size
	// A crash leaves the active segment with its unused pre-zeroed tail: a clean end.
	crashed := t.TempDir()
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) <= good {
		t.Fatalf("active segment is %d bytes (err %v), want pre-zeroed beyond %d", len(b), err, good)
	}
	os.WriteFile(filepath.Join(crashed, filepath.Base(path)), b, 0o600)
	sc := open(t, Options{Dir: crashed})
	if got := len(sc.TakeRecovered()); got != 10 {
		t.Fatalf("recovered %d events from a crashed pre-zeroed segment, want 10", got)
	}
	if st, _ := os.Stat(filepath.Join(crashed, filepath.Base(path))); st.Size() != good {
		t.Fatalf("crashed segment is %d bytes after recovery, want %d", st.Size(), good)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Release()
	torn := appendRecord(nil, time.Now(), [16]byte{9}, "2026-11-26", []byte("{\"torn\":1}\n"))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(torn[:len(torn)-3])
	f.Close()
	// A segment created just before the crash, without a complete header.
	os.WriteFile(segPath(dir, 1), []byte("LHSP"), 0o600)

	s2 := open(t, Options{Dir: dir, Instance: "other"}) // the flag must not rename old segments
	if got := len(s2.TakeRecovered()); got != 10 {
		t.Fatalf("recovered %d events, want 10", got)
	}
	segs, recs := collect(t, s2)
	if len(segs) != 1 || len(recs) != 10 {
		t.Fatalf("got %d segments / %d records, want 1 / 10", len(segs), len(recs))
	}
	if segs[0].Instance != inst || segs[0].Size != good {
		t.Fatalf("recovered segment %+v, want instance %s size %d", segs[0], inst, good)
	}
	if st, _ := os.Stat(path); st.Size() != good {
		t.Fatalf("segment is %d bytes after recovery, want truncated to %d", st.Size(), good)
	}
	if _, err := os.Stat(segPath(dir, 1)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("headerless segment not removed: %v", err)
	}
	// New segments get numbers above every old one.
	submit(t, s2, entry(100, "2026-11-26"))
	if s2.w.act.seg.Seq <= segs[0].Seq {
		t.Fatalf("new segment %d not after recovered %d", s2.w.act.seg.Seq, segs[0].Seq)
	}
}

func TestRotateOnDayChangeAndSize(t *testing.T) {
	t.Parallel()
	s := open(t, Options{Dir: t.TempDir(), Instance: "i", FlushBytes: 400})
	submit(t, s, entry(1, "2026-11-26"))
	submit(t, s, entry(2, "2026-11-27")) // day change seals after this commit
	submit(t, s, entry(3, "2026-11-27"))
	for i := 4; i < 40; i++ { // ~600 bytes: the size limit seals at least once
		submit(t, s, entry(i, "2026-11-27"))
	}
	s.Rotate(context.Background())
	segs, recs := collect(t, s)
	if len(recs) != 39 {
		t.Fatalf("%d records, want 39", len(recs))
	}
	if len(segs) < 3 {
		t.Fatalf("%d segments, want >= 3 (day change + size)", len(segs))
	}
	// The first segment holds the 26th and the first event of the 27th: the uploader splits it.
	var days []string
	s.Read(segs[0], func(r Record) error { days = append(days, r.Day); return nil })
	if fmt.Sprint(days) != "[2026-11-26 2026-11-27]" {
		t.Fatalf("first segment days %v", days)
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].Seq <= segs[i-1].Seq {
			t.Fatalf("segment numbers not increasing: %d then %d", segs[i-1].Seq, segs[i].Seq)
		}
	}
}

func TestFullAndClosed(t *testing.T) {
	t.Parallel()
	s := open(t, Options{Dir: t.TempDir(), Instance: "i", MaxBytes: 100})
	submit(t, s, entry(1, "2026-11-26"))
	submit(t, s, entry(2, "2026-11-26"))
	if err := s.Submit(entry(3, "2026-11-26")); !errors.Is(err, sink.ErrFull) {
		t.Fatalf("Submit over the limit: %v, want ErrFull", err)
	}
	s.Close(context.Background())
	if err := s.Submit(entry(4, "2026-11-26")); !errors.Is(err, sink.ErrFull) && !errors.Is(err, sink.ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	// Upload side: drain then ErrDrained.
	ctx := context.Background()
	for {
		seg, err := s.Next(ctx)
		if errors.Is(err, ErrDrained) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(seg); err != nil {
			t.Fatal(err)
		}
	}
	if s.Bytes() != 0 {
		t.Fatalf("%d spool bytes after draining, want 0", s.Bytes())
	}
}

func TestInstancePersistedAndLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, Options{Dir: dir})
	if err := ValidateInstance(s.Instance()); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), Options{Dir: dir}); err == nil {
		t.Fatal("a second spool on the same directory was allowed")
	}
	s.Close(context.Background())
	s.Release()
	s2 := open(t, Options{Dir: dir})
	if s2.Instance() != s.Instance() {
		t.Fatalf("instance %q after reopen, want %q", s2.Instance(), s.Instance())
	}
	b, _ := os.ReadFile(filepath.Join(dir, instanceFile))
	if len(b) == 0 {
		t.Fatal("instance.id not written")
	}
	for _, bad := range []string{"", "a/b", "a b", string(make([]byte, 200))} {
		if ValidateInstance(bad) == nil {
			t.Errorf("ValidateInstance(%q) accepted", bad)
		}
	}
}

// With intake reporting more requests in flight than ever arrive (rejected ones, say), a commit
// still happens: the linger is bounded, and every entry is committed exactly once, in order.
func TestLingerBoundedWhenExpectedEntriesNeverCome(t *testing.T) {
	t.Parallel()
	load := &sink.Load{}
	for range 50 {
		load.Enter() // 50 requests "in flight" that never submit
	}
	s := open(t, Options{Dir: t.TempDir(), Instance: "inst", Load: load, Linger: 20 * time.Millisecond})
	const n = 20
	for i := range n {
		submit(t, s, entry(i, "2026-11-26"))
	}
	if err := s.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, recs := collect(t, s)
	if len(recs) != n {
		t.Fatalf("got %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if want := fmt.Sprintf("{\"n\":%d}\n", i); string(r.Line) != want {
			t.Fatalf("record %d = %q, want %q", i, r.Line, want)
		}
	}
}
