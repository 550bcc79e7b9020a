package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// memPrivate is an in-memory private state (the framework's type is internal to it).
type memPrivate map[string][]byte

func (m memPrivate) GetKey(_ context.Context, k string) ([]byte, diag.Diagnostics) { return m[k], nil }
func (m memPrivate) SetKey(_ context.Context, k string, v []byte) diag.Diagnostics {
	if len(v) == 0 {
		delete(m, k)
	} else {
		m[k] = v
	}
	return nil
}

// TestKeyFingerprint: a fingerprint recognises its key for its domain only, never contains
// the key, and two fingerprints of the same key differ (random salt).
func TestKeyFingerprint(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("s3cr3t-", 6)
	f, err := newKeyFingerprint("push.example.com", key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		domain, key string
		want        bool
	}{
		{"push.example.com", key, true},
		{"push.example.com", key + "x", false},
		{"push.example.com", "", false},
		{"other.example.com", key, false},
		{"push.example.com\x00" + key[:3], key[3:], false}, // the NUL separator keeps (domain, key) pairs apart
	} {
		if got := f.matches(tc.domain, tc.key); got != tc.want {
			t.Errorf("matches(%q, %q) = %v, want %v", tc.domain, tc.key, got, tc.want)
		}
	}
	g, err := newKeyFingerprint("push.example.com", key)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(f.MAC, g.MAC) || bytes.Equal(f.Salt, g.Salt) {
		t.Error("two fingerprints of the same key are equal: the salt is not random")
	}

	p := memPrivate{}
	ctx := context.Background()
	if d := storeFingerprint(ctx, p, &f); d.HasError() {
		t.Fatal(d)
	}
	raw := p[privateKeyFingerprint]
	if bytes.Contains(raw, []byte(key)) || bytes.Contains(raw, []byte("s3cr3t")) {
		t.Fatalf("private state holds the key: %s", raw)
	}
	if !json.Valid(raw) {
		t.Fatalf("private state value is not JSON (the framework requires it): %s", raw)
	}
	back, ok, d := loadFingerprint(ctx, p)
	if !ok || d.HasError() || !back.matches("push.example.com", key) {
		t.Fatalf("loadFingerprint after store: ok=%v diags=%v", ok, d)
	}
	if d := storeFingerprint(ctx, p, nil); d.HasError() || len(p) != 0 {
		t.Fatalf("storeFingerprint(nil) left %v (%v)", p, d)
	}
}

// TestLoadFingerprintRejectsGarbage: a private state value that is not a fingerprint of this
// version means "nothing to compare with", never a panic or a false alarm.
func TestLoadFingerprintRejectsGarbage(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`null`, `[]`, `"x"`, `{}`, `{"v":2,"salt":"AAAA","mac":"AAAA"}`,
		`{"v":1,"salt":"","mac":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`,
		`{"v":1,"salt":"AAAA","mac":"AAAA"}`, // MAC of the wrong length
		`{"v":1,"salt":"not base64!","mac":"AAAA"}`,
	} {
		f, ok, d := loadFingerprint(context.Background(), memPrivate{privateKeyFingerprint: []byte(raw)})
		if ok || d.HasError() {
			t.Errorf("%s: ok=%v diags=%v, want no fingerprint and no error", raw, ok, d)
		}
		if f.matches("push.example.com", "") {
			t.Errorf("%s: an empty fingerprint matches", raw)
		}
	}
}

// TestCheckRemoteKey: Read records whether the key on Live is the one last sent, in both
// directions, and drops the fingerprint when the plain auth_sign_key is used.
func TestCheckRemoteKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const domain = "push.example.com"
	sent := strings.Repeat("a", 40)
	f, err := newKeyFingerprint(domain, sent)
	if err != nil {
		t.Fatal(err)
	}
	p := memPrivate{}
	storeFingerprint(ctx, p, &f)

	for _, step := range []struct {
		remote      string
		writeOnly   bool
		wantDiffers bool
		wantGone    bool
	}{
		{remote: sent, writeOnly: true},
		{remote: strings.Repeat("b", 40), writeOnly: true, wantDiffers: true},
		{remote: "", writeOnly: true, wantDiffers: true},
		{remote: sent, writeOnly: true}, // changed back: the warning goes away
		{remote: sent, writeOnly: false, wantGone: true},
	} {
		if d := checkRemoteKey(ctx, p, p, domain, step.remote, step.writeOnly); d.HasError() {
			t.Fatal(d)
		}
		got, ok, _ := loadFingerprint(ctx, p)
		if step.wantGone {
			if ok {
				t.Errorf("remote %q, plain key: the fingerprint was kept", step.remote)
			}
			continue
		}
		if !ok || got.RemoteDiffers != step.wantDiffers {
			t.Errorf("remote %q: ok=%v RemoteDiffers=%v, want %v", step.remote, ok, got.RemoteDiffers, step.wantDiffers)
		}
	}
}

// TestKeyStaysAsIs: the plan's key warnings apply only when no write is planned, since any
// write (Update sends the whole config) sends the configured key.
func TestKeyStaysAsIs(t *testing.T) {
	t.Parallel()
	state := publishNotificationModel{
		Domain: types.StringValue("push.example.com"), URL: types.StringValue("https://hooks.example.com/live"),
		AuthSignKey: types.StringNull(), CallBackArea: types.StringNull(), AuthSignKeyWOVersion: types.Int64Value(1),
		Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType})},
	}
	tests := []struct {
		name   string
		change func(*publishNotificationModel)
		want   bool
	}{
		{"unchanged", func(*publishNotificationModel) {}, true},
		{"version bumped", func(m *publishNotificationModel) { m.AuthSignKeyWOVersion = types.Int64Value(2) }, false},
		{"url changed", func(m *publishNotificationModel) { m.URL = types.StringValue("https://hooks.example.com/new") }, false},
		{"area set", func(m *publishNotificationModel) { m.CallBackArea = types.StringValue("mainland_china") }, false},
		{"plain key set", func(m *publishNotificationModel) { m.AuthSignKey = types.StringValue(key1) }, false},
		{"domain changed (replace)", func(m *publishNotificationModel) { m.Domain = types.StringValue("other.example.com") }, false},
		{"timeouts set", func(m *publishNotificationModel) {
			m.Timeouts = timeouts.Value{Object: types.ObjectValueMust(map[string]attr.Type{"create": types.StringType},
				map[string]attr.Value{"create": types.StringValue("10m")})}
		}, false},
		{"no write-only key", func(m *publishNotificationModel) { m.AuthSignKeyWOVersion = types.Int64Null() }, false},
	}
	for _, tc := range tests {
		plan := state
		tc.change(&plan)
		if got := keyStaysAsIs(plan, state); got != tc.want {
			t.Errorf("%s: keyStaysAsIs = %v, want %v", tc.name, got, tc.want)
		}
	}
}
