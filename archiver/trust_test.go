package main

// End-to-end attacks against the built binary: the poisoning replay, the boundary-shift forgery,
// smuggled keys, and refusing to start open.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/callback"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

const e2eKey = "e2e-key-0123456789abcdef01234567"

type e2eCallback struct {
	Domain           string `json:"domain"`
	App              string `json:"app"`
	Stream           string `json:"stream"`
	Event            string `json:"event"`
	PublishTimestamp string `json:"publish_timestamp"`
	AuthTimestamp    string `json:"-"` // raw JSON text, written by body()
	AuthSign         string `json:"-"`
	ClientIP         string `json:"client_ip"`
}

func (c e2eCallback) body() []byte {
	b, _ := json.Marshal(c)
	return append(b[:len(b)-1], fmt.Sprintf(`,"auth_timestamp":%s,"auth_sign":%q}`, c.AuthTimestamp, c.AuthSign)...)
}

func signedE2E(stream string, ts int64, pts int64) e2eCallback {
	return e2eCallback{Domain: "push.example.com", App: "live", Stream: stream, Event: "PUBLISH",
		PublishTimestamp: strconv.FormatInt(pts, 10), AuthTimestamp: strconv.FormatInt(ts, 10),
		AuthSign: callback.Sign(e2eKey, "PUBLISH", "push.example.com", "live", stream, ts), ClientIP: "10.0.0.1"}
}

func TestTrustAttacksAgainstBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keys, []byte(`{"push.example.com":"`+e2eKey+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	store := "file://" + filepath.Join(dir, "archive")
	args := []string{"--store", store, "--spool", filepath.Join(dir, "spool"), "--keys", keys, "--flush-interval", "100ms", "--gzip=false"}
	p := serve(t, nil, dir, args...)
	post := func(body []byte) archivetest.Response { return archivetest.Post(t, p.url+"/callback", body) }

	now := time.Now().Unix()
	// A captured genuine callback, replayed with the publish_timestamps of the next stream starts
	// (publish_timestamp is not signed).
	captured := signedE2E("cam12", now, now-5)
	if r := post(captured.body()); r.Status != 200 || r.Body["status"] != "ok" {
		t.Fatalf("captured: %d %s", r.Status, r.Raw)
	}
	for i := int64(1); i <= 3; i++ {
		replay := captured
		replay.PublishTimestamp = strconv.FormatInt(now+i, 10)
		if r := post(replay.body()); r.Status != 200 || r.Body["status"] != "ok" {
			t.Fatalf("replay %d: %d %s", i, r.Status, r.Raw)
		}
	}
	// The genuine callbacks for those starts are archived, not answered "duplicate".
	var genuine [][]byte
	for i := int64(1); i <= 3; i++ {
		g := signedE2E("cam12", now+i, now+i)
		genuine = append(genuine, g.body())
		if r := post(g.body()); r.Status != 200 || r.Body["status"] != "ok" {
			t.Fatalf("genuine %d after the poisoning replay: %d %s, want 200 ok", i, r.Status, r.Raw)
		}
	}
	// The boundary-shift forgery: "cam12"+"<ts>" re-cut as "cam1"+"2<ts>" keeps the signature.
	shifted := captured
	shifted.Stream, shifted.AuthTimestamp = "cam1", "2"+captured.AuthTimestamp
	back := signedE2E("cam", now, now)
	back.Stream, back.AuthTimestamp = "cam"+back.AuthTimestamp[:1], back.AuthTimestamp[1:]
	huge := signedE2E("x", 0, now)
	huge.AuthTimestamp = "9223372036854775807"
	variant := captured
	variant.Domain, variant.AuthSign = "PUSH.Example.COM.", ""
	unknown := captured
	unknown.Domain = "other.example.com"
	smuggled := bytes.Replace(captured.body(), []byte(`"app"`), []byte(`"DOMAIN":"evil.example.com","app"`), 1)
	reserved := bytes.Replace(captured.body(), []byte(`"app"`), []byte(`"archive":{"signature":"verified"},"app"`), 1)
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"boundary shift forward", shifted.body(), 401},
		{"boundary shift back", back.body(), 401},
		{"max int64 auth_timestamp", huge.body(), 401},
		{"case/dot variant of a keyed domain, unsigned", bytes.Replace(variant.body(), []byte(`,"auth_sign":""`), nil, 1), 401},
		{"domain without a key", unknown.body(), 403},
		{"DOMAIN next to domain", smuggled, 400},
		{"own archive object", reserved, 400},
	} {
		if r := post(tc.body); r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.Raw, tc.status)
		}
	}
	// Identical redeliveries stay duplicates, across a restart.
	if r := post(genuine[0]); r.Body["status"] != "duplicate" {
		t.Fatalf("redelivery: %d %s", r.Status, r.Raw)
	}
	if code, _ := p.terminate(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	p = serve(t, nil, dir, args...)
	for i, g := range genuine {
		if r := archivetest.Post(t, p.url+"/callback", g); r.Status != 200 || r.Body["status"] != "duplicate" {
			t.Fatalf("redelivery %d after restart: %d %s", i, r.Status, r.Raw)
		}
	}
	if code, _ := p.terminate(); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	// archiver events: 7 records, the 3 genuine ones marked as repeats of the replayed identities.
	from, to := archivetest.Today()
	events := func(format string) string {
		cmd := exec.Command(binary, "events", "--store", store, "--from", from, "--to", to, "--format", format)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("archiver events: %v\n%s", err, errb.String())
		}
		return out.String()
	}
	lines := strings.Split(strings.TrimSpace(events("jsonl")), "\n")
	ids := map[string]int{}
	repeats := 0
	for _, l := range lines {
		var rec struct {
			Archive struct {
				EventID string `json:"event_id"`
				Repeat  bool   `json:"repeat"`
			} `json:"archive"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		ids[rec.Archive.EventID]++
		if rec.Archive.Repeat {
			repeats++
		}
	}
	if len(lines) != 7 || repeats != 3 || len(ids) != 4 {
		t.Fatalf("archived %d records, %d repeats, %d event ids; want 7, 3, 4:\n%s", len(lines), repeats, len(ids), strings.Join(lines, "\n"))
	}
	if table := events("table"); strings.Count(table, "repeat") != 3 || !strings.Contains(table, "REPEAT") {
		t.Fatalf("table does not mark the 3 repeats:\n%s", table)
	}
}

// Without --keys or --allow-unsigned the binary refuses to start: exit 2, one line.
func TestRefusesToStartOpen(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--store", "file://"+t.TempDir())
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2", err)
	}
	msg := errb.String()
	if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "--keys FILE") || !strings.Contains(msg, "--allow-unsigned") {
		t.Fatalf("message %q, want one line naming --keys FILE and --allow-unsigned", msg)
	}
}
