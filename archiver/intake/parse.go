package intake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/jsonscan"
	"github.com/livehook/terraform-provider-livehook/internal/callback"
)

// Rejection reasons: the label values of livehook_archiver_rejected_total{reason=...}.
const (
	ReasonMethod           = "method_not_allowed"
	ReasonTooLarge         = "body_too_large"
	ReasonReadError        = "read_error"
	ReasonInvalidUTF8      = "invalid_utf8"
	ReasonNotObject        = "not_json_object"
	ReasonInvalidJSON      = "invalid_json"
	ReasonMissingField     = "missing_field"
	ReasonBadField         = "bad_field"
	ReasonBadEvent         = "bad_event"
	ReasonDomainNotAllowed = "domain_not_allowed"
	ReasonDomainNoKey      = "domain_no_key"
	ReasonDuplicateKey     = "duplicate_key"
	ReasonReservedKey      = "reserved_key"
	ReasonReadTimeout      = "read_timeout"
	ReasonSignatureMissing = "signature_missing"
	ReasonSignatureInvalid = "signature_invalid"
	ReasonSignatureStale   = "signature_stale"
	ReasonSpoolFull        = "spool_full"
	ReasonUnavailable      = "unavailable"
	ReasonShuttingDown     = "shutting_down"
	ReasonOverloaded       = "overloaded"
)

// Reasons lists every rejection reason, so /metrics shows them all from the start.
var Reasons = []string{
	ReasonMethod, ReasonTooLarge, ReasonReadError, ReasonInvalidUTF8, ReasonNotObject, ReasonInvalidJSON,
	ReasonMissingField, ReasonBadField, ReasonBadEvent, ReasonDomainNotAllowed, ReasonDomainNoKey,
	ReasonDuplicateKey, ReasonReservedKey, ReasonReadTimeout,
	ReasonSignatureMissing, ReasonSignatureInvalid, ReasonSignatureStale,
	ReasonSpoolFull, ReasonUnavailable, ReasonShuttingDown, ReasonOverloaded,
}

// Rejection is a refused request: the HTTP status, the metrics reason, the field at fault (may be
// empty) and a message telling the sender what to fix.
type Rejection struct {
	Status int
	Reason string
	Field  string
	Msg    string
}

func (r *Rejection) Error() string { return r.Msg }

func reject(status int, reason, field, format string, args ...any) *Rejection {
	return &Rejection{Status: status, Reason: reason, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Fields are the parts of a callback body intake interprets. Everything else is kept verbatim in
// the archived line. String fields are unescaped; raw fields are JSON values as received.
type Fields struct {
	Domain, App, Stream, Event string
	PublishTimestamp           []byte // raw JSON value, nil when absent
	AuthTimestamp              []byte // raw JSON value, nil when absent
	AuthSign                   []byte // raw JSON value, nil when absent
}

// IdentityTimestamp is publish_timestamp as it enters the event identity: a string's contents, or
// the literal text of any other value. ok is false when the field is absent, null or "" (such an
// event has no usable identity and is never treated as a redelivery).
func (f *Fields) IdentityTimestamp() (s string, ok bool) {
	raw := f.PublishTimestamp
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return "", false
	}
	if raw[0] == '"' {
		if bytes.IndexByte(raw, '\\') < 0 { // the usual case: no escapes, no json.Unmarshal
			s := string(raw[1 : len(raw)-1])
			return s, s != ""
		}
		s, err := unquote(raw)
		if err != nil || s == "" {
			return "", false
		}
		return s, true
	}
	return string(raw), true
}

// prepare checks that body is UTF-8 and one JSON object, and appends its compact form to dst.
func prepare(dst, body []byte) ([]byte, *Rejection) {
	if !utf8.Valid(body) {
		return dst, reject(http.StatusBadRequest, ReasonInvalidUTF8, "", "the body is not valid UTF-8; send the callback as UTF-8 JSON")
	}
	first := firstNonSpace(body)
	switch {
	case first < 0:
		return dst, reject(http.StatusBadRequest, ReasonNotObject, "", "the body is empty; expected a JSON object")
	case body[first] != '{':
		return dst, reject(http.StatusBadRequest, ReasonNotObject, "", "the body must be a JSON object, got %s", describeJSONStart(body[first]))
	}
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, body); err != nil {
		return dst, reject(http.StatusBadRequest, ReasonInvalidJSON, "", "the body is not valid JSON: %v", err)
	}
	return buf.Bytes(), nil
}

// firstNonSpace is the index of the first byte that is not JSON white space, or -1.
func firstNonSpace(b []byte) int {
	if i := skipBlanks(b, 0); i < len(b) {
		return i
	}
	return -1
}

// skipBlanks returns the index of the first byte at or after i that is not JSON white space.
func skipBlanks(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

func describeJSONStart(c byte) string {
	switch {
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	default:
		return "something that is not JSON"
	}
}

// field indexes for duplicate detection.
const (
	fDomain = 1 << iota
	fApp
	fStream
	fEvent
	fPublishTS
	fAuthTS
	fAuthSign
)

// parseFields scans a compacted JSON object (as produced by prepare: valid, no insignificant
// whitespace) once, picking out the fields intake needs. It allocates one string for the whole
// body; field strings are substrings of it unless they contain escapes.
func parseFields(compact []byte, f *Fields) *Rejection {
	*f = Fields{}
	if len(compact) < 2 || compact[0] != '{' {
		return reject(http.StatusBadRequest, ReasonNotObject, "", "the body must be a JSON object")
	}
	s := string(compact)
	seen := 0
	var keys foldSet
	i := 1
	if s[i] == '}' {
		return missing("domain")
	}
	for i < len(s) {
		// key
		if s[i] != '"' {
			return malformed()
		}
		kend := jsonscan.StringEnd(s, i)
		if kend < 0 {
			return malformed()
		}
		key := s[i+1 : kend-1]
		if bytes.IndexByte(compact[i:kend], '\\') >= 0 {
			k, err := unquote(compact[i:kend])
			if err != nil {
				return malformed()
			}
			key = k
		}
		if rej := keys.add(key); rej != nil {
			return rej
		}
		i = kend
		if i >= len(s) || s[i] != ':' {
			return malformed()
		}
		i++
		vend := jsonscan.ValueEnd(s, i)
		if vend < 0 {
			return malformed()
		}
		raw := compact[i:vend]
		var bit int
		var dst *string
		switch key {
		case "domain":
			bit, dst = fDomain, &f.Domain
		case "app":
			bit, dst = fApp, &f.App
		case "stream":
			bit, dst = fStream, &f.Stream
		case "event":
			bit, dst = fEvent, &f.Event
		case "publish_timestamp":
			bit, f.PublishTimestamp = fPublishTS, raw
		case "auth_timestamp":
			bit, f.AuthTimestamp = fAuthTS, raw
		case "auth_sign":
			bit, f.AuthSign = fAuthSign, raw
		}
		seen |= bit // a repeated key was refused by keys.add above
		if dst != nil {
			if raw[0] != '"' {
				return reject(http.StatusBadRequest, ReasonBadField, key, "field %q must be a string, got %s", key, describeJSONStart(raw[0]))
			}
			if bytes.IndexByte(raw, '\\') >= 0 {
				v, err := unquote(raw)
				if err != nil {
					return reject(http.StatusBadRequest, ReasonBadField, key, "field %q is not a valid JSON string: %v", key, err)
				}
				*dst = v
			} else {
				*dst = s[i+1 : vend-1]
			}
		}
		i = vend
		if i >= len(s) {
			return malformed()
		}
		if s[i] == '}' {
			if i != len(s)-1 {
				return malformed()
			}
			break
		}
		if s[i] != ',' {
			return malformed()
		}
		i++
	}
	for _, req := range [...]struct {
		name string
		v    string
	}{{"domain", f.Domain}, {"app", f.App}, {"stream", f.Stream}, {"event", f.Event}} {
		if req.v == "" {
			if !hasField(seen, req.name) {
				return missing(req.name)
			}
			return reject(http.StatusBadRequest, ReasonMissingField, req.name, "field %q is empty; it must be a non-empty string", req.name)
		}
	}
	if f.Event != callback.EventPublish && f.Event != callback.EventPublishDone {
		return reject(http.StatusBadRequest, ReasonBadEvent, "event", "field \"event\" must be %q or %q, got %q",
			callback.EventPublish, callback.EventPublishDone, truncate(f.Event, 64))
	}
	return nil
}

func hasField(seen int, name string) bool {
	switch name {
	case "domain":
		return seen&fDomain != 0
	case "app":
		return seen&fApp != 0
	case "stream":
		return seen&fStream != 0
	case "event":
		return seen&fEvent != 0
	}
	return false
}

func missing(name string) *Rejection {
	return reject(http.StatusBadRequest, ReasonMissingField, name, "field %q is missing; a publish callback carries domain, app, stream and event", name)
}

// malformed cannot happen after json.Compact; it guards against a scanner bug turning into a panic.
func malformed() *Rejection {
	return reject(http.StatusBadRequest, ReasonInvalidJSON, "", "the body is not a well-formed JSON object")
}

func unquote(raw []byte) (string, error) {
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	return v, nil
}

// authTimestamp reads auth_timestamp: a JSON integer or a string holding one, in canonical
// decimal (digits only, no sign, no leading zero), as the signer formats it. Only the canonical
// form is accepted so that the signed text "...stream" + "auth_timestamp" has one reading.
func authTimestamp(raw []byte) (int64, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	if len(raw) == 0 || len(raw) > 19 || (raw[0] == '0' && len(raw) > 1) {
		return 0, false
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// authSign reads auth_sign: a JSON string (its contents are compared in constant time).
func authSign(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') >= 0 {
		s, err := unquote(raw)
		return s, err == nil
	}
	return string(raw[1 : len(raw)-1]), true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:runeCut(s, n)] + "…"
}

// runeCut is the largest cut point <= n (n < len(s)) that does not split a UTF-8 sequence.
func runeCut[T string | []byte](s T, n int) int {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// ReservedKey is the top-level key livehook adds to every archived record; a body must not
// carry it (in any case).
const ReservedKey = "archive"

// foldSet detects top-level keys that are equal under Unicode simple case folding (the
// equivalence of strings.EqualFold), and the reserved key. Readers that match names
// case-insensitively (encoding/json, DuckDB) would otherwise see the wrong one of two such keys.
type foldSet struct {
	n     int
	small [foldSmall]foldEntry // while there are few keys: no allocation per request
	big   map[string]string    // folded -> first name as sent, once there are many
}

type foldEntry struct{ folded, name string }

const foldSmall = 16

func (k *foldSet) add(key string) *Rejection {
	f := foldKey(key)
	if f == ReservedKey {
		return reject(http.StatusBadRequest, ReasonReservedKey, key,
			"the body has a top-level key %q: \"archive\" is reserved for the record livehook adds; rename or nest it", truncate(key, 64))
	}
	prev, dup := k.lookup(f)
	if dup {
		if prev == key {
			return reject(http.StatusBadRequest, ReasonDuplicateKey, key, "field %q appears more than once; send it once", truncate(key, 64))
		}
		return reject(http.StatusBadRequest, ReasonDuplicateKey, key,
			"fields %q and %q differ only in letter case; readers could take one for the other, send one", truncate(prev, 64), truncate(key, 64))
	}
	if k.big == nil && k.n < foldSmall {
		k.small[k.n] = foldEntry{f, key}
		k.n++
		return nil
	}
	if k.big == nil {
		k.big = make(map[string]string, 2*foldSmall)
		for _, e := range k.small[:k.n] {
			k.big[e.folded] = e.name
		}
	}
	k.big[f] = key
	return nil
}

// lookup returns the name as sent of a key already seen with the same folded form.
func (k *foldSet) lookup(folded string) (name string, ok bool) {
	if k.big != nil {
		name, ok = k.big[folded]
		return name, ok
	}
	for _, e := range k.small[:k.n] {
		if e.folded == folded {
			return e.name, true
		}
	}
	return "", false
}

// foldKey maps s to a canonical member of its case-folding class: each rune becomes the ASCII
// lower-case letter of its unicode.SimpleFold orbit if it has one (so plain lower-case ASCII keys
// map to themselves without work), else the orbit's smallest rune. foldKey(a) == foldKey(b)
// exactly when strings.EqualFold(a, b).
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || (c >= 'A' && c <= 'Z') {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

func foldRune(r rune) rune {
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f >= 'a' && f <= 'z' {
			return f
		}
		if f < min {
			min = f
		}
	}
	if r >= 'a' && r <= 'z' {
		return r
	}
	return min
}
