package compact_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/compact"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
)

// Records keeping the request as sent (archive.content_type, archive.body) are copied whole: a
// kept line still gives Live's exact bytes and Content-Type, and a copy differing only in those
// members (another delivery of the same callback, another layout) is the same callback.
func TestCompactKeepsRequestAsSent(t *testing.T) {
	st := openStore(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	plain := "text/plain; charset=utf-8"
	rec := func(body string, at time.Duration, inst string, ct *string, sent string) []byte {
		return layout.AppendRecord(nil, []byte(body), layout.Archive{ReceivedAt: t0.Add(at), Instance: inst, Signature: "none", ContentType: ct, Body: sent})
	}
	prettyX, prettyY := "{\n  \"s\": \"x\"\n}\n", "{\n\t\"s\": \"y\"\n}"
	ra := append(rec(`{"s":"x"}`, 2*time.Second, "ra", &plain, prettyX), rec(`{"s":"y"}`, 3*time.Second, "ra", &plain, prettyY)...)
	rb := rec(`{"s":"x"}`, time.Second, "rb", nil, "") // the same callback, received earlier as compact JSON
	for i, lines := range [][]byte{ra, rb} {
		body, _ := layout.EncodeObject(lines, true)
		if err := st.Put(context.Background(), layout.ObjectKey(day, []string{"ra", "rb"}[i], 1, 0, true), body, layout.ContentType); err != nil {
			t.Fatal(err)
		}
	}
	seal(t, st, key, map[string]bool{})
	res, err := compact.Compact(context.Background(), st, compact.Options{Day: day, Key: key, DeleteOriginals: true, FlushBytes: 1 << 20, Gzip: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 3 || res.Kept != 2 || res.Collapsed != 1 {
		t.Fatalf("%+v", res)
	}
	_, lines := readDay(t, st)
	want := []string{strings.TrimSpace(string(rb)), strings.TrimSpace(string(ra[strings.IndexByte(string(ra), '\n')+1:]))}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("compacted:\n%s\nwant the earliest copy of each callback, whole:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	ev, err := readback.ParseLine([]byte(lines[1]))
	if err != nil {
		t.Fatal(err)
	}
	if body, ct, ok := ev.Request(); string(body) != prettyY || ct != plain || !ok {
		t.Errorf("compacted record's request = %q, %q, %v", body, ct, ok)
	}
}
