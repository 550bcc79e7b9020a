// Package digest proves the archive's integrity: signed, chained digest files that list every
// object an archiver instance (or a compaction run) stored, and a Recorder that collects those
// listings as objects are written. The format is part of the layout contract (see package layout,
// "Digests").
//
// A digest file is one JSON object:
//
//	{"payload":{...canonical digest...},"signature":"<base64 Ed25519 over the payload bytes>"}
//
// The payload bytes are signed exactly as stored, so a verifier needs no canonicalisation: it
// takes the raw "payload" value, checks the signature, then decodes it. The chain links a digest
// to the SHA-256 of the whole previous digest file of the same chain.
package digest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Version is the digest format version written in every payload. Version 2 binds a digest to its
// place: the payload names its own key and the archive it belongs to, and lists the heads of the
// other chains the writer saw (witnesses). Version 1 digests (neither) are still read; a verifier
// reports them as not bound to a place.
const Version = 2

// MinVersion is the oldest format Decode reads.
const MinVersion = 1

// Prefix is where digests live, outside every dt= partition so query engines never read them.
const Prefix = "_digests/"

// Kinds of digest.
const (
	KindHourly     = "hourly"     // written at every hour boundary, also for an hour with no objects
	KindStart      = "start"      // the first digest of a new chain, at start: empty span, witnessing
	KindShutdown   = "shutdown"   // the last digest of a process: the chain may pause after it
	KindCompaction = "compaction" // written by `archiver compact` for what it wrote and removed
)

// ContentType of digest files.
const ContentType = "application/json"

// Entry describes one stored object.
type Entry struct {
	Key             string `json:"key"`
	Size            int64  `json:"size"`
	SHA256          string `json:"sha256"`
	Records         int    `json:"records"`
	FirstReceivedAt string `json:"first_received_at,omitempty"` // layout.ReceivedAtLayout; empty when no records
	LastReceivedAt  string `json:"last_received_at,omitempty"`
}

// Removed names an object a compaction deleted (or may delete): its records are in the objects of
// the same digest.
type Removed struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
}

// Link names the previous digest of the same chain.
type Link struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"` // of the previous digest file's bytes
}

// Head names the newest digest of another chain, as a writer saw it in the store (a witness): a
// verifier requires that digest to be there with these bytes, so deleting a whole chain, or its
// tail, is detected while any other chain ran after it.
type Head struct {
	Instance string `json:"instance"`
	Seq      uint64 `json:"seq"`
	Key      string `json:"key"`
	SHA256   string `json:"sha256"`
}

// Payload is the signed content of a digest. Field order is the canonical order (encoding/json
// writes struct fields in declaration order).
type Payload struct {
	Version int `json:"version"`
	// Archive (version 2) names the archive the digest was written for: the store's identity
	// (storage.Identity: s3://bucket/prefix, file:///dir) or the configured --archive-id.
	Archive string `json:"archive,omitempty"`
	// Key (version 2) is the digest's own key, so a copy under another name does not verify.
	Key      string    `json:"key,omitempty"`
	Kind     string    `json:"kind"`
	Instance string    `json:"instance"` // archiver instance, or "compact-YYYY-MM-DD"
	Seq      uint64    `json:"seq"`      // 1 for a chain's first digest, then +1
	Start    string    `json:"start"`    // span covered, RFC 3339 UTC (layout.ReceivedAtLayout)
	End      string    `json:"end"`
	Day      string    `json:"day,omitempty"`     // compaction: the partition day compacted
	Previous *Link     `json:"previous"`          // null for a chain's first digest
	KeyID    string    `json:"key_id"`            // KeyID of the signing key
	Witness  []Head    `json:"witness,omitempty"` // version 2: other chains' heads seen in the store
	Objects  []Entry   `json:"objects"`
	Removed  []Removed `json:"removed,omitempty"`
	// Deleted (compaction) says the Removed originals were deleted: one that is back is reported.
	Deleted   bool   `json:"deleted,omitempty"`
	CreatedAt string `json:"created_at"`
}

// Bound tells whether the payload names its own key and archive (format version 2 and later).
func (p Payload) Bound() bool { return p.Version >= 2 }

// File is a digest as stored.
type File struct {
	Payload   json.RawMessage `json:"payload"`
	Signature string          `json:"signature"`
}

// TimeLayout is the layout of Start, End and CreatedAt (fixed width, sorts as it reads).
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// FormatTime renders t for a payload.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime reads a payload time.
func ParseTime(s string) (time.Time, error) { return time.Parse(TimeLayout, s) }

// Encode signs p and returns the digest file bytes.
func Encode(p Payload, key ed25519.PrivateKey) ([]byte, error) {
	if p.Objects == nil {
		p.Objects = []Entry{} // "objects":[] for an empty hour, never null
	}
	p.Version = Version
	p.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding digest: %w", err)
	}
	sig := ed25519.Sign(key, payload)
	out, err := json.Marshal(File{Payload: payload, Signature: base64.StdEncoding.EncodeToString(sig)})
	if err != nil {
		return nil, fmt.Errorf("encoding digest: %w", err)
	}
	return append(out, '\n'), nil
}

// Problems Decode reports.
var (
	ErrMalformed    = errors.New("not a livehook digest")
	ErrBadSignature = errors.New("signature does not verify")
)

// Decode parses a digest file and checks its signature against pub. The payload is returned even
// when the signature fails (err wraps ErrBadSignature), so a verifier can still follow the chain;
// on ErrMalformed it is zero.
func Decode(b []byte, pub ed25519.PublicKey) (Payload, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		return Payload{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(f.Payload) == 0 {
		return Payload{}, fmt.Errorf("%w: no payload", ErrMalformed)
	}
	var p Payload
	if err := json.Unmarshal(f.Payload, &p); err != nil {
		return Payload{}, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if p.Version < MinVersion || p.Version > Version {
		return Payload{}, fmt.Errorf("%w: format version %d, this archiver reads versions %d to %d", ErrMalformed, p.Version, MinVersion, Version)
	}
	sig, err := base64.StdEncoding.DecodeString(f.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return p, fmt.Errorf("%w: signature is not %d bytes of base64", ErrBadSignature, ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, f.Payload, sig) {
		if want := KeyID(pub); p.KeyID != want {
			return p, fmt.Errorf("%w: signed by key %s, the public key given is %s", ErrBadSignature, p.KeyID, want)
		}
		return p, fmt.Errorf("%w: the content was changed after signing", ErrBadSignature)
	}
	return p, nil
}

// Sum is the hex SHA-256 of b (object and digest hashes).
func Sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// KeyID is a short fingerprint of a public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// Key names a digest: _digests/YYYY/MM/DD/<instance>/<end HHMMSS>-<seq %010d>-<kind>.json. The
// date directories are the UTC day of the span's end (of the compacted day for compaction
// digests), so a verifier lists a day range without knowing the instances.
func Key(dateDir time.Time, instance string, end time.Time, seq uint64, kind string) string {
	d := dateDir.UTC()
	return fmt.Sprintf("%s%s/%s/%s-%010d-%s.json", Prefix, d.Format("2006/01/02"), instance, end.UTC().Format("150405"), seq, kind)
}

// KeyParts are what a digest key says about the digest (see Key).
type KeyParts struct {
	Day      string // YYYY-MM-DD of the date directories
	Instance string
	Seq      uint64
	Kind     string
}

// ParseKey reads a digest key's parts; ok is false for a key Key cannot have written.
func ParseKey(key string) (k KeyParts, ok bool) {
	rest, found := strings.CutPrefix(key, Prefix)
	if !found {
		return k, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 {
		return k, false
	}
	d, err := time.Parse("2006/01/02", strings.Join(parts[:3], "/"))
	if err != nil {
		return k, false
	}
	name, found := strings.CutSuffix(parts[4], ".json")
	if !found {
		return k, false
	}
	f := strings.SplitN(name, "-", 3)
	if len(f) != 3 || len(f[0]) != 6 || len(f[1]) != 10 {
		return k, false
	}
	seq, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return k, false
	}
	return KeyParts{Day: d.Format("2006-01-02"), Instance: parts[3], Seq: seq, Kind: f[2]}, true
}

// DayPrefix is the prefix of the digests filed under the UTC day of t.
func DayPrefix(t time.Time) string { return Prefix + t.UTC().Format("2006/01/02") + "/" }

// InstancePrefix is the prefix of one instance's digests filed under the UTC day of t.
func InstancePrefix(t time.Time, instance string) string { return DayPrefix(t) + instance + "/" }

// IsKey tells digest files from anything else under Prefix.
func IsKey(key string) bool {
	return strings.HasPrefix(key, Prefix) && strings.HasSuffix(key, ".json")
}

// LoadPrivateKey reads an Ed25519 private key in PEM PKCS#8 ("openssl genpkey -algorithm
// ed25519"). Errors never quote the file's contents.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --digest-key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("--digest-key %s: not a PEM \"PRIVATE KEY\" (PKCS#8) block; create one with: openssl genpkey -algorithm ed25519 -out %s", path, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("--digest-key %s: not a PKCS#8 private key (create one with: openssl genpkey -algorithm ed25519)", path)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("--digest-key %s: a %T key, but digests are signed with Ed25519 (openssl genpkey -algorithm ed25519)", path, k)
	}
	return ek, nil
}

// LoadPublicKey reads an Ed25519 public key in PEM PKIX ("openssl pkey -in key.pem -pubout"). A
// private key file is accepted too (its public half is used).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --public-key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("--public-key %s: no PEM block; export it with: openssl pkey -in key.pem -pubout -out %s", path, path)
	}
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--public-key %s: %w", path, err)
		}
		if ek, ok := k.(ed25519.PublicKey); ok {
			return ek, nil
		}
		return nil, fmt.Errorf("--public-key %s: a %T key, but digests are signed with Ed25519", path, k)
	case "PRIVATE KEY":
		k, err := LoadPrivateKey(path)
		if err != nil {
			return nil, err
		}
		return k.Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("--public-key %s: PEM block %q, want \"PUBLIC KEY\" (openssl pkey -in key.pem -pubout)", path, blk.Type)
}
