// Package release_test checks the release end to end: GoReleaser's snapshot for this machine's
// platform, the provider mirror and terraform init from it, the archiver's OCI image, the CI
// recipes in examples/ci and every example directory. They need terraform (TF_ACC=1) and
// goreleaser (make tools); `make test` runs them.
package release_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
)

const project = "terraform-provider-livehook"

// workRoot holds everything the tests build; removed after the run.
var workRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "livehook-release-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workRoot = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func findGoreleaser() (string, error) {
	if p, err := exec.LookPath("goreleaser"); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "goreleaser")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("not found on PATH or in $(go env GOPATH)/bin: run make tools (go install github.com/goreleaser/goreleaser/v2@v2.15.1)")
}

// snapshot is one `goreleaser release --snapshot` of the real .goreleaser.yml, reduced to this
// machine's platform so CI builds three binaries instead of the whole matrix.
type snapshot struct {
	Dist    string
	Version string
}

var (
	snapOnce sync.Once
	snap     *snapshot
	snapErr  error
)

func buildSnapshot(t *testing.T) *snapshot {
	t.Helper()
	gr := testenv.Binary(t, "goreleaser", findGoreleaser)
	root := repoRoot(t)
	snapOnce.Do(func() { snap, snapErr = runSnapshot(root, gr) })
	if snapErr != nil {
		t.Fatal(snapErr)
	}
	return snap
}

func runSnapshot(root, goreleaser string) (*snapshot, error) {
	dist := filepath.Join(workRoot, "dist")
	cfg, err := reducedConfig(filepath.Join(root, ".goreleaser.yml"), dist)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(workRoot, "goreleaser.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goreleaser, "release", "--snapshot", "--clean", "--skip=sign", "--config", cfgPath)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("goreleaser release --snapshot: %w\n%s", err, out.String())
	}
	var meta struct {
		Version string `json:"version"`
	}
	b, err := os.ReadFile(filepath.Join(dist, "metadata.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &meta); err != nil || meta.Version == "" {
		return nil, fmt.Errorf("dist/metadata.json has no version (%v): %s", err, b)
	}
	fmt.Fprintf(os.Stderr, "release: snapshot %s for %s/%s built in %s\n", meta.Version, runtime.GOOS, runtime.GOARCH, time.Since(start).Round(time.Second))
	return &snapshot{Dist: dist, Version: meta.Version}, nil
}

// reducedConfig is .goreleaser.yml with every build limited to this platform and dist moved.
func reducedConfig(path, dist string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	builds, ok := cfg["builds"].([]any)
	if !ok || len(builds) == 0 {
		return nil, fmt.Errorf("%s has no builds", path)
	}
	for _, b := range builds {
		m := b.(map[string]any)
		m["goos"] = []string{runtime.GOOS}
		m["goarch"] = []string{runtime.GOARCH}
		delete(m, "ignore")
	}
	cfg["dist"] = dist
	return yaml.Marshal(cfg)
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// readSums parses SHA256SUMS into name => hex.
func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("%s: line %q is not \"<sha256>  <name>\"", path, line)
		}
		sums[name] = sum
	}
	return sums
}

// h1Zip is Terraform's h1: package hash, computed here without Terraform or x/mod: the zip's
// files, unpacked, each as "<sha256 hex>  <name>\n" in name order, hashed again, base64.
func h1Zip(t *testing.T, path string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string]string{} // name => line
	var names []string
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = fmt.Sprintf("%x  %s\n", h.Sum(nil), f.Name)
		names = append(names, f.Name)
	}
	sort.Strings(names)
	var summary strings.Builder
	for _, n := range names {
		summary.WriteString(files[n])
	}
	sum := sha256.Sum256([]byte(summary.String()))
	return "h1:" + base64.StdEncoding.EncodeToString(sum[:])
}

func providerZip(s *snapshot) string {
	return filepath.Join(s.Dist, fmt.Sprintf("%s_%s_%s_%s.zip", project, s.Version, runtime.GOOS, runtime.GOARCH))
}

// TestSnapshotArtifacts: the names Terraform and users rely on, SHA256SUMS covering every zip,
// archive and the registry manifest, and the version from the tag stamped in the binary.
func TestSnapshotArtifacts(t *testing.T) {
	s := buildSnapshot(t)
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+-snapshot$`).MatchString(s.Version) {
		t.Errorf("snapshot version %q is not semver X.Y.Z-snapshot (Terraform rejects other versions)", s.Version)
	}
	want := []string{
		filepath.Base(providerZip(s)),
		fmt.Sprintf("archiver_%s_%s_%s.tar.gz", s.Version, runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("live-emulator_%s_%s_%s.tar.gz", s.Version, runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("%s_%s_SHA256SUMS", project, s.Version),
	}
	for _, name := range want {
		if _, err := os.Stat(filepath.Join(s.Dist, name)); err != nil {
			t.Errorf("dist/%s missing: %v", name, err)
		}
	}
	sums := readSums(t, filepath.Join(s.Dist, fmt.Sprintf("%s_%s_SHA256SUMS", project, s.Version)))
	entries, _ := os.ReadDir(s.Dist)
	var archives int
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".zip") && !strings.HasSuffix(e.Name(), ".tar.gz") {
			continue
		}
		archives++
		got := sha256File(t, filepath.Join(s.Dist, e.Name()))
		if sums[e.Name()] != got {
			t.Errorf("SHA256SUMS lists %s as %q, its SHA-256 is %s", e.Name(), sums[e.Name()], got)
		}
	}
	if archives != 3 {
		t.Errorf("%d archives in dist, want 3 (provider zip, archiver, live-emulator)", archives)
	}
	manifest := fmt.Sprintf("%s_%s_manifest.json", project, s.Version)
	root := repoRoot(t)
	if got, want := sums[manifest], sha256File(t, filepath.Join(root, "terraform-registry-manifest.json")); got != want {
		t.Errorf("SHA256SUMS lists %s as %q, want the SHA-256 of terraform-registry-manifest.json %s", manifest, got, want)
	}

	// The zip holds the binary under the name Terraform looks for, stamped with the version.
	zr, err := zip.OpenReader(providerZip(s))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	binName := fmt.Sprintf("%s_v%s", project, s.Version)
	var bin []byte
	for _, f := range zr.File {
		if f.Name == binName {
			rc, _ := f.Open()
			bin, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	if bin == nil {
		t.Fatalf("%s has no %s", providerZip(s), binName)
	}
	p := filepath.Join(t.TempDir(), binName)
	if err := os.WriteFile(p, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(p, "-version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != project+" "+s.Version {
		t.Errorf("%s -version = %q (%v), want %q", binName, out, err, project+" "+s.Version)
	}
}
