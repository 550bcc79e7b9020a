package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
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

func TestRecoveryKeepsTornTailAndSetsAsideBadHeader(t *testing.T) {
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

	var damaged, setAside int
	s2 := open(t, Options{Dir: dir, Instance: "other", // the flag must not rename old segments
		OnDamage: func(n int) { damaged += n }, OnSetAside: func() { setAside++ }})
	if got := len(s2.TakeRecovered()); got != 10 {
		t.Fatalf("recovered %d events, want 10", got)
	}
	segs, recs := collect(t, s2)
	if len(segs) != 1 || len(recs) != 10 {
		t.Fatalf("got %d segments / %d records, want 1 / 10", len(segs), len(recs))
	}
	// The torn tail is never silently cut off: it stays in the segment and, when the segment is
	// read, goes to the set-aside file and the count.
	tornLen := int64(len(torn) - 3)
	if segs[0].Instance != inst || segs[0].Size != good+tornLen {
		t.Fatalf("recovered segment %+v, want instance %s size %d", segs[0], inst, good+tornLen)
	}
	if b, err := os.ReadFile(path + ".damaged"); err != nil || !bytes.Equal(b, torn[:len(torn)-3]) {
		t.Fatalf("set-aside file holds %q (%v), want the torn bytes", b, err)
	}
	if damaged != 1 {
		t.Fatalf("OnDamage counted %d, want 1", damaged)
	}
	// A segment whose header cannot be read is set aside, never deleted.
	if _, err := os.Stat(segPath(dir, 1)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("headerless segment still queued under its name: %v", err)
	}
	if b, err := os.ReadFile(segPath(dir, 1) + ".unreadable"); err != nil || string(b) != "LHSP" {
		t.Fatalf("headerless segment not set aside: %q %v", b, err)
	}
	if setAside != 1 {
		t.Fatalf("OnSetAside counted %d, want 1", setAside)
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
	if err := layout.ValidateInstance(s.Instance()); err != nil {
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
		if layout.ValidateInstance(bad) == nil {
			t.Errorf("layout.ValidateInstance(%q) accepted", bad)
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

// TestDamagedRecordInTheMiddle: one flipped bit in record 200 of 400 costs that record only;
// every other record is read, in order, and the damaged bytes are set aside and counted. The
// same when a record's length field is damaged (the reader must find the next frame again).
func TestDamagedRecordInTheMiddle(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		at   func(frameStart, frameLen int) int // byte to flip
	}{
		{"payload bit", func(s, l int) int { return s + l/2 }},
		{"length field", func(s, _ int) int { return s + 1 }},
		{"checksum", func(s, _ int) int { return s + 5 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := open(t, Options{Dir: dir, Instance: "i"})
			var es []*sink.Entry
			for i := range 400 {
				e := entry(i, "2026-11-26")
				if err := s.Submit(e); err != nil {
					t.Fatal(err)
				}
				es = append(es, e)
			}
			for _, e := range es {
				if err := <-e.Done; err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Rotate(context.Background()); err != nil {
				t.Fatal(err)
			}
			segs, recs := collect(t, s)
			if len(recs) != 400 {
				t.Fatalf("read %d records before the damage, want 400", len(recs))
			}
			path := segs[len(segs)-1].Path
			if len(segs) != 1 {
				t.Fatalf("%d segments, want 1", len(segs))
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Find frame 200 by walking the frames.
			hdr := len(appendHeader(nil, "i", false))
			off := hdr
			for range 200 {
				_, n, ok := parseFrame(b[off:])
				if !ok {
					t.Fatal("walking frames failed")
				}
				off += n
			}
			_, n, _ := parseFrame(b[off:])
			b[tc.at(off, n)] ^= 0x10
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			var damaged int
			s.o.OnDamage = func(k int) { damaged += k }
			var got []int
			err = s.Read(segs[0], func(r Record) error {
				var v int
				fmt.Sscanf(string(r.Line), "{\"n\":%d}", &v)
				got = append(got, v)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 399 {
				t.Fatalf("read %d records after one damaged, want 399", len(got))
			}
			for i, j := 0, 0; i < 400; i++ {
				if i == 200 {
					continue
				}
				if got[j] != i {
					t.Fatalf("record %d is %d, want %d (order)", j, got[j], i)
				}
				j++
			}
			aside, err := os.ReadFile(path + ".damaged")
			if err != nil || !bytes.Equal(aside, b[off:off+n]) {
				t.Fatalf("set-aside file %q (%v), want the %d damaged bytes", aside, err, n)
			}
			if damaged != 1 {
				t.Fatalf("damage counted %d, want 1", damaged)
			}
		})
	}
}

// TestRecordAtMaxBody: a record as large as the largest --max-body plus the archive field is a
// record, not damage.
func TestRecordAtMaxBody(t *testing.T) {
	t.Parallel()
	s := open(t, Options{Dir: t.TempDir(), FlushBytes: 1 << 30})
	e := entry(1, "2026-11-26")
	e.Line = append(bytes.Repeat([]byte("x"), MaxBody), []byte(`,"archive":{"received_at":"2026-11-26T08:00:00.123456789Z","instance":"`+strings.Repeat("h", 100)+`"}}`+"\n")...)
	submit(t, s, e)
	if err := s.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, recs := collect(t, s)
	if len(recs) != 1 || !bytes.Equal(recs[0].Line, e.Line) {
		t.Fatalf("read %d records; want the one of %d bytes", len(recs), len(e.Line))
	}
}

// TestOwnerOnly: spool files hold usr_args tokens and signatures: 0600 files, 0700 directory.
func TestOwnerOnly(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "spool")
	s := open(t, Options{Dir: dir})
	submit(t, s, entry(1, "2026-11-26"))
	if err := s.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("spool directory mode %v (%v), want 0700", st.Mode().Perm(), err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
}
