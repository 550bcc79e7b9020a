package provider

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
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
	if path, why := testenv.TerraformPath(); why == "" {
		_ = os.Setenv("TF_ACC_TERRAFORM_PATH", path)
	}
	os.Exit(m.Run())
}

// testLive is one test's own Live API emulator.
type testLive struct {
	*emulator.Server
	URL string
}

// newTestLive starts an emulator on 127.0.0.1 knowing the given push domains; it is
// closed when the test ends. It is the gate of every acceptance test: without TF_ACC=1 and
// terraform the test skips (testenv.Terraform).
func newTestLive(t *testing.T, domains ...string) *testLive {
	t.Helper()
	testenv.Terraform(t)
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

// setConfigViaControlAPI changes domain's config through the emulator's HTTP control API
// (PUT /_emulator/configs), the way an operator's script or the console would: outside
// Terraform and outside this process's view of the emulator.
func (l *testLive) setConfigViaControlAPI(t *testing.T, domain string, n emulator.Notification) {
	t.Helper()
	if err := devenv.NewEmulatorControl(l.URL).SetConfig(context.Background(), domain, n); err != nil {
		t.Fatal(err)
	}
}

// workFile reads a file terraform-plugin-testing keeps in the working directory of a TestCase
// whose WorkingDir is dir (it creates one work* directory in it): terraform.tfstate or tfplan.
func workFile(dir, name string) ([]byte, error) {
	m, err := filepath.Glob(filepath.Join(dir, "work*", name))
	if err != nil || len(m) != 1 {
		return nil, fmt.Errorf("want one %s under %s, found %v (%v)", name, dir, m, err)
	}
	return os.ReadFile(m[0])
}

// secretForms are the ways a secret could be written into a file: as is, base64 (the state's
// private field and protobuf bytes), hex.
func secretForms(secret string) []string {
	return []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), hex.EncodeToString([]byte(secret))}
}

// noSecretIn fails when b holds any form of a secret; what names b in the error.
func noSecretIn(what string, b []byte, secrets ...string) error {
	for _, s := range secrets {
		for i, form := range secretForms(s) {
			if bytes.Contains(b, []byte(form)) {
				return fmt.Errorf("%s contains a key (%d characters, form %d)", what, len(s), i)
			}
		}
	}
	return nil
}

// noSecretInStateFile checks the raw bytes of the state file (private state included), not
// the parsed attributes terraform-plugin-testing shows to Check functions.
func noSecretInStateFile(dir string, secrets ...string) func(*terraform.State) error {
	return func(*terraform.State) error {
		b, err := workFile(dir, "terraform.tfstate")
		if err != nil {
			return err
		}
		return noSecretIn("the state file", b, secrets...)
	}
}

// noSecretInPlanFile is a plan check on the saved plan (a zip: plan, prior state,
// configuration): no entry may hold the secrets.
type noSecretInPlanFile struct {
	dir     string
	secrets []string
}

func (n noSecretInPlanFile) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	whole, err := json.Marshal(req.Plan)
	if err != nil {
		resp.Error = err
		return
	}
	if resp.Error = noSecretIn("the JSON plan", whole, n.secrets...); resp.Error != nil {
		return
	}
	raw, err := workFile(n.dir, "tfplan")
	if err != nil {
		resp.Error = err
		return
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		resp.Error = fmt.Errorf("the plan file is not a zip: %w", err)
		return
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			resp.Error = err
			return
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			resp.Error = err
			return
		}
		if resp.Error = noSecretIn("plan file entry "+f.Name, b, n.secrets...); resp.Error != nil {
			return
		}
	}
}

// privateOf decodes the private state of a resource instance in the state file: base64 of the
// framework's JSON object, whose values are the providers' JSON values, base64 again.
func privateOf(dir, resourceType, name string) (map[string][]byte, error) {
	b, err := workFile(dir, "terraform.tfstate")
	if err != nil {
		return nil, err
	}
	var st struct {
		Resources []struct {
			Mode, Type, Name string
			Instances        []struct {
				Private string `json:"private"`
			} `json:"instances"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	for _, r := range st.Resources {
		if r.Mode != "managed" || r.Type != resourceType || r.Name != name || len(r.Instances) != 1 {
			continue
		}
		out := map[string][]byte{}
		if r.Instances[0].Private == "" {
			return out, nil
		}
		raw, err := base64.StdEncoding.DecodeString(r.Instances[0].Private)
		if err != nil {
			return nil, fmt.Errorf("private of %s.%s: %w", resourceType, name, err)
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("private of %s.%s: %w", resourceType, name, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("no managed %s.%s in the state file", resourceType, name)
}

// fingerprintIn returns the key fingerprint kept in the private state of resourceType.name.
func fingerprintIn(dir, resourceType, name string) (keyFingerprint, bool, error) {
	p, err := privateOf(dir, resourceType, name)
	if err != nil {
		return keyFingerprint{}, false, err
	}
	raw, ok := p[privateKeyFingerprint]
	if !ok {
		return keyFingerprint{}, false, nil
	}
	var f keyFingerprint
	if err := json.Unmarshal(raw, &f); err != nil {
		return f, false, fmt.Errorf("fingerprint in private state: %w", err)
	}
	return f, true, nil
}

// sideEffect is a plan check that does something between plan and apply (PreApply), such as
// changing the emulator behind Terraform's back.
type sideEffect func() error

func (s sideEffect) CheckPlan(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	resp.Error = s()
}
