package versitygw_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

func TestStartPutGetRestartStop(t *testing.T) {
	t.Parallel()
	s := versitygw.StartT(t)
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q, want http://127.0.0.1:PORT", s.Endpoint)
	}
	if s.AccessKey == "" || s.SecretKey == "" || s.AccessKey == s.SecretKey {
		t.Fatalf("credentials not random: %q / %q", s.AccessKey, s.SecretKey)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bucket := s.BucketT(t)
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("hello\n")
	if _, err := c.PutObject(ctx, bucket, "dt=2026-11-26/a.jsonl", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put: %v\n%s", err, s.LogTail())
	}
	// The posix backend keeps objects as plain files under Dir/bucket.
	if got, err := os.ReadFile(filepath.Join(s.Dir, bucket, "dt=2026-11-26", "a.jsonl")); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("object file = %q, %v; want %q", got, err, body)
	}

	endpoint := s.Endpoint
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if s.Endpoint != endpoint {
		t.Fatalf("endpoint changed across restart: %s -> %s", endpoint, s.Endpoint)
	}
	obj, err := c.GetObject(ctx, bucket, "dt=2026-11-26/a.jsonl", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	_ = obj.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after restart: %q, %v; want %q", got, err, body)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if s.Running() {
		t.Fatal("Running() after Stop")
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	short, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	if _, err := c.ListBuckets(short); err == nil {
		t.Fatal("ListBuckets succeeded on a stopped server")
	}
	if err := s.StartAgain(ctx); err != nil {
		t.Fatalf("start again: %v", err)
	}
	if _, err := c.ListBuckets(ctx); err != nil {
		t.Fatalf("after StartAgain: %v", err)
	}
}

func TestBinaryHint(t *testing.T) {
	t.Setenv("VERSITYGW", filepath.Join(t.TempDir(), "missing"))
	_, err := versitygw.Binary()
	if err == nil || !strings.Contains(err.Error(), versitygw.InstallHint) {
		t.Fatalf("Binary() error = %v; want the install hint", err)
	}
}

// TestKeepAlive: the server keeps connections open between requests, as real S3 endpoints do;
// otherwise every Put in the benchmarks would pay a TCP connect that production does not.
func TestKeepAlive(t *testing.T) {
	t.Parallel()
	s := versitygw.StartT(t)
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var reused []bool
	for range 2 {
		req, err := http.NewRequest(http.MethodGet, s.Endpoint+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			t.Fatalf("response %s asks to close the connection (Connection: close)", resp.Status)
		}
	}
	if len(reused) != 2 || !reused[1] {
		t.Fatalf("second request reused the connection: %v, want [false true]", reused)
	}
}
