package verify_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/archiver/verify"
)

var day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

type world struct {
	t     *testing.T
	dir   string
	st    storage.Store
	key   ed25519.PrivateKey
	chain *digest.Chain
	rec   *digest.Recorder
	seq   uint64
	keys  []string // digests in order
}

func newWorld(t *testing.T) *world {
	dir := t.TempDir()
	st, err := storage.Open(context.Background(), storage.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	c, err := digest.OpenChain(context.Background(), st, key, "host-a", day0, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, dir: dir, st: st, key: key, chain: c, rec: digest.NewRecorder(st, nil, nil)}
}

// object stores one record received at at, through the Recorder.
func (w *world) object(at time.Time) string {
	w.seq++
	key := layout.ObjectKey(layout.Day(at, nil), "host-a", w.seq, 0, true)
	body, _ := layout.EncodeObject(layout.AppendRecord(nil, []byte(`{"n":1}`), layout.Archive{ReceivedAt: at, Instance: "host-a"}), true)
	if err := w.rec.Put(context.Background(), key, body, layout.ContentType); err != nil {
		w.t.Fatal(err)
	}
	return key
}

// digest writes a digest of kind over start..end with what was recorded.
func (w *world) digest(kind string, start, end time.Time) string {
	k, err := w.chain.Write(context.Background(), digest.Payload{Kind: kind, Start: digest.FormatTime(start), End: digest.FormatTime(end), Objects: w.rec.Take(), CreatedAt: digest.FormatTime(end)}, end)
	if err != nil {
		w.t.Fatal(err)
	}
	w.keys = append(w.keys, k)
	return k
}

func (w *world) verify(pub ed25519.PublicKey) []verify.Problem {
	if pub == nil {
		pub = w.key.Public().(ed25519.PublicKey)
	}
	ps, _, err := verify.Verify(context.Background(), w.st, verify.Options{From: "2026-11-20", PublicKey: pub, Now: func() time.Time { return day0.AddDate(0, 1, 0) }})
	if err != nil {
		w.t.Fatal(err)
	}
	return ps
}

func kinds(ps []verify.Problem) string {
	var k []string
	for _, p := range ps {
		k = append(k, p.Kind)
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}

// hours builds a clean day: hourly digests 00..24, an object in some hours, none in others.
func (w *world) hours() {
	for h := 0; h < 24; h++ {
		start := day0.Add(time.Duration(h) * time.Hour)
		if h%3 == 0 {
			w.object(start.Add(time.Minute))
		}
		w.digest(digest.KindHourly, start, start.Add(time.Hour))
	}
	w.digest(digest.KindShutdown, day0.Add(24*time.Hour), day0.Add(24*time.Hour+time.Minute))
}

func TestVerifyFindsEachProblem(t *testing.T) {
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		name  string
		setup func(w *world)
		pub   func(w *world) ed25519.PublicKey
		want  string
	}{
		{"clean", func(w *world) {}, nil, ""},
		{"altered object", func(w *world) {
			p := filepath.Join(w.dir, "dt=2026-11-20", "host-a-00000000000000000001-000.jsonl.gz")
			b, _ := os.ReadFile(p)
			b[len(b)-5] ^= 1
			os.WriteFile(p, b, 0o644)
		}, nil, "altered"},
		{"deleted object", func(w *world) {
			os.Remove(filepath.Join(w.dir, "dt=2026-11-20", "host-a-00000000000000000002-000.jsonl.gz"))
		}, nil, "missing"},
		{"inserted object", func(w *world) {
			b, _ := os.ReadFile(filepath.Join(w.dir, "dt=2026-11-20", "host-a-00000000000000000002-000.jsonl.gz"))
			os.WriteFile(filepath.Join(w.dir, "dt=2026-11-20", "evil-00000000000000000001-000.jsonl.gz"), b, 0o644)
		}, nil, "unlisted"},
		{"inserted rejected sample", func(w *world) {
			os.MkdirAll(filepath.Join(w.dir, "_rejected", "dt=2026-11-20"), 0o755)
			os.WriteFile(filepath.Join(w.dir, "_rejected", "dt=2026-11-20", "evil-00000000000000000001.json"), []byte(`{}`), 0o644)
		}, nil, "unlisted"},
		{"deleted empty-hour digest", func(w *world) {
			os.Remove(filepath.Join(w.dir, filepath.FromSlash(w.keys[5])))
		}, nil, "chain_broken,gap,uncovered"},
		{"deleted digest with an object", func(w *world) {
			os.Remove(filepath.Join(w.dir, filepath.FromSlash(w.keys[6])))
		}, nil, "chain_broken,gap,uncovered,unlisted"},
		{"deleted last digests", func(w *world) {
			for _, k := range w.keys[20:] {
				os.Remove(filepath.Join(w.dir, filepath.FromSlash(k)))
			}
		}, nil, "gap,uncovered,unlisted"}, // no digest vouches for 20:00..24:00 any more
		{"altered digest", func(w *world) {
			p := filepath.Join(w.dir, filepath.FromSlash(w.keys[3]))
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), `"records":1`, `"records":2`, 1)), 0o644)
		}, nil, "bad_signature,chain_broken,uncovered"}, // a digest that does not verify covers nothing
		{"wrong public key", func(w *world) {}, func(w *world) ed25519.PublicKey { return otherKey.Public().(ed25519.PublicKey) }, strings.Repeat("bad_signature,", 25) + "uncovered"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.hours()
			c.setup(w)
			var pub ed25519.PublicKey
			if c.pub != nil {
				pub = c.pub(w)
			}
			ps := w.verify(pub)
			if got := kinds(ps); got != c.want {
				t.Fatalf("problems %q, want %q: %+v", got, c.want, ps)
			}
		})
	}
}

// TestVerifyCrashGap: after a crash (no shutdown digest) the next process's digests show the gap;
// after a clean shutdown the pause is not a gap, but its hours are uncovered (no instance vouches
// for them), as is the rest of the day after the last shutdown.
func TestVerifyCrashGap(t *testing.T) {
	for _, c := range []struct {
		kind string
		want string
	}{{digest.KindHourly, "gap,uncovered,uncovered"}, {digest.KindShutdown, "uncovered,uncovered"}} {
		w := newWorld(t)
		w.digest(digest.KindHourly, day0, day0.Add(time.Hour))
		w.digest(c.kind, day0.Add(time.Hour), day0.Add(90*time.Minute))
		// restart three hours later
		w.digest(digest.KindHourly, day0.Add(5*time.Hour), day0.Add(6*time.Hour))
		w.digest(digest.KindShutdown, day0.Add(6*time.Hour), day0.Add(6*time.Hour+time.Minute))
		if got := kinds(w.verify(nil)); got != c.want {
			t.Errorf("after a %s digest: %q, want %q", c.kind, got, c.want)
		}
	}
}

// TestVerifyCoverage: every hour of the day up to now needs a digest. An hour without objects is
// covered by its (empty) hourly digest; hours no digest touches are uncovered, as is a day with
// no digest at all (a problem, not an error); the hours of the archive's first day before its
// first digest are not.
func TestVerifyCoverage(t *testing.T) {
	check := func(w *world, from string, now time.Time) []verify.Problem {
		t.Helper()
		ps, _, err := verify.Verify(context.Background(), w.st, verify.Options{From: from, PublicKey: w.key.Public().(ed25519.PublicKey), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	later := day0.AddDate(0, 1, 0)
	t.Run("empty hours are covered", func(t *testing.T) {
		w := newWorld(t)
		w.hours() // objects only every third hour
		if ps := check(w, "2026-11-20", later); len(ps) != 0 {
			t.Fatalf("%+v", ps)
		}
	})
	t.Run("the archive's first hours and the hour under way need none", func(t *testing.T) {
		w := newWorld(t)
		w.object(day0.Add(9*time.Hour + time.Minute))
		w.digest(digest.KindHourly, day0.Add(9*time.Hour), day0.Add(10*time.Hour))
		w.digest(digest.KindHourly, day0.Add(10*time.Hour), day0.Add(11*time.Hour))
		if ps := check(w, "2026-11-20", day0.Add(11*time.Hour+30*time.Minute)); len(ps) != 0 {
			t.Fatalf("%+v", ps)
		}
		// Two hours later nothing covers 11:00..13:00 (the instance is gone without a trace).
		ps := check(w, "2026-11-20", day0.Add(13*time.Hour+30*time.Minute))
		if kinds(ps) != "gap,uncovered" || !strings.Contains(ps[1].Detail, "11:00 .. 13:00") {
			t.Fatalf("%+v", ps)
		}
	})
	t.Run("hours between two runs", func(t *testing.T) {
		w := newWorld(t)
		w.hours()
		// Digests of 03:00..06:00 deleted with whatever they listed: the chain breaks, and the
		// hours are uncovered.
		for _, k := range w.keys[3:6] {
			os.Remove(filepath.Join(w.dir, filepath.FromSlash(k)))
		}
		ps := check(w, "2026-11-20", later)
		var unc []string
		for _, p := range ps {
			if p.Kind == verify.Uncovered {
				unc = append(unc, p.Detail)
			}
		}
		if len(unc) != 1 || !strings.Contains(unc[0], "03:00 .. 06:00") {
			t.Fatalf("%+v", ps)
		}
	})
	t.Run("a day with no digest", func(t *testing.T) {
		w := newWorld(t)
		w.hours()
		ps := check(w, "2026-11-22", later)
		if kinds(ps) != "uncovered" || ps[0].Day != "2026-11-22" {
			t.Fatalf("%+v", ps)
		}
	})
}

// TestVerifyDuplicateSeq: two digests with one sequence number in a chain (a second process
// writing the chain, both with the key) break it, even though each is in its place.
func TestVerifyDuplicateSeq(t *testing.T) {
	w := newWorld(t)
	w.digest(digest.KindHourly, day0, day0.Add(time.Hour))
	other, err := digest.OpenChain(context.Background(), w.st, w.key, "host-a", day0, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Both continue from #1.
	w.digest(digest.KindShutdown, day0.Add(time.Hour), day0.Add(time.Hour+time.Minute))
	if _, err := other.Write(context.Background(), digest.Payload{Kind: digest.KindShutdown, Start: digest.FormatTime(day0.Add(time.Hour)), End: digest.FormatTime(day0.Add(time.Hour + 2*time.Minute)), CreatedAt: digest.FormatTime(day0)}, day0.Add(time.Hour+2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	ps, _, err := verify.Verify(context.Background(), w.st, verify.Options{From: "2026-11-20", PublicKey: w.key.Public().(ed25519.PublicKey), Now: func() time.Time { return day0.Add(90 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	if kinds(ps) != "chain_broken,chain_broken" || !strings.Contains(ps[0].Detail+ps[1].Detail, "a second digest #2") {
		t.Fatalf("%+v", ps)
	}
}

// TestVerifyVersion1: a version 1 digest (no key, no archive) is accepted and counted as unbound;
// one filed under another instance's name is still misplaced.
func TestVerifyVersion1(t *testing.T) {
	w := newWorld(t)
	key := w.object(day0.Add(time.Minute))
	entries := w.rec.Take()
	p := digest.Payload{Version: 1, Kind: digest.KindShutdown, Instance: "host-a", Seq: 1, Start: digest.FormatTime(day0), End: digest.FormatTime(day0.Add(time.Hour)),
		KeyID: digest.KeyID(w.key.Public().(ed25519.PublicKey)), Objects: entries, CreatedAt: digest.FormatTime(day0)}
	payload, _ := json.Marshal(p)
	body, _ := json.Marshal(digest.File{Payload: payload, Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(w.key, payload))})
	dk := digest.Key(day0, "host-a", day0.Add(time.Hour), 1, digest.KindShutdown)
	if err := w.st.Put(context.Background(), dk, body, digest.ContentType); err != nil {
		t.Fatal(err)
	}
	opts := verify.Options{From: "2026-11-20", PublicKey: w.key.Public().(ed25519.PublicKey), Now: func() time.Time { return day0.Add(90 * time.Minute) }}
	r, err := verify.Check(context.Background(), w.st, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 0 || r.Summary.Unbound != 1 || r.Summary.Objects != 1 {
		t.Fatalf("%+v %+v (object %s)", r.Problems, r.Summary, key)
	}
	if err := w.st.Put(context.Background(), strings.Replace(dk, "/host-a/", "/host-b/", 1), body, digest.ContentType); err != nil {
		t.Fatal(err)
	}
	r, _ = verify.Check(context.Background(), w.st, opts)
	if kinds(r.Problems) != "misplaced" {
		t.Fatalf("%+v", r.Problems)
	}
}

// TestVerifyPending: an object stored after its running instance's last hourly digest is pending
// (counted, not a problem) until the next digest is due; then it is unlisted.
func TestVerifyPending(t *testing.T) {
	w := newWorld(t)
	w.digest(digest.KindHourly, day0, day0.Add(time.Hour))
	obj := w.object(day0.Add(time.Hour + time.Minute)) // recorded, in no digest yet
	stored := day0.Add(time.Hour + time.Minute)
	w.storedAt(obj, stored)
	check := w.verifyAt
	if ps, sum := check(day0.Add(time.Hour + 30*time.Minute)); len(ps) != 0 || sum.Pending != 1 {
		t.Fatalf("while running: %+v %+v", ps, sum)
	}
	ps, sum := check(day0.Add(3 * time.Hour))
	if kinds(ps) != "gap,uncovered,unlisted" || sum.Pending != 0 || ps[2].Key != obj {
		t.Fatalf("two hours later: %+v %+v", ps, sum)
	}
}

// TestVerifyPendingExactInstance: an object counts as pending only for its own instance's running
// chain. Another instance whose name merely starts with the running one's ("host-a-1", like a
// store-mode suffix starting with a digit) has no running chain: its object is unlisted. The
// running instance's own rejected sample is pending like its objects.
func TestVerifyPendingExactInstance(t *testing.T) {
	w := newWorld(t)
	w.digest(digest.KindHourly, day0, day0.Add(time.Hour))
	stored := day0.Add(time.Hour + time.Minute)
	body, _ := layout.EncodeObject(layout.AppendRecord(nil, []byte(`{"n":1}`), layout.Archive{ReceivedAt: stored, Instance: "host-a-1"}), true)
	planted := layout.ObjectKey("2026-11-20", "host-a-1", 1, 0, true)
	sample := layout.RejectedKey("2026-11-20", "host-a", 1)
	for key, b := range map[string][]byte{planted: body, sample: []byte(`{}`)} {
		p := filepath.Join(w.dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, stored, stored); err != nil {
			t.Fatal(err)
		}
	}
	now := day0.Add(time.Hour + 30*time.Minute)
	ps, sum, err := verify.Verify(context.Background(), w.st, verify.Options{From: "2026-11-20", PublicKey: w.key.Public().(ed25519.PublicKey), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Kind != verify.Unlisted || ps[0].Key != planted || sum.Pending != 1 {
		t.Fatalf("want only %s unlisted and the sample pending; got %+v %+v", planted, ps, sum)
	}
}

// TestVerifyStartDigest: a chain's start digest (store mode, empty span) makes the chain running
// like an hourly digest: objects stored after it are pending, and without a next digest within the
// hour verify reports the gap. Its empty span vouches for no hour.
func TestVerifyStartDigest(t *testing.T) {
	w := newWorld(t)
	at := day0.Add(30 * time.Minute)
	w.digest(digest.KindStart, at, at)
	obj := w.object(at.Add(time.Minute))
	stored := at.Add(time.Minute)
	w.storedAt(obj, stored)
	check := w.verifyAt
	if ps, sum := check(at.Add(20 * time.Minute)); len(ps) != 0 || sum.Pending != 1 {
		t.Fatalf("while running: %+v %+v", ps, sum)
	}
	ps, sum := check(day0.Add(3 * time.Hour))
	if kinds(ps) != "gap,uncovered,unlisted" || sum.Pending != 0 {
		t.Fatalf("after a crash: %+v %+v", ps, sum)
	}
	for _, p := range ps {
		if p.Kind == verify.Uncovered && !strings.Contains(p.Detail, "00:00 .. 02:00") {
			t.Errorf("the empty span covered an hour: %+v", p)
		}
	}
}

// TestCheckPerDay: Check's per-day results (what archiver report reads): the range's days, then the
// neighbour days read with Margin, each with its own objects and problems.
func TestCheckPerDay(t *testing.T) {
	w := newWorld(t)
	w.hours()
	os.Remove(filepath.Join(w.dir, "dt=2026-11-20", "host-a-00000000000000000002-000.jsonl.gz"))
	r, err := verify.Check(context.Background(), w.st, verify.Options{From: "2026-11-20", To: "2026-11-21", Margin: 1, PublicKey: w.key.Public().(ed25519.PublicKey), Now: func() time.Time { return day0.AddDate(0, 1, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range r.Days {
		got = append(got, fmt.Sprintf("%s/%v/%d/%s", d.Day, d.InRange, d.Objects, kinds(d.Problems)))
	}
	want := "2026-11-20/true/7/missing 2026-11-21/true/0/uncovered 2026-11-19/false/0/ 2026-11-22/false/0/"
	if strings.Join(got, " ") != want {
		t.Fatalf("days %s\nwant %s", strings.Join(got, " "), want)
	}
	if len(r.Instances) != 1 || r.Instances[0].FirstSeq != 1 || r.Instances[0].LastSeq != 25 || r.Instances[0].LastKind != digest.KindShutdown {
		t.Fatalf("instances %+v", r.Instances)
	}
}

// TestVerifyPendingNotInTheFuture: an object dated after now (a file store's mtime can be set) is
// unlisted, never pending.
func TestVerifyPendingNotInTheFuture(t *testing.T) {
	w := newWorld(t)
	now := time.Now().UTC()
	w.digest(digest.KindHourly, now.Add(-time.Hour), now.Add(-10*time.Minute))
	key := w.object(now.Add(-5 * time.Minute))
	future := now.Add(48 * time.Hour)
	w.storedAt(key, future)
	ps, sum, err := verify.Verify(context.Background(), w.st, verify.Options{From: layout.Day(now, nil), PublicKey: w.key.Public().(ed25519.PublicKey), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Pending != 0 || !strings.Contains(kinds(ps), "unlisted") {
		t.Fatalf("%+v %+v", ps, sum)
	}
}

// storedAt sets the stored time of an object of the file store (its mtime).
func (w *world) storedAt(key string, at time.Time) {
	w.t.Helper()
	if err := os.Chtimes(filepath.Join(w.dir, filepath.FromSlash(key)), at, at); err != nil {
		w.t.Fatal(err)
	}
}

// verifyAt verifies the days from 2026-11-20 as if it were now.
func (w *world) verifyAt(now time.Time) ([]verify.Problem, verify.Summary) {
	w.t.Helper()
	ps, sum, err := verify.Verify(context.Background(), w.st, verify.Options{From: "2026-11-20", PublicKey: w.key.Public().(ed25519.PublicKey), Now: func() time.Time { return now }})
	if err != nil {
		w.t.Fatal(err)
	}
	return ps, sum
}
