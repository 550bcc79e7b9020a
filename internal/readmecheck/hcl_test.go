package readmecheck_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/livehook/terraform-provider-livehook/internal/provider"
)

var (
	devOverrideRE = regexp.MustCompile(`("[^"]+")\s*=\s*"([^"]*)"`)
	varRefRE      = regexp.MustCompile(`\bvar\.([A-Za-z_][A-Za-z0-9_-]*)`)
)

// cliConfigBlock returns the README's ~/.terraformrc (the hcl block with provider_installation)
// rewritten to point at our build, as a file.
func cliConfigBlock(t *testing.T) (file string, f fence) {
	t.Helper()
	for _, f := range readme.fences("hcl") {
		body := strings.Join(f.Lines, "\n")
		if !strings.Contains(body, "provider_installation") || !strings.Contains(body, "dev_overrides") {
			continue // mirror configurations are run by tools/release TestMirrorInstall
		}
		m := devOverrideRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("README.md:%d: the CLI config has no dev_overrides entry", f.Line)
		}
		if m[1] != fmt.Sprintf("%q", provider.Address) {
			t.Errorf("README.md:%d: dev_overrides names %s; the provider is served as %q", f.Line, m[1], provider.Address)
		}
		body = strings.Replace(body, m[0], fmt.Sprintf("%s = %q", m[1], bins.Dir), 1)
		file = filepath.Join(t.TempDir(), "terraformrc")
		if err := os.WriteFile(file, []byte(body+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return file, f
	}
	t.Fatal("README has no ~/.terraformrc block (hcl with provider_installation)")
	return "", fence{}
}

// TestHCLBlocksFormatted: every configuration block is as `terraform fmt` writes it. (The
// ~/.terraformrc block is CLI configuration, whose quoted keys terraform fmt rejects; it is
// proven by TestHCLBlocksValidate, which uses it.)
func TestHCLBlocksFormatted(t *testing.T) {
	tf := terraformBin(t)
	blocks := readme.fences("hcl")
	if len(blocks) == 0 {
		t.Fatal("README has no hcl blocks")
	}
	for _, f := range blocks {
		if strings.Contains(strings.Join(f.Lines, "\n"), "provider_installation") {
			continue
		}
		file := filepath.Join(t.TempDir(), "block.tf")
		if err := os.WriteFile(file, []byte(strings.Join(f.Lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, stderr, err := runCmd(t, filepath.Dir(file), cleanEnv(), tf, "fmt", "-check", "-diff", "-no-color", file); err != nil {
			t.Errorf("README.md:%d: hcl block is not `terraform fmt` clean (%v):\n%s%s", f.Line, err, out, stderr)
		}
	}
}

// TestHCLBlocksValidate: every configuration block passes `terraform validate` against the real
// provider (so every resource, argument and value it uses exists), with the README's own
// ~/.terraformrc as the CLI config (so that block is proven too).
func TestHCLBlocksValidate(t *testing.T) {
	rc, rcFence := cliConfigBlock(t)
	tf := terraformBin(t)
	for _, f := range readme.fences("hcl") {
		if f.Line == rcFence.Line || strings.Contains(strings.Join(f.Lines, "\n"), "provider_installation") {
			continue
		}
		t.Run(fmt.Sprintf("line_%d", f.Line), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			body := strings.Join(f.Lines, "\n") + "\n"
			if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			// Scaffolding a fragment needs: the provider's source and the variables it uses.
			var scaffold strings.Builder
			if !strings.Contains(body, "required_providers") {
				scaffold.WriteString("terraform {\n  required_providers {\n    livehook = {\n      source = \"livehook/livehook\"\n    }\n  }\n}\n")
			}
			vars := map[string]bool{}
			for _, m := range varRefRE.FindAllStringSubmatch(body, -1) {
				if !strings.Contains(body, fmt.Sprintf("variable %q", m[1])) {
					vars[m[1]] = true
				}
			}
			for _, v := range slices.Sorted(maps.Keys(vars)) {
				fmt.Fprintf(&scaffold, "variable %q {\n  type      = string\n  sensitive = true\n}\n", v)
			}
			if err := os.WriteFile(filepath.Join(dir, "scaffold.tf"), []byte(scaffold.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			out, stderr, _ := runCmd(t, dir, cleanEnv("TF_CLI_CONFIG_FILE="+rc), tf, "validate", "-json", "-no-color")
			var res struct {
				Valid       bool
				Diagnostics []struct {
					Severity, Summary, Detail string
					Range                     *struct {
						Filename string
						Start    struct{ Line int }
					}
				}
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("README.md:%d: terraform validate -json: %v\n%s%s", f.Line, err, out, stderr)
			}
			overridden := false
			for _, d := range res.Diagnostics {
				if d.Summary == "Provider development overrides are in effect" && strings.Contains(d.Detail, bins.Dir) {
					overridden = true
				}
				if d.Severity != "error" {
					continue
				}
				where := fmt.Sprintf("README.md:%d", f.Line)
				if d.Range != nil && d.Range.Filename == "main.tf" {
					where = fmt.Sprintf("README.md:%d", f.bodyLine(d.Range.Start.Line-1))
				}
				t.Errorf("%s: terraform validate: %s: %s", where, d.Summary, d.Detail)
			}
			if !res.Valid && !t.Failed() {
				t.Errorf("README.md:%d: terraform validate says invalid:\n%s", f.Line, out)
			}
			if !overridden {
				t.Errorf("README.md:%d: the README's ~/.terraformrc (README.md:%d) did not make terraform use the local build in %s", f.Line, rcFence.Line, bins.Dir)
			}
		})
	}
}

// TestProviderBlockDeclaresSource: the configuration example a user copies first must say
// where the provider comes from; without required_providers terraform looks for
// hashicorp/livehook and fails ("Missing required provider").
func TestProviderBlockDeclaresSource(t *testing.T) {
	for _, f := range readme.fences("hcl") {
		body := strings.Join(f.Lines, "\n")
		if !strings.Contains(body, `provider "livehook"`) {
			continue
		}
		if !regexp.MustCompile(`source\s*=\s*"livehook/livehook"`).MatchString(body) {
			t.Errorf("README.md:%d: this configuration has no `terraform { required_providers { livehook = { source = \"livehook/livehook\" } } }`, so terraform would look for hashicorp/livehook", f.Line)
		}
		return
	}
	t.Error("README has no hcl block configuring provider \"livehook\"")
}
