package intake

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"
)

// KeyRing maps push domains to their auth_sign_key. It is swapped atomically on reload (SIGHUP),
// so requests never see a half-read file. Keys are never logged or returned in errors.
type KeyRing struct {
	m atomic.Pointer[map[string]string]
}

// Set replaces the keys.
func (k *KeyRing) Set(m map[string]string) { k.m.Store(&m) }

// Lookup returns the key of domain.
func (k *KeyRing) Lookup(domain string) (string, bool) {
	p := k.m.Load()
	if p == nil {
		return "", false
	}
	key, ok := (*p)[domain]
	return key, ok
}

// Domains lists the domains that have a key (sorted; for logs).
func (k *KeyRing) Domains() []string {
	p := k.m.Load()
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(*p))
	for d := range *p {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// LoadKeysFile reads a --keys file (domains are matched case-insensitively): a JSON object mapping push domain to auth_sign_key, e.g.
// {"push.example.com":"0123456789abcdef0123456789abcdef"}. Errors name the file and the domain at
// fault, never a key.
func LoadKeysFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --keys file: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("--keys file %s is not valid JSON (error at byte %d); expected {\"push.example.com\": \"auth_sign_key\"}", path, se.Offset)
		}
		return nil, fmt.Errorf("--keys file %s must be a JSON object mapping push domain to auth_sign_key", path)
	}
	out := make(map[string]string, len(raw))
	for domain, v := range raw {
		if strings.TrimSpace(domain) == "" {
			return nil, fmt.Errorf("--keys file %s has an empty domain name", path)
		}
		var key string
		if err := json.Unmarshal(v, &key); err != nil {
			return nil, fmt.Errorf("--keys file %s: the key of domain %q must be a JSON string", path, domain)
		}
		if key == "" {
			return nil, fmt.Errorf("--keys file %s: the key of domain %q is empty", path, domain)
		}
		d := strings.ToLower(strings.TrimSpace(domain))
		if _, dup := out[d]; dup {
			return nil, fmt.Errorf("--keys file %s lists domain %q twice (domains are case-insensitive)", path, d)
		}
		out[d] = key
	}
	return out, nil
}
