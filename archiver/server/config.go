package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/admission"
	"github.com/livehook/terraform-provider-livehook/archiver/batcher"
	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/intake"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
)

// Ack modes.
const (
	AckSpool = "spool"
	AckStore = "store"
)

// Config is everything `archiver serve` can be told. The zero values of the non-flag fields are
// what the command uses; tests set them to run the server in-process.
type Config struct {
	Listen          string
	AdminListen     string // --admin-listen: /metrics, /readyz, /healthz (ops.go); "" => on Listen
	StoreProbe      bool   // --store-probe: refuse a store that overwrites (probe.go)
	Store           string
	S3Endpoint      string
	S3Region        string
	Spool           string
	Ack             string
	FlushInterval   time.Duration
	FlushBytes      int64
	CommitWindow    time.Duration // a group commit's extension under concurrent load; 0: none
	Keys            string
	AllowUnsigned   bool
	MaxConnections  int
	MaxQueueDelay   time.Duration // admission control's target; 0: by --ack (queueDelayTarget); < 0: off
	DedupMaxEntries int
	AllowDomains    []string
	SignatureWindow time.Duration
	PartitionTZ     string
	MaxBody         int64
	SpoolMaxBytes   int64
	StoreMaxPending int64
	TLSCert, TLSKey string
	Instance        string
	Gzip            bool
	LogLevel        string
	StoreTimeout    time.Duration
	ShutdownTimeout time.Duration
	MemoryLimit     int64        // bytes; MemoryLimitAuto or MemoryLimitOff (memlimit.go)
	Digest          DigestConfig // --digest-key, --object-lock (digest.go)
	Forward         []string     // --forward NAME=URL (forward.go)
	ForwardConfig   string       // --forward-config FILE (forward.go)
	ForwardPurge    []string     // --forward-purge NAME (forward.go)

	// Not flags.
	Now    func() time.Time // clock for received_at and partition days (tests fake it)
	Logger *slog.Logger     // nil => JSON to stderr at LogLevel
	// AdmissionFloor: callbacks always admitted whatever the queue delay (0 => admission.DefaultFloor).
	AdmissionFloor int64
	// S3 static credentials (tests); empty => minio-go's chain (AWS_* env, files, IAM role).
	S3AccessKey, S3SecretKey string
	// Relay tuning (tests): zero values are relay's defaults.
	ForwardBackoff     backoff.Policy
	ForwardLagDegraded time.Duration
}

// DefaultConfig is the flag defaults.
func DefaultConfig() Config {
	return Config{
		Listen:          ":8080",
		StoreProbe:      true,
		Spool:           "./spool",
		Ack:             AckSpool,
		FlushInterval:   spool.DefaultFlushInterval,
		FlushBytes:      spool.DefaultFlushBytes,
		CommitWindow:    spool.DefaultCommitWindow,
		SignatureWindow: 5 * time.Minute,
		PartitionTZ:     "UTC",
		MaxBody:         intake.DefaultMaxBody,
		SpoolMaxBytes:   spool.DefaultMaxBytes,
		StoreMaxPending: batcher.DefaultMaxPending,
		Gzip:            true,
		LogLevel:        "info",
		StoreTimeout:    batcher.DefaultTimeout,
		ShutdownTimeout: 20 * time.Second,
		MaxConnections:  DefaultMaxConnections,
		DedupMaxEntries: dedup.DefaultMaxEntries,
		MemoryLimit:     MemoryLimitAuto,
	}
}

const serveUsage = `usage: archiver serve [flags]

Receives Huawei Cloud Live publish callbacks on POST /callback and archives them as
day-partitioned JSON Lines objects (dt=YYYY-MM-DD/*.jsonl.gz) in S3 or a local directory.

Flags:
`

// ParseFlags parses `archiver serve` arguments.
func ParseFlags(args []string, stderr io.Writer) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("archiver serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, serveUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to listen on (host:port; port 0 picks a free one, the real address is logged)")
	fs.StringVar(&c.AdminListen, "admin-listen", "", "serve /metrics, /readyz and /healthz on this address (host:port, e.g. :9090) and not on --listen, which then serves only /callback and /healthz (default: all on --listen)")
	fs.BoolVar(&c.StoreProbe, "store-probe", c.StoreProbe, "at start, check that the store refuses a second conditional create of one name (an object under _probe/) and refuse to start if it overwrites; --store-probe=false skips the check")
	fs.StringVar(&c.Store, "store", "", "where the archive goes: s3://BUCKET/PREFIX or file:///DIR (default: the directory ./archive)")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "", "S3 endpoint URL for S3-compatible servers, e.g. http://127.0.0.1:7070 (default: AWS)")
	fs.StringVar(&c.S3Region, "s3-region", "", "S3 region (default: $AWS_REGION, else us-east-1)")
	fs.StringVar(&c.Spool, "spool", c.Spool, "spool directory for --ack spool (write-ahead log, dedup journal, instance id)")
	fs.StringVar(&c.Ack, "ack", c.Ack, "when to answer 200: spool (event fsynced to the local spool) or store (event's object stored; no local state)")
	fs.DurationVar(&c.FlushInterval, "flush-interval", c.FlushInterval, "spool: seal and upload a segment at least this often; store: longest wait before an event's Put starts")
	fs.DurationVar(&c.CommitWindow, "commit-window", c.CommitWindow, "with concurrent callbacks, how long a group commit (spool: one fdatasync; store: one object's Put) may wait for more of them, up to 24 in all: fewer fdatasyncs or objects per callback and less CPU, for up to this much more latency; a lone sender never waits; 0: commit as soon as the callbacks in flight are in")
	sizeVar(fs, &c.FlushBytes, "flush-bytes", "seal a spool segment (or put a store batch) once it holds this much, e.g. 8MiB")
	fs.StringVar(&c.Keys, "keys", "", "JSON file {\"push.domain\": \"auth_sign_key\"} or {\"push.domain\": [\"new_key\", \"old_key\"]}, mode 0600; callbacks for these domains must be signed with one of their keys, other domains are refused unless --allow-unsigned (re-read on SIGHUP)")
	registerTrustFlags(fs, &c)
	fs.Func("allow-domain", "accept callbacks only for this push domain (repeatable, or comma-separated)", func(v string) error {
		for _, d := range strings.Split(v, ",") {
			if d = strings.TrimSpace(d); d != "" {
				c.AllowDomains = append(c.AllowDomains, d)
			}
		}
		return nil
	})
	fs.DurationVar(&c.SignatureWindow, "signature-window", c.SignatureWindow, "accept a signed callback when auth_timestamp is at most this far behind or ahead of the clock (0: no age bound; more than 5m ahead is still refused)")
	fs.StringVar(&c.PartitionTZ, "partition-tz", c.PartitionTZ, "IANA time zone of the dt= partition day, e.g. UTC or Asia/Shanghai")
	sizeVar(fs, &c.MaxBody, "max-body", "largest accepted callback body (larger => 413)")
	sizeVar(fs, &c.SpoolMaxBytes, "spool-max-bytes", "above this much spooled data, answer 503 with Retry-After (store unreachable)")
	sizeVar(fs, &c.StoreMaxPending, "store-max-pending", "--ack store: above this much event data in memory waiting for the store, answer 503 with Retry-After")
	fs.Var(queueDelayValue{&c.MaxQueueDelay}, "max-queue-delay", "overload control: when for 100ms even the fastest callbacks waited longer than this to be made durable, answer the excess 503 with Retry-After: 1 at once instead of queueing it past the sender's timeout (auto: "+
		admission.DefaultTarget.String()+" with --ack spool, "+StoreQueueDelay.String()+" with --ack store, whose every answer waits for a Put; off: never shed)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; with --tls-key)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "private key for --tls-cert (PEM)")
	fs.StringVar(&c.Instance, "instance", "", "instance name in object keys (letters, digits, . _ -); default: spool mode persists <hostname>-<random> in the spool, store mode uses <hostname>-<random boot id>")
	fs.BoolVar(&c.Gzip, "gzip", c.Gzip, "gzip archive objects (.jsonl.gz); --gzip=false writes .jsonl")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.DurationVar(&c.StoreTimeout, "store-timeout", c.StoreTimeout, "longest a request waits for durability (store mode: for its object) before 503")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "on SIGTERM, how long to keep uploading the spool before exiting (the rest is uploaded on the next start)")
	fs.Var(memLimitValue{&c.MemoryLimit}, "memory-limit", "soft limit of the archiver's Go memory, e.g. 200MiB: near it the garbage collector works harder instead of letting the heap grow to twice what is live (auto: GOMEMLIMIT if set, else 80% of the container's cgroup memory limit, if any; 0: none); keep it below the container's limit")
	addDigestFlags(fs, &c.Digest)
	addForwardFlags(fs, &c)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	return c, c.Validate()
}

// Validate checks values that flag parsing cannot.
func (c *Config) Validate() error {
	errs := c.validateTrust()
	switch c.Ack {
	case AckSpool, AckStore:
	default:
		errs = append(errs, fmt.Errorf("--ack %q: use spool or store", c.Ack))
	}
	if c.Ack == AckSpool && c.Spool == "" {
		errs = append(errs, errors.New("--spool is empty; --ack spool needs a directory"))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("--flush-interval %s must be positive", c.FlushInterval))
	}
	if c.CommitWindow < 0 || c.CommitWindow > time.Second {
		errs = append(errs, fmt.Errorf("--commit-window %s must be between 0 and 1s", c.CommitWindow))
	}
	if c.FlushBytes <= 0 {
		errs = append(errs, fmt.Errorf("--flush-bytes must be positive"))
	}
	if c.MaxBody <= 0 || c.MaxBody > spool.MaxBody {
		errs = append(errs, fmt.Errorf("--max-body %s must be between 1 byte and %s (%d bytes), the largest body a spool record holds", FormatSize(c.MaxBody), FormatSize(spool.MaxBody), spool.MaxBody))
	}
	if c.StoreMaxPending <= 0 {
		errs = append(errs, fmt.Errorf("--store-max-pending must be positive"))
	}
	if c.SpoolMaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("--spool-max-bytes must be positive"))
	}
	if c.SignatureWindow < 0 {
		errs = append(errs, fmt.Errorf("--signature-window %s must not be negative (0 drops the age bound)", c.SignatureWindow))
	}
	if c.StoreTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--store-timeout %s must be positive", c.StoreTimeout))
	}
	if c.AdminListen != "" && c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		errs = append(errs, fmt.Errorf("--admin-listen %s is the same address as --listen; give the admin endpoints their own port", c.AdminListen))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together; give both or neither"))
	}
	if _, err := time.LoadLocation(c.PartitionTZ); err != nil || c.PartitionTZ == "" {
		errs = append(errs, fmt.Errorf("--partition-tz %q is not an IANA time zone name (e.g. UTC, Asia/Shanghai)", c.PartitionTZ))
	}
	if c.Instance != "" {
		if err := layout.ValidateInstance(c.Instance); err != nil {
			errs = append(errs, fmt.Errorf("--instance: %w", err))
		}
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateMemoryLimit(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateForward(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level %q: use debug, info, warn or error", s)
}

// StoreQueueDelay is --max-queue-delay's auto value with --ack store: every answer waits for one or
// two Puts to a remote store, tens to hundreds of milliseconds without any queue.
const StoreQueueDelay = 200 * time.Millisecond

// queueDelayTarget is the admission target --max-queue-delay and --ack give; 0 means off.
func (c *Config) queueDelayTarget() time.Duration {
	switch {
	case c.MaxQueueDelay < 0:
		return 0
	case c.MaxQueueDelay > 0:
		return c.MaxQueueDelay
	case c.Ack == AckStore:
		return StoreQueueDelay
	}
	return admission.DefaultTarget
}

// queueDelayValue is --max-queue-delay: a positive duration, auto (0) or off (< 0).
type queueDelayValue struct{ p *time.Duration }

func (v queueDelayValue) String() string {
	switch {
	case v.p == nil:
		return "" // the zero Value flag compares with: the default is then printed
	case *v.p == 0:
		return "auto"
	case *v.p < 0:
		return "off"
	}
	return v.p.String()
}

func (v queueDelayValue) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		*v.p = 0
		return nil
	case "off", "0", "0s":
		*v.p = -1
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q: want a positive duration like 100ms, auto or off", s)
	}
	*v.p = d
	return nil
}

type sizeValue struct{ p *int64 }

func sizeVar(fs *flag.FlagSet, p *int64, name, usage string) {
	fs.Var(sizeValue{p}, name, usage) // flag prints the default through String()
}

func (v sizeValue) String() string {
	if v.p == nil {
		return ""
	}
	return FormatSize(*v.p)
}

func (v sizeValue) Set(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

// ParseSize reads a byte size: plain bytes ("65536"), binary units (KiB, MiB, GiB, TiB; also K, M,
// G, T) or decimal units (KB, MB, GB, TB). Case-insensitive; a space before the unit is fine.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with a unit like KiB, MiB or GiB", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
		"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, t[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	v := f * mult
	if v < 0 || v > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q is out of range", s)
	}
	return int64(v), nil
}

// FormatSize writes n with the largest binary unit that divides it.
func FormatSize(n int64) string {
	for _, u := range []struct {
		s string
		v int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.v && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}
