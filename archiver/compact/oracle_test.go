package compact_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/livehook/terraform-provider-livehook/archiver/compact"
	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// oracle is compaction as a whole-day, in-memory computation: every line read, the earliest copy
// of each callback kept (smaller line on equal received_at), sorted by (received_at, line), split
// by flushBytes, named by the hash of all lines. Compact must write exactly these objects.
func oracle(t *testing.T, st compact.Store, flushBytes int64, gz bool) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	objs, err := st.List(ctx, layout.DayPrefix(day))
	if err != nil {
		t.Fatal(err)
	}
	type record struct {
		at   string
		line []byte
	}
	best := map[[32]byte]record{}
	for _, ob := range objs {
		ok, isGz := layout.IsObjectKey(ob.Key)
		if !ok {
			continue
		}
		lines, err := storage.ReadAll(ctx, st, ob.Key)
		if err != nil {
			t.Fatal(err)
		}
		if isGz {
			zr, err := gzip.NewReader(bytes.NewReader(lines))
			if err != nil {
				t.Fatal(err)
			}
			if lines, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		for len(lines) > 0 {
			i := bytes.IndexByte(lines, '\n')
			var line []byte
			if i < 0 {
				line, lines = append(lines[:len(lines):len(lines)], '\n'), nil
			} else {
				line, lines = lines[:i+1], lines[i+1:]
			}
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			id := sha256.Sum256(line[:bytes.LastIndex(line, []byte(`"archive":{"received_at":"`))])
			r := record{at: string(digest.ReceivedAt(line)), line: line}
			if cur, ok := best[id]; !ok || r.at < cur.at || (r.at == cur.at && bytes.Compare(r.line, cur.line) < 0) {
				best[id] = r
			}
		}
	}
	var recs []record
	for _, r := range best {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].at != recs[j].at {
			return recs[i].at < recs[j].at
		}
		return bytes.Compare(recs[i].line, recs[j].line) < 0
	})
	h := sha256.New()
	var chunks [][]byte
	var cur []byte
	for _, r := range recs {
		h.Write(r.line)
		if len(cur) > 0 && int64(len(cur)+len(r.line)) > flushBytes {
			chunks, cur = append(chunks, cur), nil
		}
		cur = append(cur, r.line...)
	}
	chunks = append(chunks, cur)
	set := hex.EncodeToString(h.Sum(nil))
	want := map[string][]byte{}
	for i, c := range chunks {
		body, err := layout.EncodeObject(c, gz)
		if err != nil {
			t.Fatal(err)
		}
		want[layout.CompactedKey(day, set, i+1, len(chunks), gz)] = body
	}
	return want
}

type rec struct {
	body string
	at   time.Duration // after t0
	inst string        // archive.instance: copies differ only there
}

func line(r rec) []byte {
	return layout.AppendRecord(nil, []byte(r.body), layout.Archive{ReceivedAt: t0.Add(r.at), Instance: r.inst, Signature: "none"})
}

type object struct {
	key   string
	lines []byte // as stored, before gzip
}

func obj(inst string, seq uint64, gz bool, recs ...rec) object {
	var b []byte
	for _, r := range recs {
		b = append(b, line(r)...)
	}
	return object{layout.ObjectKey(day, inst, seq, 0, gz), b}
}

// randomDay is n records over objs objects of two replicas, out of order within objects, with
// received_at at millisecond granularity (so equal received_at happen), redelivered copies
// (earlier, later and at the same instant) and repeated bodies.
func randomDay(seed uint64, n, objs int) []object {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]object, objs)
	for i := range out {
		out[i].key = layout.ObjectKey(day, []string{"ra", "rb"}[i%2], uint64(i/2+1), 0, i%3 != 0)
	}
	for i := range n {
		r := rec{body: fmt.Sprintf(`{"stream":"s%d","pad":"%s"}`, rng.IntN(n), bytes.Repeat([]byte("x"), rng.IntN(200))), at: time.Duration(rng.IntN(n)) * time.Millisecond, inst: "ra"}
		o := rng.IntN(objs)
		out[o].lines = append(out[o].lines, line(r)...)
		if i%7 == 0 { // a redelivered copy elsewhere, sometimes at the same instant
			r.inst = "rb"
			r.at += time.Duration(rng.IntN(3)-1) * time.Millisecond
			o = rng.IntN(objs)
			out[o].lines = append(out[o].lines, line(r)...)
		}
	}
	return out
}

// TestCompactMatchesOracle: Compact, which never holds the day, writes byte for byte the objects
// the whole-day computation gives, whatever the inputs' order, ties, flush size and cache bound
// (a tiny bound makes it evict and reread objects).
func TestCompactMatchesOracle(t *testing.T) {
	a := func(body string, at time.Duration, inst string) rec { return rec{body, at, inst} }
	noNL := func(o object) object { o.lines = bytes.TrimSuffix(o.lines, []byte("\n")); return o }
	blank := func(o object) object { o.lines = append([]byte("\n  \n"), o.lines...); return o }
	cases := []struct {
		name    string
		objects []object
		flush   int64
		gz      bool
	}{
		{"redelivered copies collapse, differing bodies stay", []object{
			obj("ra", 1, true, a(`{"s":"a"}`, 3*time.Second, "ra"), a(`{"s":"b"}`, time.Second, "ra")),
			obj("rb", 1, true, a(`{"s":"a"}`, 2*time.Second, "rb"), a(`{"s":"b","repeat":true}`, 5*time.Second, "rb"), a(`{"s":"c"}`, 4*time.Second, "rb")),
		}, 250, true},
		{"same callback at the same instant in two objects: the smaller line wins", []object{
			obj("rb", 1, true, a(`{"s":"a"}`, time.Second, "rb"), a(`{"s":"z"}`, 0, "ra")),
			obj("ra", 1, true, a(`{"s":"a"}`, time.Second, "ra")),
			obj("rc", 1, false, a(`{"s":"a"}`, time.Second, "rc")),
		}, 1 << 20, true},
		{"different callbacks at the same instant: ordered by line", []object{
			obj("ra", 1, true, a(`{"s":"c"}`, time.Second, "ra"), a(`{"s":"a"}`, time.Second, "ra")),
			obj("rb", 1, false, a(`{"s":"b"}`, time.Second, "rb"), a(`{"s":"0"}`, 2*time.Second, "rb")),
			obj("rc", 1, true, a(`{"s":"aa"}`, time.Second, "rc")),
		}, 100, false},
		{"last line without newline, blank lines", []object{
			blank(noNL(obj("ra", 1, true, a(`{"s":"a"}`, 2*time.Second, "ra"), a(`{"s":"b"}`, time.Second, "ra")))),
			noNL(obj("rb", 1, false, a(`{"s":"b"}`, time.Second, "ra"), a(`{"s":"c"}`, 0, "rb"))),
		}, 1 << 20, true},
		{"lines without newline count it when splitting", []object{
			noNL(obj("ra", 1, true, a(`{"s":"a"}`, time.Second, "ra"))),
			noNL(obj("ra", 2, true, a(`{"s":"b"}`, 2*time.Second, "ra"))),
			noNL(obj("ra", 3, false, a(`{"s":"c"}`, 3*time.Second, "ra"))),
		}, 2*int64(len(line(a(`{"s":"a"}`, time.Second, "ra")))) - 1, true},
		{"every line its own object", randomDay(1, 300, 40), 1, true},
		{"random day, split", randomDay(2, 1500, 25), 20 << 10, true},
		{"random day, plain, one object", randomDay(3, 1500, 7), 1 << 30, false},
	}
	for _, c := range cases {
		for _, limit := range []int64{64 << 20, 1} {
			t.Run(fmt.Sprintf("%s/cache %d", c.name, limit), func(t *testing.T) {
				defer compact.SetCacheLimit(limit)()
				ctx := context.Background()
				st := openStore(t)
				inputs := map[string]bool{}
				for _, o := range c.objects {
					body := o.lines
					if _, gz := layout.IsObjectKey(o.key); gz {
						body, _ = layout.EncodeObject(o.lines, true)
					}
					if err := st.Put(ctx, o.key, body, layout.ContentType); err != nil {
						t.Fatal(err)
					}
					inputs[o.key] = true
				}
				checkAgainstOracle(t, st, c.flush, c.gz, inputs)

				// A late object merged with that compaction: still the oracle's objects.
				late := obj("rz", 1, true, a(`{"s":"late"}`, 500*time.Millisecond, "rz"), a(`{"s":"a"}`, 0, "rz"))
				body, _ := layout.EncodeObject(late.lines, true)
				if err := st.Put(ctx, late.key, body, layout.ContentType); err != nil {
					t.Fatal(err)
				}
				objs, _ := st.List(ctx, layout.DayPrefix(day))
				for _, o := range objs {
					inputs[o.Key] = true
				}
				checkAgainstOracle(t, st, c.flush, c.gz, inputs)
			})
		}
	}
}

// checkAgainstOracle compacts the day (originals kept) and checks that the compacted objects are
// exactly the oracle's.
func checkAgainstOracle(t *testing.T, st compact.Store, flush int64, gz bool, inputs map[string]bool) {
	t.Helper()
	ctx := context.Background()
	want := oracle(t, st, flush, gz)
	if _, err := compact.Compact(ctx, st, compact.Options{Day: day, FlushBytes: flush, Gzip: gz}); err != nil {
		t.Fatal(err)
	}
	objs, _ := st.List(ctx, layout.DayPrefix(day))
	got := 0
	for _, o := range objs {
		w, isWant := want[o.Key]
		if !isWant {
			if !inputs[o.Key] {
				t.Errorf("%s: written, but not an object of the whole-day compaction", o.Key)
			}
			continue
		}
		got++
		b, _ := storage.ReadAll(ctx, st, o.Key)
		if !bytes.Equal(b, w) {
			t.Errorf("%s: %d bytes differ from the whole-day compaction's %d", o.Key, len(b), len(w))
		}
	}
	if got != len(want) {
		t.Errorf("%d of the whole-day compaction's %d objects present", got, len(want))
	}
}
