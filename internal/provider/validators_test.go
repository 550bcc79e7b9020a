package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestCheckHostname(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 63)
	tests := []struct {
		in      string
		wantErr string // substring; "" means valid
	}{
		{"push.example.com", ""},
		{"a.b", ""},
		{"live-push.example.co.uk", ""},
		{"1push.example.com", ""},
		{long + ".example.com", ""},
		{strings.Repeat(long+".", 4) + "com", "at most 253"},
		{"", "must not be empty"},
		{"localhost", "fully qualified"},
		{"push.example.com.", "must not end with a dot"},
		{".push.example.com", "empty labels"},
		{"push..example.com", "empty labels"},
		{long + "a.example.com", "at most 63"},
		{"-push.example.com", "hyphen"},
		{"push-.example.com", "hyphen"},
		{"Push.Example.com", "lower case"},
		{"push_1.example.com", "may only contain"},
		{"push.example.com/x", "may only contain"},
		{"push example.com", "may only contain"},
		{"pùsh.example.com", "may only contain"},
		{"192.168.1.1", "not an IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got := checkHostname(tc.in)
			if tc.wantErr == "" && got != "" {
				t.Fatalf("checkHostname(%q) = %q, want valid", tc.in, got)
			}
			if tc.wantErr != "" && !strings.Contains(got, tc.wantErr) {
				t.Fatalf("checkHostname(%q) = %q, want it to contain %q", tc.in, got, tc.wantErr)
			}
		})
	}
}

func TestCheckHTTPURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantErr string
	}{
		{"https://hooks.example.com/live", ""},
		{"http://127.0.0.1:8080/cb?a=1&b=%2F#frag", ""},
		{"HTTPS://hooks.example.com", ""},
		{"http://[::1]:9000/", ""},
		{"http://user:pw@hooks.example.com/", ""},
		{"ftp://hooks.example.com/", "http or https scheme"},
		{"hooks.example.com/live", "must start with http"},
		{"/live", "must start with http"},
		{"https:///live", "must name a host"},
		{"https://:80/live", "must name a host"},
		{"http://hooks.example.com/a b", "spaces"},
		{"http://exa mple.com/", "not a valid URL"},
		{"http://%zz/", "not a valid URL"},
		{"", "must start with http"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got := checkHTTPURL(tc.in)
			if tc.wantErr == "" && got != "" {
				t.Fatalf("checkHTTPURL(%q) = %q, want valid", tc.in, got)
			}
			if tc.wantErr != "" && !strings.Contains(got, tc.wantErr) {
				t.Fatalf("checkHTTPURL(%q) = %q, want it to contain %q", tc.in, got, tc.wantErr)
			}
		})
	}
}

// TestStringValidators runs the schema validators as the framework does, checking that
// each diagnostic is attached to the attribute and names it.
func TestStringValidators(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		v         validator.String
		attr      string
		value     types.String
		wantError string // "" means no diagnostic
	}{
		{"hostname ok", hostnameValidator, "domain", types.StringValue("push.example.com"), ""},
		{"hostname bad", hostnameValidator, "domain", types.StringValue("push"), "Attribute domain must be a fully qualified host name"},
		{"hostname null", hostnameValidator, "domain", types.StringNull(), ""},
		{"hostname unknown", hostnameValidator, "domain", types.StringUnknown(), ""},
		{"url ok", httpURLValidator, "url", types.StringValue("https://a.example.com/x"), ""},
		{"url bad", httpURLValidator, "url", types.StringValue("ftp://a.example.com"), "Attribute url must use the http or https scheme"},
		{"url unknown", httpURLValidator, "url", types.StringUnknown(), ""},
		{"key ok", keyLengthValidator, "auth_sign_key", types.StringValue(strings.Repeat("x", 40)), ""},
		{"key min", keyLengthValidator, "auth_sign_key", types.StringValue(strings.Repeat("k", 32)), ""},
		{"key max", keyLengthValidator, "auth_sign_key", types.StringValue(strings.Repeat("k", 128)), ""},
		{"key multibyte counts characters", keyLengthValidator, "auth_sign_key", types.StringValue(strings.Repeat("é", 32)), ""},
		{"key short", keyLengthValidator, "auth_sign_key", types.StringValue("shortkey"), "Attribute auth_sign_key UTF-8 character count must be between 32 and 128, got: 8"},
		{"key too long", keyLengthValidator, "auth_sign_key", types.StringValue(strings.Repeat("k", 129)), "got: 129"},
		{"key empty", keyLengthValidator, "auth_sign_key", types.StringValue(""), "got: 0"},
		{"wo key short", keyLengthValidator, "auth_sign_key_wo", types.StringValue("shortkey"), "Attribute auth_sign_key_wo UTF-8 character count must be between 32 and 128"},
		{"area ok", callBackAreaValidator, "call_back_area", types.StringValue("outside_mainland_china"), ""},
		{"area bad", callBackAreaValidator, "call_back_area", types.StringValue("europe"),
			`Attribute call_back_area value must be one of: ["mainland_china" "outside_mainland_china"], got: "europe"`},
		{"area wrong case", callBackAreaValidator, "call_back_area", types.StringValue("Mainland_China"), "must be one of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := validator.StringRequest{Path: path.Root(tc.attr), ConfigValue: tc.value}
			var resp validator.StringResponse
			tc.v.ValidateString(context.Background(), req, &resp)
			if tc.wantError == "" {
				if resp.Diagnostics.HasError() {
					t.Fatalf("unexpected diagnostics: %v", resp.Diagnostics)
				}
				return
			}
			if resp.Diagnostics.ErrorsCount() != 1 {
				t.Fatalf("want 1 error, got %v", resp.Diagnostics)
			}
			d := resp.Diagnostics.Errors()[0]
			if !strings.Contains(d.Detail(), tc.wantError) {
				t.Fatalf("detail %q does not contain %q", d.Detail(), tc.wantError)
			}
			if v := tc.value.ValueString(); strings.Contains(tc.attr, "key") && v != "" && strings.Contains(d.Detail(), v) {
				t.Fatalf("the message %q echoes the key", d.Detail())
			}
			withPath, ok := d.(interface{ Path() path.Path })
			if !ok || !withPath.Path().Equal(path.Root(tc.attr)) {
				t.Fatalf("diagnostic is not attached to %s: %#v", tc.attr, d)
			}
		})
	}
}
