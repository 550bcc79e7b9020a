package intake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

func sampleBodies(t testing.TB) map[string][]byte { return archivetest.Samples(t) }

func parse(body []byte) (Fields, []byte, *Rejection) {
	var f Fields
	compact, rej := prepare(nil, body)
	if rej == nil {
		rej = parseFields(compact, &f)
	}
	return f, compact, rej
}

func TestParseSamples(t *testing.T) {
	for name, body := range sampleBodies(t) {
		t.Run(name, func(t *testing.T) {
			f, compact, rej := parse(body)
			if rej != nil {
				t.Fatalf("rejected: %v", rej)
			}
			// The compact form keeps every field and value, in order.
			var want, got bytes.Buffer
			if err := json.Compact(&want, body); err != nil {
				t.Fatal(err)
			}
			got.Write(compact)
			if want.String() != got.String() {
				t.Errorf("compact = %s, want %s", got.String(), want.String())
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			for k, v := range map[string]string{"domain": f.Domain, "app": f.App, "stream": f.Stream, "event": f.Event} {
				if m[k] != v {
					t.Errorf("%s = %q, want %q", k, v, m[k])
				}
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		status      int
		field       string
		domain, pts string
		hasIdent    bool
	}{
		{name: "minimal", body: `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":"1"}`, domain: "d", pts: "1", hasIdent: true},
		{name: "pretty", body: "{\n  \"domain\" : \"d\",\n\t\"app\":\"a\",\"stream\":\"s\",\"event\":\"PUBLISH_DONE\"}\n", domain: "d"},
		{name: "seed comma", body: `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":"1587954134,"}`, domain: "d", pts: "1587954134,", hasIdent: true},
		{name: "numeric timestamp", body: `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":1587954134}`, domain: "d", pts: "1587954134", hasIdent: true},
		{name: "escaped timestamp", body: `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":"\u0031587954134"}`, domain: "d", pts: "1587954134", hasIdent: true},
		{name: "empty timestamp", body: `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":""}`, domain: "d", pts: "", hasIdent: false},
		{name: "null timestamp", body: `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","publish_timestamp":null}`, domain: "d"},
		{name: "escaped domain", body: `{"domain":"d\u00e9","app":"a","stream":"s","event":"PUBLISH"}`, domain: "dé"},
		{name: "escaped key", body: `{"dom\u0061in":"d","app":"a","stream":"s","event":"PUBLISH"}`, domain: "d"},
		{name: "nested unknowns", body: `{"x":{"domain":"no","y":[1,{"z":"}"}]},"domain":"d","app":"a","stream":"s","event":"PUBLISH","w":[]}`, domain: "d"},
		{name: "empty body", body: ``, status: 400},
		{name: "blank body", body: " \n", status: 400},
		{name: "array", body: `[{"domain":"d"}]`, status: 400},
		{name: "string", body: `"x"`, status: 400},
		{name: "number", body: `12`, status: 400},
		{name: "trailing garbage", body: `{"domain":"d","app":"a","stream":"s","event":"PUBLISH"} x`, status: 400},
		{name: "two objects", body: `{}{}`, status: 400},
		{name: "truncated", body: `{"domain":"d"`, status: 400},
		{name: "invalid utf8", body: "{\"domain\":\"\xff\",\"app\":\"a\",\"stream\":\"s\",\"event\":\"PUBLISH\"}", status: 400},
		{name: "empty object", body: `{}`, status: 400, field: "domain"},
		{name: "missing app", body: `{"domain":"d","stream":"s","event":"PUBLISH"}`, status: 400, field: "app"},
		{name: "empty stream", body: `{"domain":"d","app":"a","stream":"","event":"PUBLISH"}`, status: 400, field: "stream"},
		{name: "missing event", body: `{"domain":"d","app":"a","stream":"s"}`, status: 400, field: "event"},
		{name: "numeric domain", body: `{"domain":1,"app":"a","stream":"s","event":"PUBLISH"}`, status: 400, field: "domain"},
		{name: "null app", body: `{"domain":"d","app":null,"stream":"s","event":"PUBLISH"}`, status: 400, field: "app"},
		{name: "bad event", body: `{"domain":"d","app":"a","stream":"s","event":"publish"}`, status: 400, field: "event"},
		{name: "duplicate domain", body: `{"domain":"d","domain":"e","app":"a","stream":"s","event":"PUBLISH"}`, status: 400, field: "domain"},
		{name: "case-variant domain", body: `{"domain":"d","DOMAIN":"e","app":"a","stream":"s","event":"PUBLISH"}`, status: 400, field: "DOMAIN"},
		{name: "case-variant unknown", body: `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","Usr_Args":"x","usr_args":"y"}`, status: 400, field: "usr_args"},
		{name: "reserved archive", body: `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","archive":{}}`, status: 400, field: "archive"},
		{name: "reserved Archive", body: `{"Archive":1,"domain":"d","app":"a","stream":"s","event":"PUBLISH"}`, status: 400, field: "Archive"},
		{name: "many distinct keys", body: `{"domain":"d","app":"a","stream":"s","event":"PUBLISH",` + manyKeys(40, false) + `}`, domain: "d"},
		{name: "many keys, late variant", body: `{"domain":"d","app":"a","stream":"s","event":"PUBLISH",` + manyKeys(40, true) + `}`, status: 400, field: "K39"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _, rej := parse([]byte(tc.body))
			if tc.status != 0 {
				if rej == nil {
					t.Fatalf("accepted, want %d", tc.status)
				}
				if rej.Status != tc.status || rej.Field != tc.field || rej.Msg == "" {
					t.Fatalf("got %d field %q (%s), want %d field %q", rej.Status, rej.Field, rej.Msg, tc.status, tc.field)
				}
				return
			}
			if rej != nil {
				t.Fatalf("rejected: %v", rej)
			}
			if f.Domain != tc.domain {
				t.Errorf("domain = %q, want %q", f.Domain, tc.domain)
			}
			pts, ok := f.IdentityTimestamp()
			if pts != tc.pts || ok != tc.hasIdent {
				t.Errorf("identity timestamp = %q,%v, want %q,%v", pts, ok, tc.pts, tc.hasIdent)
			}
		})
	}
}

// manyKeys is n distinct keys "k0".."k<n-1>", the last one upper-cased into a variant of k0..
// when variant (past the small-set threshold, so the map path is used).
func manyKeys(n int, variant bool) string {
	var parts []string
	for i := 0; i < n; i++ {
		parts = append(parts, fmt.Sprintf(`"k%d":%d`, i, i))
	}
	if variant {
		parts = append(parts, fmt.Sprintf(`"K%d":0`, n-1))
	}
	return strings.Join(parts, ",")
}

func TestFoldKeyMatchesEqualFold(t *testing.T) {
	words := []string{"domain", "DOMAIN", "Domain", "archive", "ARCHIVE", "stream", "ſtream", "STREAM", "kind", "\u212aind", "KIND",
		"straße", "STRASSE", "σ", "Σ", "ς", "ǅ", "ǆ", "Ǆ", "ı", "i", "I", "İ", "é", "É", "", "a1", "A1"}
	for _, a := range words {
		for _, b := range words {
			if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
				t.Errorf("foldKey(%q)==foldKey(%q) is %v, EqualFold %v", a, b, got, want)
			}
		}
	}
}

func TestAuthTimestamp(t *testing.T) {
	tests := []struct {
		raw  string
		want int64
		ok   bool
	}{
		{`1587954140`, 1587954140, true},
		{`"1587954140"`, 1587954140, true},
		{`1587954140.5`, 0, false},
		{`-1`, 0, false},
		{`""`, 0, false},
		{`"abc"`, 0, false},
		{`99999999999999999999`, 0, false},
		{`9223372036854775807`, 9223372036854775807, true},
		{`9223372036854775808`, 0, false},
		{`null`, 0, false},
		{`0`, 0, true},
		{`01587954140`, 0, false},
		{`"01587954140"`, 0, false},
		{`"+1587954140"`, 0, false},
		{`" 1587954140"`, 0, false},
		{`1.58795414e9`, 0, false},
		{`"1587954140`, 0, false},
	}
	for _, tc := range tests {
		got, ok := authTimestamp([]byte(tc.raw))
		if got != tc.want || ok != tc.ok {
			t.Errorf("authTimestamp(%s) = %d,%v, want %d,%v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"auth_sign":"abc","x":"y"}`, `{"auth_sign":"REDACTED","x":"y"}`},
		{`{ "auth_sign" : "a\"bc" , "auth_sign_key":"k"}`, `{ "auth_sign" : "REDACTED" , "auth_sign_key":"REDACTED"}`},
		{`{"stream":"auth_sign","app":"x"}`, `{"stream":"auth_sign","app":"x"}`},
		{`{"auth_sign":12}`, `{"auth_sign":12}`},
		{`{"auth_sign":"unterminated`, `{"auth_sign":"REDACTED"`},
		{`not json "secret": "s3cr3t" tail`, `not json "secret": "REDACTED" tail`},
	}
	for _, tc := range tests {
		if got := string(Redact([]byte(tc.in))); got != tc.want {
			t.Errorf("Redact(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzParse checks that no input panics, that accepted bodies are exactly the JSON objects with
// non-empty string domain/app/stream and a valid event, and that the scanner agrees with
// encoding/json on those fields.
func FuzzParse(f *testing.F) {
	for _, b := range sampleBodies(f) {
		f.Add(b)
	}
	for _, s := range []string{
		`{"domain":"d","DOMAIN":"e","app":"a","stream":"s","event":"PUBLISH"}`,
		`{"domain":"d","app":"a","stream":"s","event":"PUBLISH","archive":{"signature":"verified"}}`,
		`{"domain":"d","app":"a","stream":"s","event":"PUBLISH","ARCHIVE":1}`,
		`{"domain":"d","app":"a","ſtream":"s","stream":"s","event":"PUBLISH"}`,
		`{"domain":"d","app":"a","stream":"s","event":"PUBLISH","\u212aey":1,"key":2}`,
		`{"domain":"d","app":"a","stream":"s","event":"PUBLISH","x":{"archive":1,"X":2,"x":3}}`,
		`{}`, `[]`, `{"domain":"d","app":"a","stream":"s","event":"PUBLISH","x":{"y":[1,"}"]}}`,
		`{"domain":"\u0064","app":"a","stream":"s","event":"PUBLISH_DONE","publish_timestamp":1e9}`, "{\"a\":\"\xff\"}", `{"domain":"d","domain":"d"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fields, compact, rej := parse(body)
		_, _ = fields.IdentityTimestamp()
		_ = Redact(body)
		if rej != nil {
			if rej.Status != http.StatusBadRequest || rej.Msg == "" {
				t.Fatalf("bad rejection %+v", rej)
			}
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(compact, &m); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v", err)
		}
		for k, v := range map[string]string{"domain": fields.Domain, "app": fields.App, "stream": fields.Stream, "event": fields.Event} {
			var s string
			if err := json.Unmarshal(m[k], &s); err != nil || s != v || s == "" {
				t.Fatalf("%s: scanner %q, encoding/json %q (%v)", k, v, s, err)
			}
		}
		if pt := m["publish_timestamp"]; !bytes.Equal(pt, fields.PublishTimestamp) {
			t.Fatalf("publish_timestamp: scanner %s, encoding/json %s", fields.PublishTimestamp, pt)
		}
		// No two accepted top-level keys are equal under case folding, none is "archive".
		keys := topKeys(t, compact)
		for i, a := range keys {
			if strings.EqualFold(a, ReservedKey) {
				t.Fatalf("accepted the reserved key %q", a)
			}
			for _, b := range keys[:i] {
				if strings.EqualFold(a, b) {
					t.Fatalf("accepted keys %q and %q", b, a)
				}
			}
		}
	})
}

// topKeys lists the top-level keys of a JSON object, as sent (exact, in order).
func topKeys(t *testing.T, b []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}
