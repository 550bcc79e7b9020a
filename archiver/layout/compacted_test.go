package layout_test

import (
	"testing"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
)

// TestCompactedKey: compacted objects are archive objects for every reader (IsObjectKey), told
// apart from an instance's objects, and ordered by part in key order.
func TestCompactedKey(t *testing.T) {
	k1 := layout.CompactedKey("2026-11-26", "0123456789abcdef0123", 1, 12, true)
	if k1 != "dt=2026-11-26/compacted-0123456789abcdef-001-of-012.jsonl.gz" {
		t.Fatalf("key %q", k1)
	}
	k2 := layout.CompactedKey("2026-11-26", "0123456789abcdef0123", 2, 12, true)
	if !(k1 < k2) {
		t.Errorf("parts out of key order: %s %s", k1, k2)
	}
	for _, c := range []struct {
		key             string
		object, gz, cmp bool
	}{
		{k1, true, true, true},
		{layout.CompactedKey("2026-11-26", "ab", 1, 1, false), true, false, true},
		{layout.ObjectKey("2026-11-26", "host-a", 1, 0, true), true, true, false},
		{layout.ObjectKey("2026-11-26", "compactedhost", 1, 0, true), true, true, false},
		{layout.ObjectKey("2026-11-26", "compacted-x", 1, 0, true), true, true, false},
		{layout.RejectedKey("2026-11-26", "host-a", 1), false, false, false},
	} {
		ok, gz := layout.IsObjectKey(c.key)
		if ok != c.object || gz != c.gz || layout.IsCompactedKey(c.key) != c.cmp {
			t.Errorf("%s: object %v gz %v compacted %v", c.key, ok, gz, layout.IsCompactedKey(c.key))
		}
	}
}

func TestParseCompactedKey(t *testing.T) {
	key := layout.CompactedKey("2026-11-26", "0123456789abcdef0123", 2, 3, true)
	hash, part, parts, gz, ok := layout.ParseCompactedKey(key)
	if !ok || hash != "0123456789abcdef" || part != 2 || parts != 3 || !gz {
		t.Fatalf("ParseCompactedKey(%q) = %q %d %d %v %v", key, hash, part, parts, gz, ok)
	}
	if _, _, _, gz, ok := layout.ParseCompactedKey(layout.CompactedKey("2026-11-26", "ab", 1, 1, false)); !ok || gz {
		t.Fatalf("plain key: ok %v gz %v", ok, gz)
	}
}
