package provider

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
)

// privateKeyFingerprint is the private-state key under which the resource keeps the
// fingerprint of the write-only key it last sent to Live.
const privateKeyFingerprint = "auth_sign_key_fingerprint"

// keyFingerprint lets the provider tell whether a key equals the one it last sent without
// storing the key: HMAC-SHA256 keyed with a random salt over the domain and the key. The salt
// is new on every write, so two domains with the same key (or the same key sent twice) get
// unrelated fingerprints, and no table of precomputed keys applies. Whoever can read the state
// can still test guesses of the key against it, like against any hash: the 32-character
// minimum is meant for random keys.
type keyFingerprint struct {
	Version int    `json:"v"`
	Salt    []byte `json:"salt"` // 32 random bytes (base64 in JSON)
	MAC     []byte `json:"mac"`  // HMAC-SHA256(salt, domain NUL key)
	// RemoteDiffers is what the last Read found: the key on Live is not the one last sent
	// (changed outside Terraform). The plan turns it into a warning.
	RemoteDiffers bool `json:"remote_differs,omitempty"`
}

const fingerprintVersion = 1

// privateStore is the part of the framework's private state data the fingerprint needs
// (every request and response type carries a *privatestate.ProviderData with these).
type privateStore interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

func fingerprintMAC(salt []byte, domain, key string) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(domain))
	m.Write([]byte{0}) // domains never contain NUL: no two (domain, key) pairs share an input
	m.Write([]byte(key))
	return m.Sum(nil)
}

// newKeyFingerprint fingerprints the key sent for domain.
func newKeyFingerprint(domain, key string) (keyFingerprint, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return keyFingerprint{}, fmt.Errorf("read random salt: %w", err)
	}
	return keyFingerprint{Version: fingerprintVersion, Salt: salt, MAC: fingerprintMAC(salt, domain, key)}, nil
}

// matches reports whether key is the key this fingerprint was made of, in constant time
// (hmac.Equal), so the comparison's duration tells nothing about the key.
func (f keyFingerprint) matches(domain, key string) bool {
	return hmac.Equal(f.MAC, fingerprintMAC(f.Salt, domain, key))
}

// loadFingerprint reads the fingerprint from private state. ok is false when there is none
// (a state written before fingerprints existed, an import, the plain auth_sign_key) or when it
// is not one this provider understands: both mean "nothing to compare with".
func loadFingerprint(ctx context.Context, p privateStore) (f keyFingerprint, ok bool, diags diag.Diagnostics) {
	if p == nil {
		return f, false, nil
	}
	b, diags := p.GetKey(ctx, privateKeyFingerprint)
	if diags.HasError() || len(b) == 0 {
		return f, false, diags
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Version != fingerprintVersion || len(f.Salt) == 0 || len(f.MAC) != sha256.Size {
		return keyFingerprint{}, false, diags
	}
	return f, true, diags
}

// storeFingerprint writes f to private state, or removes the fingerprint when f is nil.
func storeFingerprint(ctx context.Context, p privateStore, f *keyFingerprint) diag.Diagnostics {
	if p == nil {
		return nil
	}
	if f == nil {
		return p.SetKey(ctx, privateKeyFingerprint, nil)
	}
	b, err := json.Marshal(f)
	if err != nil { // cannot happen for this type; report it rather than panic
		var d diag.Diagnostics
		d.AddError("Cannot record the key fingerprint", "Encoding the fingerprint failed: "+err.Error()+
			". This is a bug in the livehook provider; please report it.")
		return d
	}
	return p.SetKey(ctx, privateKeyFingerprint, b)
}
