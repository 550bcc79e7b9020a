package storage_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

// BenchmarkPut measures one batch upload (Put of a 4 MiB object) per backend.
func BenchmarkPut(b *testing.B) {
	gw := versitygw.StartT(b)
	bucket := gw.BucketT(b)
	ctx := context.Background()
	body := make([]byte, 4<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	for name, url := range map[string]string{
		"file": "file://" + filepath.ToSlash(b.TempDir()),
		"s3":   "s3://" + bucket + "/bench",
	} {
		b.Run(name, func(b *testing.B) {
			s, err := storage.Open(ctx, storage.Options{URL: url, Endpoint: gw.Endpoint, AccessKey: gw.AccessKey, SecretKey: gw.SecretKey})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			i := 0
			for b.Loop() {
				if err := s.Put(ctx, fmt.Sprintf("dt=2026-11-26/bench-%020d-000.jsonl.gz", i), body, "application/x-ndjson"); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
