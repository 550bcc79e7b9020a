package intake

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeysFile(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-key-value"
	tests := []struct {
		name, content, wantErr string
	}{
		{"ok", `{"Push.Example.com":"` + secret + `"}`, ""},
		{"not json", `{"push.example.com":"` + secret, "not valid JSON"},
		{"array", `["` + secret + `"]`, "must be a JSON object"},
		{"number key", `{"push.example.com":12}`, "must be a JSON string"},
		{"empty key", `{"push.example.com":""}`, "is empty"},
		{"empty domain", `{"":"` + secret + `"}`, "empty domain"},
		{"case duplicate", `{"a.example.com":"x","A.example.com":"y"}`, "twice"},
	}
	for _, tc := range tests {
		path := filepath.Join(t.TempDir(), "keys.json")
		os.WriteFile(path, []byte(tc.content), 0o600)
		keys, err := LoadKeysFile(path)
		if tc.wantErr == "" {
			if err != nil || keys["push.example.com"] != secret {
				t.Errorf("%s: %v %v", tc.name, keys, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error %v, want one containing %q and no key", tc.name, err, tc.wantErr)
		}
	}
	if _, err := LoadKeysFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
	var k KeyRing
	if _, ok := k.Lookup("x"); ok {
		t.Error("empty ring has a key")
	}
	k.Set(map[string]string{"b": "1", "a": "2"})
	if got := k.Domains(); len(got) != 2 || got[0] != "a" {
		t.Errorf("Domains %v", got)
	}
}
