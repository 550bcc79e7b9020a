package intake

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadKeysFile(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-key-value"
	tests := []struct {
		name, content string
		mode          os.FileMode
		want          []string // keys of push.example.com
		wantErr       string
	}{
		{"one key", `{"Push.Example.com":"` + secret + `"}`, 0o600, []string{secret}, ""},
		{"trailing dot", `{"push.example.com.":"` + secret + `"}`, 0o600, []string{secret}, ""},
		{"rotation list", `{"push.example.com":["new-` + secret + `","` + secret + `"]}`, 0o600, []string{"new-" + secret, secret}, ""},
		{"owner read only", `{"push.example.com":"` + secret + `"}`, 0o400, []string{secret}, ""},
		{"group readable", `{"push.example.com":"` + secret + `"}`, 0o640, nil, "chmod 600"},
		{"world readable", `{"push.example.com":"` + secret + `"}`, 0o644, nil, "chmod 600"},
		{"not json", `{"push.example.com":"` + secret, 0o600, nil, "not valid JSON"},
		{"array", `["` + secret + `"]`, 0o600, nil, "must be a JSON object"},
		{"number key", `{"push.example.com":12}`, 0o600, nil, "must be a JSON string or a list"},
		{"list with number", `{"push.example.com":["` + secret + `",1]}`, 0o600, nil, "must be a JSON string or a list"},
		{"empty list", `{"push.example.com":[]}`, 0o600, nil, "empty list"},
		{"empty key", `{"push.example.com":""}`, 0o600, nil, "is empty"},
		{"empty key in list", `{"push.example.com":["` + secret + `",""]}`, 0o600, nil, "key 2 of domain"},
		{"empty domain", `{"":"` + secret + `"}`, 0o600, nil, "empty domain"},
		{"dot domain", `{".":"` + secret + `"}`, 0o600, nil, "empty domain"},
		{"case duplicate", `{"a.example.com":"x","A.example.com":"y"}`, 0o600, nil, "twice"},
		{"trailing dot duplicate", `{"a.example.com":"x","a.example.com.":"y"}`, 0o600, nil, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			keys, err := LoadKeysFile(path)
			if tc.wantErr == "" {
				if err != nil || !slices.Equal(keys["push.example.com"], tc.want) {
					t.Fatalf("got %d keys, err %v", len(keys["push.example.com"]), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), secret) {
				t.Fatalf("error %v, want one containing %q and no key", err, tc.wantErr)
			}
		})
	}
	if _, err := LoadKeysFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestKeyRingLookup(t *testing.T) {
	t.Parallel()
	var k KeyRing
	if _, ok := k.Lookup("x"); ok {
		t.Error("empty ring has a key")
	}
	k.Set(map[string][]string{"b.example.com": {"1"}, "A.example.com.": {"2"}})
	if got := k.Domains(); !slices.Equal(got, []string{"a.example.com", "b.example.com"}) {
		t.Errorf("Domains %v", got)
	}
	// Every case and trailing-dot variant of a keyed domain finds its key: none passes as an
	// unknown (unsigned) domain.
	for _, d := range []string{"a.example.com", "A.EXAMPLE.COM", "a.example.com.", "A.Example.Com..", "B.example.com."} {
		if _, ok := k.Lookup(d); !ok {
			t.Errorf("Lookup(%q) found no key", d)
		}
	}
	for _, d := range []string{"c.example.com", "a.example.co", ".a.example.com", "a.example.com ", "xa.example.com"} {
		if _, ok := k.Lookup(d); ok {
			t.Errorf("Lookup(%q) found a key", d)
		}
	}
}
