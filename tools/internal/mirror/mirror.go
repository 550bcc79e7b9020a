// Package mirror turns a GoReleaser dist/ directory into a Terraform provider mirror that
// pipelines install from without the public registry:
//
// DIR/registry.terraform.io/livehook/livehook/ then holds the release zips (the packed layout of a
// provider_installation "filesystem_mirror") next to index.json and VERSION.json (the layout of a
// "network_mirror", served by any static HTTPS file server). Every zip is checked against the
// release's SHA256SUMS first; running it for another release adds that version to index.json.
package mirror

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/dirhash"
)

// Provider address parts; the mirror's directory is HOSTNAME/NAMESPACE/TYPE.
const (
	hostname  = "registry.terraform.io"
	namespace = "livehook"
	ptype     = "livehook"
	project   = "terraform-provider-" + ptype
	// Address is the provider's source address.
	Address = hostname + "/" + namespace + "/" + ptype
)

var zipName = regexp.MustCompile(`^` + regexp.QuoteMeta(project) + `_([0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?)_([a-z0-9]+)_([a-z0-9]+)\.zip$`)

// Archive is one provider zip of a release.
type Archive struct {
	Path     string // in dist
	Name     string
	Platform string // os_arch
	SHA256   string // hex
}

// Release is the provider zips of one version found in dist.
type Release struct {
	Version  string
	Archives []Archive
}

func (r Release) Platforms() []string {
	var p []string
	for _, a := range r.Archives {
		p = append(p, a.Platform)
	}
	return p
}

// Scan finds the provider zips in dist (one version only) and checks each against the
// release's SHA256SUMS, which must list it.
func Scan(dist string) (Release, error) {
	entries, err := os.ReadDir(dist)
	if err != nil {
		return Release{}, fmt.Errorf("read %s (run make release-snapshot first): %w", dist, err)
	}
	var rel Release
	for _, e := range entries {
		m := zipName.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		if rel.Version != "" && rel.Version != m[1] {
			return Release{}, fmt.Errorf("%s holds zips of two versions (%s and %s): clean it and build one release", dist, rel.Version, m[1])
		}
		rel.Version = m[1]
		rel.Archives = append(rel.Archives, Archive{Path: filepath.Join(dist, e.Name()), Name: e.Name(), Platform: m[2] + "_" + m[3]})
	}
	if rel.Version == "" {
		return Release{}, fmt.Errorf("no %s_VERSION_OS_ARCH.zip in %s: run make release-snapshot (or goreleaser) first", project, dist)
	}
	sumsPath := filepath.Join(dist, project+"_"+rel.Version+"_SHA256SUMS")
	sums, err := readSums(sumsPath)
	if err != nil {
		return Release{}, err
	}
	for i, a := range rel.Archives {
		got, err := fileSHA256(a.Path)
		if err != nil {
			return Release{}, err
		}
		want, ok := sums[a.Name]
		switch {
		case !ok:
			return Release{}, fmt.Errorf("%s does not list %s: the zip is not part of this release", sumsPath, a.Name)
		case want != got:
			return Release{}, fmt.Errorf("%s: SHA-256 is %s but %s lists %s: the file is damaged or from another build", a.Name, got, filepath.Base(sumsPath), want)
		}
		rel.Archives[i].SHA256 = got
	}
	return rel, nil
}

// readSums parses "HEX  NAME" lines (sha256sum's format).
func readSums(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checksums of the release: %w", err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("%s line %d: want \"<sha256 hex>  <file name>\"", path, n)
		}
		sums[strings.TrimPrefix(name, "*")] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return sums, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Make copies the release in dist into the mirror directory out and writes the network-mirror
// JSON files next to the zips.
func Make(dist, out string) (Release, error) {
	rel, err := Scan(dist)
	if err != nil {
		return Release{}, err
	}
	dir := filepath.Join(out, hostname, namespace, ptype)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Release{}, err
	}
	type archive struct {
		URL    string   `json:"url"`
		Hashes []string `json:"hashes"`
	}
	archives := map[string]archive{}
	for _, a := range rel.Archives {
		if err := copyFile(a.Path, filepath.Join(dir, a.Name)); err != nil {
			return Release{}, err
		}
		h1, err := dirhash.HashZip(a.Path, dirhash.Hash1)
		if err != nil {
			return Release{}, fmt.Errorf("hash %s: %w", a.Name, err)
		}
		// h1: is what terraform providers lock records for every platform; zh: (the zip's
		// SHA-256, as in SHA256SUMS) lets a team compare against the published sums.
		archives[a.Platform] = archive{URL: a.Name, Hashes: []string{h1, "zh:" + a.SHA256}}
	}
	if err := writeJSON(filepath.Join(dir, rel.Version+".json"), map[string]any{"archives": archives}); err != nil {
		return Release{}, err
	}
	index := struct {
		Versions map[string]struct{} `json:"versions"`
	}{Versions: map[string]struct{}{}}
	indexPath := filepath.Join(dir, "index.json")
	if b, err := os.ReadFile(indexPath); err == nil {
		if err := json.Unmarshal(b, &index); err != nil {
			return Release{}, fmt.Errorf("%s is not a mirror index (%v): remove it or pick another -out", indexPath, err)
		}
		if index.Versions == nil {
			index.Versions = map[string]struct{}{}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Release{}, err
	}
	index.Versions[rel.Version] = struct{}{}
	if err := writeJSON(indexPath, index); err != nil {
		return Release{}, err
	}
	sort.Slice(rel.Archives, func(i, j int) bool { return rel.Archives[i].Platform < rel.Archives[j].Platform })
	return rel, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, func(w io.Writer) error { _, err := w.Write(append(b, '\n')); return err })
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeAtomic(dst, func(w io.Writer) error { _, err := io.Copy(w, in); return err })
}

// writeAtomic replaces path only once the new content is complete, so a mirror being served
// never shows a half-written zip.
func writeAtomic(path string, fill func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mirror-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
