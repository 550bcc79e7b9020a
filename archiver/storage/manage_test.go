package storage_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

func TestParseRetention(t *testing.T) {
	for _, c := range []struct {
		in   string
		want storage.Retention
		err  string
	}{
		{"COMPLIANCE:365", storage.Retention{Mode: "COMPLIANCE", Days: 365}, ""},
		{"governance:1", storage.Retention{Mode: "GOVERNANCE", Days: 1}, ""},
		{"COMPLIANCE", storage.Retention{}, "MODE:DAYS"},
		{"LEGAL:3", storage.Retention{}, "GOVERNANCE or COMPLIANCE"},
		{"COMPLIANCE:0", storage.Retention{}, "1 to 36500"},
		{"COMPLIANCE:-5", storage.Retention{}, "1 to 36500"},
		{"COMPLIANCE:9999999999999", storage.Retention{}, "1 to 36500"},
	} {
		got, err := storage.ParseRetention(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v %v", c.in, got, err)
		}
	}
}

func TestFileStoreDeleteAndNoLock(t *testing.T) {
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Options{URL: "file://" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "dt=2026-11-26/a.jsonl", []byte("x\n"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	d := st.(storage.Deleter)
	for range 2 { // the second delete of a missing key is fine (a rerun finishes the job)
		if err := d.Delete(ctx, "dt=2026-11-26/a.jsonl"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Get(ctx, "dt=2026-11-26/a.jsonl"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("after delete: %v", err)
	}
	if err := d.Delete(ctx, "../escape"); err == nil {
		t.Fatal("deleted a key outside the store")
	}
	if err := st.(storage.Locker).CheckObjectLock(ctx); !errors.Is(err, storage.ErrLockUnsupported) {
		t.Fatalf("file store object lock: %v", err)
	}
}

// TestS3ObjectLock: against VersityGW, a bucket created with Object Lock passes the check and gets
// retention on the objects written; the locked object cannot be deleted; a bucket without Object
// Lock is refused with a message that says what to do.
func TestS3ObjectLock(t *testing.T) {
	gw := versitygw.StartT(t)
	ctx := context.Background()
	c, err := gw.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(ctx, "locked", minio.MakeBucketOptions{Region: versitygw.Region, ObjectLocking: true}); err != nil {
		t.Fatal(err)
	}
	if err := gw.CreateBucket(ctx, "plain"); err != nil {
		t.Fatal(err)
	}
	open := func(bucket string) storage.Store {
		st, err := storage.Open(ctx, storage.Options{URL: "s3://" + bucket + "/p/", Endpoint: gw.Endpoint, AccessKey: gw.AccessKey, SecretKey: gw.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	plain := open("plain")
	if err := plain.(storage.Locker).CheckObjectLock(ctx); err == nil || !strings.Contains(err.Error(), "does not have Object Lock enabled") {
		t.Fatalf("plain bucket: %v", err)
	}
	locked := open("locked")
	lk := locked.(storage.Locker)
	if err := lk.CheckObjectLock(ctx); err != nil {
		t.Fatalf("locked bucket: %v", err)
	}
	key := "dt=2026-11-26/a-00000000000000000001-000.jsonl"
	if err := locked.Put(ctx, key, []byte("{}\n"), "application/x-ndjson"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := lk.Retain(ctx, key, storage.Retention{Mode: "COMPLIANCE", Days: 2}, now); err != nil {
		t.Fatal(err)
	}
	// HEAD, not GetObjectRetention: VersityGW 1.8 answers that one with an <ObjectLockRetention>
	// root element that minio-go does not parse.
	info, err := c.StatObject(ctx, "locked", "p/"+key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mode := info.Metadata.Get("X-Amz-Object-Lock-Mode")
	until, _ := time.Parse(time.RFC3339, info.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date"))
	if mode != "COMPLIANCE" || until.Sub(now.AddDate(0, 0, 2)).Abs() > time.Minute {
		t.Fatalf("retention %q until %v (headers %v)", mode, until, info.Metadata)
	}
	if err := locked.(storage.Deleter).Delete(ctx, key); err == nil {
		t.Fatal("deleting a COMPLIANCE-locked object succeeded")
	} else {
		t.Logf("delete refused: %v", err)
	}
	if _, err := locked.Get(ctx, key); err != nil {
		t.Fatalf("locked object gone: %v", err)
	}
}
