package provider

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
)

// e2eConfig is a configuration a user would write: the key from an ephemeral variable, set on
// Live with the write-only argument, read back by the ephemeral resource and handed on to
// another write-only argument (standing in for the archiver's Secret).
const e2eConfig = `
terraform {
  required_providers {
    livehook = { source = "livehook/livehook" }
  }
}

variable "key" {
  type      = string
  sensitive = true
  ephemeral = true
}

variable "key_version" {
  type = number
}

resource "livehook_publish_notification" "push" {
  domain                   = "push.example.com"
  url                      = "https://hooks.example.com/live"
  auth_sign_key_wo         = var.key
  auth_sign_key_wo_version = var.key_version
}

ephemeral "livehook_publish_notification" "push" {
  domain = livehook_publish_notification.push.id
}

resource "livehook_publish_notification" "mirror" {
  domain                   = "mirror.example.com"
  url                      = "https://hooks.example.com/mirror"
  auth_sign_key_wo         = ephemeral.livehook_publish_notification.push.auth_sign_key
  auth_sign_key_wo_version = var.key_version
}
`

// TestE2EProvider_keyWarnings runs the provider binary (devenv.Build) under the terraform CLI
// and reads what a user reads: the plan's text. A key changed through the emulator's control
// API gives a warning naming the domain and the version to bump, with no diff; a new
// auth_sign_key_wo without a new version gives the other warning; bumping the version sends
// the key again and the warnings go away; -replace recreates it without a takeover refusal, and a
// tainted resource's refusal says how to untaint it. No key is ever in terraform's output, the saved plan's rendering or the state file.
func TestE2EProvider_keyWarnings(t *testing.T) {
	testenv.Terraform(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	e, err := devenv.NewEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	bins, err := devenv.Build(ctx, root, e.Path("bin"), "", "provider")
	if err != nil {
		t.Fatal(err)
	}
	_, base := emulator.StartT(t, emulator.Config{
		ProjectID: testProjectID, AccessKey: testAccessKey, SecretKey: testSecretKey,
		Domains: []string{testDomain, "mirror.example.com"}, Logger: slog.New(slog.DiscardHandler),
	})
	ctl := devenv.NewEmulatorControl(base)
	cfgDir := e.Path("cfg")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "main.tf"), []byte(e2eConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	tf, err := e.NewTerraform(cfgDir, bins.Dir, "LIVEHOOK_ENDPOINT="+base, "HW_PROJECT_ID="+testProjectID,
		"HW_ACCESS_KEY="+testAccessKey, "HW_SECRET_KEY="+testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	env := tf.Env
	secrets := []string{key1, key3, key4}
	// run runs terraform with the key in the environment (TF_VAR_key: never on the command
	// line) and checks that its output holds no key.
	run := func(key string, okCodes []int, args ...string) *devenv.Result {
		t.Helper()
		tf.Env = append(append([]string(nil), env...), "TF_VAR_key="+key)
		res, err := tf.Run(ctx, okCodes, append(args, "-no-color")...)
		if err != nil {
			t.Fatal(err)
		}
		if err := noSecretIn("terraform "+strings.Join(args, " ")+" output", []byte(res.Output), secrets...); err != nil {
			t.Fatal(err)
		}
		return res
	}
	plan := func(key string, version, wantExit int) string {
		t.Helper()
		res := run(key, []int{2}, "plan", "-detailed-exitcode", "-out=tfplan", fmt.Sprintf("-var=key_version=%d", version))
		if res.ExitCode != wantExit {
			t.Fatalf("terraform plan exit %d, want %d (0 no changes, 2 changes):\n%s", res.ExitCode, wantExit, res.Output)
		}
		run(key, nil, "show", "tfplan") // the saved plan as a reviewer sees it: no key either
		return res.Output
	}
	stateHasNoKey := func() {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(cfgDir, "terraform.tfstate"))
		if err != nil {
			t.Fatal(err)
		}
		if err := noSecretIn("the state file", b, secrets...); err != nil {
			t.Fatal(err)
		}
	}
	remoteKey := func(domain, want string) {
		t.Helper()
		n, ok, err := ctl.Config(ctx, domain)
		if err != nil || !ok || n.AuthSignKey != want {
			t.Fatalf("%s on the emulator: ok %v err %v, not the expected %d-character key", domain, ok, err, len(want))
		}
	}
	changedOutside := errorRe("Warning: Signing key of push.example.com changed outside Terraform",
		`The callback signing key of push domain "push.example.com" on Live is no longer the key Terraform last sent`,
		"increment auth_sign_key_wo_version (for example from 1 to 2)")
	notSent := func(domain string) *regexp.Regexp {
		return errorRe("Warning: auth_sign_key_wo changed but auth_sign_key_wo_version did not",
			fmt.Sprintf("The auth_sign_key_wo of push domain %q is not the key Terraform last sent", domain),
			"auth_sign_key_wo_version is still 1")
	}
	noWarning := func(out string) {
		t.Helper()
		// dev_overrides always warns about itself.
		if strings.Count(out, "Warning:") != strings.Count(out, "Warning: Provider development overrides are in effect") {
			t.Fatalf("unexpected warning:\n%s", out)
		}
	}

	// Create: the key reaches Live and, through the ephemeral resource, the second notification.
	noWarning(plan(key3, 1, 2))
	run(key3, nil, "apply", "tfplan")
	remoteKey(testDomain, key3)
	remoteKey("mirror.example.com", key3)
	stateHasNoKey()
	noWarning(plan(key3, 1, 0))

	// The key is changed outside Terraform: no diff, a warning naming the domain and the fix.
	// The ephemeral resource now reads that key, so the stand-in for the archiver's Secret is
	// reported as not being sent its new key either.
	if err := ctl.SetConfig(ctx, testDomain, emulator.Notification{URL: "https://hooks.example.com/live", AuthSignKey: key1}); err != nil {
		t.Fatal(err)
	}
	out := plan(key3, 1, 0)
	for _, re := range []*regexp.Regexp{changedOutside, notSent("mirror.example.com")} {
		if !re.MatchString(out) {
			t.Fatalf("terraform plan lacks %s:\n%s", re, out)
		}
	}
	if notSent(testDomain).MatchString(out) {
		t.Fatalf("auth_sign_key_wo of push.example.com did not change, yet the plan says it did:\n%s", out)
	}

	// A new key without a new version: the warning says it is not sent.
	if out := plan(key4, 1, 0); !notSent(testDomain).MatchString(out) {
		t.Fatalf("terraform plan lacks the warning for a new auth_sign_key_wo with the same version:\n%s", out)
	}

	// Bumping the version: an update without warnings sends the key to both; then all quiet.
	noWarning(plan(key3, 2, 2))
	run(key3, nil, "apply", "tfplan")
	remoteKey(testDomain, key3)
	remoteKey("mirror.example.com", key3)
	stateHasNoKey()
	noWarning(plan(key3, 2, 0))

	// -replace recreates the resource's own config: not a takeover.
	run(key3, nil, "apply", "-auto-approve", "-replace=livehook_publish_notification.push", "-var=key_version=2")
	remoteKey(testDomain, key3)
	noWarning(plan(key3, 2, 0))
	// A tainted resource is planned like a new one: refused, with the untaint hint; untaint clears it.
	run(key3, nil, "taint", "livehook_publish_notification.push")
	if res := run(key3, []int{1}, "plan", "-var=key_version=2"); !strings.Contains(strings.Join(strings.Fields(res.Output), " "), "terraform untaint livehook_publish_notification.<name>") {
		t.Fatalf("the plan of a tainted resource lacks the untaint hint:\n%s", res.Output)
	}
	run(key3, nil, "untaint", "livehook_publish_notification.push")
	noWarning(plan(key3, 2, 0))
	run(key3, nil, "destroy", "-auto-approve", "-var=key_version=2")
}
