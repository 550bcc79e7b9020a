package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const awsEndpoint = "s3.amazonaws.com"

// s3Store keeps objects in bucket under prefix.
type s3Store struct {
	client   *minio.Client
	bucket   string
	prefix   string   // "" or ends in "/"
	endpoint string   // for messages: "http://127.0.0.1:7070" or "https://s3.amazonaws.com"
	anon     bool     // credentials resolved to anonymous
	secrets  []string // values scrubbed from every error text (defence in depth)
}

var _ Store = (*s3Store)(nil)

func newS3Store(ctx context.Context, bucket, prefix string, o Options) (*s3Store, error) {
	host, secure, custom := awsEndpoint, true, false
	if e := strings.TrimSpace(o.Endpoint); e != "" {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("invalid --s3-endpoint %q: expected http://HOST[:PORT] or https://HOST[:PORT] (the scheme decides TLS)", e)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("invalid --s3-endpoint %q: only scheme, host and port are allowed; put the bucket and prefix in --store s3://BUCKET/PREFIX", e)
		}
		host, secure, custom = u.Host, u.Scheme == "https", true
	}
	region := firstNonEmpty(o.Region, os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
	if region == "" && custom {
		region = "us-east-1" // S3-compatible servers (VersityGW, MinIO) default to it
	} // on AWS an empty region lets minio-go look up the bucket's own region

	var creds *credentials.Credentials
	var secrets []string
	if o.AccessKey != "" {
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken)
		secrets = []string{o.SecretKey, o.SessionToken}
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			// A short timeout: off EC2/ECS/EKS the metadata address does not answer, and this
			// probe must not stall every request.
			&credentials.IAM{Client: &http.Client{Timeout: 3 * time.Second}},
		})
	}
	lookup := minio.BucketLookupAuto
	if custom {
		lookup = minio.BucketLookupPath
	}
	maxRetries := o.MaxRetries
	if maxRetries <= 0 {
		maxRetries = 3
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       region,
		BucketLookup: lookup,
		MaxRetries:   maxRetries,
	})
	scheme := "https"
	if !secure {
		scheme = "http"
	}
	s := &s3Store{client: client, bucket: bucket, prefix: prefix, endpoint: scheme + "://" + host,
		secrets: secrets}
	if err != nil {
		return nil, s.wrap("connect", "", err)
	}
	if o.AccessKey == "" {
		// Resolve the chain once, so Ping can say "no credentials" instead of "access denied".
		v, err := creds.GetWithContext(&credentials.CredContext{Client: http.DefaultClient, Context: ctx})
		if err == nil {
			s.anon = v.SignerType.IsAnonymous() || v.AccessKeyID == ""
			s.secrets = []string{v.SecretAccessKey, v.SessionToken}
		}
	}
	return s, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

func (s *s3Store) String() string {
	return fmt.Sprintf("s3://%s/%s (%s)", s.bucket, s.prefix, s.endpoint)
}

// Put is a conditional create (If-None-Match: *). When the server answers 412 the key is taken:
// the object is read back and compared, so a retried Put whose first attempt did land counts as
// done, and different bytes are never replaced.
func (s *s3Store) Put(ctx context.Context, key string, body []byte, contentType string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("%s: put: %w", s, err)
	}
	opts := minio.PutObjectOptions{
		ContentType:      contentType,
		DisableMultipart: true, // batches are a few MiB: one request, one atomic create
		SendContentMd5:   true, // the server verifies the body it stored
		// Without this, minio-go signs plain-http uploads as aws-chunked streams, and some
		// S3-compatible servers (VersityGW 1.8) then store "Content-Encoding: aws-chunked" on the
		// object. Content-MD5 above still protects the body.
		DisableContentSha256: true,
	}
	opts.SetMatchETagExcept("*")
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, bytes.NewReader(body), int64(len(body)), opts)
	if err == nil {
		return nil
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && (resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed) {
		return compareExisting(ctx, s, key, body)
	}
	return s.wrap("put", key, err)
}

func (s *s3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("%s: get: %w", s, err)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	// GetObject is lazy; Stat sends the request so a missing key is reported here, not on Read.
	if _, err := obj.Stat(); err != nil {
		_ = obj.Close()
		return nil, s.wrap("get", key, err)
	}
	return obj, nil
}

func (s *s3Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{
		Prefix:    s.prefix + prefix,
		Recursive: true,
	}) {
		if obj.Err != nil {
			return nil, s.wrap("list", prefix, obj.Err)
		}
		key := strings.TrimPrefix(obj.Key, s.prefix)
		if key == "" || strings.HasSuffix(key, "/") { // directory markers
			continue
		}
		out = append(out, ObjectInfo{Key: key, Size: obj.Size, LastModified: obj.LastModified})
	}
	if err := ctx.Err(); err != nil {
		return nil, s.wrap("list", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *s3Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.wrap("check bucket", "", err)
	}
	if !ok {
		// HEAD answers have no body, and some servers (VersityGW) answer 404 to an unknown access
		// key; a GET tells the real reason apart from a missing bucket.
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// The first listing entry is enough: an error there is the real reason.
		if obj, ok := <-s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{MaxKeys: 1}); ok {
			var resp minio.ErrorResponse
			if obj.Err != nil && !(errors.As(obj.Err, &resp) && resp.Code == "NoSuchBucket") {
				return s.wrap("check bucket", "", obj.Err)
			}
		}
		return &storeError{msg: fmt.Sprintf("%s: bucket %q does not exist: create it (aws s3 mb s3://%s) or fix --store/--s3-endpoint",
			s, s.bucket, s.bucket), err: ErrNotExist}
	}
	return nil
}

// storeError carries a message worded for a person (and scrubbed of secrets) while keeping the
// original error for errors.Is / errors.As.
type storeError struct {
	msg    string
	err    error
	code   string // S3 error code, "" when none (for Classify)
	status int    // HTTP status, 0 when none
}

func (e *storeError) Error() string { return e.msg }
func (e *storeError) Unwrap() error { return e.err }

// wrap turns a minio-go or network error into one that says what failed, where, and what to check.
func (s *s3Store) wrap(op, key string, err error) error {
	what := op
	if key != "" {
		what += " " + key
	}
	where := s.String()
	var hint string
	var resp minio.ErrorResponse
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		hint = ""
	case errors.As(err, &resp):
		switch resp.Code {
		case "NoSuchKey":
			err = fmt.Errorf("%w (%s)", ErrNotExist, resp.Code)
		case "NoSuchBucket":
			err = fmt.Errorf("%w: bucket %q (%s)", ErrNotExist, s.bucket, resp.Code)
			hint = fmt.Sprintf("create the bucket (aws s3 mb s3://%s) or fix --store/--s3-endpoint", s.bucket)
		case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
			hint = "check --s3-region (the bucket lives in another region" + regionNote(resp.Region) + ")"
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken",
			"InvalidSecurity", "Forbidden", "XAdminUserNotFound" /* VersityGW: unknown access key, HTTP 404 */ :
			hint = s.credentialHint()
		default:
			if resp.StatusCode == http.StatusForbidden {
				hint = s.credentialHint()
			} else if resp.StatusCode == http.StatusNotFound && resp.Code == "" {
				err = fmt.Errorf("%w (HTTP 404)", ErrNotExist)
			}
		}
		if resp.Code != "" && hint != "" && !strings.Contains(err.Error(), resp.Code) {
			what += " (" + resp.Code + ")"
		}
	default:
		var nerr net.Error
		var uerr *url.Error
		if errors.As(err, &nerr) || errors.As(err, &uerr) {
			hint = fmt.Sprintf("cannot reach %s: check --s3-endpoint and that the S3 server is running and reachable", s.endpoint)
		}
	}
	msg := fmt.Sprintf("%s: %s: %v", where, what, err)
	if hint != "" {
		msg += ": " + hint
	}
	return &storeError{msg: s.scrub(msg), err: err, code: resp.Code, status: resp.StatusCode}
}

func regionNote(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

func (s *s3Store) credentialHint() string {
	if s.anon {
		return "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials), configure a profile in ~/.aws/credentials, or run with an IAM role"
	}
	return "S3 refused the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile / IAM role) and that they may read and write bucket " + s.bucket
}

func (s *s3Store) scrub(msg string) string {
	for _, v := range s.secrets {
		if len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, "***")
		}
	}
	return msg
}

// Identity is the archive's name without the endpoint (see storage.Identity).
func (s *s3Store) Identity() string { return fmt.Sprintf("s3://%s/%s", s.bucket, s.prefix) }
