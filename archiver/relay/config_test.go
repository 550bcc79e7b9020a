package relay

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/internal/callback"
)

func TestParseConfig(t *testing.T) {
	ds, err := ParseConfig("f.yaml", []byte(`
destinations:
  - name: business
    url: https://biz.example.com/live/callback
    domains: [Push.Example.com.]
    events: [PUBLISH, PUBLISH_DONE]
    timeout: 2s
    max_age: 1h
    headers: {X-Env: prod}
    resign: true
  - name: audit
    url: http://127.0.0.1:9/cb
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 {
		t.Fatalf("got %d destinations", len(ds))
	}
	b := ds[0]
	if b.Timeout != 2*time.Second || b.MaxAge != time.Hour || !b.Resign || b.Headers["X-Env"] != "prod" || b.Domains[0] != "push.example.com" {
		t.Errorf("business: %+v", b)
	}
	if a := ds[1]; a.Timeout != DefaultTimeout || a.MaxAge != DefaultMaxAge || !a.Wants("any.example.com", callback.EventPublishDone) {
		t.Errorf("audit defaults: %+v", a)
	}
	if b.Wants("other.example.com", callback.EventPublish) || !b.Wants("push.example.com", callback.EventPublish) {
		t.Error("domain filter")
	}
	// Domains compare canonical (intake.CanonicalDomain): case and a trailing dot do not matter.
	if !b.Wants("PUSH.example.com.", callback.EventPublish) {
		t.Error("domain filter: PUSH.example.com. is push.example.com")
	}
}

// Every kind of bad configuration is one line naming what is wrong.
func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, yaml, want string }{
		{"unknown option", "destinations:\n  - name: a\n    url: http://x/\n    retries: 3\n", `field retries not found`},
		{"bad url", "destinations:\n  - name: a\n    url: ftp://x/\n", `url "ftp://x/" is not an http:// or https:// URL`},
		{"no url", "destinations:\n  - name: a\n", `url "" is not an http`},
		{"bad name", "destinations:\n  - name: Biz_1\n    url: http://x/\n", `name "Biz_1" must be 1-63 of a-z, 0-9 and -`},
		{"bad event", "destinations:\n  - name: a\n    url: http://x/\n    events: [RECORD]\n", `event "RECORD": want PUBLISH or PUBLISH_DONE`},
		{"bad duration", "destinations:\n  - name: a\n    url: http://x/\n    timeout: soon\n", `time.Duration`},
		{"reserved header", "destinations:\n  - name: a\n    url: http://x/\n    headers: {X-Livehook-Attempt: '1'}\n", `header "X-Livehook-Attempt" cannot be set`},
		{"ca without https", "destinations:\n  - name: a\n    url: http://x/\n    ca_file: " + notPEM + "\n", `ca_file needs an https:// url`},
		{"ca not pem", "destinations:\n  - name: a\n    url: https://x/\n    ca_file: " + notPEM + "\n", `holds no PEM certificate`},
		{"credentials in url", "destinations:\n  - name: a\n    url: https://u:p@x/\n", `must not carry credentials`},
		{"not yaml", "destinations: [", `--forward-config f.yaml:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("f.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "--forward-config f.yaml") {
				t.Errorf("error %q: want one line with %q", msg, tt.want)
			}
			if strings.Contains(err.Error(), ":p@") {
				t.Error("credentials in the message")
			}
		})
	}
	a, _ := ParseForward("a=http://x/")
	if _, err := Merge([]Destination{a}, []Destination{a}); err == nil || !strings.Contains(err.Error(), `"a" is used twice`) {
		t.Errorf("duplicate: %v", err)
	}
	for _, v := range []string{"nourl", "a=", "A=http://x/", "a=x.example.com"} {
		if _, err := ParseForward(v); err == nil || !strings.HasPrefix(err.Error(), "--forward") {
			t.Errorf("--forward %q: %v", v, err)
		}
	}
}

func TestResign(t *testing.T) {
	key := "0123456789abcdef0123456789abcdef"
	body := []byte(`{"domain":"push.example.com","app":"live","stream":"s","event":"PUBLISH","x":{"a":[1,2]},"auth_timestamp":1587954140,"auth_sign":"old"}`)
	now := time.Unix(1900000000, 0)
	out, err := Resign(body, key, now)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"domain":"push.example.com","app":"live","stream":"s","event":"PUBLISH","x":{"a":[1,2]},"auth_timestamp":1900000000,"auth_sign":"` +
		callback.Sign(key, "PUBLISH", "push.example.com", "live", "s", now.Unix()) + `"}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	for _, bad := range []string{``, `[]`, `{"a":`, `nonsense`} {
		if _, err := Resign([]byte(bad), key, now); err == nil {
			t.Errorf("Resign(%q) accepted", bad)
		}
	}
}

// A receiver that echoes the request does not put the signature into logs or dead letters.
func TestSnippetMasksSignatures(t *testing.T) {
	sign := callback.Sign("0123456789abcdef0123456789abcdef", "PUBLISH", "d", "a", "s", 1)
	got := snippet(strings.NewReader("bad request:\n{\"auth_sign\":\"" + sign + "\"}"))
	if strings.Contains(got, sign) || strings.Contains(got, sign[:24]) || !strings.Contains(got, "[masked]") || strings.Contains(got, "\n") {
		t.Errorf("snippet %q", got)
	}
}

// The fast parse gives the body and event id readback's strict parse gives.
func TestParseFastMatchesReadback(t *testing.T) {
	pt := time.Unix(1587954134, 0)
	for _, body := range []string{
		`{"domain":"push.example.com","app":"live","stream":"s","publish_timestamp":"1587954134","event":"PUBLISH","auth_timestamp":1587954140,"auth_sign":"x"}`,
		`{"domain":"d","user_args":"a=\",\"archive\":{\"received_at\":\"x","event":"PUBLISH_DONE","x":{"archive":1}}`,
		`{}`,
		`not json`,
	} {
		a := layout.Archive{ReceivedAt: time.Unix(1764115200, 5), EventID: layout.EventID("d", "a", "s", "PUBLISH", "1"), Signature: "none", PublishTime: &pt, Instance: "i"}
		line := layout.AppendRecord(nil, []byte(body), a)
		fast, ferr := parse(line, false)
		full, err := parse(line, true)
		if err != nil || ferr != nil {
			t.Fatalf("%s: %v / %v", line, ferr, err)
		}
		if !bytes.Equal(fast.Body, full.Body) || fast.Archive.EventID != full.Archive.EventID || full.Archive.EventID != a.EventID {
			t.Errorf("%s:\nfast %s %s\nfull %s %s", line, fast.Body, fast.Archive.EventID, full.Body, full.Archive.EventID)
		}
	}
}
