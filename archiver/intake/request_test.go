package intake

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

// The archive line keeps what the relay needs to send a callback again exactly as Live sent it:
// archive.body when the body is not the record's compacted fields, archive.content_type when the
// header is not exactly application/json. A compact application/json callback's line has neither.
func TestArchiveKeepsRequestAsSent(t *testing.T) {
	t.Parallel()
	pretty := archivetest.Sample(t, "signed-publish.json")
	prettyDone := archivetest.Sample(t, "signed-publish_done.json")
	compact := archivetest.Compact(t, pretty)
	var indented bytes.Buffer
	if err := json.Indent(&indented, archivetest.Compact(t, archivetest.Sample(t, "unsigned-publish.json")), "", "\t"); err != nil {
		t.Fatal(err)
	}
	unsignedCRLF := strings.ReplaceAll(strings.Replace(indented.String(), "push.example.com", "other.example.com", 1), "\n", "\r\n")
	for _, tc := range []struct {
		name          string
		body          string
		header        []string // Content-Type values; nil: none
		wantType      string   // the archive.content_type member ("" => absent)
		wantBody      bool     // archive.body present
		wantSentType  string
		wantHasHeader bool
	}{
		{"compact application/json", string(compact), []string{"application/json"}, "", false, "application/json", true},
		{"pretty sample", string(pretty), []string{"application/json"}, "", true, "application/json", true},
		{"pretty text/plain", string(prettyDone), []string{"text/plain; charset=utf-8"}, `"text/plain; charset=utf-8"`, true, "text/plain; charset=utf-8", true},
		{"charset", string(compact), []string{"application/json; charset=UTF-8"}, `"application/json; charset=UTF-8"`, false, "application/json; charset=UTF-8", true},
		{"case differs", string(compact), []string{"Application/JSON"}, `"Application/JSON"`, false, "Application/JSON", true},
		{"no header", string(compact), nil, `""`, false, "", false},
		{"empty header is none", string(compact), []string{""}, `""`, false, "", false},
		{"first of two headers", string(compact), []string{"text/plain", "application/json"}, `"text/plain"`, false, "text/plain", true},
		{"trailing newline", string(compact) + "\n", []string{"application/json"}, "", true, "application/json", true},
		{"leading blank", " " + string(compact), []string{"application/json"}, "", true, "application/json", true},
		{"tabs and CRLF, unsigned", unsignedCRLF, []string{"application/json"}, "", true, "application/json", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, sk := newTrustHandler(t, handlerOpts{allowUnsigned: true})
			r := httptest.NewRequest(http.MethodPost, "/callback", strings.NewReader(tc.body))
			if tc.header != nil {
				r.Header["Content-Type"] = tc.header
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			evs := sk.events(t)
			if len(evs) != 1 {
				t.Fatalf("%d lines archived", len(evs))
			}
			ev := evs[0]
			var arch map[string]json.RawMessage
			if err := json.Unmarshal(archivetest.ArchiveField(t, ev.Raw), &arch); err != nil {
				t.Fatal(err)
			}
			if got := string(arch["content_type"]); got != tc.wantType {
				t.Errorf("archive.content_type = %s, want %s", orAbsent(got), orAbsent(tc.wantType))
			}
			if _, got := arch["body"]; got != tc.wantBody {
				t.Errorf("archive.body present = %v, want %v", got, tc.wantBody)
			}
			if !tc.wantBody && tc.wantType == "" && len(arch) != 6 {
				t.Errorf("a compact application/json callback's archive has other members: %s", archivetest.ArchiveField(t, ev.Raw))
			}
			body, ct, ok := ev.Request()
			if string(body) != tc.body || ct != tc.wantSentType || ok != tc.wantHasHeader {
				t.Errorf("Request() = %q, %q, %v; want %q, %q, %v", body, ct, ok, tc.body, tc.wantSentType, tc.wantHasHeader)
			}
			if string(ev.Body) != string(archivetest.Compact(t, []byte(tc.body))) {
				t.Errorf("the record's fields are not the compacted body: %s", ev.Body)
			}
		})
	}
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}

// A callback sent once pretty-printed and once compact is the same callback: the second is a
// redelivery (its layout and Content-Type do not make it a new event).
func TestLayoutIsNotIdentity(t *testing.T) {
	t.Parallel()
	h, sk := newTrustHandler(t, handlerOpts{allowUnsigned: true})
	pretty := archivetest.Sample(t, "unsigned-publish.json")
	var indented bytes.Buffer
	if err := json.Indent(&indented, archivetest.Compact(t, pretty), "", "  "); err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(indented.String(), "push.example.com", "other.example.com", 1)
	for i, ct := range []string{"application/json", "text/plain"} {
		b := body
		if i == 1 {
			b = string(archivetest.Compact(t, []byte(body)))
		}
		r := httptest.NewRequest(http.MethodPost, "/callback", strings.NewReader(b))
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if n := len(sk.events(t)); n != 1 {
		t.Errorf("%d lines archived; the compact redelivery of a pretty-printed callback must be dropped", n)
	}
}

// FuzzRequestRoundTrip: whatever body and Content-Type intake accepts, the archived line is
// readable and gives back exactly that body and header (an empty header counts as none).
func FuzzRequestRoundTrip(f *testing.F) {
	for _, b := range sampleBodies(f) {
		f.Add(b, "application/json")
		f.Add(b, "text/plain; charset=utf-8")
		f.Add(archivetest.Compact(f, b), "")
	}
	f.Add([]byte("\t{\"domain\":\"d\",\"app\":\"a\",\"stream\":\"s\",\"event\":\"PUBLISH\",\"x\":\"\\u2028\\\"\"}\r\n"), `application/json; charset="utf-8"`)
	f.Add([]byte(`{"domain":"d","app":"a","stream":"s","event":"PUBLISH","x":"é\u00e9"}`), "Application/Json")
	sk := &memSink{}
	h, err := New(Config{Sink: sk, AllowUnsigned: true, Metrics: metrics.NewArchiver(Reasons), Timeout: 5 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		if strings.ContainsFunc(ct, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) || !utf8.ValidString(ct) {
			return // net/http refuses such a header (or keeps it with U+FFFD, see layout)
		}
		sk.mu.Lock()
		sk.lines = sk.lines[:0]
		sk.mu.Unlock()
		r := httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(body))
		r.Header["Content-Type"] = []string{ct}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			return
		}
		evs := sk.events(t)
		if len(evs) != 1 {
			t.Fatalf("%d lines archived", len(evs))
		}
		got, gotCT, ok := evs[0].Request()
		if !bytes.Equal(got, body) || gotCT != ct || ok != (ct != "") {
			t.Fatalf("Request() = %q, %q, %v; sent %q, %q", got, gotCT, ok, body, ct)
		}
	})
}
