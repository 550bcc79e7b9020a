package replay_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/replay"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

// archive writes events through a real archiver (file store) and returns the store URL.
func archive(t *testing.T, bodies ...[]byte) string {
	t.Helper()
	store := "file://" + t.TempDir()
	c := server.DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.Store = store
	c.Spool = t.TempDir()
	c.AllowUnsigned = true
	c.Logger = slog.New(slog.DiscardHandler)
	s, err := server.New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		if r := archivetest.Post(t, s.URL()+"/callback", b); r.Status != 200 {
			t.Fatalf("post: %d %s", r.Status, r.Raw)
		}
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}

func TestReplayBackfillsInReceivedOrder(t *testing.T) {
	t.Parallel()
	var bodies [][]byte
	for i := range 5 {
		bodies = append(bodies, archivetest.Event("a.example.com", "s", []string{"PUBLISH", "PUBLISH_DONE"}[i%2], int64(i)))
	}
	bodies = append(bodies, archivetest.Event("other.example.com", "s", "PUBLISH", 9))
	store := archive(t, bodies...)
	rc := archivetest.NewReceiver(t, nil)
	day := layout.Day(time.Now(), time.UTC)
	var out, errb bytes.Buffer
	code := replay.Run(context.Background(), []string{"--store", store, "--from", day, "--to-url", rc.URL, "--domain", "a.example.com", "--rate", "200"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := rc.Accepted()
	if len(got) != 5 {
		t.Fatalf("replayed %d events, want the 5 of a.example.com", len(got))
	}
	for i, g := range got {
		if !bytes.Equal(g.Body, archivetest.Compact(t, bodies[i])) {
			t.Errorf("event %d:\n got %s\nwant %s", i, g.Body, bodies[i])
		}
		if g.EventID == "" || g.Attempt != 1 || g.Header.Get("Content-Type") != "application/json" {
			t.Errorf("event %d headers: %v", i, g.Header)
		}
	}
	if !strings.Contains(errb.String(), "5 of 5 events delivered") {
		t.Errorf("summary: %s", errb.String())
	}
}

func TestReplayFailuresAndUsage(t *testing.T) {
	t.Parallel()
	store := archive(t, archivetest.Event("a.example.com", "s", "PUBLISH", 1))
	day := layout.Day(time.Now(), time.UTC)
	// A receiver that refuses: exit 1, the event named.
	rc := archivetest.NewReceiver(t, func(int, *http.Request) int { return 400 })
	var out, errb bytes.Buffer
	if code := replay.Run(context.Background(), []string{"--store", store, "--from", day, "--to-url", rc.URL}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "not delivered: HTTP 400") {
		t.Errorf("refused: exit %d, %s", code, errb.String())
	}
	if n := len(rc.All()); n != 1 {
		t.Errorf("a 400 was retried: %d requests", n)
	}
	cfg := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(cfg, []byte("destinations:\n  - name: biz\n    url: http://127.0.0.1:1/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", day}, "say where to send: --to-url URL, or --destination NAME with --forward-config FILE"},
		{[]string{"--from", day, "--destination", "biz"}, "--destination biz needs --forward-config FILE"},
		{[]string{"--from", day, "--destination", "nope", "--forward-config", cfg}, `--destination "nope" is not in`},
		{[]string{"--from", day, "--to-url", "ftp://x"}, `is not an http:// or https:// URL`},
		{[]string{"--from", day, "--destination", "biz", "--forward-config", cfg, "--to-url", "ftp://x"}, `--to-url: url "ftp://x" is not an http:// or https:// URL`},
		{[]string{"--from", day, "--destination", "biz", "--forward-config", cfg, "--to-url", "http://u:p@x/"}, `url must not carry credentials`},
		{[]string{"--from", day, "--to-url", "http://x/", "--event", "RECORD"}, `invalid --event "RECORD"`},
		{[]string{"--to-url", "http://x/"}, `--from`},
		{[]string{"--from", day, "--to-url", "http://x/", "--rate", "-1"}, `must not be negative`},
	} {
		var out, errb bytes.Buffer
		code := replay.Run(context.Background(), append([]string{"--store", store}, tt.args...), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tt.args, code, errb.String(), tt.want)
		}
	}
}

// With --dead-letters and no --destination, an event that died for two destinations is sent
// once to the one --to-url; another event is sent too.
func TestReplayDeadLettersOfTwoDestinationsSendsEachEventOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	day := layout.Day(time.Now(), time.UTC)
	line := func(stream string, i int64) string {
		body := archivetest.Compact(t, archivetest.Event("a.example.com", stream, "PUBLISH", i))
		pt := time.Unix(i, 0).UTC()
		a := layout.Archive{ReceivedAt: time.Now().UTC().Add(time.Duration(i) * time.Second), EventID: layout.EventID("a.example.com", "live", stream, "PUBLISH", stream),
			RemoteAddr: "127.0.0.1:1", Signature: "none", PublishTime: &pt, Instance: "i1"}
		return string(layout.AppendRecord(nil, body, a))
	}
	shared, other := strings.TrimSpace(line("s1", 1)), strings.TrimSpace(line("s2", 2))
	dl := func(dest, ev string) string {
		return `{"destination":"` + dest + `","reason":"rejected","status":400,"attempts":1,"dead_at":"2026-01-02T03:04:05Z","event":` + ev + "}\n"
	}
	for key, body := range map[string]string{
		layout.DeadLetterDayPrefix(day) + "a/i1-1-0.jsonl": dl("a", shared),
		layout.DeadLetterDayPrefix(day) + "b/i1-1-0.jsonl": dl("b", shared) + dl("b", other),
	} {
		p := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rc := archivetest.NewReceiver(t, nil)
	var out, errb bytes.Buffer
	if code := replay.Run(context.Background(), []string{"--store", "file://" + dir, "--from", day, "--dead-letters", "--to-url", rc.URL}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := rc.Accepted(); len(got) != 2 || got[0].EventID == got[1].EventID {
		t.Errorf("sent %d events, want the shared one once and the other one: %s", len(got), errb.String())
	}
}
