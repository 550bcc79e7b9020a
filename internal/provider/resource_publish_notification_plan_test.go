package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
)

// keyVariable declares var.key the way a configuration should pass a write-only key.
const keyVariable = `
variable "key" {
  type      = string
  sensitive = true
  ephemeral = true
}
`

// importHint is the takeover refusal: where it is raised (plan or apply) does not change it.
var importHint = errorRe("Publish notification already exists", "already has a publish notification",
	"terraform import livehook_publish_notification.<name> push.example.com", "import {", `id = "push.example.com"`)

// TestAccPublishNotification_takeoverRefusedAtPlan: `terraform plan` already fails with the
// import hint for a domain configured outside Terraform, so an apply of the same configuration
// changes nothing at all, not even the other, unrelated resource.
func TestAccPublishNotification_takeoverRefusedAtPlan(t *testing.T) {
	const other = "other.example.com"
	live := newTestLive(t, testDomain, other)
	existing := emulator.Notification{URL: "https://legacy.example.com/hook", AuthSignKey: key1, CallBackArea: "mainland_china"}
	if err := live.SetConfig(testDomain, existing); err != nil {
		t.Fatal(err)
	}
	cfg := live.provider() + notificationHCL(testDomain, `url = "https://hooks.example.com/new"`) + fmt.Sprintf(`
resource "livehook_publish_notification" "other" {
  domain = %q
  url    = "https://hooks.example.com/other"
}
`, other)
	nothingApplied := func() {
		if err := live.checkRemote(testDomain, &existing)(nil); err != nil {
			t.Fatalf("the existing config was touched: %v", err)
		}
		if err := live.checkRemote(other, nil)(nil); err != nil {
			t.Fatalf("the unrelated resource was applied although the plan failed: %v", err)
		}
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             live.checkDestroyed(other),
		Steps: []resource.TestStep{
			{Config: cfg, PlanOnly: true, ExpectError: importHint}, // the plan alone fails
			{PreConfig: nothingApplied, Config: cfg, ExpectError: importHint},
			{PreConfig: nothingApplied, Config: cfg, PlanOnly: true, ExpectError: importHint},
		},
	})
}

// TestAccPublishNotification_takeoverRaceAtApply: a config that appears between a clean plan
// and its apply is still refused with the import hint, and not overwritten.
func TestAccPublishNotification_takeoverRaceAtApply(t *testing.T) {
	live := newTestLive(t, testDomain)
	raced := emulator.Notification{URL: "https://raced.example.com/hook", AuthSignKey: key2}
	cfg := live.provider() + notificationHCL(testDomain, `url = "https://hooks.example.com/live"`)

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             live.checkDestroyed(testDomain),
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionCreate),
						sideEffect(func() error { return live.SetConfig(testDomain, raced) }),
					},
				},
				ExpectError: importHint,
			},
			{
				PreConfig: func() {
					if err := live.checkRemote(testDomain, &raced)(nil); err != nil {
						t.Fatalf("the config made between plan and apply was overwritten: %v", err)
					}
					live.DeleteConfig(testDomain) // let the next step create it
				},
				Config: cfg,
				Check:  live.checkRemote(testDomain, &emulator.Notification{URL: "https://hooks.example.com/live"}),
			},
		},
	})
}

// TestAccPublishNotification_taintedSaysUntaint: Terraform plans a tainted resource like a new one
// and tells the provider nothing of the old object, so its own config on Live is refused like a
// takeover, with the way out in the message (untaint, or -replace, which E2E checks); the config
// on Live is left alone.
func TestAccPublishNotification_taintedSaysUntaint(t *testing.T) {
	live := newTestLive(t, testDomain)
	cfg := live.provider() + notificationHCL(testDomain, `url = "https://hooks.example.com/live"`)
	want := &emulator.Notification{URL: "https://hooks.example.com/live"}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: cfg, Check: live.checkRemote(testDomain, want)},
			{
				Config: cfg, Taint: []string{testResource},
				ExpectError: errorRe("Publish notification already exists", "terraform untaint livehook_publish_notification.<name>",
					"terraform apply -replace=livehook_publish_notification.<name>"),
			},
			{
				PreConfig: func() {
					if err := live.checkRemote(testDomain, want)(nil); err != nil {
						t.Fatalf("the refused plan touched the config: %v", err)
					}
					live.DeleteConfig(testDomain) // let the test case's destroy find nothing to do
				},
				Config: cfg, PlanOnly: true, ExpectNonEmptyPlan: true,
			},
		},
	})
}

// TestAccPublishNotification_keyFingerprint: with the write-only key the state file keeps a
// fingerprint of the key (never the key), Read records a key changed outside Terraform
// (through the emulator's control API) without a diff in the plan, and bumping the version
// sends the configured key again and clears the record. The warnings themselves are
// checked on terraform's output by TestE2EProvider_keyWarnings.
func TestAccPublishNotification_keyFingerprint(t *testing.T) {
	live := newTestLive(t, testDomain)
	dir := t.TempDir()
	// The key comes from an ephemeral variable, as in real use: a literal would be in the
	// configuration, which the plan file and the JSON plan carry.
	cfg := func(version int) string {
		return live.provider() + keyVariable + notificationHCL(testDomain,
			`url = "https://hooks.example.com/live"`,
			`auth_sign_key_wo = var.key`,
			fmt.Sprintf(`auth_sign_key_wo_version = %d`, version))
	}
	vars := config.Variables{"key": config.StringVariable(key3)}
	var first keyFingerprint
	fingerprint := func(wantDiffers bool, check func(keyFingerprint) error) func(*terraform.State) error {
		return func(*terraform.State) error {
			f, ok, err := fingerprintIn(dir, "livehook_publish_notification", "push")
			switch {
			case err != nil:
				return err
			case !ok:
				return fmt.Errorf("no %s in the private state", privateKeyFingerprint)
			case !f.matches(testDomain, key3):
				return fmt.Errorf("the fingerprint does not match the key sent")
			case f.RemoteDiffers != wantDiffers:
				return fmt.Errorf("remote_differs = %v, want %v", f.RemoteDiffers, wantDiffers)
			}
			if check != nil {
				return check(f)
			}
			return nil
		}
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		WorkingDir:               dir,
		CheckDestroy:             live.checkDestroyed(testDomain),
		Steps: []resource.TestStep{
			{
				Config: cfg(1), ConfigVariables: vars,
				Check: resource.ComposeAggregateTestCheckFunc(
					live.checkRemote(testDomain, &emulator.Notification{URL: "https://hooks.example.com/live", AuthSignKey: key3}),
					noSecretInStateFile(dir, key3),
					fingerprint(false, func(f keyFingerprint) error { first = f; return nil }),
				),
			},
			{
				// Changed outside Terraform: no diff (the key is not in the state), but Read
				// records it in the private state, which the (no-op) apply saves.
				PreConfig: func() {
					live.setConfigViaControlAPI(t, testDomain, emulator.Notification{URL: "https://hooks.example.com/live", AuthSignKey: key1})
				},
				Config: cfg(1), ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					fingerprint(true, nil),
					noSecretInStateFile(dir, key3, key1),
				),
			},
			{
				// The bump sends the key again: a new fingerprint (new salt), no record.
				Config: cfg(2), ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionUpdate),
						noSecretInPlanFile{dir, []string{key3, key1}},
					},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					live.checkRemote(testDomain, &emulator.Notification{URL: "https://hooks.example.com/live", AuthSignKey: key3}),
					fingerprint(false, func(f keyFingerprint) error {
						if string(f.Salt) == string(first.Salt) {
							return fmt.Errorf("the fingerprint was not renewed by the write")
						}
						return nil
					}),
					noSecretInStateFile(dir, key3, key1),
				),
			},
			{
				// The plain key drops the fingerprint: the state shows that key itself.
				Config: live.provider() + notificationHCL(testDomain,
					`url = "https://hooks.example.com/live"`, fmt.Sprintf(`auth_sign_key = %q`, key2)),
				Check: func(*terraform.State) error {
					if _, ok, err := fingerprintIn(dir, "livehook_publish_notification", "push"); err != nil || ok {
						return fmt.Errorf("fingerprint kept with the plain auth_sign_key (err %v)", err)
					}
					return nil
				},
			},
		},
	})
}

// TestAccPublishNotification_stateFromPreviousRelease: a state file written by the provider of
// main before this change (testdata/main-c1a92a5.tfstate: a plain key with a timeouts block,
// and a write-only key) plans without a diff, and the write-only resource gets its fingerprint
// on its next write.
func TestAccPublishNotification_stateFromPreviousRelease(t *testing.T) {
	live := newTestLive(t, "signed.example.com", "wo.example.com")
	signed := emulator.Notification{URL: "https://hooks.example.com/live?x=1", AuthSignKey: key1, CallBackArea: "mainland_china"}
	wo := emulator.Notification{URL: "https://hooks.example.com/wo", AuthSignKey: key3}
	for d, n := range map[string]emulator.Notification{"signed.example.com": signed, "wo.example.com": wo} {
		if err := live.SetConfig(d, n); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cfg := func(version int) string {
		return live.provider() + fmt.Sprintf(`
resource "livehook_publish_notification" "signed" {
  domain         = "signed.example.com"
  url            = "https://hooks.example.com/live?x=1"
  auth_sign_key  = %q
  call_back_area = "mainland_china"
  timeouts {
    create = "10m"
  }
}
resource "livehook_publish_notification" "wo" {
  domain                   = "wo.example.com"
  url                      = "https://hooks.example.com/wo"
  auth_sign_key_wo         = %q
  auth_sign_key_wo_version = %d
}
`, key1, key3, version)
	}
	seed := func() {
		src, err := os.ReadFile(filepath.Join("testdata", "main-c1a92a5.tfstate"))
		if err != nil {
			t.Fatal(err)
		}
		work, err := filepath.Glob(filepath.Join(dir, "work*"))
		if err != nil || len(work) != 1 {
			t.Fatalf("terraform-plugin-testing's working directory under %s: %v %v", dir, work, err)
		}
		if err := os.WriteFile(filepath.Join(work[0], "terraform.tfstate"), src, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		WorkingDir:               dir,
		CheckDestroy:             live.checkDestroyed("signed.example.com", "wo.example.com"),
		Steps: []resource.TestStep{
			{PreConfig: seed, Config: cfg(3), PlanOnly: true}, // PlanOnly fails on any diff
			{
				Config: cfg(3),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					live.checkRemote("signed.example.com", &signed),
					live.checkRemote("wo.example.com", &wo),
				),
			},
			{
				Config: cfg(4),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("livehook_publish_notification.wo", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("livehook_publish_notification.signed", plancheck.ResourceActionNoop),
					},
				},
				Check: func(*terraform.State) error {
					f, ok, err := fingerprintIn(dir, "livehook_publish_notification", "wo")
					if err != nil || !ok || !f.matches("wo.example.com", key3) {
						return fmt.Errorf("no fingerprint of the key after the write (ok %v, err %v)", ok, err)
					}
					return nil
				},
			},
		},
	})
}
