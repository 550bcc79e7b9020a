package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

// TestForwardSurvivesFiveSIGKILLs: the archiver is SIGKILLed five times under load while its
// destination flaps (503 a third of the time); after the last restart every acknowledged event
// has reached the destination at least once, and every repeat carries the same
// X-Livehook-Event-Id and body.
func TestForwardSurvivesFiveSIGKILLs(t *testing.T) {
	t.Parallel()
	gw := versitygw.Shared(t)
	bucket := gw.BucketT(t)
	rc := archivetest.NewReceiver(t, func(int, *http.Request) int {
		if time.Now().UnixMilli()/300%3 == 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	spool := t.TempDir()
	args := append(s3Args(gw, bucket), "--spool", spool, "--flush-interval", "300ms", "--flush-bytes", "32KiB", "--forward", "biz="+rc.URL)

	acked := map[string][]byte{} // event_id -> body
	for round := range 5 {
		p := serve(t, gw, t.TempDir(), args...)
		loadThenKill(p, 4, 1500*time.Millisecond, func(g int) string { return fmt.Sprintf("r%dg%d", round, g) }, acked)
	}
	if len(acked) < 200 {
		t.Fatalf("only %d events acknowledged", len(acked))
	}
	p := serve(t, gw, t.TempDir(), args...)
	delivered := func() map[string]int {
		n := map[string]int{}
		for _, r := range rc.Accepted() {
			n[r.EventID]++
		}
		return n
	}
	archivetest.Eventually(t, 90*time.Second, "every acknowledged event delivered", func() bool {
		d := delivered()
		for id := range acked {
			if d[id] == 0 {
				return false
			}
		}
		return true
	})
	if code, _ := p.terminate(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	repeats := 0
	for _, r := range rc.Accepted() {
		body, ok := acked[r.EventID]
		if !ok {
			continue // acknowledged just before a kill, answer lost: delivered, fine
		}
		if !bytes.Equal(r.Body, body) {
			t.Errorf("event %s delivered with another body:\n got %s\nwant %s", r.EventID, r.Body, body)
		}
	}
	for _, n := range delivered() {
		repeats += n - 1
	}
	t.Logf("%d acknowledged over 5 SIGKILLs, %d deliveries accepted, %d repeats, %d refused attempts", len(acked), len(rc.Accepted()), repeats, len(rc.All())-len(rc.Accepted()))
}

// TestSIGHUPReloadsDestinations: a destination added to --forward-config gets events after
// SIGHUP; a removed one keeps its queue (cursor) on disk.
func TestSIGHUPReloadsDestinations(t *testing.T) {
	t.Parallel()
	a := archivetest.NewReceiver(t, nil)
	b := archivetest.NewReceiver(t, nil)
	cfg := filepath.Join(t.TempDir(), "forward.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("destinations:\n  - name: a\n    url: " + a.URL + "\n")
	spool := t.TempDir()
	p := serve(t, nil, t.TempDir(), "--store", "file://"+t.TempDir(), "--spool", spool, "--forward-config", cfg)
	post := func(i int) {
		if r := archivetest.Post(t, p.url+"/callback", archivetest.Event("h.example.com", "s", "PUBLISH", int64(i))); r.Status != 200 {
			t.Fatalf("post: %d %s", r.Status, r.Raw)
		}
	}
	post(1)
	archivetest.Eventually(t, 15*time.Second, "a gets the first event", func() bool { return len(a.Accepted()) == 1 })
	write("destinations:\n  - name: b\n    url: " + b.URL + "\n")
	if err := syscall.Kill(p.p.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	archivetest.Eventually(t, 15*time.Second, "the reload is logged", func() bool {
		return strings.Contains(strings.Join(p.Logs(), "\n"), "reloaded the forward destinations")
	})
	post(2)
	archivetest.Eventually(t, 15*time.Second, "b gets the second event", func() bool { return len(b.Accepted()) == 1 })
	if len(a.Accepted()) != 1 {
		t.Errorf("the removed destination got %d events", len(a.Accepted()))
	}
	if _, err := os.Stat(filepath.Join(spool, "relay", "a", "cursor")); err != nil {
		t.Errorf("the removed destination's queue is gone: %v", err)
	}
	if code, _ := p.terminate(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// TestExamplesShowTheRelay: the spool-mode deployments forward to the business server (the flags
// themselves are parsed by TestKubernetesExamples and TestSystemdExample).
func TestExamplesShowTheRelay(t *testing.T) {
	t.Parallel()
	for file, want := range map[string]string{
		"kubernetes/spool/statefulset.yaml": "- --forward=business=https://",
		"systemd/livehook-archiver.service": "--forward business=https://",
	} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "archiver", file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not forward to the business server (%q)", file, want)
		}
	}
}
