package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
)

// testAccProtoV6ProviderFactories serves the provider in-process to the real terraform
// binary. The provider keeps no per-configuration state (the client travels in
// ProviderData), so one instance can serve every test.
var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"livehook": providerserver.NewProtocol6WithError(New("test")()),
}

// Credentials of the per-test emulators (fake values, not secrets).
const (
	testProjectID = "0123456789abcdef0123456789abcdef"
	testAccessKey = "LIVEHOOKTESTAK000001"
	testSecretKey = "livehook-test-secret-key-000000000000001"
	testDomain    = "push.example.com"
	testResource  = "livehook_publish_notification.push"
)

// TestMain makes the acceptance tests use the terraform binary on this machine and never
// let terraform-plugin-testing download one.
func TestMain(m *testing.M) {
	if os.Getenv("TF_ACC") != "" && os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		p, err := exec.LookPath("terraform")
		if err != nil {
			fmt.Fprintln(os.Stderr, "TF_ACC is set but no terraform binary was found: put Terraform 1.11+ in PATH or set "+
				"TF_ACC_TERRAFORM_PATH (e.g. TF_ACC_TERRAFORM_PATH=/usr/local/bin/terraform). The tests never download Terraform.")
			os.Exit(1)
		}
		_ = os.Setenv("TF_ACC_TERRAFORM_PATH", p)
	}
	os.Exit(m.Run())
}

// testLive is one test's own Live API emulator.
type testLive struct {
	*emulator.Server
	URL string
}

// newTestLive starts an emulator on 127.0.0.1 knowing the given push domains; it is
// closed when the test ends. It skips the test unless TF_ACC is set.
func newTestLive(t *testing.T, domains ...string) *testLive {
	t.Helper()
	testenv.Terraform(t) // runs terraform against an in-process Live emulator
	srv, url := emulator.StartT(t, emulator.Config{
		ProjectID: testProjectID, AccessKey: testAccessKey, SecretKey: testSecretKey,
		Domains: domains,
		Logger:  slog.New(slog.DiscardHandler),
	})
	return &testLive{Server: srv, URL: url}
}

// provider returns a provider block pointing at this emulator; extra lines are added inside it.
func (l *testLive) provider(extra ...string) string {
	return fmt.Sprintf(`
provider "livehook" {
  endpoint   = %q
  project_id = %q
  access_key = %q
  secret_key = %q
%s
}
`, l.URL, testProjectID, testAccessKey, testSecretKey, strings.Join(extra, "\n"))
}

// checkRemote checks the emulator's config for domain (nil want: no config).
func (l *testLive) checkRemote(domain string, want *emulator.Notification) func(*terraform.State) error {
	return func(*terraform.State) error {
		got, ok := l.Config(domain)
		switch {
		case want == nil && ok:
			return fmt.Errorf("domain %s still has a publish notification in the emulator: url %q", domain, got.URL)
		case want == nil:
			return nil
		case !ok:
			return fmt.Errorf("domain %s has no publish notification in the emulator", domain)
		case got.URL != want.URL || got.CallBackArea != want.CallBackArea:
			return fmt.Errorf("emulator config for %s = url %q area %q, want url %q area %q", domain, got.URL, got.CallBackArea, want.URL, want.CallBackArea)
		case got.AuthSignKey != want.AuthSignKey:
			return fmt.Errorf("emulator key for %s is %d characters, not the expected %d-character key", domain, len(got.AuthSignKey), len(want.AuthSignKey))
		}
		return nil
	}
}

// checkDestroyed is a CheckDestroy: no config left for the domains.
func (l *testLive) checkDestroyed(domains ...string) func(*terraform.State) error {
	return func(s *terraform.State) error {
		for _, d := range domains {
			if err := l.checkRemote(d, nil)(s); err != nil {
				return err
			}
		}
		return nil
	}
}

// noSecretInState fails when any attribute in the state contains one of the secrets.
func noSecretInState(secrets ...string) func(*terraform.State) error {
	return func(s *terraform.State) error {
		for _, m := range s.Modules {
			for addr, r := range m.Resources {
				if r.Primary == nil {
					continue
				}
				for k, v := range r.Primary.Attributes {
					for _, sec := range secrets {
						if strings.Contains(v, sec) {
							return fmt.Errorf("state of %s: attribute %s contains a write-only key", addr, k)
						}
					}
				}
			}
		}
		return nil
	}
}

// noSecretInPlan is a plan check failing when the planned values, prior state or
// resource changes contain one of the secrets.
type noSecretInPlan []string

var _ plancheck.PlanCheck = noSecretInPlan(nil)

func (n noSecretInPlan) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	parts := map[string]any{
		"planned_values":   req.Plan.PlannedValues,
		"prior_state":      req.Plan.PriorState,
		"resource_changes": req.Plan.ResourceChanges,
		"resource_drift":   req.Plan.ResourceDrift,
	}
	for name, v := range parts {
		b, err := json.Marshal(v)
		if err != nil {
			resp.Error = err
			return
		}
		for _, sec := range n {
			if strings.Contains(string(b), sec) {
				resp.Error = fmt.Errorf("the plan's %s contains a write-only key", name)
				return
			}
		}
	}
}

// expectPrior checks the value of a resource attribute before the change (the refreshed
// state), which shows that out-of-band changes reached the state.
type expectPrior struct{ addr, attr, want string }

func (e expectPrior) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != e.addr {
			continue
		}
		before, _ := rc.Change.Before.(map[string]any)
		if got, _ := before[e.attr].(string); got != e.want {
			resp.Error = fmt.Errorf("%s.%s before the change = %q, want %q", e.addr, e.attr, got, e.want)
		}
		return
	}
	resp.Error = fmt.Errorf("no change planned for %s", e.addr)
}

// expectImport checks that the plan imports addr.
type expectImport struct{ addr, id string }

func (e expectImport) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != e.addr {
			continue
		}
		if rc.Change.Importing == nil || rc.Change.Importing.ID != e.id {
			resp.Error = fmt.Errorf("%s is not imported with ID %q: %+v", e.addr, e.id, rc.Change.Importing)
		}
		return
	}
	resp.Error = fmt.Errorf("no change planned for %s", e.addr)
}

// errorRe builds a regexp matching the words of phrase in order, across Terraform's line
// wrapping of diagnostics (newlines and the "│" border).
func errorRe(phrases ...string) *regexp.Regexp {
	var parts []string
	for _, p := range phrases {
		var words []string
		for _, w := range strings.Fields(p) {
			words = append(words, regexp.QuoteMeta(w))
		}
		parts = append(parts, strings.Join(words, `[\s│]+`))
	}
	return regexp.MustCompile(`(?s)` + strings.Join(parts, `.*`))
}
