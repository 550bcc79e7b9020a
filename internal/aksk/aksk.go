// Package aksk implements Huawei Cloud's AK/SK request signing ("SDK-HMAC-SHA256"),
// both sides: Sign for clients and Verify for servers (the emulator). It is written
// from the published formula so that any correct signer interoperates with it.
package aksk

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

const (
	// Algorithm is the scheme name in the Authorization header and the string to sign.
	Algorithm = "SDK-HMAC-SHA256"
	// DateFormat is the layout of the X-Sdk-Date header (always UTC).
	DateFormat = "20060102T150405Z"

	HeaderDate          = "X-Sdk-Date"
	HeaderProjectID     = "X-Project-Id"
	HeaderSecurityToken = "X-Security-Token"
)

// Credentials are an access key pair, with a security token when they are temporary.
type Credentials struct {
	AccessKey     string
	SecretKey     string
	SecurityToken string
}

// Sign adds X-Sdk-Date (and X-Security-Token for temporary credentials) to req and
// an Authorization header covering host, x-sdk-date and, when present,
// x-project-id and x-security-token. body must be exactly the bytes that will be sent.
// Call it again for every attempt: the date is part of the signature.
func Sign(req *http.Request, body []byte, creds Credentials, now time.Time) {
	req.Header.Set(HeaderDate, now.UTC().Format(DateFormat))
	if creds.SecurityToken != "" {
		req.Header.Set(HeaderSecurityToken, creds.SecurityToken)
	} else {
		req.Header.Del(HeaderSecurityToken)
	}
	signed := []string{"host", "x-sdk-date"}
	if req.Header.Get(HeaderProjectID) != "" {
		signed = append(signed, "x-project-id")
	}
	if creds.SecurityToken != "" {
		signed = append(signed, "x-security-token")
	}
	sort.Strings(signed)
	cr := CanonicalRequest(req.Method, req.URL.EscapedPath(), req.URL.RawQuery, headerValues(req, signed), signed, body)
	sig := Signature(creds.SecretKey, StringToSign(req.Header.Get(HeaderDate), cr))
	req.Header.Set("Authorization", fmt.Sprintf("%s Access=%s, SignedHeaders=%s, Signature=%s",
		Algorithm, creds.AccessKey, strings.Join(signed, ";"), sig))
}

// headerValues returns the values of the named (lower-case) headers, taking host
// from the request's Host the way a server sees it.
func headerValues(req *http.Request, names []string) map[string]string {
	out := make(map[string]string, len(names))
	for _, n := range names {
		if n == "host" {
			h := req.Host
			if h == "" && req.URL != nil {
				h = req.URL.Host
			}
			out[n] = h
			continue
		}
		out[n] = strings.Join(req.Header.Values(n), ",")
	}
	return out
}

// CanonicalRequest builds the canonical form of a request. escapedPath and rawQuery are
// as they appear on the wire; headers maps each lower-case signed header to its value.
func CanonicalRequest(method, escapedPath, rawQuery string, headers map[string]string, signed []string, body []byte) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(escapedPath))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(rawQuery))
	b.WriteByte('\n')
	for _, h := range signed {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(strings.TrimSpace(headers[h]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	sum := sha256.Sum256(body)
	b.WriteString(hex.EncodeToString(sum[:]))
	return b.String()
}

// StringToSign is the second stage of the formula.
func StringToSign(date, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + date + "\n" + hex.EncodeToString(sum[:])
}

// Signature is hex(hmac_sha256(secret, stringToSign)).
func Signature(secret, stringToSign string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stringToSign))
	return hex.EncodeToString(m.Sum(nil))
}

func canonicalURI(escapedPath string) string {
	segs := strings.Split(escapedPath, "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		segs[i] = escape(s)
	}
	p := strings.Join(segs, "/")
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

func canonicalQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	type kv struct{ k, v string }
	var pairs []kv
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if u, err := url.QueryUnescape(k); err == nil {
			k = u
		}
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		pairs = append(pairs, kv{escape(k), escape(v)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// escape percent-encodes everything but the unreserved characters, with upper-case hex.
func escape(s string) string {
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&15])
	}
	return b.String()
}

// Authorization is a parsed Authorization header.
type Authorization struct {
	AccessKey     string
	SignedHeaders []string
	Signature     string
}

// ParseAuthorization parses "SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex".
func ParseAuthorization(h string) (Authorization, error) {
	var a Authorization
	rest, ok := strings.CutPrefix(h, Algorithm+" ")
	if !ok {
		return a, errors.New("authorization header does not use " + Algorithm)
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, fmt.Errorf("malformed authorization field %q", part)
		}
		switch k {
		case "Access":
			a.AccessKey = v
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(strings.ToLower(v), ";")
		case "Signature":
			a.Signature = v
		}
	}
	if a.AccessKey == "" || len(a.SignedHeaders) == 0 || a.Signature == "" {
		return a, errors.New("authorization header lacks Access, SignedHeaders or Signature")
	}
	return a, nil
}

// Verification failures. Servers answer all of them with 401; the distinction is for logs and tests.
var (
	ErrMissing      = errors.New("request is not signed")
	ErrUnknownKey   = errors.New("unknown access key")
	ErrStaleDate    = errors.New("X-Sdk-Date is missing, malformed or too far from the server's clock")
	ErrDateUnsigned = errors.New("X-Sdk-Date is not among the signed headers")
	ErrMismatch     = errors.New("signature does not match")
)

// Verify checks req's signature against the headers its SignedHeaders names. secretFor
// returns the secret key of an access key. body is the request body as received.
// It returns the access key on success.
func Verify(req *http.Request, body []byte, secretFor func(accessKey string) (string, bool), now time.Time, maxSkew time.Duration) (string, error) {
	hdr := req.Header.Get("Authorization")
	if hdr == "" {
		return "", ErrMissing
	}
	a, err := ParseAuthorization(hdr)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMissing, err)
	}
	secret, ok := secretFor(a.AccessKey)
	if !ok {
		return "", ErrUnknownKey
	}
	date := req.Header.Get(HeaderDate)
	t, err := time.Parse(DateFormat, date)
	if err != nil || t.Sub(now).Abs() > maxSkew {
		return "", ErrStaleDate
	}
	if !slices.Contains(a.SignedHeaders, "x-sdk-date") {
		return "", ErrDateUnsigned
	}
	cr := CanonicalRequest(req.Method, req.URL.EscapedPath(), req.URL.RawQuery, headerValues(req, a.SignedHeaders), a.SignedHeaders, body)
	want := Signature(secret, StringToSign(date, cr))
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(a.Signature))) != 1 {
		return "", ErrMismatch
	}
	return a.AccessKey, nil
}
