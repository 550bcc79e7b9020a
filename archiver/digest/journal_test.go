package digest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
)

// TestJournal: intents survive a reopen, a torn last line is ignored, and a stored digest
// forgets the intents it lists (only with the hash recorded) and becomes the head.
func TestJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), digest.JournalFile)
	j, err := digest.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := j.Head(); ok {
		t.Fatal("a new journal has a head")
	}
	for _, k := range []string{"a", "b", "c"} {
		if err := j.Intend(k, "sum-"+k); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"intent":{"key":"torn","sha`)
	f.Close()
	if j, err = digest.OpenJournal(path); err != nil {
		t.Fatal(err)
	}
	if got := j.Intents(); len(got) != 3 || got["b"] != "sum-b" {
		t.Fatalf("after reopen: %v", got)
	}
	h := digest.JournalHead{Key: "_digests/x", SHA256: "s", Seq: 7, Kind: digest.KindHourly, End: "e"}
	if err := j.Stored(h, []digest.Entry{{Key: "a", SHA256: "sum-a"}, {Key: "b", SHA256: "other bytes"}}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j, _ = digest.OpenJournal(path)
	defer j.Close()
	if got, _ := j.Head(); got != h {
		t.Fatalf("head %+v", got)
	}
	if got := j.Intents(); len(got) != 2 || got["b"] == "" || got["c"] == "" {
		t.Fatalf("intents after the digest: %v", got)
	}
}

// TestHeadGone: a chain whose remembered last digest was deleted continues from it (the next
// digest links to the missing one) and says so; a running writer logs an ERROR when it finds its
// previous digest gone.
func TestHeadGone(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	key := newKey(t)
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	jpath := filepath.Join(t.TempDir(), digest.JournalFile)
	j, _ := digest.OpenJournal(jpath)
	c, _ := digest.OpenChain(ctx, st, key, "host-a", now, time.Time{}, nil)
	if err := c.UseJournal(ctx, j); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	w := &digest.Writer{Recorder: digest.NewRecorder(st, nil, nil), Chain: c, Now: func() time.Time { return now }, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	w.Recorder.UseJournal(j)
	obj := layout.ObjectKey("2026-11-20", "host-a", 1, 0, false)
	if err := w.Recorder.Put(ctx, obj, []byte("x\n"), layout.ContentType); err != nil {
		t.Fatal(err)
	}
	if got := j.Intents(); got[obj] == "" {
		t.Fatalf("no intent recorded before the put: %v", got)
	}
	if err := w.Flush(ctx, digest.KindHourly); err != nil {
		t.Fatal(err)
	}
	first := c.Previous()
	if len(j.Intents()) != 0 {
		t.Fatalf("intents left after the digest listed them: %v", j.Intents())
	}
	// Deleted while the process runs: the next flush says so.
	os.Remove(filepath.Join(storeDir(st), filepath.FromSlash(first.Key)))
	now = now.Add(time.Hour)
	if err := w.Flush(ctx, digest.KindShutdown); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), first.Key) {
		t.Fatalf("no ERROR naming %s: %s", first.Key, logs.String())
	}
	// A restart after its last digest was deleted: the chain continues from the missing one.
	second := c.Previous()
	os.Remove(filepath.Join(storeDir(st), filepath.FromSlash(second.Key)))
	j.Close()
	j, _ = digest.OpenJournal(jpath)
	defer j.Close()
	c2, _ := digest.OpenChain(ctx, st, key, "host-a", now, time.Time{}, nil)
	if p := c2.Previous(); p != nil {
		t.Fatalf("the store alone has no digest of host-a left: %+v", p)
	}
	if err := c2.UseJournal(ctx, j); !errors.Is(err, digest.ErrHeadGone) {
		t.Fatalf("UseJournal: %v", err)
	}
	if p := c2.Previous(); p == nil || *p != *second {
		t.Fatalf("continues from %+v, want %+v", p, second)
	}
}

// TestHeadChangedWhileRunning: a running writer whose previous digest was replaced in the store
// by other bytes says so in an ERROR log naming the digest and both hashes (the check UseJournal
// makes at start), and still links to the bytes it wrote.
func TestHeadChangedWhileRunning(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	key := newKey(t)
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	c, _ := digest.OpenChain(ctx, st, key, "host-a", now, time.Time{}, nil)
	var logs bytes.Buffer
	w := &digest.Writer{Recorder: digest.NewRecorder(st, nil, nil), Chain: c, Now: func() time.Time { return now }, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	if err := w.Flush(ctx, digest.KindHourly); err != nil {
		t.Fatal(err)
	}
	first := c.Previous()
	other := []byte(`{"payload":{},"signature":""}` + "\n")
	if err := os.WriteFile(filepath.Join(storeDir(st), filepath.FromSlash(first.Key)), other, 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if err := w.Flush(ctx, digest.KindShutdown); err != nil {
		t.Fatal(err)
	}
	want := "changed (sha256 " + digest.Sum(other)[:16] + ", written as " + first.SHA256[:16] + ")"
	if l := logs.String(); !strings.Contains(l, `"level":"ERROR"`) || !strings.Contains(l, first.Key) || !strings.Contains(l, want) {
		t.Fatalf("no ERROR naming %s as %s:\n%s", first.Key, want, l)
	}
	if p := c.Previous(); p == nil || p.Key == first.Key {
		t.Fatalf("head %+v after the shutdown digest", p)
	}
	logs.Reset()
	os.Remove(filepath.Join(storeDir(st), filepath.FromSlash(c.Previous().Key)))
	if err := w.Flush(ctx, digest.KindHourly); err != nil {
		t.Fatal(err)
	}
	if l := logs.String(); !strings.Contains(l, `"level":"ERROR"`) || !strings.Contains(l, `"found":"missing"`) {
		t.Fatalf("no ERROR for the deleted head:\n%s", l)
	}
}

// storeDir is the directory of a file store (its String is file://DIR).
func storeDir(st interface{ String() string }) string {
	return strings.TrimPrefix(st.String(), "file://")
}

// TestWitness: a witnessing chain's digest names the newest valid digest of every other archiver
// chain of its day and the day before; compaction chains, its own chain and a digest copied under
// a higher seq are left out; each digest signs its own key and the archive.
func TestWitness(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	key := newKey(t)
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	write := func(c *digest.Chain, kind string, end time.Time) (string, digest.Payload) {
		t.Helper()
		k, err := c.Write(ctx, digest.Payload{Kind: kind, Start: digest.FormatTime(end.Add(-time.Hour)), End: digest.FormatTime(end), CreatedAt: digest.FormatTime(end)}, end)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(storeDir(st), filepath.FromSlash(k)))
		p, err := digest.Decode(b, key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		return k, p
	}
	a, _ := digest.OpenChain(ctx, st, key, "host-a", now, time.Time{}, nil)
	write(a, digest.KindHourly, now.Add(-24*time.Hour)) // yesterday
	aHead, _ := write(a, digest.KindShutdown, now.Add(-23*time.Hour))
	comp, _ := digest.OpenChain(ctx, st, key, "compact-2026-11-20", now, now, nil)
	write(comp, digest.KindCompaction, now)
	// A copy of host-a's head under a higher seq: not host-a's digest #99, so not its head.
	b, _ := os.ReadFile(filepath.Join(storeDir(st), filepath.FromSlash(aHead)))
	st.Put(ctx, digest.Key(now, "host-a", now, 99, digest.KindShutdown), b, digest.ContentType)

	w, _ := digest.OpenChain(ctx, st, key, "host-w", now, time.Time{}, nil)
	w.Witness()
	w.SetArchive("the-archive")
	k, p := write(w, digest.KindHourly, now)
	if p.Key != k || p.Archive != "the-archive" || !p.Bound() {
		t.Fatalf("payload key %q archive %q, want %q and the-archive", p.Key, p.Archive, k)
	}
	if len(p.Witness) != 1 || p.Witness[0].Instance != "host-a" || p.Witness[0].Key != aHead || p.Witness[0].Seq != 2 || p.Witness[0].SHA256 != digest.Sum(b) {
		t.Fatalf("witness %+v, want host-a #2 %s", p.Witness, aHead)
	}
}

// TestParseKey: the parts of a key Key writes; anything else (attacker-chosen names) is refused,
// never a panic.
func TestParseKey(t *testing.T) {
	at := time.Date(2026, 11, 20, 13, 4, 5, 0, time.UTC)
	k := digest.Key(at, "host-a", at, 42, digest.KindHourly)
	if got, ok := digest.ParseKey(k); !ok || got != (digest.KeyParts{Day: "2026-11-20", Instance: "host-a", Seq: 42, Kind: digest.KindHourly}) {
		t.Fatalf("%s: %+v %v", k, got, ok)
	}
	for _, bad := range []string{
		"", "_digests/", "_digests/2026/11/20/host-a/", "_digests/2026/13/20/host-a/130405-0000000042-hourly.json",
		"_digests/2026/11/20/host-a/130405-42-hourly.json", "_digests/2026/11/20/host-a/130405-00000000x2-hourly.json",
		"_digests/2026/11/20/host-a/x/130405-0000000042-hourly.json", "_digests/2026/11/20/host-a/130405-0000000042-hourly.txt",
		"dt=2026-11-20/130405-0000000042-hourly.json", "_digests/2026/11/20/host-a/130405-99999999999999999999-hourly.json",
	} {
		if got, ok := digest.ParseKey(bad); ok {
			t.Errorf("%q parsed as %+v", bad, got)
		}
	}
}

// TestRecoverForgetsWhatItResolved: after a crash, recovery lists a recorded object whose bytes
// are as recorded and forgets the recorded names it resolved otherwise (never stored, or holding
// other bytes, such as an object planted under the name), so the next start neither looks at
// nor warns about them again.
func TestRecoverForgetsWhatItResolved(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	key := newKey(t)
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	jpath := filepath.Join(t.TempDir(), digest.JournalFile)
	j, _ := digest.OpenJournal(jpath)
	defer j.Close()
	c, _ := digest.OpenChain(ctx, st, key, "host-a", now, time.Time{}, nil)
	if err := c.UseJournal(ctx, j); err != nil {
		t.Fatal(err)
	}
	rec := digest.NewRecorder(st, nil, nil)
	rec.UseJournal(j)
	kept := layout.ObjectKey("2026-11-20", "host-a", 1, 0, false)
	if err := rec.Put(ctx, kept, []byte("kept\n"), layout.ContentType); err != nil {
		t.Fatal(err)
	}
	planted := layout.ObjectKey("2026-11-20", "host-a", 2, 0, false)
	never := layout.ObjectKey("2026-11-20", "host-a", 3, 0, false)
	for k, sum := range map[string]string{planted: digest.Sum([]byte("ours\n")), never: digest.Sum([]byte("lost\n"))} {
		if err := j.Intend(k, sum); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Put(ctx, planted, []byte("planted\n"), layout.ContentType); err != nil {
		t.Fatal(err)
	}
	// The crash: a new process of host-a recovers.
	var logs bytes.Buffer
	c2, _ := digest.OpenChain(ctx, st, key, "host-a", now, time.Time{}, nil)
	if err := c2.UseJournal(ctx, j); err != nil {
		t.Fatal(err)
	}
	w := &digest.Writer{Recorder: digest.NewRecorder(st, nil, nil), Chain: c2, Now: func() time.Time { return now }, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	if err := w.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), planted) {
		t.Fatalf("no warning about the planted object: %s", logs.String())
	}
	if got := j.Intents(); len(got) != 1 || got[kept] == "" {
		t.Fatalf("recorded after recovery: %v, want only %s (listed by the next digest)", got, kept)
	}
}

// TestStartNewChainWithJournal: a spool's first chain (journal without a head, no digest in the
// store) starts with a start digest that lists nothing, even when Recover found objects a crashed
// earlier process recorded (they go into the next digest, which the journal then forgets), and the
// journal remembers the start digest as the head. A process after a crash right after the start
// digest continues the chain from it: StartNewChain writes nothing then, and the next digest's span
// begins where the start digest's ended.
func TestStartNewChainWithJournal(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	now := time.Date(2026, 11, 20, 10, 30, 0, 0, time.UTC)
	jpath := filepath.Join(t.TempDir(), digest.JournalFile)
	j, _ := digest.OpenJournal(jpath)
	// A process that crashed before any digest: one object recorded and stored.
	rec := digest.NewRecorder(st, nil, nil)
	rec.UseJournal(j)
	obj := layout.ObjectKey("2026-11-20", "host-a", 1, 0, false)
	if err := rec.Put(ctx, obj, []byte("x\n"), layout.ContentType); err != nil {
		t.Fatal(err)
	}
	j.Close()

	open := func() (*digest.Journal, *digest.Writer) {
		t.Helper()
		j, err := digest.OpenJournal(jpath)
		if err != nil {
			t.Fatal(err)
		}
		c, err := digest.OpenChain(ctx, st, key, "host-a", now, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Witness()
		if err := c.UseJournal(ctx, j); err != nil {
			t.Fatal(err)
		}
		w := &digest.Writer{Recorder: digest.NewRecorder(st, nil, nil), Chain: c, Interval: time.Hour, Now: func() time.Time { return now }}
		w.Recorder.UseJournal(j)
		if err := w.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		return j, w
	}
	j, w := open()
	if w.Chain.Previous() != nil {
		t.Fatal("a fresh spool's chain continues")
	}
	w.StartNewChain(ctx)
	objs, _ := st.List(ctx, digest.InstancePrefix(now, "host-a"))
	if len(objs) != 1 {
		t.Fatalf("after StartNewChain: %v; want the start digest", objs)
	}
	first, err := digest.Decode(readKey(t, st, objs[0].Key), pub)
	if err != nil {
		t.Fatal(err)
	}
	if first.Kind != digest.KindStart || first.Seq != 1 || first.Start != first.End || len(first.Objects) != 0 {
		t.Fatalf("start digest %+v; want kind start, seq 1, an empty span, no objects", first)
	}
	if h, ok := j.Head(); !ok || h.Key != objs[0].Key || h.Kind != digest.KindStart || h.Seq != 1 {
		t.Fatalf("journal head %+v %v; want the start digest", h, ok)
	}
	if got := j.Intents(); got[obj] == "" {
		t.Fatalf("the recovered object was forgotten by the start digest, which does not list it: %v", got)
	}
	// The crash right after the start digest (w is never closed): the next process continues the
	// chain.
	j.Close()
	now = now.Add(10 * time.Minute)
	j, w = open()
	defer j.Close()
	if p := w.Chain.Previous(); p == nil || p.Key != objs[0].Key {
		t.Fatalf("after the crash the chain continues from %+v, want the start digest %s", p, objs[0].Key)
	}
	w.StartNewChain(ctx)
	if again, _ := st.List(ctx, digest.InstancePrefix(now, "host-a")); len(again) != 1 {
		t.Fatalf("StartNewChain on a continuing chain wrote a digest: %v", again)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	objs, _ = st.List(ctx, digest.InstancePrefix(now, "host-a"))
	var last digest.Payload
	for _, o := range objs {
		if p, err := digest.Decode(readKey(t, st, o.Key), pub); err == nil && p.Seq == 2 {
			last = p
		}
	}
	if last.Kind != digest.KindShutdown || last.Start != first.End || len(last.Objects) != 1 || last.Objects[0].Key != obj {
		t.Fatalf("second digest %+v; want the shutdown digest from the start digest's end, listing %s", last, obj)
	}
	if got := j.Intents(); len(got) != 0 {
		t.Fatalf("recorded after the shutdown digest: %v", got)
	}
}
