package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
)

var (
	key1 = strings.Repeat("k1", 16)                     // 32 characters
	key2 = "rotated-key-" + strings.Repeat("2", 40)     // 52 characters
	key3 = "write-only-key-" + strings.Repeat("3", 40)  // 55 characters
	key4 = "write-only-key-" + strings.Repeat("4", 100) // 115 characters
)

// notificationHCL renders the resource with the given attribute lines.
func notificationHCL(domain string, lines ...string) string {
	return fmt.Sprintf(`
resource "livehook_publish_notification" "push" {
  domain = %q
%s
}
`, domain, strings.Join(lines, "\n"))
}

func expectState(attr string, v knownvalue.Check) statecheck.StateCheck {
	return statecheck.ExpectKnownValue(testResource, tfjsonpath.New(attr), v)
}

// TestAccPublishNotification_lifecycle: create, empty re-plan, updates of url, area and
// key (url stored verbatim), removal of optional fields, import, destroy.
func TestAccPublishNotification_lifecycle(t *testing.T) {
	live := newTestLive(t, testDomain)
	resource.ParallelTest(t, lifecycleCase(live.provider(), testDomain, live.checkRemote, live.checkDestroyed(testDomain)))
}

// lifecycleCase is the lifecycle against any Live API: the emulator, or the real service
// (TestAccLiveAPI_lifecycle). remote checks the service's view of domain (nil: no config).
func lifecycleCase(p, domain string, remote func(string, *emulator.Notification) func(*terraform.State) error,
	checkDestroy func(*terraform.State) error) resource.TestCase {
	odd := "https://Hooks.Example.com:8443/Live/CB?b=2&a=1&x=%2F#frag" // must not be normalised

	return resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkDestroy,
		Steps: []resource.TestStep{
			{
				Config: p + notificationHCL(domain,
					`url = "https://hooks.example.com/live"`,
					`call_back_area = "mainland_china"`,
					fmt.Sprintf(`auth_sign_key = %q`, key1)),
				ConfigStateChecks: []statecheck.StateCheck{
					expectState("id", knownvalue.StringExact(domain)),
					expectState("domain", knownvalue.StringExact(domain)),
					expectState("url", knownvalue.StringExact("https://hooks.example.com/live")),
					expectState("call_back_area", knownvalue.StringExact("mainland_china")),
					expectState("auth_sign_key", knownvalue.StringExact(key1)),
					expectState("auth_sign_key_wo", knownvalue.Null()),
					expectState("auth_sign_key_wo_version", knownvalue.Null()),
					statecheck.ExpectSensitiveValue(testResource, tfjsonpath.New("auth_sign_key")),
				},
				Check: remote(domain, &emulator.Notification{
					URL: "https://hooks.example.com/live", CallBackArea: "mainland_china", AuthSignKey: key1}),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// Re-planning the same configuration changes nothing.
				Config: p + notificationHCL(domain,
					`url = "https://hooks.example.com/live"`,
					`call_back_area = "mainland_china"`,
					fmt.Sprintf(`auth_sign_key = %q`, key1)),
				PlanOnly: true,
			},
			{
				Config: p + notificationHCL(domain,
					fmt.Sprintf(`url = %q`, odd),
					`call_back_area = "outside_mainland_china"`,
					fmt.Sprintf(`auth_sign_key = %q`, key2)),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(testResource, tfjsonpath.New("id"), knownvalue.StringExact(domain)),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					expectState("url", knownvalue.StringExact(odd)),
					expectState("call_back_area", knownvalue.StringExact("outside_mainland_china")),
					expectState("auth_sign_key", knownvalue.StringExact(key2)),
				},
				Check: remote(domain, &emulator.Notification{URL: odd, CallBackArea: "outside_mainland_china", AuthSignKey: key2}),
			},
			{
				// Dropping the optional fields removes them remotely (the PUT sends the whole config).
				Config: p + notificationHCL(domain, `url = "http://hooks.example.com/plain"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					expectState("call_back_area", knownvalue.Null()),
					expectState("auth_sign_key", knownvalue.Null()),
				},
				Check: remote(domain, &emulator.Notification{URL: "http://hooks.example.com/plain"}),
			},
			{
				Config: p + notificationHCL(domain,
					`url = "https://hooks.example.com/live"`,
					`call_back_area = "mainland_china"`,
					fmt.Sprintf(`auth_sign_key = %q`, key1)),
			},
			{
				// terraform import livehook_publish_notification.push push.example.com
				ResourceName:      testResource,
				ImportState:       true,
				ImportStateId:     domain,
				ImportStateVerify: true,
			},
		},
	}
}

// TestAccPublishNotification_writeOnlyKey: the key sent through auth_sign_key_wo never
// reaches the plan or state, and is only sent again when its version changes.
func TestAccPublishNotification_writeOnlyKey(t *testing.T) {
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
	key := func(k string) config.Variables { return config.Variables{"key": config.StringVariable(k)} }
	noKeyInState := []statecheck.StateCheck{
		expectState("auth_sign_key", knownvalue.Null()),
		expectState("auth_sign_key_wo", knownvalue.Null()),
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		WorkingDir:               dir,
		CheckDestroy:             live.checkDestroyed(testDomain),
		Steps: []resource.TestStep{
			{
				Config: cfg(1), ConfigVariables: key(key3),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{noSecretInPlanFile{dir, []string{key3}}},
				},
				ConfigStateChecks: append(noKeyInState, expectState("auth_sign_key_wo_version", knownvalue.Int64Exact(1))),
				Check: resource.ComposeAggregateTestCheckFunc(
					live.checkRemote(testDomain, &emulator.Notification{URL: "https://hooks.example.com/live", AuthSignKey: key3}),
					noSecretInStateFile(dir, key3),
				),
			},
			{
				// A new key without a new version is not sent: nothing to do.
				Config: cfg(1), ConfigVariables: key(key4),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: live.checkRemote(testDomain, &emulator.Notification{URL: "https://hooks.example.com/live", AuthSignKey: key3}),
			},
			{
				// Bumping the version rotates the key.
				Config: cfg(2), ConfigVariables: key(key4),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionUpdate),
						noSecretInPlanFile{dir, []string{key3, key4}},
					},
				},
				ConfigStateChecks: append(noKeyInState, expectState("auth_sign_key_wo_version", knownvalue.Int64Exact(2))),
				Check: resource.ComposeAggregateTestCheckFunc(
					live.checkRemote(testDomain, &emulator.Notification{URL: "https://hooks.example.com/live", AuthSignKey: key4}),
					noSecretInStateFile(dir, key3, key4),
				),
			},
			{
				// The remote key is not read into auth_sign_key, even when changed out of band
				// (documented limitation of the write-only variant): no perpetual diff.
				PreConfig: func() {
					if err := live.SetConfig(testDomain, emulator.Notification{URL: "https://hooks.example.com/live", AuthSignKey: key1}); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg(2), ConfigVariables: key(key4),
				PlanOnly: true,
			},
			{
				// Import reads the remote key into auth_sign_key (Terraform cannot know which
				// variant the configuration uses), so the write-only fields are ignored here.
				ResourceName:            testResource,
				ConfigVariables:         key(key4),
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"auth_sign_key", "auth_sign_key_wo", "auth_sign_key_wo_version"},
			},
			{
				// With an import block the plan shows an update that sends the write-only key.
				ResourceName:       testResource,
				ConfigVariables:    key(key4),
				ImportState:        true,
				ImportStateKind:    resource.ImportBlockWithID,
				ExpectNonEmptyPlan: true,
				ImportPlanChecks: resource.ImportPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionUpdate),
						expectImport{testResource, testDomain},
					},
				},
			},
		},
	})
}

// TestAccPublishNotification_existingConfig: the plan refuses to take over a config made
// elsewhere and shows how to import it; an import block then adopts it.
func TestAccPublishNotification_existingConfig(t *testing.T) {
	live := newTestLive(t, testDomain)
	p := live.provider()
	existing := emulator.Notification{URL: "https://legacy.example.com/hook", AuthSignKey: key1, CallBackArea: "mainland_china"}
	adopt := notificationHCL(testDomain,
		`url = "https://legacy.example.com/hook"`,
		`call_back_area = "mainland_china"`,
		fmt.Sprintf(`auth_sign_key = %q`, key1))

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_5_0)},
		CheckDestroy:             live.checkDestroyed(testDomain),
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					if err := live.SetConfig(testDomain, existing); err != nil {
						t.Fatal(err)
					}
				},
				Config: p + notificationHCL(testDomain, `url = "https://hooks.example.com/new"`),
				ExpectError: errorRe("already has a publish notification",
					"terraform import livehook_publish_notification.<name> push.example.com",
					"import {", `id = "push.example.com"`),
			},
			{
				// Matching the existing config is no way around it: the plan refuses it as well.
				Config:      p + adopt,
				PlanOnly:    true,
				ExpectError: importHint,
			},
			{
				PreConfig: func() {
					if err := live.checkRemote(testDomain, &existing)(nil); err != nil {
						t.Fatalf("the refused create touched the existing config: %v", err)
					}
				},
				Config: p + adopt + `
import {
  to = livehook_publish_notification.push
  id = "push.example.com"
}
`,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						expectImport{testResource, testDomain},
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionNoop),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					expectState("id", knownvalue.StringExact(testDomain)),
					expectState("url", knownvalue.StringExact(existing.URL)),
					expectState("auth_sign_key", knownvalue.StringExact(key1)),
				},
				Check: live.checkRemote(testDomain, &existing),
			},
			{
				// terraform-plugin-testing's own import-block mode.
				Config:          p + adopt,
				ResourceName:    testResource,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
			},
		},
	})
}

// TestAccPublishNotification_drift: out-of-band delete makes the next plan re-create the
// config; out-of-band changes show up as an update back to the configuration.
func TestAccPublishNotification_drift(t *testing.T) {
	live := newTestLive(t, testDomain)
	cfg := live.provider() + notificationHCL(testDomain,
		`url = "https://hooks.example.com/live"`,
		`call_back_area = "mainland_china"`,
		fmt.Sprintf(`auth_sign_key = %q`, key1))
	want := &emulator.Notification{URL: "https://hooks.example.com/live", CallBackArea: "mainland_china", AuthSignKey: key1}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             live.checkDestroyed(testDomain),
		Steps: []resource.TestStep{
			{Config: cfg, Check: live.checkRemote(testDomain, want)},
			{
				PreConfig: func() {
					if !live.DeleteConfig(testDomain) {
						t.Fatal("DeleteConfig: nothing to delete")
					}
				},
				Config:   cfg,
				PlanOnly: true, ExpectNonEmptyPlan: true,
			},
			{
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionCreate)},
				},
				Check: live.checkRemote(testDomain, want),
			},
			{
				PreConfig: func() {
					if err := live.SetConfig(testDomain, emulator.Notification{
						URL: "https://evil.example.com/x", CallBackArea: "outside_mainland_china", AuthSignKey: key2,
					}); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionUpdate),
						expectPrior{testResource, "url", "https://evil.example.com/x"},
						expectPrior{testResource, "call_back_area", "outside_mainland_china"},
						expectPrior{testResource, "auth_sign_key", key2},
						plancheck.ExpectKnownValue(testResource, tfjsonpath.New("url"), knownvalue.StringExact(want.URL)),
					},
				},
				Check: live.checkRemote(testDomain, want),
			},
		},
	})
}

// TestAccPublishNotification_planTimeValidation: invalid arguments are refused at plan
// time with messages naming the attribute (no API call is made).
func TestAccPublishNotification_planTimeValidation(t *testing.T) {
	live := newTestLive(t, testDomain)
	p := live.provider()
	url := `url = "https://hooks.example.com/live"`
	step := func(re *regexp.Regexp, lines ...string) resource.TestStep {
		return resource.TestStep{Config: p + notificationHCL(testDomain, lines...), PlanOnly: true, ExpectError: re}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		Steps: []resource.TestStep{
			step(errorRe("Attribute url must use the http or https scheme"), `url = "ftp://hooks.example.com/live"`),
			step(errorRe("Attribute url must name a host"), `url = "https:///live"`),
			step(errorRe("Attribute auth_sign_key UTF-8 character count must be between 32 and 128, got: 10"), url, `auth_sign_key = "0123456789"`),
			step(errorRe("Attribute auth_sign_key_wo UTF-8 character count must be between 32 and 128, got: 129"), url,
				fmt.Sprintf(`auth_sign_key_wo = %q`, strings.Repeat("x", 129)), `auth_sign_key_wo_version = 1`),
			step(errorRe(`Attribute call_back_area value must be one of: ["mainland_china" "outside_mainland_china"], got: "europe"`), url,
				`call_back_area = "europe"`),
			step(errorRe("auth_sign_key", "cannot be configured together"), url,
				fmt.Sprintf(`auth_sign_key = %q`, key1), fmt.Sprintf(`auth_sign_key_wo = %q`, key2), `auth_sign_key_wo_version = 1`),
			step(errorRe(`"auth_sign_key_wo_version" must be specified when "auth_sign_key_wo" is specified`), url,
				fmt.Sprintf(`auth_sign_key_wo = %q`, key2)),
			step(errorRe("Invalid Attribute Value Time Duration", `create = "five minutes"`), url, `timeouts {
    create = "five minutes"
  }`),
			{
				Config:      p + notificationHCL("Push_Example.com", url),
				PlanOnly:    true,
				ExpectError: errorRe("Attribute domain must be lower case"),
			},
		},
	})
}

// TestAccPublishNotification_unknownDomain: the API's 400 for a domain that does not
// exist is shown with its code and advice.
func TestAccPublishNotification_unknownDomain(t *testing.T) {
	live := newTestLive(t, testDomain)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: live.provider() + notificationHCL("missing.example.com", `url = "https://hooks.example.com/live"`),
			ExpectError: errorRe("HTTP 400 LIVE.100011001", "missing.example.com",
				"Request ID:", `Check that "missing.example.com" exists as a push (ingest) domain`),
		}},
	})
}

// TestAccProvider_wrongCredentials: a wrong secret key gives a clear 401 diagnostic.
func TestAccProvider_wrongCredentials(t *testing.T) {
	live := newTestLive(t, testDomain)
	p := fmt.Sprintf(`
provider "livehook" {
  endpoint   = %q
  project_id = %q
  access_key = %q
  secret_key = "not-the-right-secret-key"
}
`, live.URL, testProjectID, testAccessKey)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      p + notificationHCL(testDomain, `url = "https://hooks.example.com/live"`),
			ExpectError: errorRe("HTTP 401 APIGW.0301", "Check that access_key and secret_key"),
		}},
	})
}

// TestAccPublishNotification_faults: applies succeed while the API fails 30% of the
// requests and throttles at 60/min, with the client limited to 1 request/s.
func TestAccPublishNotification_faults(t *testing.T) {
	live := newTestLive(t, "a.example.com", "b.example.com")
	live.SetFaults(emulator.Faults{FailRate: 0.3, RateLimit: 60})
	cfg := live.provider(`  requests_per_second = 1`, `  max_retries = 10`)
	for _, d := range []string{"a", "b"} {
		cfg += fmt.Sprintf(`
resource "livehook_publish_notification" %q {
  domain        = "%s.example.com"
  url           = "https://hooks.example.com/%s"
  auth_sign_key = %q
}
`, d, d, d, key1)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             live.checkDestroyed("a.example.com", "b.example.com"),
		Steps: []resource.TestStep{{
			Config: cfg,
			Check: resource.ComposeAggregateTestCheckFunc(
				live.checkRemote("a.example.com", &emulator.Notification{URL: "https://hooks.example.com/a", AuthSignKey: key1}),
				live.checkRemote("b.example.com", &emulator.Notification{URL: "https://hooks.example.com/b", AuthSignKey: key1}),
				func(*terraform.State) error {
					st := live.Stats()
					t.Logf("emulator: %d requests, %d injected failures, %d throttled", st.Requests, st.InjectedFailures, st.Throttled)
					return nil
				},
			),
		}},
	})
}

// TestAccPublishNotification_timeout: the timeouts block bounds an operation, and the
// error says which setting to raise.
func TestAccPublishNotification_timeout(t *testing.T) {
	live := newTestLive(t, testDomain)
	live.SetFaults(emulator.Faults{Latency: 3e9})
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             live.checkDestroyed(testDomain),
		Steps: []resource.TestStep{{
			Config: live.provider() + notificationHCL(testDomain, `url = "https://hooks.example.com/live"`, `timeouts {
    create = "1s"
  }`),
			ExpectError: errorRe("Timed out", "timeouts { create = \"10m\" }"),
		}},
	})
}
