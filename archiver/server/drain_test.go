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
