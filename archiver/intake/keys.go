package intake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/livehook/terraform-provider-livehook/internal/callback"
)

// KeyRing maps push domains to their auth_sign_keys (several during a key rotation). It is
// swapped atomically on reload (SIGHUP), so requests never see a half-read file. Keys are never
// logged or returned in errors.
type KeyRing struct {
	m atomic.Pointer[ring]
}

// ring is one generation of keys, with a verifier per key (keyed HMAC states reused across
// requests: verifying with a plain key string cost 15 allocations per callback).
type ring struct {
	keys      map[string][]string
	verifiers map[string][]*callback.Verifier
}

// CanonicalDomain is the form domains are looked up in: lower case, without trailing dots. Host
// names are case-insensitive and "example.com." names the same host as "example.com", so a
// variant of a keyed domain must find that domain's key (and fail its signature) rather than
// pass as an unknown, unsigned domain.
func CanonicalDomain(d string) string {
	return strings.TrimRight(strings.ToLower(d), ".")
}

// Set replaces the keys (domains in any form; they are stored canonical).
func (k *KeyRing) Set(m map[string][]string) {
	c := &ring{keys: make(map[string][]string, len(m)), verifiers: make(map[string][]*callback.Verifier, len(m))}
	for d, keys := range m {
		d = CanonicalDomain(d)
		c.keys[d] = keys
		vs := make([]*callback.Verifier, len(keys))
		for i, key := range keys {
			vs[i] = callback.NewVerifier(key)
		}
		c.verifiers[d] = vs
	}
	k.m.Store(c)
}

// Lookup returns the keys of domain (in any case, with or without trailing dots).
func (k *KeyRing) Lookup(domain string) ([]string, bool) {
	p := k.m.Load()
	if p == nil {
		return nil, false
	}
	keys, ok := p.keys[CanonicalDomain(domain)]
	return keys, ok
}

// verifiersCanonical returns the verifiers of the keys of a domain already through
// CanonicalDomain (the request path).
func (k *KeyRing) verifiersCanonical(domain string) ([]*callback.Verifier, bool) {
	p := k.m.Load()
	if p == nil {
		return nil, false
	}
	vs, ok := p.verifiers[domain]
	return vs, ok
}

// Domains lists the domains that have a key (sorted; for logs).
func (k *KeyRing) Domains() []string {
	p := k.m.Load()
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(p.keys))
	for d := range p.keys {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// maxKeysFile bounds what LoadKeysFile reads.
const maxKeysFile = 1 << 20

// LoadKeysFile reads a --keys file: a JSON object mapping push domain to its auth_sign_key, or to
// a list of keys during a rotation (a callback signed with any of them is verified), e.g.
//
//	{"push.example.com": "0123456789abcdef0123456789abcdef",
//	 "live.example.org": ["new-key...", "old-key..."]}
//
// The file must not be readable or writable by group or others (chmod 600): it holds the
// signing keys. Errors name the file and the domain at fault, never a key.
func LoadKeysFile(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading --keys file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading --keys file: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("--keys file %s has mode %04o: it holds signing keys and must not be accessible to group or others; run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading --keys file: %w", err)
	}
	if len(b) > maxKeysFile {
		return nil, fmt.Errorf("--keys file %s is over %d bytes", path, maxKeysFile)
	}
	return ParseKeys(path, b)
}

// ParseKeys parses the contents of a --keys file (name is for messages).
func ParseKeys(name string, b []byte) (map[string][]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("--keys file %s is not valid JSON (error at byte %d); expected {\"push.example.com\": \"auth_sign_key\"} or {\"push.example.com\": [\"new_key\", \"old_key\"]}", name, se.Offset)
		}
		return nil, fmt.Errorf("--keys file %s must be a JSON object mapping push domain to auth_sign_key (or to a list of keys)", name)
	}
	out := make(map[string][]string, len(raw))
	for domain, v := range raw {
		if strings.TrimSpace(domain) == "" || CanonicalDomain(domain) == "" {
			return nil, fmt.Errorf("--keys file %s has an empty domain name", name)
		}
		if strings.TrimSpace(domain) != domain {
			return nil, fmt.Errorf("--keys file %s: domain %q has leading or trailing blanks", name, domain)
		}
		var keys []string
		var one string
		if err := json.Unmarshal(v, &one); err == nil {
			keys = []string{one}
		} else if err := json.Unmarshal(v, &keys); err != nil {
			return nil, fmt.Errorf("--keys file %s: the key of domain %q must be a JSON string or a list of strings", name, domain)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("--keys file %s: domain %q has an empty list of keys", name, domain)
		}
		for i, k := range keys {
			if k == "" {
				return nil, fmt.Errorf("--keys file %s: key %d of domain %q is empty", name, i+1, domain)
			}
		}
		d := CanonicalDomain(domain)
		if _, dup := out[d]; dup {
			return nil, fmt.Errorf("--keys file %s lists domain %q twice (domains are matched without regard to case or a trailing dot)", name, d)
		}
		out[d] = keys
	}
	return out, nil
}
