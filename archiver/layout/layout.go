// Package layout defines the archive's object names and record format. It is the contract with
// auditors and query engines (DuckDB read_json with hive_partitioning, Athena, jq): change nothing
// here without versioning the layout.
//
// Object keys (relative to the store prefix):
//
//	dt=YYYY-MM-DD/<instance>-<seq %020d>-<part %03d>.jsonl.gz   (".jsonl" when gzip is off)
//	_rejected/dt=YYYY-MM-DD/<instance>-<seq %020d>.json
//	_probe/<random>.json   (archiver serve's start-up check of conditional creates; deleted after)
//
// Objects are never overwritten. In --ack spool the key instance is the spool's and seq a segment
// number persisted in the spool; in --ack store the key instance carries a random per-process part
// (ProcessInstance). A name that nevertheless holds other bytes is left alone and the object goes
// under ConflictKey's name, <name>-c<12 hex of its SHA-256>.<ext>.
//
// Each line of an object is the callback body as received (compacted, fields in received
// order, unknown fields kept) with one extra trailing field "archive":
//
//	{"domain":...,"event":"PUBLISH","archive":{"received_at":"2026-11-26T08:00:00.123456789Z",
//	 "event_id":"<32 hex>","remote_addr":"10.0.0.1:5555","signature":"verified",
//	 "publish_time":"2020-04-27T02:22:14Z","instance":"host-a"}}
//
// received_at always carries exactly nine fractional digits (fixed width), so the string sorts
// the same way as the instant it names.
//
// The request as sent: two optional members of "archive", after "instance", keep what the relay
// and archiver replay need to send the callback again exactly as Live sent it (the receiver may
// hash or log the raw body, or check the Content-Type), at no cost for the common request:
//
//	"content_type":"text/plain; charset=utf-8"   the request's Content-Type header when it was not
//	                                             exactly "application/json"; "" when it had none
//	                                             (an empty header counts as none; of repeated
//	                                             headers the first). Absent: "application/json".
//	"body":"{\n  \"domain\": ...}\n"             the request body byte for byte, as a JSON string,
//	                                             when it differs from the record's fields as written
//	                                             (the line up to "archive", closed with '}'), e.g.
//	                                             pretty-printed or with a trailing newline.
//	                                             Absent: the body is exactly those bytes.
//
// Intake accepts only UTF-8 bodies, so "body" decodes back to the exact bytes; a Content-Type
// header that is not UTF-8 is kept with each invalid byte replaced by U+FFFD.
//
// Field names are exact: a body never carries two keys equal under Unicode case folding, nor a
// top-level key "archive" in any case (intake refuses both with 400), and readers must match
// field names exactly, never case-insensitively.
//
// Repeats: a callback is dropped as a redelivery only when it is the same callback again, byte
// for byte after compaction (its layout and Content-Type do not count). A callback whose body differs from one already archived under the
// same event_id (another auth_timestamp, another unsigned field) is archived too, with
// "repeat":true as the last field of its "archive" object; event_id stays the same so readers
// can group. The field is absent on every other record.
//
// # Compacted objects
//
// `archiver compact` merges a day's objects (every instance's, and earlier compactions') into
//
//	dt=YYYY-MM-DD/compacted-<set %016x>-<part %03d>-of-<parts %03d>.jsonl.gz   (see CompactedKey)
//
// with the same record format, sorted by received_at, each callback once. <set> is the first 16 hex
// digits of the SHA-256 of the compacted lines, so the same records always give the same names.
//
// # Digests (format version 2)
//
// With --digest-key every archiver instance writes signed digests (package digest), outside the
// dt= partitions so query engines never read them:
//
//	_digests/YYYY/MM/DD/<instance>/<end HHMMSS>-<seq %010d>-<kind>.json
//
// YYYY/MM/DD is the UTC day the digest's span ends (for compaction digests, the compacted day, and
// <instance> is "compact-YYYY-MM-DD"). kind is "hourly" (every hour, also when nothing was
// stored), "start" (the first of a new chain: every store-mode process's, and a spool-mode
// instance's first; an empty span, start = end, no objects, written at start to witness the other
// chains), "shutdown" (the last of a process) or "compaction". A digest file is
//
//	{"payload":{"version":2,"archive":"s3://bucket/prefix/","key":"<this digest's own key>",
//	  "kind":"hourly","instance":"host-a","seq":42,
//	  "start":"<RFC 3339, 9 fractional digits>","end":"...","previous":{"key":"<digest key>",
//	  "sha256":"<hex SHA-256 of the previous digest file's bytes>"} or null,"key_id":"<16 hex>",
//	  "witness":[{"instance":"host-b","seq":7,"key":"<digest key>","sha256":"<hex>"}],
//	  "objects":[{"key":"dt=...","size":123,"sha256":"<hex>","records":10,
//	    "first_received_at":"...","last_received_at":"..."}],
//	  "removed":[{"key":"dt=...","sha256":"<hex>"}],"deleted":true,"created_at":"..."},
//	 "signature":"<base64 Ed25519 signature over the exact bytes of the payload value>"}
//
// key_id is the first 16 hex digits of the SHA-256 of the raw 32-byte public key. "archive" is the
// store's identity (s3://BUCKET/PREFIX, file:///DIR) or the configured --archive-id, and "key" the
// digest's own key: a digest found elsewhere does not verify. "witness" lists the newest digest of
// every other archiver instance the writer saw under its day and the day before. "objects" lists
// every object (and _rejected/ sample, with 0 records) the instance stored during the span;
// "removed" (compaction only) lists originals whose records are in the digest's objects and that
// may be deleted, and "deleted" says they were. Each chain (one instance, or one day's
// compactions) links every digest to the previous one by its SHA-256. Version 1 digests (no
// "archive", "key", "witness" or "deleted") are still read.
package layout

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	// klauspost's gzip: the same format at about twice the speed of compress/gzip (the upload
	// path's biggest CPU cost in store mode), for objects about a fifth larger at BestSpeed.
	"github.com/klauspost/compress/gzip"
)

// ContentType is the Content-Type of every archive object. Objects are stored as plain .gz files
// (no Content-Encoding) so aws s3 cp, DuckDB and Athena read them as such.
const ContentType = "application/x-ndjson"

// ReceivedAtLayout is the fixed-width RFC 3339 layout of archive.received_at (always UTC, always
// nine fractional digits).
const ReceivedAtLayout = "2006-01-02T15:04:05.000000000Z"

// DayLayout is the layout of the dt= partition value.
const DayLayout = "2006-01-02"

// GzipLevel is the fixed compression level of archive objects. BestSpeed: callback lines are highly
// repetitive, so the size gain of higher levels is small while the CPU cost on the upload path is
// several times higher. It is fixed so that the same lines always give the same bytes.
const GzipLevel = gzip.BestSpeed

// Signature values of Archive.Signature.
const (
	SignatureVerified = "verified"
	SignatureNone     = "none"
)

// Day is the partition day of t in loc (nil => UTC), e.g. "2026-11-26".
func Day(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format(DayLayout)
}

// DayPrefix is the key prefix of one day's objects: "dt=2026-11-26/".
func DayPrefix(day string) string { return "dt=" + day + "/" }

// ObjectKey names one batch object. Deterministic: the same (day, instance, seq, part) always
// gives the same key, so a re-upload after a crash finds its own object instead of duplicating. The zero
// padding makes lexical key order equal numeric order.
func ObjectKey(day, instance string, seq uint64, part int, gzip bool) string {
	ext := objectExt
	if gzip {
		ext = objectExtGzip
	}
	return fmt.Sprintf("dt=%s/%s-%020d-%03d%s", day, instance, seq, part, ext)
}

const (
	objectExt     = ".jsonl"
	objectExtGzip = ".jsonl.gz"
)

// IsObjectKey tells archive objects from anything else under a day prefix, and whether the object
// is gzipped (by its name, as ObjectKey made it).
func IsObjectKey(key string) (ok, gzip bool) {
	switch {
	case strings.HasSuffix(key, objectExtGzip):
		return true, true
	case strings.HasSuffix(key, objectExt):
		return true, false
	}
	return false, false
}

// ObjectName is what an instance's object key says: ParseObjectKey's and ParseRejectedKey's result.
type ObjectName struct {
	Day      string // "2026-11-26"
	Instance string // the key's instance: in --ack store the per-process name (ProcessInstance)
	Seq      uint64
	Part     int  // 0 for a rejected sample
	Gzip     bool // ".jsonl.gz"
	Conflict bool // a ConflictKey name ("-c<12 hex>" before the extension)
}

// ParseObjectKey is the inverse of ObjectKey (also for a ConflictKey of one): the instance comes
// from the right, so instance names that end in "-<digits>" or are another's prefix ("ra" and
// "ra-1") are told apart exactly. ok is false for anything else (compacted objects included).
func ParseObjectKey(key string) (n ObjectName, ok bool) {
	name, ok := n.cutDay(key, "")
	if !ok {
		return ObjectName{}, false
	}
	switch {
	case strings.HasSuffix(name, objectExtGzip):
		name, n.Gzip = strings.TrimSuffix(name, objectExtGzip), true
	case strings.HasSuffix(name, objectExt):
		name = strings.TrimSuffix(name, objectExt)
	default:
		return ObjectName{}, false
	}
	name = n.cutConflict(name)
	i := strings.LastIndexByte(name, '-')
	if i < 0 || len(name)-i-1 < 3 || !allDigits(name[i+1:]) {
		return ObjectName{}, false
	}
	part, err := strconv.Atoi(name[i+1:])
	if err != nil {
		return ObjectName{}, false
	}
	n.Part = part
	if !n.cutSeq(name[:i]) {
		return ObjectName{}, false
	}
	return n, true
}

// ParseRejectedKey is the inverse of RejectedKey (also for a ConflictKey of one).
func ParseRejectedKey(key string) (n ObjectName, ok bool) {
	name, ok := n.cutDay(key, "_rejected/")
	if !ok || !strings.HasSuffix(name, ".json") {
		return ObjectName{}, false
	}
	if !n.cutSeq(n.cutConflict(strings.TrimSuffix(name, ".json"))) {
		return ObjectName{}, false
	}
	return n, true
}

// cutDay checks "<prefix>dt=<day>/" and returns the name after it (without further slashes).
func (n *ObjectName) cutDay(key, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(key, prefix+"dt=")
	if !ok {
		return "", false
	}
	day, name, ok := strings.Cut(rest, "/")
	if !ok || strings.ContainsRune(name, '/') {
		return "", false
	}
	if _, err := time.Parse(DayLayout, day); err != nil || len(day) != len(DayLayout) {
		return "", false
	}
	n.Day = day
	return name, true
}

// cutConflict removes a ConflictKey tag from the end of name.
func (n *ObjectName) cutConflict(name string) string {
	const tagLen = len("-c") + 12
	if len(name) > tagLen && name[len(name)-tagLen:len(name)-12] == "-c" && isLowerHex(name[len(name)-12:]) {
		n.Conflict = true
		return name[:len(name)-tagLen]
	}
	return name
}

// cutSeq parses "<instance>-<seq %020d>" into n.
func (n *ObjectName) cutSeq(s string) bool {
	const seqLen = 20
	if len(s) < seqLen+2 || s[len(s)-seqLen-1] != '-' || !allDigits(s[len(s)-seqLen:]) {
		return false
	}
	seq, err := strconv.ParseUint(s[len(s)-seqLen:], 10, 64)
	if err != nil {
		return false
	}
	// Not ValidateInstance: its length limit is on --instance, and --ack store appends to it.
	inst := s[:len(s)-seqLen-1]
	if inst == "" || strings.IndexFunc(inst, func(c rune) bool { return !instanceChar(c) }) >= 0 {
		return false
	}
	n.Instance, n.Seq = inst, seq
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return s != ""
}

// Instance names. An instance name goes into object keys (and the archive field "instance"); it
// identifies the archiver that received an event.

// maxInstanceLen keeps object keys well below S3's 1024-byte limit.
const maxInstanceLen = 100

// ValidateInstance checks an --instance value: it goes into object keys, so only letters,
// digits, '.', '_' and '-' are allowed.
func ValidateInstance(s string) error {
	if s == "" {
		return errors.New("instance name is empty")
	}
	if len(s) > maxInstanceLen {
		return fmt.Errorf("instance name %q is longer than %d characters", s, maxInstanceLen)
	}
	for _, c := range s {
		if !instanceChar(c) {
			return fmt.Errorf("instance name %q contains %q; use only letters, digits, '.', '_' and '-'", s, c)
		}
	}
	return nil
}

func instanceChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// NewInstanceName returns "<hostname>-<12 random hex digits>": readable, and distinct for two
// replicas even when they share a hostname.
func NewInstanceName() string {
	host, _ := os.Hostname()
	var b strings.Builder
	for _, c := range host {
		if b.Len() >= 60 {
			break
		}
		if instanceChar(c) {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-.")
	if h == "" {
		h = "archiver"
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	return h + "-" + hex.EncodeToString(r[:])
}

// ProcessInstance is the instance part of the object keys one --ack store process writes: the
// configured name followed by a random per-process id, so that a restart or a second replica given
// the same --instance never produces a name another process already used (store mode keeps no
// local state in which a sequence could survive). Without --instance the name is
// NewInstanceName's, already random.
func ProcessInstance(instance string) string {
	if instance == "" {
		return NewInstanceName()
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	return instance + "-" + hex.EncodeToString(r[:])
}

// ConflictKey is the fresh name for an object whose own name already holds different bytes (a
// name clash the archiver never resolves by overwriting). It is derived from the bytes, so a
// retry of the same object after a crash lands on the same name and counts as done.
func ConflictKey(key string, body []byte) string {
	sum := sha256.Sum256(body)
	tag := "-c" + hex.EncodeToString(sum[:6])
	for _, ext := range []string{objectExtGzip, objectExt, ".json"} {
		if strings.HasSuffix(key, ext) {
			return strings.TrimSuffix(key, ext) + tag + ext
		}
	}
	return key + tag
}

// compactedPrefix starts every compacted object's name within its day.
const compactedPrefix = "compacted-"

// CompactedKey names one compacted object: part (1-based) of parts, of the record set whose
// lines hash to setHash (hex; the first 16 digits are used).
func CompactedKey(day, setHash string, part, parts int, gzip bool) string {
	ext := objectExt
	if gzip {
		ext = objectExtGzip
	}
	if len(setHash) > 16 {
		setHash = setHash[:16]
	}
	return fmt.Sprintf("dt=%s/%s%s-%03d-of-%03d%s", day, compactedPrefix, setHash, part, parts, ext)
}

// IsCompactedKey tells compacted objects (CompactedKey) from the instances' own objects.
// The name must have CompactedKey's exact shape, so an instance named "compacted-..." is not taken
// for one.
func IsCompactedKey(key string) bool {
	_, _, _, _, ok := ParseCompactedKey(key)
	return ok
}

// ParseCompactedKey splits a CompactedKey into its set hash, part and number of parts, and
// whether it is gzipped.
func ParseCompactedKey(key string) (setHash string, part, parts int, gz, ok bool) {
	_, name, found := strings.Cut(key, "/")
	if !found || !strings.HasPrefix(name, compactedPrefix) {
		return "", 0, 0, false, false
	}
	name = name[len(compactedPrefix):]
	switch {
	case strings.HasSuffix(name, objectExtGzip):
		name, gz = strings.TrimSuffix(name, objectExtGzip), true
	case strings.HasSuffix(name, objectExt):
		name = strings.TrimSuffix(name, objectExt)
	}
	// <hash>-NNN-of-NNN with a hex hash of 1 to 16 digits
	hash, rest, found := strings.Cut(name, "-")
	if !found || len(hash) == 0 || len(hash) > 16 || strings.Trim(hash, "0123456789abcdef") != "" {
		return "", 0, 0, false, false
	}
	if len(rest) != 10 || rest[3:7] != "-of-" || strings.Trim(rest[:3]+rest[7:], "0123456789") != "" {
		return "", 0, 0, false, false
	}
	part, _ = strconv.Atoi(rest[:3])
	parts, _ = strconv.Atoi(rest[7:])
	return hash, part, parts, gz, true
}

// RejectedDayPrefix is the key prefix of one day's rejected-request samples: "_rejected/dt=2026-11-26/".
func RejectedDayPrefix(day string) string { return "_rejected/" + DayPrefix(day) }

// RejectedKey names one rejected-request sample: "_rejected/dt=2026-11-26/<instance>-<seq %020d>.json".
func RejectedKey(day, instance string, seq uint64) string {
	return fmt.Sprintf("%s%s-%020d.json", RejectedDayPrefix(day), instance, seq)
}

// ProbePrefix holds the objects archiver serve writes at start to check that the store refuses a
// second conditional create of one name. Outside every dt= partition: no reader ever sees them.
const ProbePrefix = "_probe/"

// ProbeKey names one start-up probe object: "_probe/<nonce>.json".
func ProbeKey(nonce string) string { return ProbePrefix + nonce + ".json" }

// DeadLetterPrefix is the key prefix of every relay dead letter.
const DeadLetterPrefix = "_deadletter/"

// DeadLetterDayPrefix is the key prefix of one day's relay dead letters: "_deadletter/dt=2026-11-26/".
func DeadLetterDayPrefix(day string) string { return DeadLetterPrefix + DayPrefix(day) }

// DeadLetterKey names one batch of a destination's dead letters (JSON Lines, one dead letter a
// line), found at spool segment seq, byte offset off of instance:
// "_deadletter/dt=2026-11-26/<destination>/<instance>-<seq %020d>-<off %012d>.jsonl". The day is
// the events' partition day, so a day range's dead letters are found like its events.
func DeadLetterKey(day, destination, instance string, seq uint64, off int64) string {
	return fmt.Sprintf("%s%s/%s-%020d-%012d.jsonl", DeadLetterDayPrefix(day), destination, instance, seq, off)
}

// EventID is the deterministic identity of an event: the first 32 hex characters of
// sha256(domain \x00 app \x00 stream \x00 event \x00 publishTimestamp). publishTimestamp is the raw
// value as received (string contents, or the number's literal text).
func EventID(domain, app, stream, event, publishTimestamp string) string {
	id := EventIDBytes(domain, app, stream, event, publishTimestamp)
	return hex.EncodeToString(id[:])
}

// EventIDBytes is EventID in binary (the dedup key): intake needs both forms, and encoding once
// is cheaper than decoding the hex again.
func EventIDBytes(domain, app, stream, event, publishTimestamp string) [16]byte {
	var stack [256]byte // the usual identity fits: no allocation
	b := append(stack[:0], domain...)
	for _, s := range [...]string{app, stream, event, publishTimestamp} {
		b = append(append(b, 0), s...)
	}
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16])
}

// Archive is the "archive" field livehook adds to every record.
type Archive struct {
	ReceivedAt  time.Time  `json:"received_at"`  // RFC3339 UTC, nine fractional digits
	EventID     string     `json:"event_id"`     // EventID(...)
	RemoteAddr  string     `json:"remote_addr"`  // the sender's address as seen by the archiver
	Signature   string     `json:"signature"`    // "verified" or "none"
	PublishTime *time.Time `json:"publish_time"` // null when publish_timestamp has no leading digits
	Instance    string     `json:"instance"`     // the archiver instance that received it
	// ContentType is the request's Content-Type header when it was not exactly
	// "application/json" (nil, member absent): "" when it had none. See RequestContentType.
	ContentType *string `json:"content_type,omitempty"`
	// Body is the request body byte for byte when it differs from the record's fields as written
	// (pretty-printed, a trailing newline); "" (member absent) when it does not.
	Body string `json:"body,omitempty"`
	// Repeat marks a callback whose body differs from one archived earlier under the same
	// EventID (see the package comment). Absent (false) on every other record.
	Repeat bool `json:"repeat,omitempty"`
}

// DefaultContentType is the Content-Type a record without archive.content_type was sent with.
const DefaultContentType = "application/json"

// RequestContentType is the Content-Type the callback was sent with; ok is false when the
// request had none.
func (a *Archive) RequestContentType() (ct string, ok bool) {
	if a.ContentType == nil {
		return DefaultContentType, true
	}
	return *a.ContentType, *a.ContentType != ""
}

// AppendRecord appends one line: compactBody (an already-compacted JSON object, fields in received
// order) with ,"archive":{...} inserted before its final '}', then '\n'. Hand-built (no reflection)
// because it runs once per received callback.
//
// The caller guarantees compactBody is a compacted JSON object. Should it not be one (defensive:
// never panic, never write an invalid line), the record becomes {"raw":"<body as a JSON string>",
// "archive":{...}}.
func AppendRecord(dst []byte, compactBody []byte, a Archive) []byte {
	body := bytes.TrimSpace(compactBody)
	multiline := bytes.IndexByte(body, '\n') >= 0 || bytes.IndexByte(body, '\r') >= 0
	if multiline {
		// Not compacted after all: a raw newline would split the record. Compact it here
		// (json.Compact fails on a raw newline inside a string, which is invalid JSON anyway).
		var buf bytes.Buffer
		if json.Compact(&buf, body) == nil {
			body, multiline = buf.Bytes(), false
		}
	}
	if multiline || len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		dst = append(dst, `{"raw":`...)
		dst = appendString(dst, string(compactBody))
		dst = append(dst, `,"archive":`...)
	} else {
		inner := bytes.TrimSpace(body[1 : len(body)-1])
		dst = append(dst, '{')
		if len(inner) > 0 {
			dst = append(dst, inner...)
			dst = append(dst, ',')
		}
		dst = append(dst, `"archive":`...)
	}
	dst = appendArchive(dst, a)
	return append(dst, '}', '\n')
}

// AppendArchive appends the JSON encoding of a, in the canonical field order.
func AppendArchive(dst []byte, a Archive) []byte { return appendArchive(dst, a) }

func appendArchive(dst []byte, a Archive) []byte {
	dst = append(dst, `{"received_at":"`...)
	dst = appendTime(dst, a.ReceivedAt, true)
	dst = append(dst, `","event_id":`...)
	dst = appendString(dst, a.EventID)
	dst = append(dst, `,"remote_addr":`...)
	dst = appendString(dst, a.RemoteAddr)
	dst = append(dst, `,"signature":`...)
	dst = appendString(dst, a.Signature)
	dst = append(dst, `,"publish_time":`...)
	if a.PublishTime == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = appendTime(dst, *a.PublishTime, false)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"instance":`...)
	dst = appendString(dst, a.Instance)
	if a.ContentType != nil {
		dst = append(dst, `,"content_type":`...)
		dst = appendString(dst, *a.ContentType)
	}
	if a.Body != "" {
		dst = append(dst, `,"body":`...)
		dst = appendString(dst, a.Body)
	}
	if a.Repeat {
		dst = append(dst, `,"repeat":true`...)
	}
	return append(dst, '}')
}

// appendTime appends t in UTC as RFC 3339: "2006-01-02T15:04:05.000000000Z" when fixed (always
// nine fractional digits), else "2006-01-02T15:04:05Z" with nine fractional digits only when the
// sub-second part is not zero. Hand-rolled: time.AppendFormat was most of AppendRecord's cost.
func appendTime(dst []byte, t time.Time, fixed bool) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 { // not representable in RFC 3339's four digits; keep Go's rendering
		if fixed {
			return t.AppendFormat(dst, ReceivedAtLayout)
		}
		return t.AppendFormat(dst, time.RFC3339Nano)
	}
	hour, minute, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	if ns := t.Nanosecond(); fixed || ns != 0 {
		dst = append(dst, '.')
		dst = appendDigits(dst, ns, 9)
	}
	return append(dst, 'Z')
}

// appendDigits appends v (>= 0) zero-padded to width digits.
func appendDigits(dst []byte, v, width int) []byte {
	var b [9]byte
	for i := width - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:width]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. strconv.AppendQuote is not used because Go escapes
// (\x00, \a) are not JSON. Invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, GzipLevel) // GzipLevel is valid: error impossible
	return w
}}

// EncodeObject turns lines (each ending in \n) into object bytes: gzip (deterministic: no name,
// zero mtime, level GzipLevel, so the same lines always give the same bytes) or, when !gz, the
// lines themselves (copied).
func EncodeObject(lines []byte, gz bool) ([]byte, error) {
	if !gz {
		return bytes.Clone(lines), nil
	}
	var e ObjectEncoder // one encoder for both, so the bytes cannot drift apart
	e.buf.Grow(len(lines)/4 + 64)
	e.Reset(true)
	e.Write(lines)
	return e.Bytes() // a fresh encoder's buffer is never reused: no copy needed
}

// ObjectEncoder builds an object's bytes from its lines one at a time: the same bytes
// EncodeObject gives for the lines concatenated (deflate fills its window whatever the write
// sizes), without holding the uncompressed lines. Its buffer is kept across Reset, so encoding
// object after object reuses one allocation. The zero value is ready for Reset.
type ObjectEncoder struct {
	buf bytes.Buffer
	zw  *gzip.Writer // nil unless gzip
	err error
}

// Reset starts a new object (gzip or plain), dropping the previous one's bytes.
func (e *ObjectEncoder) Reset(gz bool) {
	e.buf.Reset()
	e.err = nil
	if !gz {
		e.Release()
		return
	}
	if e.zw == nil {
		e.zw = gzipWriters.Get().(*gzip.Writer)
	}
	e.zw.Reset(&e.buf)
	e.zw.ModTime = time.Unix(0, 0) // as EncodeObject: deterministic header
}

// Write adds line (ending in \n).
func (e *ObjectEncoder) Write(line []byte) {
	if e.err != nil {
		return
	}
	if e.zw == nil {
		e.buf.Write(line)
		return
	}
	if _, err := e.zw.Write(line); err != nil {
		e.err = fmt.Errorf("compressing archive object: %w", err)
	}
}

// Bytes finishes the object and returns its bytes, valid until the next Reset. The compressor
// goes back to the shared pool: an idle encoder holds only its buffer.
func (e *ObjectEncoder) Bytes() ([]byte, error) {
	if e.err == nil && e.zw != nil {
		if err := e.zw.Close(); err != nil {
			e.err = fmt.Errorf("compressing archive object: %w", err)
		}
	}
	e.Release()
	if e.err != nil {
		return nil, e.err
	}
	return e.buf.Bytes(), nil
}

// Cap is the capacity of the buffer the encoder keeps.
func (e *ObjectEncoder) Cap() int { return e.buf.Cap() }

// Release returns the encoder's compressor to the shared pool (Reset takes one again).
func (e *ObjectEncoder) Release() {
	if e.zw != nil {
		gzipWriters.Put(e.zw)
		e.zw = nil
	}
}

// Thresholds for publish_timestamp units. Unix seconds have 10 digits until the year 2286; a value
// of 1e11 or more (year 5138 in seconds) is read as milliseconds, 1e14 or more as microseconds,
// 1e17 or more as nanoseconds. Huawei documents seconds; the units guard keeps a millisecond
// sender from producing dates millennia ahead.
const (
	msThreshold = 100_000_000_000
	usThreshold = 100_000_000_000_000
	nsThreshold = 100_000_000_000_000_000
)

// ParsePublishTimestamp parses publish_timestamp as received: a JSON string ("1587954134", or with
// junk after the digits like the seed's "1587954134,") or a JSON number (1587954134,
// 1587954134.5, 1.587954134e9). The leading decimal digits (after optional blanks) are unix
// seconds (see the unit thresholds above). nil when there are no leading digits, the value is
// negative, null, not a string/number, or out of range.
func ParsePublishTimestamp(raw json.RawMessage) *time.Time {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	var digits []byte
	switch c := raw[0]; {
	case c == '"':
		var s []byte
		if bytes.IndexByte(raw, '\\') >= 0 { // rare: escaped string, let encoding/json unquote
			var str string
			if json.Unmarshal(raw, &str) != nil {
				return nil
			}
			s = []byte(str)
		} else {
			s = raw[1:]
		}
		digits = leadingDigits(bytes.TrimLeft(s, " \t"))
	case c >= '0' && c <= '9':
		if bytes.ContainsAny(raw, "eE") {
			f, err := strconv.ParseFloat(string(raw), 64)
			if err != nil || f < 0 || f >= 1e19 {
				return nil
			}
			digits = strconv.AppendUint(nil, uint64(f), 10)
		} else {
			digits = leadingDigits(raw)
		}
	default:
		return nil
	}
	if len(digits) == 0 || len(digits) > 19 {
		return nil
	}
	var n int64
	for _, d := range digits {
		v := int64(d - '0')
		if n > (math.MaxInt64-v)/10 {
			return nil // overflows int64
		}
		n = n*10 + v
	}
	var t time.Time
	switch {
	case n >= nsThreshold:
		t = time.Unix(0, n)
	case n >= usThreshold:
		t = time.UnixMicro(n)
	case n >= msThreshold:
		t = time.UnixMilli(n)
	default:
		t = time.Unix(n, 0)
	}
	t = t.UTC()
	return &t
}

func leadingDigits(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return b[:i]
}
