package release_test

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/livehook/terraform-provider-livehook/tools/internal/ociimage"
)

// TestImage: make image's tarball is an OCI layout (and a docker-save archive) whose config
// runs the static archiver as a non-root user with `serve`, labelled with version and source,
// and whose layer holds a binary that runs.
func TestImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image holds a linux binary; this test runs it, so it runs on linux")
	}
	s := buildSnapshot(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	writeFiles(t, filepath.Dir(ca), map[string]string{"ca.pem": "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n"})
	outs, err := ociimage.FromDist(s.Dist, ociimage.DefaultRepo, ociimage.DefaultSource, ca)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(s.Dist, "archiver_"+s.Version+"_linux_"+runtime.GOARCH+".oci.tar")
	if len(outs) != 1 || outs[0] != want {
		t.Fatalf("wrote %v, want [%s]", outs, want)
	}

	// What `docker load` / `podman load` / `crane push` read: the OCI layout...
	files := untar(t, want)
	for _, f := range []string{"oci-layout", "index.json", "manifest.json"} {
		if _, ok := files[f]; !ok {
			t.Fatalf("%s has no %s", want, f)
		}
	}
	layoutDir := t.TempDir()
	for n, b := range files {
		writeFiles(t, layoutDir, map[string]string{n: string(b)})
	}
	idx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != s.Version {
		t.Fatalf("index.json = %+v, want one image named %s", im.Manifests, s.Version)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	// ...and the docker-save manifest.json, tagged REPO:VERSION, naming the same image.
	tag, _ := name.NewTag(ociimage.DefaultRepo + ":" + s.Version)
	dimg, err := tarball.ImageFromPath(want, &tag)
	if err != nil {
		t.Fatalf("docker-save view of %s: %v", want, err)
	}
	// The docker-save view has a manifest of its own; config and layer are the same blobs.
	c1, _ := img.ConfigName()
	c2, _ := dimg.ConfigName()
	l1, _ := img.Layers()
	l2, _ := dimg.Layers()
	if c1 != c2 || len(l1) != 1 || len(l2) != 1 {
		t.Fatalf("OCI layout config %s (%d layers), docker-save config %s (%d layers)", c1, len(l1), c2, len(l2))
	}
	d1, _ := l1[0].Digest()
	d2, _ := l2[0].Digest()
	if d1 != d2 {
		t.Errorf("OCI layout layer %s and docker-save layer %s differ", d1, d2)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != ociimage.BinaryPath+" serve" {
		t.Errorf("entrypoint %q, want %q", got, ociimage.BinaryPath+" serve")
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want the non-root 65532:65532", cf.Config.User)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.version": s.Version,
		"org.opencontainers.image.source":  ociimage.DefaultSource,
	} {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if cf.Config.Labels["org.opencontainers.image.revision"] == "" {
		t.Errorf("no org.opencontainers.image.revision label")
	}
	m, _ := img.Manifest()
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("media types %s / %s, want OCI", m.MediaType, m.Config.MediaType)
	}

	// The layer: the binary (static, runs), the passwd entry of the user, its work dir, CAs.
	layer := layerFiles(t, img)
	bin, ok := layer[strings.TrimPrefix(ociimage.BinaryPath, "/")]
	if !ok {
		t.Fatalf("layer has no %s; it has %v", ociimage.BinaryPath, slices.Sorted(maps.Keys(layer)))
	}
	if bin.Mode&0o111 == 0 {
		t.Errorf("%s mode %o is not executable", ociimage.BinaryPath, bin.Mode)
	}
	if !strings.Contains(string(layer["etc/passwd"].Data), ":65532:65532:") {
		t.Errorf("etc/passwd has no entry for 65532: %q", layer["etc/passwd"].Data)
	}
	if wd := layer[strings.TrimPrefix(ociimage.WorkDir, "/")+"/"]; wd.Uid != 65532 {
		t.Errorf("%s is owned by %d, want 65532 (spool and ./archive are written there)", ociimage.WorkDir, wd.Uid)
	}
	if string(layer[strings.TrimPrefix(ociimage.CAPath, "/")].Data) == "" {
		t.Errorf("no CA bundle at %s", ociimage.CAPath)
	}
	f, err := elf.NewFile(bytes.NewReader(bin.Data))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked; an image without a base needs a static binary", ociimage.BinaryPath)
		}
	}
	exe := filepath.Join(t.TempDir(), "archiver")
	if err := os.WriteFile(exe, bin.Data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "-h").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "usage: archiver") {
		t.Errorf("archiver -h from the image layer: %v\n%s", err, out)
	}
	// The release stamps the tag's version into the binary (-X main.version).
	if out, err := exec.Command(exe, "version").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "archiver "+s.Version {
		t.Errorf("archiver version from the image layer = %q, %v; want %q", out, err, "archiver "+s.Version)
	}
	out, err = exec.Command(exe, "serve", "-h").CombinedOutput()
	var ee *exec.ExitError
	if (err != nil && !errors.As(err, &ee)) || !strings.Contains(string(out), "archiver serve") {
		t.Errorf("archiver serve -h (the entrypoint) from the image layer: %v\n%s", err, out)
	}
}

// TestImageRejectsNonELF: a wrong file (e.g. the darwin build) is reported, not packed.
func TestImageRejectsNonELF(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "archiver")
	writeFiles(t, filepath.Dir(p), map[string]string{"archiver": "\xcf\xfa\xed\xfe mach-o"})
	err := ociimage.Write(ociimage.Spec{Binary: p, Arch: "amd64", Version: "1.0.0", Repo: ociimage.DefaultRepo}, filepath.Join(t.TempDir(), "x.tar"))
	if err == nil || !strings.Contains(err.Error(), "not a linux (ELF) binary") {
		t.Fatalf("err = %v", err)
	}
}

func untar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}

type layerFile struct {
	Mode int64
	Uid  int
	Data []byte
}

func layerFiles(t *testing.T, img v1.Image) map[string]layerFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]layerFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = layerFile{Mode: h.Mode, Uid: h.Uid, Data: b}
	}
}
