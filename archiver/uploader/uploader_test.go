package uploader

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

// fast is a backoff for tests.
var fast = backoff.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond}

func entry(i int, day string) *sink.Entry {
	e := sink.NewEntry()
	e.ID[0], e.ID[1] = byte(i), byte(i>>8)
	e.Day, e.ReceivedAt = day, time.Unix(1764115200+int64(i), 0)
	e.Line = fmt.Appendf(nil, "{\"n\":%d}\n", i)
	return e
}

func TestUploaderSplitsDaysRetriesAndJournals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sp, err := spool.Open(context.Background(), spool.Options{Dir: dir, Instance: "inst", Gzip: false})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Release()
	j, _, err := dedup.OpenJournal(filepath.Join(dir, spool.JournalFile), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i, day := range []string{"2026-11-26", "2026-11-26", "2026-11-27", "2026-11-26"} {
		e := entry(i, day)
		sp.Submit(e)
		if err := <-e.Done; err != nil {
			t.Fatal(err)
		}
	}
	sp.Close(context.Background())
	st := archivetest.NewMemStore()
	st.Fail = 2
	m := metrics.NewArchiver(nil)
	u := New(Options{Store: st, Spool: sp, Journal: j, Metrics: m, Backoff: fast})
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys := st.Keys()
	// Day change seals after the commit holding it, so: segment 1 = 26,26,27 (two parts), segment 2 = 26.
	if len(keys) != 3 {
		t.Fatalf("objects %v, want 3", keys)
	}
	var parts []string
	for _, k := range keys {
		parts = append(parts, k[strings.LastIndex(k, "-")+1:])
		if !strings.HasSuffix(k, ".jsonl") || !strings.Contains(k, "/inst-") {
			t.Errorf("key %s", k)
		}
	}
	if got := fmt.Sprint(parts); got != "[000.jsonl 000.jsonl 001.jsonl]" {
		t.Errorf("parts %s", got)
	}
	if m.Stored.Value() != 4 || m.UploadFailures.With(storage.KindUnreachable).Value() != 2 || j.Entries() != 4 || sp.Pending() != 0 || sp.Bytes() != 0 {
		t.Fatalf("stored %d, failures %d, journal %d, pending %d, bytes %d", m.Stored.Value(), m.UploadFailures.With(storage.KindUnreachable).Value(), j.Entries(), sp.Pending(), sp.Bytes())
	}
}

func TestUploaderSetsAsideUnreadableSegment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sp, err := spool.Open(context.Background(), spool.Options{Dir: dir, Instance: "inst"})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Release()
	for i, day := range []string{"2026-11-26", "2026-11-27", "2026-11-27"} { // two segments
		e := entry(i, day)
		sp.Submit(e)
		if err := <-e.Done; err != nil {
			t.Fatal(err)
		}
	}
	sp.Close(context.Background())
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.spool"))
	if len(segs) != 2 {
		t.Fatalf("segments %v", segs)
	}
	os.WriteFile(segs[0], []byte("not a segment"), 0o600) // damaged after recovery
	st := archivetest.NewMemStore()
	m := metrics.NewArchiver(nil)
	u := New(Options{Store: st, Spool: sp, Metrics: m, Backoff: fast})
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := st.Keys(); len(got) != 1 {
		t.Fatalf("objects %v, want the readable segment's one", got)
	}
	if _, err := os.Stat(segs[0] + ".unreadable"); err != nil {
		t.Fatalf("damaged segment not set aside: %v", err)
	}
}

// TestUploaderNeverOverwrites: an object name already holding other bytes (another process used
// it) is left alone; the segment's events go under a fresh name, counted.
func TestUploaderNeverOverwrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sp, err := spool.Open(context.Background(), spool.Options{Dir: dir, Instance: "inst", Gzip: false})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Release()
	e := entry(1, "2026-11-26")
	sp.Submit(e)
	if err := <-e.Done; err != nil {
		t.Fatal(err)
	}
	sp.Close(context.Background())
	seg, _ := sp.Next(context.Background())
	st := archivetest.NewMemStore()
	taken := layout.ObjectKey("2026-11-26", "inst", seg.Seq, 0, false)
	st.SetObject(taken, []byte("someone else's object\n"))
	m := metrics.NewArchiver(nil)
	if err := New(Options{Store: st, Spool: sp, Metrics: m, Backoff: fast}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if string(st.Object(taken)) != "someone else's object\n" {
		t.Fatalf("existing object replaced: %q", st.Object(taken))
	}
	keys := st.Keys()
	if len(keys) != 2 || m.ObjectConflicts.Value() != 1 || m.Stored.Value() != 1 {
		t.Fatalf("objects %v, conflicts %d, stored %d; want the old one and a fresh name, 1, 1", keys, m.ObjectConflicts.Value(), m.Stored.Value())
	}
	fresh := layout.ConflictKey(taken, st.Object(keys[0]))
	if keys[0] != fresh && keys[1] != fresh {
		t.Fatalf("fresh name not ConflictKey: %v", keys)
	}
}

// hookStore calls after once a Put succeeded.
type hookStore struct {
	*archivetest.MemStore
	after func()
}

func (h hookStore) Put(ctx context.Context, key string, body []byte, ct string) error {
	err := h.MemStore.Put(ctx, key, body, ct)
	if err == nil && h.after != nil {
		h.after()
	}
	return err
}

// TestUploaderRemoveFailureDoesNotReupload: when a stored segment cannot be deleted, only the
// deletion is retried (with backoff), never the upload.
func TestUploaderRemoveFailureDoesNotReupload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sp, err := spool.Open(context.Background(), spool.Options{Dir: dir, Instance: "inst"})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Release()
	e := entry(1, "2026-11-26")
	sp.Submit(e)
	<-e.Done
	sp.Close(context.Background())
	st := archivetest.NewMemStore()
	// Once the object is stored, the spool directory turns read-only: the segment can still be
	// read, but not removed.
	hs := hookStore{st, func() { readOnly(t, dir) }}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = New(Options{Store: hs, Spool: sp, Metrics: metrics.NewArchiver(nil), Backoff: backoff.Policy{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}}).Run(ctx)
	if st.Puts() != 1 {
		t.Fatalf("%d Puts while the segment could not be removed, want 1", st.Puts())
	}
}

// readOnly makes dir read-only, undone at cleanup: a read-only bind mount when running as root
// (permissions do not stop root), else mode 0500.
func readOnly(t *testing.T, dir string) {
	if os.Geteuid() != 0 {
		os.Chmod(dir, 0o500)
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		return
	}
	if out, err := exec.Command("mount", "--bind", dir, dir).CombinedOutput(); err != nil {
		t.Errorf("bind mount: %v %s", err, out)
		return
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", dir).CombinedOutput(); err != nil {
		t.Errorf("read-only remount: %v %s", err, out)
	}
}

// TestUploaderDamagedRecord: a segment of 400 acknowledged events with one flipped bit in the
// middle: the other 399 reach the store, in order, and the damage is set aside and counted.
func TestUploaderDamagedRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	damaged := 0
	sp, err := spool.Open(context.Background(), spool.Options{Dir: dir, Instance: "inst", Gzip: false, FlushBytes: 1 << 30,
		OnDamage: func(n int) { damaged += n }})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Release()
	var es []*sink.Entry
	for i := range 400 {
		e := entry(i, "2026-11-26")
		if err := sp.Submit(e); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	for _, e := range es {
		if err := <-e.Done; err != nil {
			t.Fatal(err)
		}
	}
	sp.Close(context.Background())
	seg, _ := sp.Next(context.Background())
	b, err := os.ReadFile(seg.Path)
	if err != nil {
		t.Fatal(err)
	}
	at := strings.Index(string(b), `{"n":200}`)
	b[at+5] ^= 0x01 // "200" -> "201" in the payload: the checksum no longer matches
	os.WriteFile(seg.Path, b, 0o600)
	st := archivetest.NewMemStore()
	if err := New(Options{Store: st, Spool: sp, Metrics: metrics.NewArchiver(nil), Backoff: fast}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys := st.Keys()
	if len(keys) != 1 {
		t.Fatalf("objects %v", keys)
	}
	lines := strings.Split(strings.TrimSuffix(string(st.Object(keys[0])), "\n"), "\n")
	if len(lines) != 399 || damaged != 1 {
		t.Fatalf("archived %d lines, damage counted %d; want 399 and 1", len(lines), damaged)
	}
	for i, j := 0, 0; i < 400; i++ {
		if i == 200 {
			continue
		}
		if want := fmt.Sprintf(`{"n":%d}`, i); lines[j] != want {
			t.Fatalf("line %d = %s, want %s", j, lines[j], want)
		}
		j++
	}
	if _, err := os.Stat(seg.Path + ".damaged"); err != nil {
		t.Fatalf("damage not set aside: %v", err)
	}
}
