package compact_test

import (
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/compact"
	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

const day = "2026-11-20"

var t0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func openStore(t testing.TB) compact.Store {
	st, err := storage.Open(context.Background(), storage.Options{URL: "file://" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return st.(compact.Store)
}

func put(t testing.TB, st compact.Store, instance string, seq uint64, recs ...[2]any) {
	var lines []byte
	for _, r := range recs {
		lines = layout.AppendRecord(lines, []byte(r[0].(string)), layout.Archive{ReceivedAt: t0.Add(r[1].(time.Duration)), Instance: instance, Signature: "none"})
	}
	body, _ := layout.EncodeObject(lines, true)
	if err := st.Put(context.Background(), layout.ObjectKey(day, instance, seq, 0, true), body, layout.ContentType); err != nil {
		t.Fatal(err)
	}
}

// seal writes, for each instance, a signed digest listing its objects of the day that no digest of
// this test listed yet (what the archivers' digest writers do).
func seal(t testing.TB, st compact.Store, key ed25519.PrivateKey, sealed map[string]bool) {
	ctx := context.Background()
	objs, _ := st.List(ctx, layout.DayPrefix(day))
	byInst := map[string][]digest.Entry{}
	for _, o := range objs {
		if sealed[o.Key] || layout.IsCompactedKey(o.Key) {
			continue
		}
		sealed[o.Key] = true
		rc, _ := st.Get(ctx, o.Key)
		b, _ := io.ReadAll(rc)
		rc.Close()
		e, _ := digest.Describe(o.Key, b)
		inst := o.Key[len(layout.DayPrefix(day)):strings.Index(o.Key, "-0")]
		byInst[inst] = append(byInst[inst], e)
	}
	for inst, entries := range byInst {
		c, err := digest.OpenChain(ctx, st, key, inst, t0, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Each digest spans the whole day, as an instance running all day covers it (verify, and
		// so compaction, require every hour of the day covered).
		from, at := t0.Truncate(24*time.Hour), t0.Truncate(24*time.Hour).Add(24*time.Hour)
		if c.Previous() != nil {
			at = at.Add(time.Minute)
		}
		if _, err := c.Write(ctx, digest.Payload{Kind: digest.KindShutdown, Start: digest.FormatTime(from), End: digest.FormatTime(at), Objects: entries, CreatedAt: digest.FormatTime(at)}, at); err != nil {
			t.Fatal(err)
		}
	}
}

func readDay(t testing.TB, st compact.Store) (keys []string, lines []string) {
	objs, _ := st.List(context.Background(), layout.DayPrefix(day))
	for _, o := range objs {
		keys = append(keys, o.Key)
		rc, _ := st.Get(context.Background(), o.Key)
		zr, _ := gzip.NewReader(rc)
		b, _ := io.ReadAll(zr)
		rc.Close()
		lines = append(lines, strings.Split(strings.TrimSpace(string(b)), "\n")...)
	}
	return keys, lines
}

// TestCompactMerge: copies identical but for the archive field collapse to the earliest; bodies
// that differ (a marked repeat) stay; the result is sorted by received_at and split by FlushBytes.
func TestCompactMerge(t *testing.T) {
	st := openStore(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	put(t, st, "ra", 1, [2]any{`{"s":"a"}`, 3 * time.Second}, [2]any{`{"s":"b"}`, 1 * time.Second})
	put(t, st, "rb", 1, [2]any{`{"s":"a"}`, 2 * time.Second}, [2]any{`{"s":"b","repeat":true}`, 5 * time.Second}, [2]any{`{"s":"c"}`, 4 * time.Second})
	sealed := map[string]bool{}
	seal(t, st, key, sealed)
	res, err := compact.Compact(context.Background(), st, compact.Options{Day: day, Key: key, DeleteOriginals: true, FlushBytes: 250, Gzip: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 5 || res.Kept != 4 || res.Collapsed != 1 || len(res.Deleted) != 2 {
		t.Fatalf("%+v", res)
	}
	keys, lines := readDay(t, st)
	if len(keys) < 2 {
		t.Errorf("FlushBytes 250 should split 4 records: %v", keys)
	}
	var got []string
	for _, l := range lines {
		got = append(got, l[:strings.Index(l, `,"archive"`)]+"@"+l[strings.Index(l, "T08:00:0")+8:][:1]+"/"+l[strings.LastIndex(l, `"instance":"`)+12:][:2])
	}
	want := `{"s":"b"@1/ra {"s":"a"@2/rb {"s":"c"@4/rb {"s":"b","repeat":true@5/rb`
	if strings.Join(got, " ") != want {
		t.Fatalf("compacted:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	// Rerun: nothing changes.
	res, err = compact.Compact(context.Background(), st, compact.Options{Day: day, Key: key, DeleteOriginals: true, FlushBytes: 250, Gzip: true})
	if err != nil || !res.Unchanged {
		t.Fatalf("rerun: %+v %v", res, err)
	}
	// A late object: merged with the earlier compaction, which is replaced.
	put(t, st, "rc", 1, [2]any{`{"s":"d"}`, time.Duration(0)})
	seal(t, st, key, sealed)
	if _, err := compact.Compact(context.Background(), st, compact.Options{Day: day, Key: key, DeleteOriginals: true, FlushBytes: 1 << 20, Gzip: true}); err != nil {
		t.Fatal(err)
	}
	keys, lines = readDay(t, st)
	if len(keys) != 1 || len(lines) != 5 || !strings.HasPrefix(lines[0], `{"s":"d"`) {
		t.Fatalf("after a late object: %v\n%s", keys, strings.Join(lines, "\n"))
	}
}

// TestCompactRefusesWhatDigestsDoNotVouchFor: an altered or inserted object stops compaction
// before anything is written, so tampering is never laundered into signed compacted objects.
func TestCompactRefusesWhatDigestsDoNotVouchFor(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(st compact.Store)
		want   string
	}{
		{"altered", func(st compact.Store) {
			st.Delete(context.Background(), layout.ObjectKey(day, "ra", 1, 0, true))
			put(t, st, "ra", 1, [2]any{`{"s":"forged"}`, time.Second})
		}, "altered"},
		{"inserted", func(st compact.Store) { put(t, st, "evil", 1, [2]any{`{"s":"x"}`, time.Second}) }, "unlisted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := openStore(t)
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			put(t, st, "ra", 1, [2]any{`{"s":"a"}`, time.Second})
			seal(t, st, key, map[string]bool{})
			c.damage(st)
			before, _ := st.List(context.Background(), "")
			_, err := compact.Compact(context.Background(), st, compact.Options{Day: day, Key: key, DeleteOriginals: true, FlushBytes: 1 << 20, Gzip: true})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("err %v", err)
			}
			after, _ := st.List(context.Background(), "")
			if len(before) != len(after) {
				t.Fatalf("the store changed: %d -> %d keys", len(before), len(after))
			}
		})
	}
}

// TestCompactRefusesPendingObjects: an object named like a running instance's and stored after its
// last hourly digest is not provable yet (a planted one looks the same): compaction refuses the
// day rather than sign it, and changes nothing.
func TestCompactRefusesPendingObjects(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := storage.Open(ctx, storage.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	st := s.(compact.Store)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	put(t, st, "ra", 1, [2]any{`{"s":"a"}`, -time.Hour})
	rc, _ := st.Get(ctx, layout.ObjectKey(day, "ra", 1, 0, true))
	b, _ := io.ReadAll(rc)
	rc.Close()
	e, _ := digest.Describe(layout.ObjectKey(day, "ra", 1, 0, true), b)
	c, err := digest.OpenChain(ctx, st, key, "ra", t0, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	from := t0.Truncate(24 * time.Hour)
	if _, err := c.Write(ctx, digest.Payload{Kind: digest.KindHourly, Start: digest.FormatTime(from), End: digest.FormatTime(t0), Objects: []digest.Entry{e}, CreatedAt: digest.FormatTime(t0)}, t0); err != nil {
		t.Fatal(err)
	}
	put(t, st, "ra", 2, [2]any{`{"s":"forged"}`, time.Minute}) // planted while ra runs
	at := t0.Add(5 * time.Minute)
	if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(layout.ObjectKey(day, "ra", 2, 0, true))), at, at); err != nil {
		t.Fatal(err)
	}
	before, _ := st.List(ctx, "")
	_, err = compact.Compact(ctx, st, compact.Options{Day: day, Key: key, DeleteOriginals: true, FlushBytes: 1 << 20, Gzip: true,
		Now: func() time.Time { return t0.Add(10 * time.Minute) }})
	if err == nil || !strings.Contains(err.Error(), "after their running instance's last digest") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("err %v", err)
	}
	if after, _ := st.List(ctx, ""); len(before) != len(after) {
		t.Fatalf("the store changed: %d -> %d keys", len(before), len(after))
	}
}

// TestCompactRejectsBadInput: a damaged object stops the run before anything is written.
func TestCompactRejectsBadInput(t *testing.T) {
	st := openStore(t)
	put(t, st, "ra", 1, [2]any{`{"s":"a"}`, time.Duration(0)})
	st.Put(context.Background(), layout.ObjectKey(day, "rb", 1, 0, true), []byte("not gzip"), layout.ContentType)
	_, err := compact.Compact(context.Background(), st, compact.Options{Day: day, FlushBytes: 1 << 20, Gzip: true})
	if err == nil || !strings.Contains(err.Error(), "not gzip") {
		t.Fatalf("err %v", err)
	}
	keys, _ := st.List(context.Background(), layout.DayPrefix(day))
	if len(keys) != 2 {
		t.Fatalf("objects changed: %v", keys)
	}
	for _, bad := range []string{"", "2026-02-30", "yesterday"} {
		if _, err := compact.Compact(context.Background(), st, compact.Options{Day: bad, FlushBytes: 1}); err == nil {
			t.Errorf("day %q accepted", bad)
		}
	}
}
