package layout_test

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

func samples(t testing.TB) map[string][]byte { return archivetest.Samples(t) }

func compact(t testing.TB, b []byte) []byte { return archivetest.Compact(t, b) }

// keys returns the top-level keys of a JSON object in document order.
func keys(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", line)
	}
	var out []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func testArchive() layout.Archive {
	pt := time.Unix(1587954134, 0).UTC()
	return layout.Archive{
		ReceivedAt:  time.Date(2026, 11, 26, 8, 0, 0, 120000000, time.FixedZone("CST", 8*3600)),
		EventID:     "0123456789abcdef0123456789abcdef",
		RemoteAddr:  "10.0.0.1:5555",
		Signature:   layout.SignatureVerified,
		PublishTime: &pt,
		Instance:    "host-a",
	}
}

func TestAppendRecordExact(t *testing.T) {
	t.Parallel()
	a := testArchive()
	const arch = `{"received_at":"2026-11-26T00:00:00.120000000Z","event_id":"0123456789abcdef0123456789abcdef",` +
		`"remote_addr":"10.0.0.1:5555","signature":"verified","publish_time":"2020-04-27T02:22:14Z","instance":"host-a"}`
	noPT := a
	noPT.PublishTime = nil
	repeat := a
	repeat.Repeat = true
	plain, none := "text/plain; charset=utf-8", ""
	asSent := a
	asSent.ContentType, asSent.Body = &plain, "{\n  \"a\": 1\n}\n"
	noType := a
	noType.ContentType = &none
	sentRepeat := asSent
	sentRepeat.Repeat = true
	weird := a
	weird.RemoteAddr = "a\"b\\c\n\x00\x7f<é>\xff"
	weird.Instance = "\u2028"
	for _, tc := range []struct {
		name string
		body string
		a    layout.Archive
		want string
	}{
		{"object", `{"b":1,"a":"x"}`, a, `{"b":1,"a":"x","archive":` + arch + "}\n"},
		{"empty object", `{}`, a, `{"archive":` + arch + "}\n"},
		{"empty object with space", ` { } `, a, `{"archive":` + arch + "}\n"},
		{"trailing newline", "{\"a\":1}\n", a, `{"a":1,"archive":` + arch + "}\n"},
		{"repeat", `{"a":1}`, repeat, `{"a":1,"archive":` + strings.TrimSuffix(arch, "}") + `,"repeat":true}` + "}\n"},
		{"null publish_time", `{"a":1}`, noPT, `{"a":1,"archive":` + strings.Replace(arch, `"2020-04-27T02:22:14Z"`, "null", 1) + "}\n"},
		{"content type and body", `{"a":1}`, asSent, `{"a":1,"archive":` + strings.TrimSuffix(arch, "}") +
			`,"content_type":"text/plain; charset=utf-8","body":"{\n  \"a\": 1\n}\n"}` + "}\n"},
		{"no content type", `{"a":1}`, noType, `{"a":1,"archive":` + strings.TrimSuffix(arch, "}") + `,"content_type":""}` + "}\n"},
		{"repeat stays last", `{"a":1}`, sentRepeat, `{"a":1,"archive":` + strings.TrimSuffix(arch, "}") +
			`,"content_type":"text/plain; charset=utf-8","body":"{\n  \"a\": 1\n}\n","repeat":true}` + "}\n"},
		{"not compacted", "{\n  \"a\": 1,\n  \"b\": [1, 2]\n}", a, `{"a":1,"b":[1,2],"archive":` + arch + "}\n"},
		{"not an object", `[1,2]`, a, `{"raw":"[1,2]","archive":` + arch + "}\n"},
		{"empty body", ``, a, `{"raw":"","archive":` + arch + "}\n"},
		{"escapes", `{}`, weird, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := layout.AppendRecord([]byte("prev\n"), []byte(tc.body), tc.a)
			if !bytes.HasPrefix(got, []byte("prev\n")) {
				t.Fatalf("dst not appended to: %q", got)
			}
			got = got[len("prev\n"):]
			if tc.want != "" && string(got) != tc.want {
				t.Fatalf("AppendRecord =\n%s\nwant\n%s", got, tc.want)
			}
			if bytes.Count(got, []byte("\n")) != 1 || got[len(got)-1] != '\n' {
				t.Fatalf("not exactly one line: %q", got)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
			var rec struct{ Archive layout.Archive }
			if err := json.Unmarshal(got, &rec); err != nil {
				t.Fatal(err)
			}
			want := tc.a
			if tc.name == "escapes" {
				want.RemoteAddr = "a\"b\\c\n\x00\x7f<é>\ufffd" // invalid UTF-8 becomes U+FFFD
			}
			checkArchive(t, rec.Archive, want)
		})
	}
}

func checkArchive(t *testing.T, got, want layout.Archive) {
	t.Helper()
	if !got.ReceivedAt.Equal(want.ReceivedAt) || got.EventID != want.EventID || got.RemoteAddr != want.RemoteAddr ||
		got.Signature != want.Signature || got.Instance != want.Instance ||
		(got.PublishTime == nil) != (want.PublishTime == nil) ||
		(got.PublishTime != nil && !got.PublishTime.Equal(*want.PublishTime)) ||
		got.Body != want.Body || got.Repeat != want.Repeat || (got.ContentType == nil) != (want.ContentType == nil) ||
		(got.ContentType != nil && *got.ContentType != *want.ContentType) {
		t.Fatalf("archive round trip:\n got %+v\nwant %+v", got, want)
	}
}

// The samples, compacted as the intake does, keep their fields, values and order.
func TestAppendRecordSamples(t *testing.T) {
	t.Parallel()
	a := testArchive()
	for name, body := range samples(t) {
		t.Run(name, func(t *testing.T) {
			c := compact(t, body)
			line := layout.AppendRecord(nil, c, a)
			if !json.Valid(line) {
				t.Fatalf("invalid: %s", line)
			}
			// Everything before the archive field is the compacted body byte for byte.
			if !bytes.HasPrefix(line, c[:len(c)-1]) {
				t.Fatalf("body not kept as received:\n%s\n%s", c, line)
			}
			wantKeys := append(keys(t, c), "archive")
			if got := keys(t, line); strings.Join(got, ",") != strings.Join(wantKeys, ",") {
				t.Fatalf("keys = %v, want %v", got, wantKeys)
			}
			var orig, rec map[string]any
			if err := json.Unmarshal(body, &orig); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(line, &rec); err != nil {
				t.Fatal(err)
			}
			for k, v := range orig {
				if gb, _ := json.Marshal(rec[k]); string(gb) != mustMarshal(t, v) {
					t.Errorf("field %s = %s, want %s", k, gb, mustMarshal(t, v))
				}
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAppendTime(t *testing.T) {
	t.Parallel()
	for _, at := range []time.Time{
		time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", -7*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
	} {
		a := testArchive()
		a.ReceivedAt, a.PublishTime = at, &at
		line := layout.AppendArchive(nil, a)
		var got layout.Archive
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("%v: %s: %v", at, line, err)
		}
		checkArchive(t, got, a)
		if want := at.UTC().Format(layout.ReceivedAtLayout); !bytes.Contains(line, []byte(`"received_at":"`+want+`"`)) {
			t.Errorf("%s lacks received_at %s", line, want)
		}
		if want := at.UTC().Format(time.RFC3339); at.Nanosecond() == 0 && !bytes.Contains(line, []byte(`"publish_time":"`+want+`"`)) {
			t.Errorf("%s lacks publish_time %s", line, want)
		}
	}
}

func TestReceivedAtFixedWidth(t *testing.T) {
	t.Parallel()
	// Fixed width: string order equals time order, whatever the sub-second value.
	var prev string
	for _, ns := range []int{0, 1, 999, 120000000, 999999999} {
		a := testArchive()
		a.ReceivedAt = time.Date(2026, 11, 26, 0, 0, 0, ns, time.UTC)
		line := string(layout.AppendArchive(nil, a))
		v := line[len(`{"received_at":"`):strings.Index(line, `","event_id"`)]
		if len(v) != len("2026-11-26T00:00:00.000000000Z") {
			t.Fatalf("received_at %q is not fixed width", v)
		}
		if v <= prev {
			t.Fatalf("received_at %q does not sort after %q", v, prev)
		}
		prev = v
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	loc := time.FixedZone("UTC+8", 8*3600)
	at := time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC)
	for _, tc := range []struct{ got, want string }{
		{layout.Day(at, nil), "2026-11-26"},
		{layout.Day(at, time.UTC), "2026-11-26"},
		{layout.Day(at, loc), "2026-11-27"}, // the partition follows --partition-tz
		{layout.DayPrefix("2026-11-26"), "dt=2026-11-26/"},
		{layout.ObjectKey("2026-11-26", "host-a", 42, 1, true), "dt=2026-11-26/host-a-00000000000000000042-001.jsonl.gz"},
		{layout.ObjectKey("2026-11-26", "host-a", 42, 1, false), "dt=2026-11-26/host-a-00000000000000000042-001.jsonl"},
		{layout.ObjectKey("2026-11-26", "h", ^uint64(0), 999, true), "dt=2026-11-26/h-18446744073709551615-999.jsonl.gz"},
		{layout.RejectedKey("2026-11-26", "host-a", 7), "_rejected/dt=2026-11-26/host-a-00000000000000000007.json"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	// Zero padding: key order is sequence order.
	if !(layout.ObjectKey("d", "i", 9, 0, true) < layout.ObjectKey("d", "i", 10, 0, true)) {
		t.Error("object keys do not sort by sequence")
	}
}

func TestEventID(t *testing.T) {
	t.Parallel()
	id := layout.EventID("push.example.com", "live", "s", "PUBLISH", "1587954134")
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("EventID = %q, want 32 lower-case hex", id)
	}
	if id != layout.EventID("push.example.com", "live", "s", "PUBLISH", "1587954134") {
		t.Fatal("EventID not deterministic")
	}
	// The separator keeps field boundaries: moving a character between fields changes the id.
	for _, other := range []string{
		layout.EventID("push.example.co", "mlive", "s", "PUBLISH", "1587954134"),
		layout.EventID("push.example.com", "live", "s", "PUBLISH_DONE", "1587954134"),
		layout.EventID("push.example.com", "live", "s", "PUBLISH", "1587954134,"),
	} {
		if other == id {
			t.Fatalf("EventID collision for different identities: %s", id)
		}
	}
	// Pinned: the id is part of the archive contract and must not change between versions.
	// Value from: python3 -c "import hashlib;print(hashlib.sha256(b'a\x00b\x00c\x00PUBLISH\x001').hexdigest()[:32])"
	if got := layout.EventID("a", "b", "c", "PUBLISH", "1"); got != "4a61f4b4181b19d82f3619b2cac37f4c" {
		t.Errorf("EventID(a,b,c,PUBLISH,1) = %s, want 4a61f4b4181b19d82f3619b2cac37f4c", got)
	}
	// An identity longer than EventIDBytes' stack buffer hashes the same way.
	long := strings.Repeat("s", 300)
	if got := layout.EventID("push.example.com", "live", long, "PUBLISH_DONE", ""); got != "2fc8e48ea7ff45468bf096b881df347c" {
		t.Errorf("EventID(long stream) = %s, want 2fc8e48ea7ff45468bf096b881df347c", got)
	}
	if b := layout.EventIDBytes("push.example.com", "live", "s", "PUBLISH", "1587954134"); hex.EncodeToString(b[:]) != id {
		t.Errorf("EventIDBytes = %x, want the bytes of EventID %s", b, id)
	}
}

func TestEncodeObject(t *testing.T) {
	t.Parallel()
	var lines []byte
	for name, body := range samples(t) {
		a := testArchive()
		a.Instance = name
		lines = layout.AppendRecord(lines, compact(t, body), a)
	}
	z1, err := layout.EncodeObject(lines, true)
	if err != nil {
		t.Fatal(err)
	}
	z2, err := layout.EncodeObject(bytes.Clone(lines), true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(z1, z2) {
		t.Fatal("EncodeObject is not deterministic")
	}
	zr, err := gzip.NewReader(bytes.NewReader(z1))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() || zr.Comment != "" {
		t.Fatalf("gzip header carries name %q / mtime %v / comment %q", zr.Name, zr.ModTime, zr.Comment)
	}
	back, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(back, lines) {
		t.Fatalf("gunzip = %q, %v", back, err)
	}
	plain, err := layout.EncodeObject(lines, false)
	if err != nil || !bytes.Equal(plain, lines) {
		t.Fatalf("plain = %q, %v", plain, err)
	}
	if len(plain) > 0 && &plain[0] == &lines[0] {
		t.Fatal("plain output aliases the input buffer (the caller reuses it)")
	}
	if z, err := layout.EncodeObject(nil, true); err != nil || len(z) == 0 {
		t.Fatalf("empty gzip = %v, %v", z, err)
	}
}

func TestParsePublishTimestamp(t *testing.T) {
	t.Parallel()
	sec := func(n int64) *time.Time { v := time.Unix(n, 0).UTC(); return &v }
	for _, tc := range []struct {
		raw  string
		want *time.Time
	}{
		{`"1587954134"`, sec(1587954134)},
		{`"1587954134,"`, sec(1587954134)}, // the seed's stray comma
		{`1587954134`, sec(1587954134)},
		{` 1587954134 `, sec(1587954134)},
		{`1587954134.75`, sec(1587954134)},
		{`1.587954134e9`, sec(1587954134)},
		{`"  1587954134"`, sec(1587954134)},
		{`"1587954134abc"`, sec(1587954134)},
		{`"\u0031587954134"`, sec(1587954134)},
		{`"0"`, sec(0)},
		{`"1587954134000"`, func() *time.Time { v := time.UnixMilli(1587954134000).UTC(); return &v }()}, // 13 digits: ms
		{`"1587954134123"`, func() *time.Time { v := time.UnixMilli(1587954134123).UTC(); return &v }()},
		{`"1587954134000000"`, sec(1587954134)},    // µs
		{`"1587954134000000000"`, sec(1587954134)}, // ns
		{`"99999999999999999999"`, nil},            // overflow
		{`"9999999999999999999"`, nil},             // 19 digits but > int64
		{`1e300`, nil},
		{`"  "`, nil},
		{`""`, nil},
		{`"abc"`, nil},
		{`"-1587954134"`, nil},
		{`-1587954134`, nil},
		{`null`, nil},
		{`true`, nil},
		{`{}`, nil},
		{``, nil},
		{`"\x"`, nil},
	} {
		got := layout.ParsePublishTimestamp(json.RawMessage(tc.raw))
		switch {
		case tc.want == nil && got != nil:
			t.Errorf("ParsePublishTimestamp(%s) = %v, want nil", tc.raw, got)
		case tc.want != nil && (got == nil || !got.Equal(*tc.want)):
			t.Errorf("ParsePublishTimestamp(%s) = %v, want %v", tc.raw, got, tc.want)
		case got != nil && got.Location() != time.UTC:
			t.Errorf("ParsePublishTimestamp(%s) not in UTC", tc.raw)
		}
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	body := compact(b, samples(b)["signed-publish.json"])
	a := testArchive()
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		buf = layout.AppendRecord(buf[:0], body, a)
	}
}

func BenchmarkEncodeObject(b *testing.B) {
	var lines []byte
	body := compact(b, samples(b)["signed-publish.json"])
	for len(lines) < 4<<20 {
		lines = layout.AppendRecord(lines, body, testArchive())
	}
	b.SetBytes(int64(len(lines)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := layout.EncodeObject(lines, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePublishTimestamp(b *testing.B) {
	raw := json.RawMessage(`"1587954134,"`)
	b.ReportAllocs()
	for b.Loop() {
		_ = layout.ParsePublishTimestamp(raw)
	}
}

func TestIsObjectKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key      string
		ok, gzip bool
	}{
		{layout.ObjectKey("2026-11-26", "host-1", 7, 0, true), true, true},
		{layout.ObjectKey("2026-11-26", "host-1", 7, 0, false), true, false},
		{"dt=2026-11-26/notes.txt", false, false},
		{"dt=2026-11-26/x.jsonl.gz.tmp", false, false},
		{layout.RejectedKey("2026-11-26", "host-1", 1), false, false},
	}
	for _, tc := range tests {
		if ok, gz := layout.IsObjectKey(tc.key); ok != tc.ok || gz != tc.gzip {
			t.Errorf("IsObjectKey(%q) = %v, %v; want %v, %v", tc.key, ok, gz, tc.ok, tc.gzip)
		}
	}
}

func TestProcessInstanceAndConflictKey(t *testing.T) {
	t.Parallel()
	a, b := layout.ProcessInstance("web-1"), layout.ProcessInstance("web-1")
	if a == b || !strings.HasPrefix(a, "web-1-") || layout.ValidateInstance(a) != nil {
		t.Fatalf("ProcessInstance gave %q and %q; want distinct valid names starting web-1-", a, b)
	}
	if n := layout.ProcessInstance(""); layout.ValidateInstance(n) != nil {
		t.Fatalf("layout.ProcessInstance(\"\") = %q, invalid", n)
	}
	for _, tc := range []struct{ key, ext string }{
		{layout.ObjectKey("2026-11-26", "i", 7, 0, true), ".jsonl.gz"},
		{layout.ObjectKey("2026-11-26", "i", 7, 0, false), ".jsonl"},
		{layout.RejectedKey("2026-11-26", "i", 7), ".json"},
	} {
		k1 := layout.ConflictKey(tc.key, []byte("a"))
		if k1 == tc.key || k1 != layout.ConflictKey(tc.key, []byte("a")) || k1 == layout.ConflictKey(tc.key, []byte("b")) || !strings.HasSuffix(k1, tc.ext) {
			t.Errorf("ConflictKey(%q) = %q; want a distinct, deterministic, content-dependent name ending %s", tc.key, k1, tc.ext)
		}
		if ok, _ := layout.IsObjectKey(k1); ok != (tc.ext != ".json") {
			t.Errorf("IsObjectKey(%q) = %v; readers must still find conflict-named objects", k1, ok)
		}
	}
}

// ObjectEncoder, fed one line at a time, gives exactly EncodeObject's bytes for the lines
// concatenated: a segment uploaded by either (before and after a restart) is the same object.
func TestObjectEncoderMatchesEncodeObject(t *testing.T) {
	t.Parallel()
	mkLines := func(n, width int) [][]byte {
		var out [][]byte
		for i := range n {
			// Varied, partly repetitive text, like archive lines; some wider than deflate's window.
			l := fmt.Appendf(nil, `{"n":%d,"stream":"s%d","pad":"%s"}`+"\n", i, i%7, strings.Repeat(string(rune('a'+i%26)), width*(i%5)))
			out = append(out, l)
		}
		return out
	}
	cases := []struct {
		name  string
		lines [][]byte
	}{
		{"none", nil},
		{"one short", mkLines(1, 3)},
		{"many short", mkLines(5000, 10)},
		{"lines wider than the window", mkLines(40, 40_000)},
		{"a few MiB", mkLines(20_000, 60)},
	}
	var enc layout.ObjectEncoder // reused across cases, as the uploader does
	defer enc.Release()
	for _, tc := range cases {
		for _, gz := range []bool{true, false} {
			want, err := layout.EncodeObject(bytes.Join(tc.lines, nil), gz)
			if err != nil {
				t.Fatal(err)
			}
			enc.Reset(gz)
			for _, l := range tc.lines {
				enc.Write(l)
			}
			got, err := enc.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s, gzip %v: encoder gives %d bytes, EncodeObject %d: they differ", tc.name, gz, len(got), len(want))
			}
		}
	}
}

// RequestContentType: no member means application/json, "" means the request had none.
func TestRequestContentType(t *testing.T) {
	t.Parallel()
	plain, none := "text/plain", ""
	for _, tc := range []struct {
		ct     *string
		want   string
		wantOK bool
	}{{nil, "application/json", true}, {&plain, "text/plain", true}, {&none, "", false}} {
		a := layout.Archive{ContentType: tc.ct}
		if got, ok := a.RequestContentType(); got != tc.want || ok != tc.wantOK {
			t.Errorf("RequestContentType(%v) = %q, %v; want %q, %v", tc.ct, got, ok, tc.want, tc.wantOK)
		}
	}
}

// ParseObjectKey and ParseRejectedKey invert ObjectKey, RejectedKey and ConflictKey exactly,
// reading the instance from the right: instance names that are another's prefix, end in digits or
// look like a key themselves come back whole; anything else is refused.
func TestParseObjectKey(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100) + "-0badf00d" // --ack store's suffix on a 100-character --instance
	for _, tc := range []struct {
		instance string
		seq      uint64
		part     int
	}{
		{"ra", 1, 0},
		{"ra-1", 1, 0},
		{"ra-1-00000000000000000001", 7, 2}, // an instance that looks like a key's tail
		{"ra-0badf00d", 1<<64 - 1, 999},     // store-mode suffix starting with a digit
		{"a", 0, 1000},                      // more parts than %03d holds
		{"-", 3, 4},
		{"x-cdeadbeefcafe", 5, 6}, // ends like a conflict tag
		{"compacted-0123456789abcdef", 8, 9},
		{long, 10, 11},
	} {
		for _, gz := range []bool{true, false} {
			key := layout.ObjectKey("2026-11-26", tc.instance, tc.seq, tc.part, gz)
			want := layout.ObjectName{Day: "2026-11-26", Instance: tc.instance, Seq: tc.seq, Part: tc.part, Gzip: gz}
			if n, ok := layout.ParseObjectKey(key); !ok || n != want {
				t.Errorf("ParseObjectKey(%q) = %+v, %v; want %+v", key, n, ok, want)
			}
			ck := layout.ConflictKey(key, []byte("other bytes"))
			want.Conflict = true
			if n, ok := layout.ParseObjectKey(ck); !ok || n != want {
				t.Errorf("ParseObjectKey(%q) = %+v, %v; want %+v", ck, n, ok, want)
			}
		}
		key := layout.RejectedKey("2026-11-26", tc.instance, tc.seq)
		want := layout.ObjectName{Day: "2026-11-26", Instance: tc.instance, Seq: tc.seq}
		if n, ok := layout.ParseRejectedKey(key); !ok || n != want {
			t.Errorf("ParseRejectedKey(%q) = %+v, %v; want %+v", key, n, ok, want)
		}
		if _, ok := layout.ParseObjectKey(key); ok {
			t.Errorf("ParseObjectKey(%q) accepted a rejected sample", key)
		}
	}
	for _, key := range []string{
		"",
		"dt=2026-11-26/",
		"dt=2026-11-26/.jsonl.gz",
		"dt=2026-11-26/-00000000000000000001-000.jsonl.gz", // no instance
		"dt=2026-11-26/i-0000000000000000001-000.jsonl.gz", // 19-digit seq
		"dt=2026-11-26/i-000000000000000000001-000.jsonl",  // 21-digit seq
		"dt=2026-11-26/i-99999999999999999999-000.jsonl",   // seq beyond uint64
		"dt=2026-11-26/i-00000000000000000001-00.jsonl",    // 2-digit part
		"dt=2026-11-26/i-00000000000000000001-0x0.jsonl",   // part not digits
		"dt=2026-11-26/i-00000000000000000001-+00.jsonl",   // signed part
		"dt=2026-11-26/i-00000000000000000001-000.jsonl.gz.tmp",
		"dt=2026-11-26/i-00000000000000000001-000.json",
		"dt=2026-11-26/i j-00000000000000000001-000.jsonl",   // space in the instance
		"dt=2026-11-26/i\x00-00000000000000000001-000.jsonl", // NUL
		"dt=2026-11-26/é-00000000000000000001-000.jsonl",
		"dt=2026-11-26/a/b-00000000000000000001-000.jsonl", // a deeper key
		"dt=2026-13-26/i-00000000000000000001-000.jsonl",   // no such day
		"dt=2026-11-6/i-00000000000000000001-000.jsonl",
		"x/dt=2026-11-26/i-00000000000000000001-000.jsonl",
		"_rejected/dt=2026-11-26/i-00000000000000000001-000.jsonl",
		"dt=2026-11-26/i-00000000000000000001-000-cABCDEF012345.jsonl.gz", // not ConflictKey's tag
		"dt=2026-11-26/i-00000000000000000001-000-c0123.jsonl.gz",
		layout.CompactedKey("2026-11-26", "0123456789abcdef", 1, 2, true),
	} {
		if n, ok := layout.ParseObjectKey(key); ok {
			t.Errorf("ParseObjectKey(%q) = %+v; want refused", key, n)
		}
	}
	for _, key := range []string{
		"_rejected/dt=2026-11-26/i-00000000000000000001.jsonl",
		"_rejected/dt=2026-11-26/i-0000000000000000001.json",
		"_rejected/dt=2026-11-26/-00000000000000000001.json",
		"dt=2026-11-26/i-00000000000000000001.json",
		"_rejected/dt=2026-11-26/i-00000000000000000001-cABCDEF012345.json",
	} {
		if n, ok := layout.ParseRejectedKey(key); ok {
			t.Errorf("ParseRejectedKey(%q) = %+v; want refused", key, n)
		}
	}
}
