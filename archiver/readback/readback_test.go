package readback_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/archivertest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/versitygw"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// written is one record as the archiver would have written it.
type written struct {
	day    string
	line   []byte // without '\n'
	domain string
	event  string
	ts     string
	arch   layout.Archive
}

// fixture writes sample-derived records across three days (gz, plain, gz) plus things Read must
// skip, and returns the records in the order Read must return them.
func fixture(t *testing.T, s storage.Store) []written {
	t.Helper()
	ctx := testCtx(t)
	names := archivertest.SampleNames(t) // sorted
	days := []string{"2026-11-25", "2026-11-26", "2026-11-27"}
	var all []written
	for di, day := range days {
		for part, gz := range []bool{di != 1, di != 1} { // day 2 plain .jsonl, days 1 and 3 gzip
			var lines []byte
			for pi, name := range names {
				raw := archivertest.Sample(t, name)
				body := bytes.NewBuffer(archivertest.Compact(t, raw))
				var f struct {
					Domain, App, Stream, Event string
					PublishTimestamp           json.RawMessage `json:"publish_timestamp"`
				}
				if err := json.Unmarshal(raw, &f); err != nil {
					t.Fatal(err)
				}
				domain := f.Domain
				if pi%2 == 1 { // a second domain to filter on
					domain = "other.example.com"
					b := bytes.Replace(body.Bytes(), []byte(`"domain":"push.example.com"`), []byte(`"domain":"other.example.com"`), 1)
					body.Reset()
					body.Write(b)
				}
				var ts string
				if json.Unmarshal(f.PublishTimestamp, &ts) != nil {
					ts = string(f.PublishTimestamp)
				}
				a := layout.Archive{
					ReceivedAt:  time.Date(2026, 11, 25+di, 10, part, pi, 123456789, time.UTC),
					EventID:     layout.EventID(domain, f.App, f.Stream, f.Event, ts),
					RemoteAddr:  fmt.Sprintf("10.0.0.%d:1234", pi),
					Signature:   map[bool]string{true: layout.SignatureVerified, false: layout.SignatureNone}[strings.HasPrefix(name, "signed")],
					PublishTime: layout.ParsePublishTimestamp(f.PublishTimestamp),
					Instance:    "host-a",
				}
				before := len(lines)
				lines = layout.AppendRecord(lines, body.Bytes(), a)
				all = append(all, written{day: day, line: bytes.Clone(lines[before : len(lines)-1]), domain: domain, event: f.Event, ts: ts, arch: a})
			}
			obj, err := layout.EncodeObject(lines, gz)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, layout.ObjectKey(day, "host-a", uint64(di*10+1), part, gz), obj, layout.ContentType); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Not archive objects: Read must skip them.
	for key, body := range map[string]string{
		"_rejected/dt=2026-11-26/host-a-00000000000000000001.json": `{"reason":"bad signature"}`,
		"dt=2026-11-26/README.txt":                                 "not an object",
		"dt=2026-11-19/host-a-00000000000000000001-000.jsonl":      "outside the queried range, and not JSON",
	} {
		if err := s.Put(ctx, key, []byte(body), "text/plain"); err != nil {
			t.Fatal(err)
		}
	}
	return all
}

func stores(t *testing.T) map[string]storage.Store {
	gw := versitygw.StartT(t)
	bucket := gw.BucketT(t)
	s3, err := storage.Open(testCtx(t), storage.Options{URL: "s3://" + bucket + "/archive", Endpoint: gw.Endpoint, AccessKey: gw.AccessKey, SecretKey: gw.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	file, err := storage.Open(testCtx(t), storage.Options{URL: "file://" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]storage.Store{"s3": s3, "file": file}
}

func TestRead(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			all := fixture(t, s)
			for _, q := range []readback.Query{
				{From: "2026-11-25", To: "2026-11-27"},
				{From: "2026-11-26"},
				{From: "2026-11-26", To: "2026-11-26"},
				{From: "2026-11-20", To: "2026-11-25"},
				{From: "2026-11-27", To: "2026-12-05"},
				{From: "2026-11-25", To: "2026-11-27", Domain: "other.example.com"},
				{From: "2026-11-25", To: "2026-11-27", Event: "PUBLISH_DONE"},
				{From: "2026-11-25", To: "2026-11-27", Domain: "push.example.com", Event: "PUBLISH"},
				{From: "2026-11-25", To: "2026-11-27", Domain: "nobody.example.com"},
				{From: "2027-01-01"},
			} {
				to := q.To
				if to == "" {
					to = q.From
				}
				var want []written
				for _, w := range all {
					if w.day >= q.From && w.day <= to && (q.Domain == "" || w.domain == q.Domain) && (q.Event == "" || w.event == q.Event) {
						want = append(want, w)
					}
				}
				var got []readback.Event
				if err := readback.Read(testCtx(t), s, q, func(e readback.Event) error { got = append(got, e); return nil }); err != nil {
					t.Fatalf("Read(%+v): %v", q, err)
				}
				if len(got) != len(want) {
					t.Fatalf("Read(%+v) returned %d events, want %d", q, len(got), len(want))
				}
				for i, e := range got {
					w := want[i]
					if !bytes.Equal(e.Raw, w.line) {
						t.Fatalf("Read(%+v)[%d].Raw =\n%s\nwant\n%s", q, i, e.Raw, w.line)
					}
					if e.Domain != w.domain || e.Event != w.event || e.PublishTimestamp != w.ts || e.App != "live" || e.Stream == "" {
						t.Fatalf("Read(%+v)[%d] = %s/%s/%s %s %q", q, i, e.Domain, e.App, e.Stream, e.Event, e.PublishTimestamp)
					}
					a := e.Archive
					if !a.ReceivedAt.Equal(w.arch.ReceivedAt) || a.EventID != w.arch.EventID || a.RemoteAddr != w.arch.RemoteAddr ||
						a.Signature != w.arch.Signature || a.Instance != w.arch.Instance ||
						(a.PublishTime == nil) != (w.arch.PublishTime == nil) || (a.PublishTime != nil && !a.PublishTime.Equal(*w.arch.PublishTime)) {
						t.Fatalf("Read(%+v)[%d].Archive = %+v, want %+v", q, i, a, w.arch)
					}
				}
			}
			// The seed's quirky publish_timestamp comes back raw, and parsed in the archive field.
			found := false
			_ = readback.Read(testCtx(t), s, readback.Query{From: "2026-11-25"}, func(e readback.Event) error {
				if e.PublishTimestamp == "1587954134," {
					found = e.Archive.PublishTime != nil && e.Archive.PublishTime.Unix() == 1587954134
				}
				return nil
			})
			if !found {
				t.Error(`the seed example's "1587954134," was not read back with its parsed publish_time`)
			}
			// The callback can stop early; its own errors come back.
			n := 0
			if err := readback.Read(testCtx(t), s, readback.Query{From: "2026-11-25", To: "2026-11-27"}, func(readback.Event) error { n++; return readback.ErrStop }); err != nil || n != 1 {
				t.Fatalf("ErrStop: n=%d err=%v", n, err)
			}
			boom := errors.New("boom")
			if err := readback.Read(testCtx(t), s, readback.Query{From: "2026-11-25"}, func(readback.Event) error { return boom }); !errors.Is(err, boom) {
				t.Fatalf("callback error = %v, want boom", err)
			}
		})
	}
}

func TestReadCorruptObject(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s, err := storage.Open(ctx, storage.Options{URL: "file://" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for key, body := range map[string]string{
		"dt=2026-11-25/a-00000000000000000001-000.jsonl.gz": "not gzip",
		"dt=2026-11-26/a-00000000000000000001-000.jsonl":    "{\"domain\":\"d\",\"archive\":{}}\n{broken\n",
		"dt=2026-11-27/a-00000000000000000001-000.jsonl":    "{\"domain\":\"d\"}\n",
	} {
		if err := s.Put(ctx, key, []byte(body), layout.ContentType); err != nil {
			t.Fatal(err)
		}
	}
	for day, want := range map[string]string{
		"2026-11-25": "not a gzip file",
		"2026-11-26": "a-00000000000000000001-000.jsonl line 2",
		"2026-11-27": `no "archive" field`,
	} {
		err := readback.Read(ctx, s, readback.Query{From: day}, func(readback.Event) error { return nil })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Read(%s) = %v; want an error mentioning %q", day, err, want)
		}
	}
}

func TestQueryDays(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		q    readback.Query
		days int
		err  string
	}{
		{q: readback.Query{From: "2026-11-26"}, days: 1},
		{q: readback.Query{From: "2026-02-27", To: "2026-03-01"}, days: 3},
		{q: readback.Query{From: "2024-02-28", To: "2024-03-01"}, days: 3}, // leap year
		{q: readback.Query{From: "2026-01-01", To: "2027-01-01"}, days: 366},
		{q: readback.Query{From: "2026-01-01", To: "2027-01-02"}, err: "at most 366 days"},
		{q: readback.Query{}, err: "missing --from"},
		{q: readback.Query{From: "2026-11-31"}, err: "invalid --from"},
		{q: readback.Query{From: "26-11-2026"}, err: "invalid --from"},
		{q: readback.Query{From: "2026-11-26", To: "tomorrow"}, err: "invalid --to"},
		{q: readback.Query{From: "2026-11-26", To: "2026-11-25"}, err: "before --from"},
	} {
		days, err := tc.q.Days()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Days(%+v) = %v; want error %q", tc.q, err, tc.err)
			}
			continue
		}
		if err != nil || len(days) != tc.days || days[0] != tc.q.From {
			t.Errorf("Days(%+v) = %d days from %v, %v; want %d", tc.q, len(days), days, err, tc.days)
		}
	}
}
