package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

// mountTmpfs mounts a tmpfs of size bytes on a temp dir (root only) and unmounts it at cleanup.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skip(t, "needs root to mount a small tmpfs for the spool: run the archiver/server tests as root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Skip(t, fmt.Sprintf("needs mount -t tmpfs (root in a namespace that may mount): %v %s", err, out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestSpoolDiskFull: the spool's disk fills while the store cannot take objects. Events that
// cannot be fsynced get 503 with Retry-After, /readyz says 503, nothing acknowledged is lost, and
// once the store takes the backlog (freeing the disk) events are accepted again.
func TestSpoolDiskFull(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, 1<<20)
	gw := versitygw.Shared(t)
	e := newEnv(t, gw)
	missing := fmt.Sprintf("b-full-%d", time.Now().UnixNano()%1e12)
	c := e.config(t)
	c.Store = "s3://" + missing + "/archive/"
	c.Spool = filepath.Join(dir, "spool")
	c.FlushInterval = 100 * time.Millisecond
	c.FlushBytes = 128 << 10
	c.StoreTimeout = 2 * time.Second
	s := start(t, c)
	pad := strings.Repeat("x", 2000)
	acked, refused := 0, 0
	for i := 0; i < 2000 && refused == 0; i++ {
		body := archivetest.Event("d.example.com", fmt.Sprintf("s%d-%s", i, pad), "PUBLISH", int64(i))
		r := archivetest.Post(t, s.URL()+"/callback", body)
		switch r.Status {
		case 200:
			acked++
		case 503:
			if r.Header.Get("Retry-After") == "" {
				t.Fatalf("503 without Retry-After: %s", r.Raw)
			}
			refused++
		default:
			t.Fatalf("event %d: %d %s", i, r.Status, r.Raw)
		}
	}
	if refused == 0 || acked == 0 {
		t.Fatalf("acked %d, refused %d; want the disk to fill", acked, refused)
	}
	if code, body := readyz(t, s); code != 503 {
		t.Fatalf("/readyz with the spool disk full: %d %v; want 503", code, body)
	}
	t.Logf("disk full after %d acknowledged events", acked)
	if err := gw.CreateBucket(context.Background(), missing); err != nil {
		t.Fatal(err)
	}
	archivetest.Eventually(t, 60*time.Second, "the backlog to upload", func() bool { return s.Metrics().Stored.Value() >= uint64(acked) })
	archivetest.Eventually(t, 30*time.Second, "/readyz 200", func() bool { code, _ := readyz(t, s); return code == 200 })
	r := archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "after", "PUBLISH", 99999))
	if r.Status != 200 {
		t.Fatalf("after recovery: %d %s", r.Status, r.Raw)
	}
	acked++
	stop(t, s)
	if got := len(archivetest.ReadToday(t, archivetest.S3Store(t, gw, missing, "archive/"))); got != acked {
		t.Fatalf("read back %d of %d acknowledged", got, acked)
	}
	_ = server.AckSpool
}
