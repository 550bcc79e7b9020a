package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
)

// withEcho adds terraform-plugin-testing's echo provider, which copies its configuration
// (here: values of the ephemeral resource) into the state of its echo resource, so a test can
// look at values that are otherwise never stored.
func withEcho() map[string]func() (tfprotov6.ProviderServer, error) {
	f := map[string]func() (tfprotov6.ProviderServer, error){"echo": echoprovider.NewProviderServer()}
	for k, v := range testAccProtoV6ProviderFactories {
		f[k] = v
	}
	return f
}

// TestAccPublishNotificationEphemeral: the ephemeral resource's URL, area and key reach
// another resource, the key both through echoprovider (as its SHA-256, so the echo state
// does not hold it either) and into a write-only argument of another domain's notification
// (checked on the emulator). Neither the state file nor the plan (JSON and the saved plan
// file) holds the key in any form, and the ephemeral resource has no entry in the state.
func TestAccPublishNotificationEphemeral(t *testing.T) {
	const copyDomain = "copy.example.com"
	live := newTestLive(t, testDomain, copyDomain)
	src := emulator.Notification{URL: "https://hooks.example.com/live", AuthSignKey: key4, CallBackArea: "outside_mainland_china"}
	if err := live.SetConfig(testDomain, src); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sum := sha256.Sum256([]byte(key4))
	cfg := live.provider() + fmt.Sprintf(`
ephemeral "livehook_publish_notification" "src" {
  domain = %q
}

provider "echo" {
  data = {
    id                = ephemeral.livehook_publish_notification.src.id
    url               = ephemeral.livehook_publish_notification.src.url
    call_back_area    = ephemeral.livehook_publish_notification.src.call_back_area
    auth_sign_key_set = ephemeral.livehook_publish_notification.src.auth_sign_key_set
    key_sha256        = sha256(ephemeral.livehook_publish_notification.src.auth_sign_key)
  }
}

resource "echo" "src" {}

resource "livehook_publish_notification" "copy" {
  domain                   = %q
  url                      = "https://hooks.example.com/copy"
  auth_sign_key_wo         = ephemeral.livehook_publish_notification.src.auth_sign_key
  auth_sign_key_wo_version = 1
}
`, testDomain, copyDomain)
	echoData := func(attr string, v knownvalue.Check) statecheck.StateCheck {
		return statecheck.ExpectKnownValue("echo.src", tfjsonpath.New("data").AtMapKey(attr), v)
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: withEcho(),
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		WorkingDir:               dir,
		CheckDestroy:             live.checkDestroyed(copyDomain),
		Steps: []resource.TestStep{
			{
				// A domain without a config fails with the data source's explanation (first: the
				// destroy at the end runs with the last step's configuration).
				Config: live.provider() + `
ephemeral "livehook_publish_notification" "none" {
  domain = "copy-missing.example.com"
}
provider "echo" {
  data = ephemeral.livehook_publish_notification.none.url
}
resource "echo" "none" {}
`,
				ExpectError: errorRe("No publish notification for copy-missing.example.com", "Create one with the livehook_publish_notification resource"),
			},
			{
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("livehook_publish_notification.copy", plancheck.ResourceActionCreate),
						noSecretInPlanFile{dir, []string{key4}},
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					echoData("id", knownvalue.StringExact(testDomain)),
					echoData("url", knownvalue.StringExact(src.URL)),
					echoData("call_back_area", knownvalue.StringExact(src.CallBackArea)),
					echoData("auth_sign_key_set", knownvalue.Bool(true)),
					echoData("key_sha256", knownvalue.StringExact(hex.EncodeToString(sum[:]))),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					live.checkRemote(copyDomain, &emulator.Notification{URL: "https://hooks.example.com/copy", AuthSignKey: key4}),
					noSecretInStateFile(dir, key4),
					noEphemeralInStateFile(dir),
				),
			},
			{
				// Re-planning opens the ephemeral resource again and changes nothing.
				Config: cfg, PlanOnly: true,
			},
		},
	})
}

// noEphemeralInStateFile fails when the state file has any entry that is not a managed
// resource (an ephemeral resource must leave none).
func noEphemeralInStateFile(dir string) func(*terraform.State) error {
	return func(*terraform.State) error {
		b, err := workFile(dir, "terraform.tfstate")
		if err != nil {
			return err
		}
		var st struct {
			Resources []struct{ Mode, Type, Name string } `json:"resources"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return err
		}
		for _, r := range st.Resources {
			if r.Mode != "managed" {
				return fmt.Errorf("the state file has a %s entry %s.%s", r.Mode, r.Type, r.Name)
			}
		}
		return nil
	}
}

// TestAccPublishNotificationEphemeral_keyOnward is the documented pattern (the guide
// "Handing the key on without the state") with a second notification standing in for the
// archiver's Secret: the key is set on Live from an ephemeral variable, read back by the
// ephemeral resource once the notification exists (its domain refers to id, known only after
// the create, so Terraform opens it during the apply, after the write), and written to another
// write-only argument; a rotation (new key, new version) goes the same way. The key is in
// neither the state file nor the plans.
func TestAccPublishNotificationEphemeral_keyOnward(t *testing.T) {
	const archiverStandIn = "mirror.example.com"
	live := newTestLive(t, testDomain, archiverStandIn)
	dir := t.TempDir()
	cfg := func(version int) string {
		return live.provider() + keyVariable + fmt.Sprintf(`
resource "livehook_publish_notification" "push" {
  domain                   = %q
  url                      = "https://hooks.example.com/live"
  auth_sign_key_wo         = var.key
  auth_sign_key_wo_version = %d
}

ephemeral "livehook_publish_notification" "push" {
  domain = livehook_publish_notification.push.id
}

resource "livehook_publish_notification" "mirror" {
  domain                   = %q
  url                      = "https://hooks.example.com/mirror"
  auth_sign_key_wo         = ephemeral.livehook_publish_notification.push.auth_sign_key
  auth_sign_key_wo_version = %d
}
`, testDomain, version, archiverStandIn, version)
	}
	step := func(key string, version int) resource.TestStep {
		return resource.TestStep{
			Config:          cfg(version),
			ConfigVariables: config.Variables{"key": config.StringVariable(key)},
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{noSecretInPlanFile{dir, []string{key3, key4}}},
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				live.checkRemote(testDomain, &emulator.Notification{URL: "https://hooks.example.com/live", AuthSignKey: key}),
				live.checkRemote(archiverStandIn, &emulator.Notification{URL: "https://hooks.example.com/mirror", AuthSignKey: key}),
				noSecretInStateFile(dir, key3, key4),
				noEphemeralInStateFile(dir),
			),
		}
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		WorkingDir:               dir,
		CheckDestroy:             live.checkDestroyed(testDomain, archiverStandIn),
		Steps:                    []resource.TestStep{step(key3, 1), step(key4, 2)},
	})
}
