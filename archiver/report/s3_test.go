package report_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/livehook/terraform-provider-livehook/archiver/report"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions/sessionstest"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

func TestMain(m *testing.M) {
	code := m.Run()
	versitygw.StopShared()
	os.Exit(code)
}

// TestReportS3: the report reads an S3 archive (a real VersityGW) with the credentials of the
// environment, like every read command, and counts what `archiver sessions` lists there. Not
// parallel (t.Setenv).
func TestReportS3(t *testing.T) {
	gw := versitygw.Shared(t)
	bucket := gw.BucketT(t)
	t.Setenv("AWS_ACCESS_KEY_ID", gw.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", gw.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "")
	o := storage.Options{URL: "s3://" + bucket + "/callbacks", Endpoint: gw.Endpoint}
	st, err := storage.Open(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sessionstest.Write(testCtx(t), st, sessionstest.Spec{From: "2026-11-01", Days: 3, Streams: 6, Seed: 11, Gzip: true}); err != nil {
		t.Fatal(err)
	}
	n := 0
	if _, err := sessions.Read(context.Background(), st, sessions.Query{From: "2026-11-02", To: "2026-11-03"}, sessions.ReadOptions{}, func(sessions.Session) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "r.html")
	var so, se bytes.Buffer
	if code := report.Run(testCtx(t), []string{"--store", o.URL, "--s3-endpoint", gw.Endpoint, "--from", "2026-11-02", "--to", "2026-11-03", "--out", out}, &so, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || !strings.Contains(string(page), `<b id="count">`+strconv.Itoa(n)+`</b>`) || !strings.Contains(string(page), "s3://"+bucket) {
		t.Errorf("the page does not show the %d sessions of s3://%s", n, bucket)
	}
	if strings.Contains(string(page), gw.SecretKey) || strings.Contains(se.String()+so.String(), gw.SecretKey) {
		t.Error("the secret key is in the page or the output")
	}
}
