package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
)

// TestAccPublishNotificationDataSource reads configs made outside Terraform, with and
// without a key, and reports a domain without one.
func TestAccPublishNotificationDataSource(t *testing.T) {
	live := newTestLive(t, "signed.example.com", "plain.example.com", "empty.example.com")
	for d, n := range map[string]emulator.Notification{
		"signed.example.com": {URL: "https://hooks.example.com/signed", AuthSignKey: key2, CallBackArea: "outside_mainland_china"},
		"plain.example.com":  {URL: "http://hooks.example.com/plain"},
	} {
		if err := live.SetConfig(d, n); err != nil {
			t.Fatal(err)
		}
	}
	ds := func(name, domain string) string {
		return fmt.Sprintf(`
data "livehook_publish_notification" %q {
  domain = %q
}
`, name, domain)
	}
	check := func(name, attr string, v knownvalue.Check) statecheck.StateCheck {
		return statecheck.ExpectKnownValue("data.livehook_publish_notification."+name, tfjsonpath.New(attr), v)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: live.provider() + ds("signed", "signed.example.com") + ds("plain", "plain.example.com"),
				ConfigStateChecks: []statecheck.StateCheck{
					check("signed", "id", knownvalue.StringExact("signed.example.com")),
					check("signed", "url", knownvalue.StringExact("https://hooks.example.com/signed")),
					check("signed", "call_back_area", knownvalue.StringExact("outside_mainland_china")),
					check("signed", "auth_sign_key_set", knownvalue.Bool(true)),
					check("signed", "auth_sign_key", knownvalue.StringExact(key2)),
					statecheck.ExpectSensitiveValue("data.livehook_publish_notification.signed", tfjsonpath.New("auth_sign_key")),
					check("plain", "url", knownvalue.StringExact("http://hooks.example.com/plain")),
					check("plain", "call_back_area", knownvalue.Null()),
					check("plain", "auth_sign_key_set", knownvalue.Bool(false)),
					check("plain", "auth_sign_key", knownvalue.Null()),
				},
			},
			{
				Config:      live.provider() + ds("empty", "empty.example.com"),
				ExpectError: errorRe(`The push domain "empty.example.com" has no publish notification configured`),
			},
			{
				Config:      live.provider() + ds("unknown", "unknown.example.com"),
				ExpectError: errorRe(`"unknown.example.com" has no publish notification configured`, "LIVE.100011001"),
			},
		},
	})
}
