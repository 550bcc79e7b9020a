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

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
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
	names := archivetest.SampleNames(t) // sorted
	days := []string{"2026-11-25", "2026-11-26", "2026-11-27"}
	var all []written
	for di, day := range days {
		for part, gz := range []bool{di != 1, di != 1} { // day 2 plain .jsonl, days 1 and 3 gzip
			var lines []byte
			for pi, name := range names {
				raw := archivetest.Sample(t, name)
				body := bytes.NewBuffer(archivetest.Compact(t, raw))
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
		"dt=2026-11-26/a-00000000000000000001-000.jsonl":    "{\"domain\":\"d\",\"archive\":{\"received_at\":\"2026-11-26T00:00:00Z\",\"event_id\":\"x\"}}\n{broken\n",
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

const goodArchive = `"archive":{"received_at":"2026-11-26T08:00:00.000000000Z","event_id":"0123456789abcdef0123456789abcdef","remote_addr":"10.0.0.1:5555","signature":"verified","publish_time":"2020-04-27T02:22:14Z","instance":"host-a"}`

// asSentArchive has the optional members of a callback not sent as compact application/json.
const asSentArchive = `"archive":{"received_at":"2026-11-26T08:00:00.000000000Z","event_id":"0123456789abcdef0123456789abcdef","remote_addr":"10.0.0.1:5555","signature":"verified","publish_time":"2020-04-27T02:22:14Z","instance":"host-a","content_type":"text/plain; charset=utf-8","body":"{\n  \"domain\": \"a\"\n}\n"}`

// ParseLine decodes archive.content_type and archive.body, and Request gives the exact request.
func TestParseLineRequestAsSent(t *testing.T) {
	t.Parallel()
	ev, err := readback.ParseLine([]byte(`{"domain":"a",` + asSentArchive + `}`))
	if err != nil {
		t.Fatal(err)
	}
	body, ct, ok := ev.Request()
	if string(body) != "{\n  \"domain\": \"a\"\n}\n" || ct != "text/plain; charset=utf-8" || !ok {
		t.Errorf("Request() = %q, %q, %v", body, ct, ok)
	}
	plain, err := readback.ParseLine([]byte(`{"domain":"a",` + goodArchive + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if body, ct, ok := plain.Request(); string(body) != `{"domain":"a"}` || ct != "application/json" || !ok {
		t.Errorf("Request() of a record without the members = %q, %q, %v", body, ct, ok)
	}
	none, err := readback.ParseLine([]byte(`{"domain":"a",` + strings.Replace(goodArchive, `"host-a"}`, `"host-a","content_type":""}`, 1) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ct, ok := none.Request(); ct != "" || ok {
		t.Errorf(`content_type "" gives %q, %v; want no Content-Type`, ct, ok)
	}
}

// One unreadable line costs only itself: the lines after it are read, and it is reported with
// its object key and line number.
func TestReadSkipsUnreadableLines(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s, err := storage.Open(ctx, storage.Options{URL: "file://" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	const key = "dt=2026-11-26/a-00000000000000000001-000.jsonl"
	body := `{"domain":"one",` + goodArchive + "}\n" +
		"{broken\n" +
		`{"domain":"x","DOMAIN":"y","domain":"z",` + goodArchive + "}\n" +
		`{"domain":"two",` + goodArchive + "}\n"
	if err := s.Put(ctx, key, []byte(body), layout.ContentType); err != nil {
		t.Fatal(err)
	}
	var got []string
	var bad []readback.BadLine
	q := readback.Query{From: "2026-11-26", BadLine: func(b readback.BadLine) { bad = append(bad, b) }}
	if err := readback.Read(ctx, s, q, func(e readback.Event) error { got = append(got, e.Domain); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "one,two" {
		t.Errorf("read %v, want one,two", got)
	}
	if len(bad) != 2 || bad[0].Key != key || bad[0].Line != 2 || bad[1].Line != 3 || !strings.Contains(bad[1].Err.Error(), `"domain" appears twice`) {
		t.Errorf("bad lines %v, want lines 2 and 3 of %s", bad, key)
	}
	// Without a BadLine callback: every good line is still read, then an error counts the rest.
	got = nil
	err = readback.Read(ctx, s, readback.Query{From: "2026-11-26"}, func(e readback.Event) error { got = append(got, e.Domain); return nil })
	var ble *readback.BadLinesError
	if !errors.As(err, &ble) || ble.Count != 2 || len(got) != 2 || !strings.Contains(err.Error(), key+" line 2") {
		t.Errorf("Read = %v (read %v); want 2 events and a BadLinesError naming line 2", err, got)
	}
}

// Field names are matched exactly: a case variant is never taken for the real field (encoding/json
// would take "DOMAIN" when "domain" is absent, and the last of two variants).
func TestParseLineExactNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line string
		domain     string
		repeat     bool
		body       string
		err        string
	}{
		{name: "plain", line: `{"domain":"a.example.com","event":"PUBLISH",` + goodArchive + `}`, domain: "a.example.com", body: `{"domain":"a.example.com","event":"PUBLISH"}`},
		{name: "variant only", line: `{"DOMAIN":"evil.example.com",` + goodArchive + `}`, domain: "", body: `{"DOMAIN":"evil.example.com"}`},
		{name: "variant after", line: `{"domain":"a.example.com","Domain":"evil.example.com",` + goodArchive + `}`, domain: "a.example.com", body: `{"domain":"a.example.com","Domain":"evil.example.com"}`},
		{name: "empty body", line: `{` + goodArchive + `}`, body: `{}`},
		{name: "repeat", line: `{"domain":"a",` + strings.Replace(goodArchive, `"host-a"}`, `"host-a","repeat":true}`, 1) + `}`, domain: "a", repeat: true, body: `{"domain":"a"}`},
		{name: "content type and body", line: `{"domain":"a",` + asSentArchive + `}`, domain: "a", body: `{"domain":"a"}`},
		{name: "content type not a string", line: `{"domain":"a",` + strings.Replace(goodArchive, `"host-a"}`, `"host-a","content_type":1}`, 1) + `}`, err: "content_type must be a string"},
		{name: "content type with a control character", line: `{"domain":"a",` + strings.Replace(goodArchive, `"host-a"}`, `"host-a","content_type":"text/plain\r\nX-Evil: 1"}`, 1) + `}`, err: "control character"},
		{name: "body not a string", line: `{"domain":"a",` + strings.Replace(goodArchive, `"host-a"}`, `"host-a","body":{"domain":"a"}}`, 1) + `}`, err: "body must be a string"},
		{name: "empty body member", line: `{"domain":"a",` + strings.Replace(goodArchive, `"host-a"}`, `"host-a","body":""}`, 1) + `}`, err: "archive.body is empty"},
		{name: "two body members", line: `{"domain":"a",` + strings.Replace(goodArchive, `"host-a"}`, `"host-a","body":"{}","body":"{}"}`, 1) + `}`, err: "appears twice"},
		{name: "archive variant is not the archive", line: `{"domain":"a","ARCHIVE":{"received_at":"2026-11-26T08:00:00Z","event_id":"x"}}`, err: `no "archive" field`},
		{name: "archive field variant", line: `{"domain":"a","archive":{"RECEIVED_AT":"2026-11-26T08:00:00Z","event_id":"x"}}`, err: "lacks received_at"},
		{name: "two archives", line: `{"archive":{"received_at":"2026-11-26T08:00:00Z","event_id":"x"},` + goodArchive + `}`, err: "appears twice"},
		{name: "field after archive", line: `{` + goodArchive + `,"domain":"evil"}`, err: `follows "archive"`},
		{name: "duplicate", line: `{"domain":"a","domain":"b",` + goodArchive + `}`, err: "appears twice"},
		{name: "not an object", line: `[1]`, err: "not a JSON object"},
		{name: "many keys, late duplicate", line: `{` + manyKeys(40) + `,"k3":1,` + goodArchive + `}`, err: `"k3" appears twice`},
		{name: "many keys", line: `{"domain":"a",` + manyKeys(40) + `,` + goodArchive + `}`, domain: "a", body: `{"domain":"a",` + manyKeys(40) + `}`},
		{name: "spaces", line: `{ "domain" : "a" , "n" : 1 , ` + goodArchive + ` }`, domain: "a", body: `{ "domain" : "a" , "n" : 1}`},
		{name: "trailing data", line: `{` + goodArchive + `} {}`, err: "after top-level value"},
		{name: "bad time", line: `{"archive":{"received_at":"yesterday","event_id":"x"}}`, err: "RFC 3339"},
		{name: "bad repeat", line: `{"archive":{"received_at":"2026-11-26T08:00:00Z","event_id":"x","repeat":"yes"}}`, err: "repeat must be"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := readback.ParseLine([]byte(tc.line))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Domain != tc.domain || ev.Archive.Repeat != tc.repeat || string(ev.Body) != tc.body || string(ev.Raw) != tc.line {
				t.Fatalf("domain %q repeat %v body %s", ev.Domain, ev.Archive.Repeat, ev.Body)
			}
		})
	}
}

// FuzzParseLine: no input panics, and an accepted line's Body plus its archive field is the line.
func FuzzParseLine(f *testing.F) {
	for _, seed := range []string{
		`{"domain":"a.example.com",` + goodArchive + `}`,
		`{"domain":"a",` + asSentArchive + `}`,
		`{"domain":"a",` + strings.Replace(goodArchive, `"host-a"}`, `"host-a","content_type":""}`, 1) + `}`,
		`{"domain":"a",` + strings.Replace(goodArchive, `"host-a"}`, `"host-a","body":"{\"domain\":\"a\"}\n","repeat":true}`, 1) + `}`,
		`{"archive":{"received_at":"2026-11-26T08:00:00Z","event_id":"x","content_type":null,"body":1}}`,
		`{"DOMAIN":"a","domain":"b",` + goodArchive + `}`,
		`{"Archive":{},` + goodArchive + `}`,
		`{` + goodArchive + `}`,
		`{"archive":null}`,
		`{"archive":{"received_at":"2026-11-26T08:00:00Z","event_id":"x","repeat":true}}`,
		`{"\u0064omain":"x",` + goodArchive + `}`,
		`{broken`, `[]`, `""`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := readback.ParseLine(line)
		if err != nil {
			return
		}
		if !json.Valid(ev.Body) {
			t.Fatalf("Body %q of accepted line %q is not JSON", ev.Body, line)
		}
		if body, ct, ok := ev.Request(); len(body) == 0 || ok != (ct != "") {
			t.Fatalf("Request() of accepted line %q = %q, %q, %v", line, body, ct, ok)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(line, &m) != nil || m["archive"] == nil {
			t.Fatalf("accepted line %q has no archive field", line)
		}
	})
}

func manyKeys(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	return strings.Join(parts, ",")
}
