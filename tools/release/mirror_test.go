package release_test

import (
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/tools/internal/mirror"
)

// The spec's worked example (spec/callback.md), computed by the installed release binary.
const specPublishSign = "fa5addca9ea94589d2a7f936a82e2ef3af10bf7ffc665e278c05214537e2ed41"

// mirrorConfig is a configuration that pins the snapshot and runs the provider's function, so
// an apply proves the installed binary works.
func mirrorConfig(version string) map[string]string {
	return map[string]string{"main.tf": fmt.Sprintf(`
terraform {
  required_providers {
    livehook = {
      source  = "livehook/livehook"
      version = %q
    }
  }
}

output "sign" {
  value = provider::livehook::callback_signature("0123456789abcdef0123456789abcdef", "PUBLISH", "push.example.com", "live", "example_stream", 1587954140)
}
`, version)}
}

// lockHashes returns the version and hashes .terraform.lock.hcl records for livehook.
func lockHashes(t *testing.T, dir string) (string, []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".terraform.lock.hcl"))
	if err != nil {
		t.Fatalf(".terraform.lock.hcl: %v", err)
	}
	block := regexp.MustCompile(`(?s)provider "registry.terraform.io/livehook/livehook" \{(.*?)\n\}`).FindSubmatch(b)
	if block == nil {
		t.Fatalf(".terraform.lock.hcl has no livehook/livehook block:\n%s", b)
	}
	version := regexp.MustCompile(`version\s*=\s*"([^"]+)"`).FindSubmatch(block[1])
	hashes := regexp.MustCompile(`"((?:h1|zh):[^"]+)"`).FindAllSubmatch(block[1], -1)
	var hs []string
	for _, h := range hashes {
		hs = append(hs, string(h[1]))
	}
	if version == nil {
		t.Fatalf("lock block without version:\n%s", block[0])
	}
	return string(version[1]), hs
}

// TestMirrorInstall: make mirror's directory serves terraform init as a filesystem mirror and
// as a network mirror, with no dev_overrides and nothing downloaded; the lock file records the
// hash of the released zip, and the installed binary runs.
func TestMirrorInstall(t *testing.T) {
	tf := testenv.Terraform(t)
	s := buildSnapshot(t)
	mirrorDir := filepath.Join(t.TempDir(), "mirror")
	rel, err := mirror.Make(s.Dist, mirrorDir)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != s.Version {
		t.Fatalf("mirror made version %s, dist has %s", rel.Version, s.Version)
	}
	zipPath := providerZip(s)
	wantH1 := h1Zip(t, zipPath)
	wantZH := "zh:" + sha256File(t, zipPath)
	platform := runtime.GOOS + "_" + runtime.GOARCH

	t.Run("filesystem_mirror", func(t *testing.T) {
		// The README's own CLI configuration, pointed at this mirror.
		r := newTF(t, tf, readmeMirrorConfig(t, mirrorDir))
		dir := t.TempDir()
		writeFiles(t, dir, mirrorConfig(s.Version))
		out := r.must(t, dir, "init", "-input=false", "-no-color")
		if strings.Contains(out, "dev_overrides") || strings.Contains(out, "development overrides") {
			t.Fatalf("init used dev_overrides:\n%s", out)
		}
		version, hashes := lockHashes(t, dir)
		if version != s.Version {
			t.Errorf("lock file version %s, want %s", version, s.Version)
		}
		if len(hashes) != 1 || hashes[0] != wantH1 {
			t.Errorf("lock file hashes %v, want [%s] (the h1: hash of %s)", hashes, wantH1, filepath.Base(zipPath))
		}
		out = r.must(t, dir, "apply", "-input=false", "-auto-approve", "-no-color")
		if got := r.must(t, dir, "output", "-raw", "sign"); got != specPublishSign {
			t.Errorf("installed provider's callback_signature = %q, want %s\n%s", got, specPublishSign, out)
		}

		// The README's command: hashes for the platforms a team uses, from the same mirror.
		r.must(t, dir, "providers", "lock", "-no-color", "-fs-mirror="+mirrorDir, "-platform="+platform)
		if _, hashes := lockHashes(t, dir); !contains(hashes, wantH1) {
			t.Errorf("after providers lock, hashes %v lack %s", hashes, wantH1)
		}
	})

	t.Run("network_mirror", func(t *testing.T) {
		srv := httptest.NewTLSServer(http.FileServer(http.Dir(mirrorDir)))
		t.Cleanup(srv.Close)
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		writeCert(t, srv.TLS, caFile)
		r := newTF(t, tf, fmt.Sprintf(`provider_installation {
  network_mirror {
    url     = "%s/"
    include = ["registry.terraform.io/livehook/livehook"]
  }
}
`, srv.URL), "SSL_CERT_FILE="+caFile)
		dir := t.TempDir()
		writeFiles(t, dir, mirrorConfig(s.Version))
		r.must(t, dir, "init", "-input=false", "-no-color")
		_, hashes := lockHashes(t, dir)
		if !contains(hashes, wantH1) {
			t.Errorf("lock file hashes %v lack %s", hashes, wantH1)
		}
		for _, h := range hashes {
			if strings.HasPrefix(h, "zh:") && h != wantZH {
				t.Errorf("lock file records %s, but the zip's SHA-256 is %s", h, wantZH)
			}
		}
		r.must(t, dir, "apply", "-input=false", "-auto-approve", "-no-color")
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func writeCert(t *testing.T, cfg *tls.Config, path string) {
	t.Helper()
	var pemBytes []byte
	for _, c := range cfg.Certificates {
		for _, der := range c.Certificate {
			pemBytes = append(pemBytes, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
	}
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMirrorRejects: a zip that SHA256SUMS does not vouch for never reaches the mirror.
func TestMirrorRejects(t *testing.T) {
	t.Parallel()
	zipName := "terraform-provider-livehook_1.2.3_linux_amd64.zip"
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"empty dist", map[string]string{"README": "x"}, "no terraform-provider-livehook_VERSION_OS_ARCH.zip"},
		{"no SHA256SUMS", map[string]string{zipName: "zip"}, "SHA256SUMS"},
		{"zip not listed", map[string]string{zipName: "zip", "terraform-provider-livehook_1.2.3_SHA256SUMS": strings.Repeat("0", 64) + "  other.zip\n"}, "does not list " + zipName},
		{"zip damaged", map[string]string{zipName: "zip", "terraform-provider-livehook_1.2.3_SHA256SUMS": strings.Repeat("0", 64) + "  " + zipName + "\n"}, "damaged"},
		{"malformed sums", map[string]string{zipName: "zip", "terraform-provider-livehook_1.2.3_SHA256SUMS": "nothex  " + zipName + "\n"}, "line 1"},
		{"two versions", map[string]string{zipName: "a", "terraform-provider-livehook_1.2.4_linux_amd64.zip": "b"}, "two versions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dist := t.TempDir()
			writeFiles(t, dist, tc.files)
			out := filepath.Join(t.TempDir(), "mirror")
			_, err := mirror.Make(dist, out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("mirror directory created despite the error")
			}
		})
	}
}

// readmeMirrorConfig is the README's filesystem_mirror CLI configuration with its example path
// replaced by dir.
func readmeMirrorConfig(t *testing.T, dir string) string {
	t.Helper()
	const examplePath = "/srv/terraform-mirror"
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(b), "```hcl\n")[1:] {
		body, _, _ := strings.Cut(block, "```")
		if strings.Contains(body, "provider_installation") && strings.Contains(body, "filesystem_mirror") && !strings.Contains(body, "dev_overrides") {
			if !strings.Contains(body, examplePath) {
				t.Fatalf("the README's mirror configuration no longer uses the example path %s", examplePath)
			}
			return strings.ReplaceAll(body, examplePath, dir)
		}
	}
	t.Fatal("README.md has no hcl block with a provider_installation filesystem_mirror")
	return ""
}
