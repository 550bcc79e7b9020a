package release_test

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/testenv"
)

// exampleDirs lists every directory under examples/ that holds Terraform files.
func exampleDirs(t *testing.T, root string) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(root, "examples"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".terraform") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".tf") {
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			seen[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(seen))
}

// TestExamples: every example directory is formatted (terraform fmt -check) and valid against
// the provider built from this tree (terraform validate with dev_overrides, which needs no init).
func TestExamples(t *testing.T) {
	tf := testenv.Terraform(t)
	root := repoRoot(t)
	dirs := exampleDirs(t, root)
	for _, want := range []string{"examples/provider", "examples/resources/livehook_publish_notification",
		"examples/data-sources/livehook_publish_notification", "examples/ephemeral-resources/livehook_publish_notification",
		"examples/functions/callback_signature", "examples/demo", "examples/guides/archiver-keys-secret"} {
		if !contains(dirs, want) {
			t.Errorf("example directory %s not found (found %v)", want, dirs)
		}
	}

	binDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(binDir, project), ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build the provider: %v\n%s", err, out)
	}
	r := newTF(t, tf, fmt.Sprintf(`provider_installation {
  dev_overrides {
    "registry.terraform.io/livehook/livehook" = %q
  }
}
`, binDir))

	for _, d := range dirs {
		t.Run(d, func(t *testing.T) {
			src := filepath.Join(root, filepath.FromSlash(d))
			if out, code := r.run(t, src, "fmt", "-check", "-diff", "-no-color"); code != 0 {
				t.Errorf("terraform fmt -check %s: exit %d (run terraform fmt there)\n%s", d, code, out)
			}
			// validate in a copy, so no .terraform or lock file lands in the repository.
			work := t.TempDir()
			entries, err := os.ReadDir(src)
			if err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			for _, e := range entries {
				if e.Type().IsRegular() {
					b, err := os.ReadFile(filepath.Join(src, e.Name()))
					if err != nil {
						t.Fatal(err)
					}
					writeFiles(t, work, map[string]string{e.Name(): string(b)})
					all.Write(b)
				}
			}
			// validate needs every provider's schema; others than livehook would have to be
			// downloaded, which tests never do. Their livehook part is covered by the
			// provider's acceptance tests (the guide names the one for its pattern).
			if others := otherProviders(all.String()); len(others) > 0 {
				t.Logf("terraform validate %s skipped: it needs %v, which are never downloaded here (fmt -check ran)", d, others)
				return
			}
			// terraform validate skips a provider block nothing uses; a data source makes it
			// check the block against the schema (validate calls no API).
			if !strings.Contains(all.String(), `"livehook_`) && !strings.Contains(all.String(), "provider::livehook::") {
				writeFiles(t, work, map[string]string{"zz_validate_probe.tf": "data \"livehook_publish_notification\" \"validate_probe\" {\n  domain = \"push.example.com\"\n}\n"})
			}
			if out, code := r.run(t, work, "validate", "-no-color"); code != 0 {
				t.Errorf("terraform validate %s: exit %d\n%s", d, code, out)
			}
		})
	}
}

// sourceRe finds the provider sources of required_providers blocks.
var sourceRe = regexp.MustCompile(`(?m)^\s*source\s*=\s*"([^"]+)"`)

// otherProviders lists the provider sources in tf other than livehook's.
func otherProviders(tf string) []string {
	var out []string
	for _, m := range sourceRe.FindAllStringSubmatch(tf, -1) {
		if m[1] != "livehook/livehook" && m[1] != "registry.terraform.io/livehook/livehook" {
			out = append(out, m[1])
		}
	}
	return out
}
