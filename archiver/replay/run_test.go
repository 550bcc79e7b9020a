package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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

// rec is one archived event of a test archive: the instance that received it, when, and its
// stream (the event's name in the test).
type rec struct {
	instance, at, stream string
}

// writeDay stores recs as one object of day under dir (a file store), the way an instance
// writes them.
func writeDay(t *testing.T, dir, day string, seq uint64, recs ...rec) {
	t.Helper()
	if err := storeDay(dir, day, seq, recs...); err != nil {
		t.Fatal(err)
	}
}

// storeDay is writeDay for a receiver's goroutine (no t.Fatal there).
func storeDay(dir, day string, seq uint64, recs ...rec) error {
	var body []byte
	for i, r := range recs {
		at, err := time.Parse(time.RFC3339, r.at)
		if err != nil {
			return err
		}
		b := archivetest.Event("a.example.com", r.stream, "PUBLISH", int64(seq)*1000+int64(i)) // compact already
		body = layout.AppendRecord(body, b, layout.Archive{ReceivedAt: at, EventID: layout.EventID("a.example.com", "live", r.stream, "PUBLISH", r.stream),
			RemoteAddr: "127.0.0.1:1", Signature: "none", Instance: r.instance})
	}
	p := filepath.Join(dir, filepath.FromSlash(layout.ObjectKey(day, recs[0].instance, seq, 0, false)))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, body, 0o600)
}

// streams names the events in the order the receiver got them.
func streams(t *testing.T, got []archivetest.Received) []string {
	t.Helper()
	var out []string
	for _, g := range got {
		var v struct{ Stream string }
		if err := json.Unmarshal(g.Body, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v.Stream)
	}
	return out
}

// A range whose days cross: instances with another --partition-tz file events received late
// on one UTC day under the next dt= day, and one received at the same instant under each day.
// Replay sends them all in received_at order (ties in day order), as one sort of the whole
// range does.
func TestReplayManyDaysKeepsReceivedOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeDay(t, dir, "2026-11-01", 1, rec{"utc", "2026-11-01T23:00:00Z", "u2"}, rec{"utc", "2026-11-01T08:00:00Z", "u1"})
	writeDay(t, dir, "2026-11-02", 2, rec{"utc", "2026-11-02T12:00:00Z", "u3"})
	writeDay(t, dir, "2026-11-02", 1, rec{"cst", "2026-11-01T18:00:00Z", "c1"}, rec{"cst", "2026-11-01T23:00:00Z", "c2"},
		rec{"cst", "2026-11-02T10:00:00Z", "c3"}) // Asia/Shanghai: 02:00, 07:00, 18:00 on 11-02
	writeDay(t, dir, "2026-11-02", 1, rec{"kir", "2026-11-01T10:30:00Z", "k1"}) // UTC+14: 00:30 on 11-02
	writeDay(t, dir, "2026-11-03", 3, rec{"utc", "2026-11-03T01:00:00Z", "u4"})
	writeDay(t, dir, "2026-11-03", 2, rec{"cst", "2026-11-02T20:00:00Z", "c4"})
	want := []string{"u1", "k1", "c1", "u2", "c2", "c3", "u3", "c4", "u4"}

	rc := archivetest.NewReceiver(t, nil)
	var out, errb bytes.Buffer
	if code := replay.Run(context.Background(), []string{"--store", "file://" + dir, "--from", "2026-11-01", "--to", "2026-11-03", "--to-url", rc.URL}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := streams(t, rc.Accepted()); !slices.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	if !strings.Contains(errb.String(), "9 of 9 events delivered") || strings.Contains(errb.String(), "after events received later") {
		t.Errorf("summary: %s", errb.String())
	}

	out.Reset()
	errb.Reset()
	if code := replay.Run(context.Background(), []string{"--store", "file://" + dir, "--from", "2026-11-01", "--to", "2026-11-03", "--to-url", rc.URL, "--dry-run"}, &out, &errb); code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, errb.String())
	}
	var listed []archivetest.Received
	for l := range strings.Lines(out.String()) {
		listed = append(listed, archivetest.Received{Body: []byte(l)})
	}
	if got := streams(t, listed); !slices.Equal(got, want) {
		t.Errorf("dry run listed %v, want %v", got, want)
	}
}

// Memory holds a day, not the range: a day's objects are read only once the events of the day
// before that no later day can precede are sent. An object stored in day 2 while day 1 is being
// sent is therefore sent too; the late event of day 1 waits for day 2's sort.
func TestReplayReadsADayAfterSendingTheDayBefore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeDay(t, dir, "2026-11-01", 1, rec{"utc", "2026-11-01T01:00:00Z", "a"}, rec{"utc", "2026-11-01T20:00:00Z", "c"})
	writeDay(t, dir, "2026-11-02", 2, rec{"utc", "2026-11-02T03:00:00Z", "d"})
	rc := archivetest.NewReceiver(t, func(n int, _ *http.Request) int {
		if n == 0 { // day 1's first event: day 2 must not have been read yet
			if err := storeDay(dir, "2026-11-02", 3, rec{"cst", "2026-11-01T20:00:01Z", "e"}, rec{"cst", "2026-11-01T16:00:00Z", "b"}); err != nil {
				t.Error(err)
			}
		}
		return 200
	})
	var out, errb bytes.Buffer
	if code := replay.Run(context.Background(), []string{"--store", "file://" + dir, "--from", "2026-11-01", "--to", "2026-11-02", "--to-url", rc.URL}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got, want := streams(t, rc.Accepted()), []string{"a", "b", "c", "e", "d"}; !slices.Equal(got, want) {
		t.Errorf("sent %v, want %v (day 2 read only after day 1's early events were sent)", got, want)
	}
}
