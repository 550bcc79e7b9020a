package readmecheck_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/devenv"
)

var readmeFlag = flag.String("readme", "", "README to check (default: the repository's README.md)")

// Shared by every test; set up once in TestMain.
var (
	root   string // repository root
	readme *doc   // the parsed README
	bins   binaries
	arch   *archiveFixture
)

// binaries are the programs built once for all tests.
type binaries struct {
	Dir      string            // also the dev_overrides directory (holds the provider)
	Provider string            // terraform-provider-livehook
	Archiver string            // archiver
	Emulator string            // live-emulator
	ByPkg    map[string]string // "./internal/emulator/cmd/live-emulator" -> its binary
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "readmecheck-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "readmecheck:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	env, err := devenv.NewEnv(filepath.Join(tmp, "env"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "readmecheck:", err)
		return 1
	}
	defer env.Close() // stops the archiver even when setup fails half-way
	if err := setup(env, tmp); err != nil {
		fmt.Fprintln(os.Stderr, "readmecheck: setup:", err)
		return 1
	}
	return m.Run()
}

func setup(env *devenv.Env, tmp string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	if root, err = devenv.RepoRoot(); err != nil {
		return err
	}
	file := *readmeFlag
	if file == "" {
		file = filepath.Join(root, "README.md")
	}
	if readme, err = parseREADME(file); err != nil {
		return err
	}
	if bins, err = build(ctx, filepath.Join(tmp, "bin")); err != nil {
		return err
	}
	// The archive must lie in one day for the date substitutions; a run that straddles
	// midnight is simply repeated.
	for attempt := 1; ; attempt++ {
		arch, err = populate(ctx, env, filepath.Join(tmp, fmt.Sprintf("archive-run-%d", attempt)))
		if err != nil || len(arch.Days) == 1 || attempt == 2 {
			break
		}
	}
	if err == nil && len(arch.Days) != 1 {
		err = fmt.Errorf("archive spans days %v, want one", arch.Days)
	}
	return err
}

// build compiles the provider, the archiver, the emulator and every main package the README
// runs with `go run`, with one `go build`.
func build(ctx context.Context, dir string) (binaries, error) {
	pkgs := []string{".", "./archiver", "./internal/emulator/cmd/live-emulator"}
	for _, c := range readme.allCommands() {
		w := strings.Fields(c.Text)
		if len(w) >= 3 && w[0] == "go" && w[1] == "run" && strings.HasPrefix(w[2], "./") {
			// A package that does not exist is reported by the command's own check.
			if st, err := os.Stat(filepath.Join(root, filepath.FromSlash(w[2]))); err == nil && st.IsDir() {
				pkgs = append(pkgs, pkgPath(w[2]))
			}
		}
	}
	sort.Strings(pkgs)
	pkgs = compact(pkgs)
	b := binaries{Dir: dir, ByPkg: map[string]string{}}
	for _, p := range pkgs {
		name := path.Base(p)
		if p == "." {
			name = path.Base(devenv.ModulePath)
		}
		b.ByPkg[p] = filepath.Join(dir, name)
	}
	b.Provider, b.Archiver, b.Emulator = b.ByPkg["."], b.ByPkg["./archiver"], b.ByPkg["./internal/emulator/cmd/live-emulator"]
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return b, nil
}

// pkgPath normalises a relative package path to "./a/b" (or ".").
func pkgPath(p string) string {
	if p = path.Clean(p); p == "." {
		return p
	}
	return "./" + p
}

func compact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// archiveFixture is a real archive written by `archiver serve` to a file store (the same
// layout as the S3 one) from the sample callbacks in testdata/.
type archiveFixture struct {
	Dir     string   // the store directory (file store root = bucket prefix)
	URL     string   // file:///... store URL
	Days    []string // dt= days present
	Objects []string // every object key, slash-separated, relative to Dir
	Records []record // every archived line, in object-then-line order
	Posted  int      // callbacks answered "ok"
}

// record is one archived line with its key order kept.
type record struct {
	Keys        []string // top-level keys in order
	ArchiveKeys []string // keys of "archive" in order
	Fields      map[string]any
	Archive     map[string]any
	Object      string
	Day         string
}

func (r record) str(k string) string { s, _ := r.Fields[k].(string); return s }
func (r record) arch(k string) string {
	s, _ := r.Archive[k].(string)
	return s
}

func populate(ctx context.Context, env *devenv.Env, dir string) (*archiveFixture, error) {
	store := filepath.Join(dir, "archive")
	if err := os.MkdirAll(store, 0o755); err != nil {
		return nil, err
	}
	a := &archiveFixture{Dir: store, URL: "file://" + filepath.ToSlash(store)}
	p, err := env.Start(ctx, devenv.Spec{
		Name: "archiver-" + filepath.Base(dir),
		Path: bins.Archiver,
		Args: []string{"serve", "--listen", "127.0.0.1:0", "--store", a.URL, "--allow-unsigned",
			"--spool", filepath.Join(dir, "spool"), "--flush-interval", "100ms"},
		Dir:           dir,
		WaitListening: true,
		StartTimeout:  20 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	bodies, err := filepath.Glob("../../archiver/testdata/callbacks/*.json")
	if err != nil || len(bodies) == 0 {
		return nil, fmt.Errorf("no sample callbacks in archiver/testdata/callbacks (%v)", err)
	}
	sort.Strings(bodies)
	for _, f := range bodies {
		body, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		code, ans, err := post(ctx, p.URL+"/callback", body)
		if err != nil || code != http.StatusOK {
			return nil, fmt.Errorf("POST %s: %d %s %v", f, code, ans, err)
		}
		var st struct{ Status string }
		if json.Unmarshal(ans, &st) == nil && st.Status == "ok" {
			a.Posted++
		}
	}
	// One callback with the identity of a sample and another unsigned field: archived as a
	// repeat, so the archive also holds an "archive.repeat" field.
	repeat, err := os.ReadFile("../../archiver/testdata/callbacks/unsigned-publish.json")
	if err != nil {
		return nil, err
	}
	repeat = bytes.Replace(repeat, []byte(`"116.31.96.221"`), []byte(`"198.51.100.7"`), 1)
	if code, ans, err := post(ctx, p.URL+"/callback", repeat); err != nil || code != http.StatusOK || !bytes.Contains(ans, []byte(`"ok"`)) {
		return nil, fmt.Errorf("POST of a repeat: want 200 ok, got %d %s %v", code, ans, err)
	}
	a.Posted++
	// One rejection, so the archive also holds a _rejected/ sample.
	if code, ans, err := post(ctx, p.URL+"/callback", []byte("not json")); err != nil || code != http.StatusBadRequest {
		return nil, fmt.Errorf("POST of a non-JSON body: want 400, got %d %s %v", code, ans, err)
	}
	// SIGTERM drains the spool into the store, so after a clean exit the archive is complete.
	if err := p.Stop(); err != nil {
		return nil, fmt.Errorf("stopping the archiver: %w\n%s", err, p.Tail(20))
	}
	if err := a.load(); err != nil {
		return nil, err
	}
	if len(a.Records) != a.Posted {
		return nil, fmt.Errorf("archive holds %d records, the archiver acknowledged %d", len(a.Records), a.Posted)
	}
	return a, nil
}

func post(ctx context.Context, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(resp.Body)
	return resp.StatusCode, ans, err
}

func (a *archiveFixture) load() error {
	days := map[string]bool{}
	err := filepath.WalkDir(a.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a.Dir, p)
		key := filepath.ToSlash(rel)
		a.Objects = append(a.Objects, key)
		if !strings.HasPrefix(key, "dt=") {
			return nil
		}
		day := strings.TrimPrefix(strings.SplitN(key, "/", 2)[0], "dt=")
		days[day] = true
		recs, err := readObject(p)
		if err != nil {
			return fmt.Errorf("archive object %s: %w", key, err)
		}
		for i := range recs {
			recs[i].Object, recs[i].Day = key, day
		}
		a.Records = append(a.Records, recs...)
		return nil
	})
	if err != nil {
		return err
	}
	for d := range days {
		a.Days = append(a.Days, d)
	}
	sort.Strings(a.Days)
	return nil
}

func readObject(p string) ([]record, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	var out []record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		rec, err := parseRecord(sc.Bytes())
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

func parseRecord(line []byte) (record, error) {
	var rec record
	keys, err := objectKeys(line)
	if err != nil {
		return rec, err
	}
	rec.Keys = keys
	if err := json.Unmarshal(line, &rec.Fields); err != nil {
		return rec, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return rec, err
	}
	if a, ok := raw["archive"]; ok {
		if rec.ArchiveKeys, err = objectKeys(a); err != nil {
			return rec, fmt.Errorf("archive: %w", err)
		}
		rec.Archive, _ = rec.Fields["archive"].(map[string]any)
	}
	return rec, nil
}

// objectKeys lists the keys of a JSON object in document order (maps lose it).
func objectKeys(data []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object (%v)", err)
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the object")
	}
	return keys, nil
}

// cleanEnv is the environment for the programs the checks run: none of the developer's
// terraform, Live or AWS settings leak in, and terraform never phones home.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TF_") || strings.HasPrefix(k, "HW_") || strings.HasPrefix(k, "LIVEHOOK_") || strings.HasPrefix(k, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "CHECKPOINT_DISABLE=1"), extra...)
}

// runCmd runs a program to completion (2 minutes at most) and returns its output.
func runCmd(t *testing.T, dir string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func terraformBin(t *testing.T) string {
	t.Helper()
	tf, err := devenv.TerraformBinary()
	if err != nil {
		t.Fatal(err)
	}
	return tf
}
