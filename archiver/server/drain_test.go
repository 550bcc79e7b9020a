package server_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

// TestDrain: events an archiver accepted while its store was down, and left in its spool at
// shutdown, are uploaded by archiver drain (under the spool's instance name, each once); a spool
// held by a running archiver is refused; usage errors exit 2.
func TestDrain(t *testing.T) {
	t.Parallel()
	c := opsConfig(t)
	c.Store, c.S3Endpoint = "s3://down/archive/", "http://127.0.0.1:1" // nothing listens there
	c.S3AccessKey, c.S3SecretKey = "k", "s"
	c.FlushInterval, c.ShutdownTimeout = 20*time.Millisecond, 300*time.Millisecond
	s := start(t, c)
	const n = 5
	for i := range n {
		if r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "s", "PUBLISH", 1_700_000_000+int64(i))); r.Status != 200 {
			t.Fatalf("post %d: %d %s", i, r.Status, r.Raw)
		}
	}

	// Accepting into the spool while uploads fail: ready, and degraded (the alert's gauge).
	archivetest.Eventually(t, 10*time.Second, "livehook_archiver_degraded 1", func() bool {
		_, m := get(t, s.URL()+"/metrics")
		return strings.Contains(m, "livehook_archiver_degraded 1") && strings.Contains(m, "livehook_archiver_ready 1")
	})

	dest := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := server.Drain(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	// While the archiver runs it holds the spool's lock.
	if code, _, stderr := run("--spool", c.Spool, "--store", "file://"+dest); code != 1 || !strings.Contains(stderr, "in use") {
		t.Fatalf("drain of a spool in use: exit %d, %s", code, stderr)
	}
	_ = s.Shutdown(context.Background()) // the store is down: the events stay in the spool
	instance := s.Instance()

	code, stdout, stderr := run("--spool", c.Spool, "--store", "file://"+dest, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("drain: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "5 events") {
		t.Errorf("drain said %q, want the count of events", stdout)
	}
	st, err := storage.Open(context.Background(), storage.Options{URL: "file://" + dest})
	if err != nil {
		t.Fatal(err)
	}
	events := archivetest.ReadToday(t, st)
	if len(events) != n {
		t.Fatalf("drained %d events, want %d", len(events), n)
	}
	for _, ev := range events {
		if ev.Archive.Instance != instance {
			t.Errorf("event under instance %q, want the spool's %q", ev.Archive.Instance, instance)
		}
	}
	// Drained once: a second drain finds nothing more to upload.
	if code, stdout, _ := run("--spool", c.Spool, "--store", "file://"+dest); code != 0 || !strings.Contains(stdout, " 0 events") {
		t.Errorf("second drain: exit %d, %s", code, stdout)
	}
	if got := len(archivetest.ReadToday(t, st)); got != n {
		t.Errorf("after a second drain %d events, want %d", got, n)
	}

	notSpool := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--spool DIR is required"},
		{[]string{"--spool", notSpool}, "not a spool directory"},
		{[]string{"--spool", filepath.Join(notSpool, "missing")}, "not a spool directory"},
		{[]string{"--spool", c.Spool, "extra"}, "unexpected argument"},
		{[]string{"--spool", c.Spool, "--timeout", "0s"}, "--timeout"},
		{[]string{"--spool", c.Spool, "--log-level", "loud"}, "--log-level"},
	} {
		if code, _, stderr := run(tc.args...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("drain %v: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if ents, _ := os.ReadDir(notSpool); len(ents) != 0 {
		t.Errorf("drain created files in a directory that is not a spool: %v", ents)
	}
}

// TestDrainNamesRelayQueues: drain stores, it does not forward. A destination that had not
// taken its events keeps them queued in the spool, and drain names it (with the days, for
// archiver replay); a destination that took everything is not named.
func TestDrainNamesRelayQueues(t *testing.T) {
	t.Parallel()
	down := archivetest.NewReceiver(t, func(int, *http.Request) int { return http.StatusServiceUnavailable })
	healthy := archivetest.NewReceiver(t, nil)
	c := opsConfig(t)
	c.Forward = []string{"biz=" + down.URL, "crm=" + healthy.URL}
	c.ForwardBackoff = backoff.Policy{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond}
	s := start(t, c)
	for i := range 3 {
		if r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "s", "PUBLISH", 1_700_000_000+int64(i))); r.Status != 200 {
			t.Fatalf("post %d: %d %s", i, r.Status, r.Raw)
		}
	}
	archivetest.Eventually(t, 10*time.Second, "crm got the 3 events", func() bool { return len(healthy.Accepted()) == 3 })
	_ = s.Shutdown(context.Background())

	var out, errb bytes.Buffer
	if code := server.Drain(context.Background(), []string{"--spool", c.Spool, "--store", c.Store, "--log-level", "error"}, &out, &errb); code != 0 {
		t.Fatalf("drain: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	day := layout.Day(time.Now(), time.UTC)
	for _, want := range []string{
		"events not yet forwarded to biz (3 events, dt=" + day + ") stay queued in " + filepath.Join(c.Spool, "relay"),
		"serve this spool again with the same --forward",
		"archiver replay --from " + day + " --to " + day + " --destination biz --forward-config FILE",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("drain said %q, want %q", errb.String(), want)
		}
	}
	if strings.Contains(errb.String(), "crm") {
		t.Errorf("drain named crm, which has taken every event: %s", errb.String())
	}
}

// TestDrainStoresPendingDeadLetters: dead-letter objects the relay could not store (kept under
// <spool>/relay/<name>/pending/) are stored by drain under their _deadletter/ key, or a fresh
// name when the key holds other bytes, and removed locally; drain counts them per destination.
// When the store refuses them they stay, and drain exits 1 and says to run it again; a damaged
// file stays too, and drain says to inspect it.
func TestDrainStoresPendingDeadLetters(t *testing.T) {
	t.Parallel()
	c := opsConfig(t)
	s := start(t, c)
	_ = s.Shutdown(context.Background())
	day := layout.Day(time.Now(), time.UTC)
	keyA := layout.DeadLetterKey(day, "biz", "i1", 1, 0)
	keyB := layout.DeadLetterKey(day, "biz", "i1", 2, 0)
	keyC := layout.DeadLetterKey(day, "crm", "i1", 1, 0)
	bodyA, bodyB, bodyC := []byte(`{"event":{"a":1}}`+"\n"), []byte(`{"event":{"b":1}}`+"\n"), []byte(`{"event":{"c":1}}`+"\n")
	// The relay's format: the object key, a newline, the object's bytes.
	writePending := func(name, key string, body []byte) string {
		t.Helper()
		p := filepath.Join(c.Spool, "relay", name, "pending", filepath.Base(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, append([]byte(key+"\n"), body...), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	drain := func(dest string) (int, string) {
		var out, errb bytes.Buffer
		code := server.Drain(context.Background(), []string{"--spool", c.Spool, "--store", "file://" + dest, "--log-level", "error", "--timeout", "5s"}, &out, &errb)
		return code, errb.String()
	}

	// A store that refuses them: kept, exit 1, and drain says so.
	blocked := t.TempDir()
	if err := os.WriteFile(filepath.Join(blocked, "_deadletter"), nil, 0o600); err != nil { // no directory can be made under it
		t.Fatal(err)
	}
	pa := writePending("biz", keyA, bodyA)
	code, stderr := drain(blocked)
	if code != 1 || !strings.Contains(stderr, "1 dead-letter object of biz could not be stored and stay in "+filepath.Dir(pa)) || !strings.Contains(stderr, "run archiver drain again") {
		t.Errorf("drain into a store that refuses dead letters: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(pa); err != nil {
		t.Fatalf("pending dead letter dropped although the store refused it: %v", err)
	}

	dest := t.TempDir()
	st, err := storage.Open(context.Background(), storage.Options{URL: "file://" + dest})
	if err != nil {
		t.Fatal(err)
	}
	// keyB already holds other bytes: never overwritten, stored under a fresh name.
	if err := st.Put(context.Background(), keyB, []byte("other\n"), "application/x-ndjson"); err != nil {
		t.Fatal(err)
	}
	pb, pc := writePending("biz", keyB, bodyB), writePending("crm", keyC, bodyC)
	code, stderr = drain(dest)
	if code != 0 {
		t.Fatalf("drain: exit %d, %s", code, stderr)
	}
	for _, want := range []string{"stored 2 pending dead-letter objects of biz", "stored 1 pending dead-letter object of crm"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("drain said %q, want %q", stderr, want)
		}
	}
	for key, want := range map[string][]byte{keyA: bodyA, layout.ConflictKey(keyB, bodyB): bodyB, keyB: []byte("other\n"), keyC: bodyC} {
		if got, err := storage.ReadAll(context.Background(), st, key); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q, %v; want %q", key, got, err, want)
		}
	}
	for _, p := range []string{pa, pb, pc} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s kept after it was stored: %v", p, err)
		}
	}
	damaged := filepath.Join(c.Spool, "relay", "crm", "pending", "junk.jsonl")
	if err := os.WriteFile(damaged, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stderr = drain(dest); code != 1 || !strings.Contains(stderr, "1 damaged file in "+filepath.Dir(damaged)) {
		t.Errorf("drain with a damaged pending file: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(damaged); err != nil {
		t.Errorf("damaged pending file removed: %v", err)
	}
}
