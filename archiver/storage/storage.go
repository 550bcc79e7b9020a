// Package storage is where archive objects live: an S3-compatible bucket (minio-go) or a local
// directory. Both behave the same for the archiver: keys are relative to the store's prefix,
// Put is a conditional create (never an overwrite), List is recursive and sorted.
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key          string // relative to the store's prefix
	Size         int64
	LastModified time.Time
}

// Putter is the part of a Store that writes: all the uploader, the store-mode batcher and the
// rejected-sample writer need.
type Putter interface {
	// Put creates key (relative to the store's prefix) with body, never replacing an object: it is
	// a conditional create (S3 If-None-Match: *, an exclusive create on disk). An existing object
	// with the same bytes counts as done (nil); one with different bytes is left as it is and Put
	// returns an error wrapping ErrExists, so the caller can write under a fresh name.
	Put(ctx context.Context, key string, body []byte, contentType string) error
}

// Store is an archive destination.
type Store interface {
	Putter
	// Get opens key; errors.Is(err, ErrNotExist) when it is missing.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns every object whose key starts with prefix, recursively, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Ping reports whether the store is reachable and its bucket/directory exists (for /readyz).
	Ping(ctx context.Context) error
	// String describes the store for logs: "s3://bucket/prefix (endpoint)" or "file:///dir". No secrets.
	String() string
}

// Getter is the read half of a Store: enough to fetch an object.
type Getter interface {
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// ReadAll reads the whole object key.
func ReadAll(ctx context.Context, s Getter, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// compareExisting decides a conditional create that found key taken: the same bytes are a
// completed earlier attempt (nil), different ones a conflict (ErrExists) the caller resolves
// under another name. It reads at most one byte more than body.
func compareExisting(ctx context.Context, s interface {
	Getter
	fmt.Stringer
}, key string, body []byte) error {
	rc, err := s.Get(ctx, key)
	if err == nil {
		var old []byte
		old, err = io.ReadAll(io.LimitReader(rc, int64(len(body))+1))
		rc.Close()
		if err == nil && bytes.Equal(old, body) {
			return nil
		}
		if err == nil {
			return fmt.Errorf("%s: put %s (%d bytes): %w", s, key, len(body), ErrExists)
		}
	}
	return fmt.Errorf("%s: put %s: the name is taken and cannot be read back to compare: %w", s, key, err)
}

// ErrNotExist is wrapped by Get when the key is missing (and by Open/List/Ping when the bucket or
// directory is missing).
var ErrNotExist = errors.New("object does not exist")

// ErrExists is wrapped by Put when key already holds different bytes.
var ErrExists = errors.New("object already exists with different content")

// DefaultDir is the file store used when no --store is given.
const DefaultDir = "archive"

// Options selects and configures a store.
type Options struct {
	URL      string // "s3://BUCKET/PREFIX" or "file:///DIR" or "" (=> file store under ./archive)
	Endpoint string // --s3-endpoint, e.g. http://127.0.0.1:7070 (scheme decides TLS); "" => AWS
	Region   string // --s3-region; default $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1 (custom endpoint) or the bucket's own region (AWS)

	// Static S3 credentials, for tests and tools. When AccessKey is empty the minio-go chain is
	// used: $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY/$AWS_SESSION_TOKEN, then ~/.aws/credentials
	// ($AWS_PROFILE), then the instance's IAM role.
	AccessKey, SecretKey, SessionToken string

	// MaxRetries bounds minio-go's own retries of one request (0 => 3). The archiver's uploader
	// retries with its own backoff, so a low value surfaces an outage quickly.
	MaxRetries int
}

// Open returns the store named by o.URL. It does not contact the store (call Ping for that), so it
// only fails on a malformed URL or endpoint. (For S3 without static keys it resolves the credential
// chain once, which may ask the instance metadata service, bounded by ctx and 3s.)
func Open(ctx context.Context, o Options) (Store, error) {
	raw := strings.TrimSpace(o.URL)
	if raw == "" {
		return newFileStore(DefaultDir)
	}
	switch {
	case strings.HasPrefix(raw, "s3://"):
		bucket, prefix, err := ParseS3URL(raw)
		if err != nil {
			return nil, err
		}
		return newS3Store(ctx, bucket, prefix, o)
	case strings.HasPrefix(raw, "file:"):
		dir, err := parseFileURL(raw)
		if err != nil {
			return nil, err
		}
		return newFileStore(dir)
	default:
		return nil, fmt.Errorf("unsupported store %q: use s3://BUCKET/PREFIX for S3 or file:///ABSOLUTE/DIR for a local directory", raw)
	}
}

// ParseS3URL splits "s3://BUCKET/PREFIX" into the bucket and a prefix that is empty or ends in "/".
func ParseS3URL(raw string) (bucket, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("invalid store URL %q: %w (expected s3://BUCKET/PREFIX)", raw, err)
	}
	if u.Scheme != "s3" {
		return "", "", fmt.Errorf("invalid store URL %q: scheme must be s3 (expected s3://BUCKET/PREFIX)", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return "", "", fmt.Errorf("invalid store URL %q: only s3://BUCKET/PREFIX is accepted (no user, port, query or fragment; put the server in --s3-endpoint)", raw)
	}
	bucket = u.Host
	if err := checkBucketName(bucket); err != nil {
		return "", "", fmt.Errorf("invalid store URL %q: %w", raw, err)
	}
	prefix = strings.Trim(u.Path, "/")
	for _, seg := range strings.Split(prefix, "/") {
		if prefix != "" && (seg == "" || seg == "." || seg == "..") {
			return "", "", fmt.Errorf("invalid store URL %q: prefix %q has an empty, \".\" or \"..\" segment", raw, prefix)
		}
	}
	if prefix != "" {
		prefix += "/"
	}
	return bucket, prefix, nil
}

// checkBucketName applies the S3 bucket naming rules that matter for a clear early error.
func checkBucketName(b string) error {
	if b == "" {
		return errors.New("missing bucket name (expected s3://BUCKET/PREFIX)")
	}
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters long", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("bucket name %q may only contain lower-case letters, digits, '-' and '.'", b)
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return fmt.Errorf("bucket name %q must start and end with a letter or digit", b)
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("bucket name %q must not contain \"..\"", b)
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// checkKey rejects keys that would escape the prefix or mean different things on S3 and on disk.
func checkKey(key string) error {
	if key == "" {
		return errors.New("empty object key")
	}
	if strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("object key %q must not start or end with '/'", key)
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("object key %q must not contain a backslash or NUL", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("object key %q has an empty, \".\" or \"..\" segment", key)
		}
		if strings.HasPrefix(seg, fsutil.TempPrefix) {
			return fmt.Errorf("object key %q: segments starting with %q are reserved for temporary files", key, fsutil.TempPrefix)
		}
	}
	return nil
}

// Kinds of store failure, as Classify names them (the kind label of upload_failures_total).
const (
	KindAccessDenied = "access_denied"  // credentials refused or missing permission: an operator must act
	KindNoSuchBucket = "no_such_bucket" // the bucket or directory is gone: an operator must act
	KindKMS          = "kms"            // server-side encryption key unusable: an operator must act
	KindConflict     = "conflict"       // the name holds other bytes (ErrExists)
	KindUnreachable  = "unreachable"    // network, timeout, 5xx: transient
	KindOther        = "other"
)

// Kinds lists every kind Classify returns.
var Kinds = []string{KindAccessDenied, KindNoSuchBucket, KindKMS, KindConflict, KindUnreachable, KindOther}

// Classify names the kind of a Put/Get failure and whether it is permanent: retrying does not help
// until someone fixes credentials, the bucket or the key policy. Permanent errors are still retried
// (with the capped backoff) so the archiver recovers on its own once they are fixed.
func Classify(err error) (kind string, permanent bool) {
	if err == nil {
		return "", false
	}
	if errors.Is(err, ErrExists) {
		return KindConflict, false
	}
	var se *storeError
	code := ""
	if errors.As(err, &se) {
		code = se.code
	}
	switch {
	case code == "NoSuchBucket" || (code == "" && errors.Is(err, ErrNotExist)):
		return KindNoSuchBucket, true
	case strings.HasPrefix(code, "KMS") || strings.Contains(code, "KMS") || strings.Contains(code, "Kms"):
		return KindKMS, true
	case credentialCodes[code] || se != nil && se.status == 403 || errors.Is(err, fs.ErrPermission):
		return KindAccessDenied, true
	case code != "" && se.status < 500:
		return KindOther, false
	}
	return KindUnreachable, false
}

var credentialCodes = map[string]bool{
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "AccessDenied": true, "InvalidToken": true,
	"ExpiredToken": true, "InvalidSecurity": true, "Forbidden": true, "XAdminUserNotFound": true,
	"AllAccessDisabled": true, "AccountProblem": true,
}

// Identity names the archive a store holds, independent of how it is reached: "s3://bucket/prefix"
// (no endpoint: the same bucket behind another endpoint is the same archive) or "file:///dir".
// Digests are signed for it, so a digest copied from another bucket or prefix does not verify.
func Identity(s Store) string {
	if id, ok := s.(interface{ Identity() string }); ok {
		return id.Identity()
	}
	return s.String()
}
