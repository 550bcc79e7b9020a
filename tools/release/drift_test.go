package release_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/tools/internal/mirror"
)

// Emulator credentials (fake values, not secrets).
const (
	driftProject = "0123456789abcdef0123456789abcdef"
	driftAK      = "LIVEHOOKDRIFTAK00001"
	driftSK      = "livehook-drift-secret-key-0000000000001"
	driftDomain  = "push.example.com"
)

func driftConfig(version, url string) map[string]string {
	return map[string]string{"main.tf": fmt.Sprintf(`
terraform {
  required_providers {
    livehook = {
      source  = "livehook/livehook"
      version = %q
    }
  }
}

provider "livehook" {}

resource "livehook_publish_notification" "push" {
  domain         = %q
  url            = %q
  call_back_area = "outside_mainland_china"
}
`, version, driftDomain, url)}
}

// TestDriftScript runs examples/ci/terraform-drift.sh against the emulator with the provider
// from the release mirror: no drift, then an out-of-band change, then a config edit, each with
// the exit status and last line the script documents.
func TestDriftScript(t *testing.T) {
	tf := testenv.Terraform(t)
	s := buildSnapshot(t)
	mirrorDir := filepath.Join(t.TempDir(), "mirror")
	if _, err := mirror.Make(s.Dist, mirrorDir); err != nil {
		t.Fatal(err)
	}
	srv, base := emulator.StartT(t, emulator.Config{
		ProjectID: driftProject, AccessKey: driftAK, SecretKey: driftSK, Domains: []string{driftDomain},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	r := newTF(t, tf, fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/livehook/livehook"]
  }
}
`, mirrorDir), "LIVEHOOK_ENDPOINT="+base, "HW_PROJECT_ID="+driftProject, "HW_ACCESS_KEY="+driftAK, "HW_SECRET_KEY="+driftSK)
	script := filepath.Join(repoRoot(t), "examples", "ci", "terraform-drift.sh")

	dir := t.TempDir()
	const url = "https://hooks.example.com/live/callback"
	writeFiles(t, dir, driftConfig(s.Version, url))
	// What the team did before: lock the provider, commit, apply.
	r.must(t, dir, "init", "-input=false", "-no-color")
	r.must(t, dir, "apply", "-input=false", "-auto-approve", "-no-color")

	runScript := func(t *testing.T, wantCode int, wantLast, wantInOutput string) {
		t.Helper()
		out, code := r.exec(t, dir, "bash", script)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last := lines[len(lines)-1]
		if code != wantCode || !strings.HasPrefix(last, wantLast) {
			t.Fatalf("terraform-drift.sh: exit %d, last line %q; want exit %d and a line starting %q\n%s", code, last, wantCode, wantLast, out)
		}
		if wantInOutput != "" && !strings.Contains(out, wantInOutput) {
			t.Errorf("output lacks %q:\n%s", wantInOutput, out)
		}
	}

	t.Run("no drift", func(t *testing.T) { runScript(t, 0, "no drift:", "") })

	t.Run("out-of-band change", func(t *testing.T) {
		const other = "https://someone-else.example.com/hook"
		if err := srv.SetConfig(driftDomain, emulator.Notification{URL: other, CallBackArea: "outside_mainland_china"}); err != nil {
			t.Fatal(err)
		}
		runScript(t, 2, "drift:", other)
		// The team restores the code's values.
		r.must(t, dir, "apply", "-input=false", "-auto-approve", "-no-color")
		if n, _ := srv.Config(driftDomain); n.URL != url {
			t.Fatalf("after apply the emulator has %q", n.URL)
		}
		runScript(t, 0, "no drift:", "")
	})

	t.Run("config edit", func(t *testing.T) {
		const edited = "https://hooks.example.com/live/callback-v2"
		writeFiles(t, dir, driftConfig(s.Version, edited))
		runScript(t, 3, "pending changes:", edited)
		if _, err := os.Stat(filepath.Join(dir, "tfplan")); err != nil {
			t.Errorf("no saved plan after pending changes: %v", err)
		}
		if n, _ := srv.Config(driftDomain); n.URL != url {
			t.Errorf("the drift check changed the live config to %q", n.URL)
		}
	})

	t.Run("error", func(t *testing.T) {
		writeFiles(t, dir, map[string]string{"broken.tf": `resource "livehook_publish_notification" "x" {`})
		defer os.Remove(filepath.Join(dir, "broken.tf"))
		runScript(t, 1, "error:", "")
	})
}
