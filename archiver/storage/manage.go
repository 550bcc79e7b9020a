package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// Deleter removes objects (compaction removes the originals it merged). Deleting a missing key is
// not an error, so a rerun after a crash finishes the job.
type Deleter interface {
	Delete(ctx context.Context, key string) error
}

// Retention is S3 Object Lock retention: a mode and a number of days from the write.
type Retention struct {
	Mode string // GOVERNANCE or COMPLIANCE
	Days int
}

// ParseRetention reads --object-lock MODE:DAYS, e.g. COMPLIANCE:365 (mode case-insensitive).
func ParseRetention(s string) (Retention, error) {
	mode, days, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Retention{}, fmt.Errorf("--object-lock %q: want MODE:DAYS, e.g. GOVERNANCE:30 or COMPLIANCE:365", s)
	}
	mode = strings.ToUpper(strings.TrimSpace(mode))
	if mode != "GOVERNANCE" && mode != "COMPLIANCE" {
		return Retention{}, fmt.Errorf("--object-lock %q: mode must be GOVERNANCE or COMPLIANCE", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(days))
	if err != nil || n < 1 || n > 36500 {
		return Retention{}, fmt.Errorf("--object-lock %q: days must be a whole number from 1 to 36500", s)
	}
	return Retention{Mode: mode, Days: n}, nil
}

// Locker applies Object Lock retention.
type Locker interface {
	// CheckObjectLock fails, saying what to change, unless the bucket has Object Lock enabled.
	CheckObjectLock(ctx context.Context) error
	// Retain sets retention r (until now + r.Days) on key.
	Retain(ctx context.Context, key string, r Retention, now time.Time) error
}

// ErrLockUnsupported is returned where a store cannot lock objects.
var ErrLockUnsupported = errors.New("object lock is not supported by this store")

// Delete removes key's file; a missing file is fine.
func (s *fileStore) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("file store %s: delete: %w", s, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file store %s: delete %s: %w", s, key, err)
	}
	// No directory fsync: a removal lost in a crash leaves a duplicate that a rerun removes, and
	// a sync per key made deleting a day's originals take minutes.
	if err := os.Remove(s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file store %s: delete %s: %w", s, key, err)
	}
	return nil
}

// CheckObjectLock: a directory has no retention; a WORM archive needs an S3 bucket.
func (s *fileStore) CheckObjectLock(context.Context) error {
	return fmt.Errorf("file store %s: %w: --object-lock needs an S3 bucket created with Object Lock enabled", s, ErrLockUnsupported)
}

func (s *fileStore) Retain(context.Context, string, Retention, time.Time) error {
	return fmt.Errorf("file store %s: %w", s, ErrLockUnsupported)
}

// Delete removes key. On a versioned bucket this adds a delete marker; locked versions stay.
func (s *s3Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("%s: delete: %w", s, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		var resp minio.ErrorResponse
		if errors.As(err, &resp) && resp.Code == "AccessDenied" && strings.Contains(strings.ToLower(resp.Message), "object lock") {
			return &storeError{msg: fmt.Sprintf("%s: delete %s: the object is under Object Lock retention and cannot be deleted before it expires", s, key), err: err}
		}
		err = s.wrap("delete", key, err)
		if errors.Is(err, ErrNotExist) {
			return nil
		}
		return err
	}
	return nil
}

func (s *s3Store) CheckObjectLock(ctx context.Context) error {
	enabled, _, _, _, err := s.client.GetObjectLockConfig(ctx, s.bucket)
	if err != nil {
		var resp minio.ErrorResponse
		if errors.As(err, &resp) && (resp.Code == "ObjectLockConfigurationNotFoundError" || resp.StatusCode == 404) {
			return fmt.Errorf("%s: bucket %q does not have Object Lock enabled (%s); --object-lock needs a bucket created with Object Lock (aws s3api create-bucket --object-lock-enabled-for-bucket), or drop --object-lock", s, s.bucket, resp.Code)
		}
		return s.wrap("get object lock configuration", "", err)
	}
	if enabled != "Enabled" {
		return fmt.Errorf("%s: bucket %q does not have Object Lock enabled; --object-lock needs a bucket created with Object Lock, or drop --object-lock", s, s.bucket)
	}
	return nil
}

func (s *s3Store) Retain(ctx context.Context, key string, r Retention, now time.Time) error {
	mode := minio.RetentionMode(r.Mode)
	until := now.UTC().AddDate(0, 0, r.Days)
	err := s.client.PutObjectRetention(ctx, s.bucket, s.prefix+key, minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &until})
	if err != nil {
		return s.wrap("set retention on", key, err)
	}
	return nil
}
