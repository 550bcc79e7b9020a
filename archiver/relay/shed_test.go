package relay

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
)

// blockingStore holds every Put until released, telling entered when one starts.
type blockingStore struct {
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) Put(ctx context.Context, _ string, _ []byte, _ string) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shedding a removed destination's queue does its file and store I/O without the relay's lock:
// while its dead-letter upload hangs, Lagging (/readyz, the metrics) and Reload still answer, and
// once it ends the parked cursor has passed the shed segment.
func TestShedParkedDoesIOOutsideTheLock(t *testing.T) {
	t.Parallel()
	sp, err := spool.Open(context.Background(), spool.Options{Dir: t.TempDir(), Instance: "i1", FlushInterval: time.Millisecond, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close(context.Background()) })
	st := &blockingStore{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r, err := New(Options{Spool: sp, Dir: t.TempDir(), Store: st, Instance: "i1", Pressure: 1e-9,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gone := &position{}
	r.parked["gone"] = gone
	r.publishHolds()
	sp.SetRetainer(r)

	e := sink.NewEntry()
	e.ID[0], e.Day, e.ReceivedAt, e.Line = 1, "2026-11-26", time.Now(), []byte("{\"n\":1}\n")
	if err := sp.Submit(e); err != nil {
		t.Fatal(err)
	}
	if err := <-e.Done; err != nil {
		t.Fatal(err)
	}
	if err := sp.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	seg, err := sp.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Remove(seg); err != nil { // uploaded, held by the parked queue
		t.Fatal(err)
	}

	r.Start()
	defer r.Close()
	released := false
	defer func() {
		if !released {
			close(st.release)
		}
	}()
	select {
	case <-st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the parked queue was not shed")
	}
	answered := make(chan struct{})
	go func() {
		_ = r.Lagging()
		_ = r.Reload(nil)
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(3 * time.Second):
		t.Fatal("Lagging/Reload waited for the dead-letter upload of a parked queue")
	}
	close(st.release)
	released = true
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, ok, err := loadCursor(r.cursorPath("gone"))
		if err == nil && ok && p.seq.Load() == seg.Seq+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("parked cursor after shedding: %+v %v %v, want segment %d", p, ok, err, seg.Seq+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Shedding a removed destination's queue when the dead letters cannot be written: while they are
// neither in the store nor a pending upload, the parked position stays before them; once the
// store has them, the position moves on (the spool gets its room) but the written cursor stays
// until the local file has them too.
func TestShedParkedKeepsDeadLettersWhenWritesFail(t *testing.T) {
	t.Parallel()
	sp, err := spool.Open(context.Background(), spool.Options{Dir: t.TempDir(), Instance: "i1", FlushInterval: time.Millisecond, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close(context.Background()) })
	st := &failingStore{mapStore: mapStore{objs: map[string][]byte{}}, fails: 1 << 20}
	dir := t.TempDir()
	r, err := New(Options{Spool: sp, Dir: dir, Store: st, Instance: "i1", Pressure: 1e-9,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.storeBackoff = backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond}
	gone := &position{}
	r.parked["gone"] = gone
	r.publishHolds()
	sp.SetRetainer(r)
	local := filepath.Join(dir, "gone", deadLettersFile)
	if err := os.MkdirAll(local, 0o700); err != nil { // a directory where the file goes: writes fail, even as root
		t.Fatal(err)
	}
	pending := filepath.Join(dir, "gone", pendingDir)
	if err := os.WriteFile(pending, nil, 0o600); err != nil { // a file where the pending directory goes
		t.Fatal(err)
	}

	segment := func(id byte) *spool.Segment {
		t.Helper()
		e := sink.NewEntry()
		e.ID[0], e.Day, e.ReceivedAt, e.Line = id, "2026-11-26", time.Now(), []byte("{\"n\":1}\n")
		if err := sp.Submit(e); err != nil {
			t.Fatal(err)
		}
		if err := <-e.Done; err != nil {
			t.Fatal(err)
		}
		if err := sp.Rotate(context.Background()); err != nil {
			t.Fatal(err)
		}
		seg, err := sp.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.Remove(seg); err != nil { // uploaded, held by the parked queue
			t.Fatal(err)
		}
		return seg
	}
	seg := segment(1)
	at := func() uint64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return gone.seq.Load()
	}
	noCursor := func() {
		t.Helper()
		if p, ok, err := loadCursor(r.cursorPath("gone")); err != nil || ok && p.seq.Load() > seg.Seq {
			t.Fatalf("cursor written past dead letters that are not in the local file: %+v %v", p, err)
		}
	}

	r.Start()
	defer r.Close()
	time.Sleep(2500 * time.Millisecond) // two passes or more
	if at() != seg.Seq {
		t.Fatalf("parked position %d passed dead letters that are nowhere, want %d", at(), seg.Seq)
	}
	noCursor()

	st.mu.Lock()
	st.fails = 0
	st.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for at() != seg.Seq+1 {
		if time.Now().After(deadline) {
			t.Fatalf("parked position %d once the store has the dead letters, want %d", at(), seg.Seq+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st.mu.Lock()
	objs := len(st.objs)
	st.mu.Unlock()
	if objs != 1 {
		t.Fatalf("store objects %d, want the dead letters once", objs)
	}
	noCursor()

	// The next segment is shed as well while the local file still fails: the spool is not held.
	seg2 := segment(2)
	for at() != seg2.Seq+1 {
		if time.Now().After(deadline) {
			t.Fatalf("parked position %d after the next segment was shed, want %d", at(), seg2.Seq+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	noCursor()

	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	for {
		p, ok, err := loadCursor(r.cursorPath("gone"))
		if err == nil && ok && p.seq.Load() == seg2.Seq+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("parked cursor once the local file can be written: %+v %v %v, want segment %d", p, ok, err, seg2.Seq+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(local)
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if err != nil || len(lines) != 2 || !bytes.Contains(lines[0], []byte(`"event_id":"01`)) || !bytes.Contains(lines[1], []byte(`"event_id":"02`)) {
		t.Fatalf("local dead letters, want both segments' in order: %v\n%s", err, b)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.objs) != 2 {
		t.Fatalf("store objects %d, want each segment's dead letters once", len(st.objs))
	}
}
