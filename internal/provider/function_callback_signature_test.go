package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/livehook/terraform-provider-livehook/internal/testenv"
)

// The worked examples of spec/callback.md.
const (
	specKey         = "0123456789abcdef0123456789abcdef"
	specPublish     = "fa5addca9ea94589d2a7f936a82e2ef3af10bf7ffc665e278c05214537e2ed41"
	specPublishDone = "fe71cd27e6df78034898faef20237ead1f13540de1b340b7644e8444c5024308"
)

func runSignature(t *testing.T, key, event, domain, app, stream string, ts int64) (string, *function.FuncError) {
	t.Helper()
	f := NewCallbackSignatureFunction()
	req := function.RunRequest{Arguments: function.NewArgumentsData([]attr.Value{
		basetypes.NewStringValue(key), basetypes.NewStringValue(event), basetypes.NewStringValue(domain),
		basetypes.NewStringValue(app), basetypes.NewStringValue(stream), basetypes.NewInt64Value(ts),
	})}
	resp := &function.RunResponse{Result: function.NewResultData(basetypes.NewStringUnknown())}
	f.Run(context.Background(), req, resp)
	if resp.Error != nil {
		return "", resp.Error
	}
	return resp.Result.Value().(basetypes.StringValue).ValueString(), nil
}

func TestCallbackSignatureFunction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                    string
		key, event, domain, app string
		stream                  string
		ts                      int64
		want                    string
		wantErrArg              int64 // -1: no error
		wantErrIn, wantErrNotIn string
	}{
		{"spec PUBLISH", specKey, "PUBLISH", "push.example.com", "live", "example_stream", 1587954140, specPublish, -1, "", ""},
		{"spec PUBLISH_DONE", specKey, "PUBLISH_DONE", "push.example.com", "live", "example_stream", 1587954140, specPublishDone, -1, "", ""},
		{"empty key", "", "PUBLISH", "d", "a", "s", 1, "", 0, "key must not be empty", ""},
		{"lower-case event", specKey, "publish", "d", "a", "s", 1, "", 1, `got "publish"`, specKey},
		{"record event", specKey, "RECORD_NEW_FILE_START", "d", "a", "s", 1, "", 1, "PUBLISH_DONE", specKey},
		{"negative timestamp", specKey, "PUBLISH", "d", "a", "s", -5, "", 5, "got -5", specKey},
		{"zero timestamp is signed", specKey, "PUBLISH", "push.example.com", "live", "example_stream", 0, "", -1, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ferr := runSignature(t, tc.key, tc.event, tc.domain, tc.app, tc.stream, tc.ts)
			if tc.wantErrArg < 0 {
				if ferr != nil {
					t.Fatalf("error: %v", ferr)
				}
				if tc.want != "" && got != tc.want {
					t.Fatalf("got %s, want %s", got, tc.want)
				}
				if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got) {
					t.Fatalf("%q is not 64 lower-case hex digits", got)
				}
				return
			}
			if ferr == nil {
				t.Fatalf("no error, got %s", got)
			}
			if ferr.FunctionArgument == nil || *ferr.FunctionArgument != tc.wantErrArg {
				t.Errorf("error names argument %v, want %d", ferr.FunctionArgument, tc.wantErrArg)
			}
			if !strings.Contains(ferr.Text, tc.wantErrIn) {
				t.Errorf("error %q does not contain %q", ferr.Text, tc.wantErrIn)
			}
			if tc.wantErrNotIn != "" && strings.Contains(ferr.Text, tc.wantErrNotIn) {
				t.Errorf("error %q shows the key", ferr.Text)
			}
		})
	}
}

// TestAccCallbackSignatureFunction runs the function through the real terraform with no
// provider block and no credentials in the environment: the spec's examples as outputs, a
// check block, and a wrong event as a plan error.
func TestAccCallbackSignatureFunction(t *testing.T) {
	testenv.Terraform(t)
	for _, env := range []string{EnvRegion, EnvProjectID, EnvAccessKey, EnvSecretKey, EnvSecurityToken, EnvEndpoint} {
		t.Setenv(env, "")
	}
	call := func(event string) string {
		return fmt.Sprintf(`provider::livehook::callback_signature(%q, %q, "push.example.com", "live", "example_stream", 1587954140)`, specKey, event)
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: fmt.Sprintf(`
output "publish"      { value = %s }
output "publish_done" { value = %s }
locals { signed = %s }
check "spec_example" {
  assert {
    condition     = local.signed == %q
    error_message = "callback_signature does not reproduce the spec example"
  }
}
`, call("PUBLISH"), call("PUBLISH_DONE"), call("PUBLISH"), specPublish),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("publish", knownvalue.StringExact(specPublish)),
					statecheck.ExpectKnownOutputValue("publish_done", knownvalue.StringExact(specPublishDone)),
				},
			},
			{
				Config: fmt.Sprintf(`
output "bad" { value = %s }
`, call("publish")),
				ExpectError: regexp.MustCompile(`event must be "PUBLISH" or\s+"PUBLISH_DONE"`),
			},
			{
				// The same unconfigured provider still tells a data source what to set.
				Config: `
data "livehook_publish_notification" "d" {
  domain = "push.example.com"
}
`,
				ExpectError: regexp.MustCompile(`(?s)livehook provider is not configured.*HW_ACCESS_KEY`),
			},
		},
	})
}
