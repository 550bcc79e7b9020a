// Package ociimage packs the archiver's static linux binaries from a GoReleaser dist/ into OCI
// image tarballs, without a Docker engine:
//
// For each linux archiver binary in dist/artifacts.json it writes
// dist/archiver_{VERSION}_linux_{ARCH}.oci.tar: an OCI image layout (oci-layout, index.json,
// blobs/) plus a docker-save manifest.json, so `docker load`, `podman load`, `skopeo copy
// oci-archive:` and `crane push` all accept it. The image has no base: one layer with the
// binary, CA certificates, a passwd entry for the non-root user and its working directory.
package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed shape; tests and the README rely on it.
const (
	BinaryPath = "/usr/local/bin/archiver"
	UID        = 65532 // the conventional "nonroot" id of distroless images
	WorkDir    = "/var/lib/livehook"
	CAPath     = "/etc/ssl/certs/ca-certificates.crt"

	DefaultRepo   = "ghcr.io/livehook/archiver"
	DefaultSource = "https://github.com/livehook/terraform-provider-livehook"
)

// Spec is one image to build.
type Spec struct {
	Binary   string // static linux archiver binary
	Arch     string // GOARCH
	Version  string
	Revision string // commit
	Created  time.Time
	Repo     string
	Source   string
	CACerts  []byte // optional
}

// FromDist builds one tarball per linux archiver binary listed in dist/artifacts.json.
func FromDist(dist, repo, source, caFile string) ([]string, error) {
	var meta struct {
		Version string    `json:"version"`
		Commit  string    `json:"commit"`
		Date    time.Time `json:"date"`
	}
	if err := readJSON(filepath.Join(dist, "metadata.json"), &meta); err != nil {
		return nil, fmt.Errorf("%w (run make release-snapshot first)", err)
	}
	var arts []struct {
		Name   string `json:"name"`
		Path   string `json:"path"`
		Goos   string `json:"goos"`
		Goarch string `json:"goarch"`
		Type   string `json:"type"`
		Extra  struct {
			ID string `json:"ID"`
		} `json:"extra"`
	}
	if err := readJSON(filepath.Join(dist, "artifacts.json"), &arts); err != nil {
		return nil, err
	}
	var ca []byte
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA certificates for the image: %w (install ca-certificates, or pass -ca-certs \"\")", err)
		}
		ca = b
	}
	var written []string
	for _, a := range arts {
		if a.Type != "Binary" || a.Extra.ID != "archiver" || a.Goos != "linux" {
			continue
		}
		bin := a.Path
		if !filepath.IsAbs(bin) {
			// artifacts.json paths are relative to where goreleaser ran: dist's parent.
			bin = filepath.Join(filepath.Dir(filepath.Clean(dist)), bin)
			if _, err := os.Stat(bin); err != nil {
				bin = a.Path
			}
		}
		out := filepath.Join(dist, fmt.Sprintf("archiver_%s_linux_%s.oci.tar", meta.Version, a.Goarch))
		spec := Spec{Binary: bin, Arch: a.Goarch, Version: meta.Version, Revision: meta.Commit, Created: meta.Date.UTC(),
			Repo: repo, Source: source, CACerts: ca}
		if err := Write(spec, out); err != nil {
			return nil, err
		}
		written = append(written, out)
	}
	if len(written) == 0 {
		return nil, fmt.Errorf("%s/artifacts.json lists no linux archiver binary: the release must build the archiver for linux", dist)
	}
	return written, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Image builds the image of spec.
func Image(spec Spec) (v1.Image, error) {
	bin, err := os.ReadFile(spec.Binary)
	if err != nil {
		return nil, fmt.Errorf("archiver binary: %w", err)
	}
	if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
		return nil, fmt.Errorf("%s is not a linux (ELF) binary", spec.Binary)
	}
	layerTar, err := rootfs(bin, spec.CACerts, spec.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: spec.Created}, CreatedBy: "livehook ociimage: archiver " + spec.Version,
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", spec.Arch, v1.Time{Time: spec.Created}
	if spec.Arch == "arm64" {
		cf.Variant = "v8"
	}
	env := []string{"PATH=/usr/local/bin"}
	if len(spec.CACerts) > 0 {
		env = append(env, "SSL_CERT_FILE="+CAPath)
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "livehook archiver",
		"org.opencontainers.image.description": "Archives Huawei Cloud Live publish callbacks to S3-compatible storage",
		"org.opencontainers.image.version":     spec.Version,
		"org.opencontainers.image.source":      spec.Source,
		"org.opencontainers.image.licenses":    "MPL-2.0",
		"org.opencontainers.image.created":     spec.Created.Format(time.RFC3339),
	}
	if spec.Revision != "" {
		labels["org.opencontainers.image.revision"] = spec.Revision
	}
	cf.Config = v1.Config{
		Entrypoint:   []string{BinaryPath, "serve"},
		User:         strconv.Itoa(UID) + ":" + strconv.Itoa(UID),
		WorkingDir:   WorkDir,
		Env:          env,
		Labels:       labels,
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the single layer: the binary, the user's passwd/group entries, its working
// directory (spool and local archive default to ./), /tmp, and the CA bundle.
func rootfs(bin, ca []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	u := strconv.Itoa(UID)
	steps := []func() error{
		func() error { return dir("etc", 0o755, 0) },
		func() error {
			return file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nlivehook:x:"+u+":"+u+":livehook:"+WorkDir+":/sbin/nologin\n"))
		},
		func() error { return file("etc/group", 0o644, []byte("root:x:0:\nlivehook:x:"+u+":\n")) },
		func() error { return dir("tmp", 0o1777, 0) },
		func() error { return dir("usr", 0o755, 0) },
		func() error { return dir("usr/local", 0o755, 0) },
		func() error { return dir("usr/local/bin", 0o755, 0) },
		func() error { return file(strings.TrimPrefix(BinaryPath, "/"), 0o755, bin) },
		func() error { return dir("var", 0o755, 0) },
		func() error { return dir("var/lib", 0o755, 0) },
		func() error { return dir(strings.TrimPrefix(WorkDir, "/"), 0o700, UID) },
	}
	if len(ca) > 0 {
		steps = append(steps,
			func() error { return dir("etc/ssl", 0o755, 0) },
			func() error { return dir("etc/ssl/certs", 0o755, 0) },
			func() error { return file(strings.TrimPrefix(CAPath, "/"), 0o644, ca) })
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write builds the image and writes the tarball at out (replaced atomically).
func Write(spec Spec, out string) error {
	img, err := Image(spec)
	if err != nil {
		return err
	}
	ref, err := name.NewTag(spec.Repo + ":" + spec.Version)
	if err != nil {
		return fmt.Errorf("image reference %s:%s: %w", spec.Repo, spec.Version, err)
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(out), ".ociimage-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmpDir)
	lp, err := layout.Write(tmpDir, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": spec.Version,
		"io.containerd.image.name":          ref.Name(),
	})); err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	// docker-save's manifest.json next to the layout: older docker load and podman read it.
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	var layerPaths []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		layerPaths = append(layerPaths, "blobs/sha256/"+d.Hex)
	}
	compat, err := json.Marshal([]map[string]any{{
		"Config": "blobs/sha256/" + cfgName.Hex, "RepoTags": []string{ref.Name()}, "Layers": layerPaths,
	}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmpDir, "manifest.json"), compat, 0o644); err != nil {
		return err
	}
	return tarDir(tmpDir, out, spec.Created)
}

// tarDir writes the files under dir into the tar file out, in a stable order.
func tarDir(dir, out string, mtime time.Time) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	tmp, err := os.CreateTemp(filepath.Dir(out), ".ociimage-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), ModTime: mtime}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := errors.Join(tw.Close(), tmp.Chmod(0o644), tmp.Close()); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return os.Rename(tmp.Name(), out)
}
