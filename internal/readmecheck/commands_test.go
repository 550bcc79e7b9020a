package readmecheck_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/devenv"
)

// checker checks one kind of README command against the real product.
type checker struct {
	name  string
	match func(c command) bool
	// group: consecutive matching commands of one sh block are checked together (they build
	// on each other, like mkdir then cp).
	group bool
	check func(t *testing.T, cmds []command)
}

// notRun is the short, visible list of README commands that are deliberately not run.
// An entry no README command uses any more fails the test, so the list cannot rot either.
var notRun = []struct{ prefix, reason string }{
	{"aws s3 cp ", "external tool (AWS CLI) against a real bucket, not run; the archive layout it copies is checked by TestArchiveLayoutBlock"},
	{"terraform providers lock ", "run by tools/release TestMirrorInstall against a mirror that make mirror wrote"},
	{"TF_ACC=1 LIVEHOOK_ACC_LIVE=1 ", "needs a Huawei Cloud account and a test push domain; without LIVEHOOK_ACC_LIVE=1 the suite skips"},
	{"docker load ", "container engines are not on CI; tools/release TestImage reads the tarball as docker load does (docker-save manifest.json) and as an OCI layout"},
	{"podman load ", "container engines are not on CI; the tarball's formats are checked by tools/release TestImage"},
	{"crane push ", "needs a registry; tools/release TestImage checks the tarball crane reads"},
	{"skopeo copy ", "needs a registry; tools/release TestImage checks the OCI layout skopeo reads"},
}

// checkers is every kind of command the README may contain. A command none of them matches
// fails TestCommands: a new README command needs a new check here.
var checkers = []checker{
	{name: "make targets", match: wordsAre("make"), check: checkMake},
	{name: "go install = make tools", match: wordsAre("go", "install"), check: checkGoInstall},
	{name: "go vet/test/...: CI runs it", match: func(c command) bool {
		return c.Inline && (wordsAre("go", "vet")(c) || wordsAre("go", "test")(c))
	}, check: checkCIRuns},
	{name: "go run: a server", match: func(c command) bool { return !c.Inline && wordsAre("go", "run")(c) && hasFlag(c, "listen") }, check: checkGoRunServer},
	{name: "go run: flags exist", match: func(c command) bool { return c.Inline && wordsAre("go", "run")(c) }, check: checkGoRunHelp},
	{name: "archiver events: run on a real archive", match: func(c command) bool { return !c.Inline && wordsAre("archiver", "events")(c) }, check: checkArchiverEvents},
	{name: "archiver: subcommand and flags exist", match: func(c command) bool { return c.Inline && wordsAre("archiver")(c) }, check: checkArchiverHelp},
	{name: "zcat | jq: run on a real archive", match: func(c command) bool {
		return !c.Inline && wordsAre("zcat")(c) && strings.Contains(c.Text, "| jq ")
	}, check: checkZcatJq},
	{name: "terraform import", match: wordsAre("terraform", "import"), check: checkTerraformImport},
	{name: "terraform: subcommand and flags exist", match: func(c command) bool { return c.Inline && wordsAre("terraform")(c) }, check: checkTerraformHelp},
	{name: "filesystem mirror install + offline terraform init", group: true, match: func(c command) bool {
		return !c.Inline && (wordsAre("mkdir")(c) || wordsAre("cp")(c)) && strings.Contains(c.Text, ".terraform.d/plugins/")
	}, check: checkFilesystemMirror},
}

func wordsAre(prefix ...string) func(command) bool {
	return func(c command) bool {
		w := strings.Fields(c.Text)
		if len(w) < len(prefix) {
			return false
		}
		for i, p := range prefix {
			if w[i] != p {
				return false
			}
		}
		return true
	}
}

// flagNames are the flags of a command line ("--a=1 -b x" => a, b).
func flagNames(words []string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, "-") && len(strings.TrimLeft(w, "-")) > 0 {
			n, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
			out = append(out, n)
		}
	}
	return out
}

func hasFlag(c command, name string) bool {
	for _, f := range flagNames(strings.Fields(c.Text)) {
		if f == name {
			return true
		}
	}
	return false
}

func TestCommands(t *testing.T) {
	cmds := readme.allCommands()
	if len(cmds) == 0 {
		t.Fatal("found no commands in the README: is the parser broken?")
	}
	used := make([]bool, len(notRun))
	for i := 0; i < len(cmds); i++ {
		c := cmds[i]
		if k := allowListed(c); k >= 0 {
			used[k] = true
			t.Logf("%s: not run: %s", c, notRun[k].reason)
			continue
		}
		var ck *checker
		for j := range checkers {
			if checkers[j].match(c) {
				ck = &checkers[j]
				break
			}
		}
		if ck == nil {
			t.Errorf("%s: no check recognises this command; add one to the checkers table in internal/readmecheck so it cannot go stale", c)
			continue
		}
		group := []command{c}
		for ck.group && i+1 < len(cmds) && !c.Inline && cmds[i+1].Fence == c.Fence && ck.match(cmds[i+1]) {
			i++
			group = append(group, cmds[i])
		}
		t.Run(fmt.Sprintf("line_%d_%s", c.Line, strings.Join(strings.Fields(c.Text)[:min(2, len(strings.Fields(c.Text)))], "_")), func(t *testing.T) {
			t.Parallel()
			for _, g := range group {
				t.Logf("%s [%s]", g, ck.name)
			}
			ck.check(t, group)
		})
	}
	for k, u := range used {
		if !u {
			t.Errorf("allow-list entry %q matches no README command any more: remove it from notRun", notRun[k].prefix)
		}
	}
}

func allowListed(c command) int {
	for k, e := range notRun {
		if strings.HasPrefix(c.Text, e.prefix) {
			return k
		}
	}
	return -1
}

// checkMake: every target exists (make -n resolves it without running anything).
func checkMake(t *testing.T, cmds []command) {
	c := cmds[0]
	var targets []string
	for _, w := range strings.Fields(c.Text)[1:] {
		if !strings.HasPrefix(w, "-") && !strings.Contains(w, "=") {
			targets = append(targets, w)
		}
	}
	for _, tg := range targets {
		if _, stderr, err := runCmd(t, root, cleanEnv(), "make", "-n", tg); err != nil {
			t.Errorf("%s: target %q: make -n %s failed: %v\n%s", c, tg, tg, err, stderr)
		}
	}
}

// checkGoInstall: the README's go install line is what `make tools` really installs.
func checkGoInstall(t *testing.T, cmds []command) {
	c := cmds[0]
	out, stderr, err := runCmd(t, root, cleanEnv(), "make", "-n", "tools")
	if err != nil {
		t.Fatalf("%s: make -n tools: %v\n%s", c, err, stderr)
	}
	if !strings.Contains(out, c.Text) {
		t.Errorf("%s: `make tools` does not run this; it runs:\n%s", c, out)
	}
}

// checkCIRuns: the prose says CI (.ci/run) runs this go command; it does.
func checkCIRuns(t *testing.T, cmds []command) {
	c := cmds[0]
	b, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatalf("%s: %v", c, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l == c.Text || strings.HasPrefix(l, c.Text+" ") {
			return
		}
	}
	t.Errorf("%s: .ci/run does not run this command", c)
}

// binaryFor returns the binary built for the package of `go run PKG ...`.
func binaryFor(t *testing.T, c command) (string, []string) {
	t.Helper()
	w := strings.Fields(c.Text)
	if len(w) < 3 {
		t.Fatalf("%s: go run without a package", c)
	}
	bin, ok := bins.ByPkg[pkgPath(w[2])]
	if !ok {
		t.Fatalf("%s: package %s does not exist in the repository", c, w[2])
	}
	return bin, w[3:]
}

// checkGoRunServer starts the program with the README's flags (the listen address replaced
// by a free 127.0.0.1 port) and waits until it listens.
func checkGoRunServer(t *testing.T, cmds []command) {
	c := cmds[0]
	bin, args := binaryFor(t, c)
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--listen" || args[i] == "-listen":
			if i+1 < len(args) {
				args[i+1] = "127.0.0.1:0"
			}
		case strings.HasPrefix(args[i], "--listen=") || strings.HasPrefix(args[i], "-listen="):
			args[i] = "--listen=127.0.0.1:0"
		}
	}
	env, err := devenv.NewEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := env.Start(ctx, devenv.Spec{Name: filepath.Base(bin), Path: bin, Args: args, Dir: env.Dir,
		Env: []string{"HW_PROJECT_ID=", "HW_ACCESS_KEY=", "HW_SECRET_KEY="}, WaitListening: true, StartTimeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("%s: %v", c, err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(p.URL + "/")
	if err != nil {
		t.Errorf("%s: said it listens on %s, but: %v", c, p.URL, err)
	} else {
		resp.Body.Close()
	}
	if err := p.Stop(); err != nil {
		t.Errorf("%s: did not stop cleanly on SIGTERM: %v\n%s", c, err, p.Tail(10))
	}
}

// helpLists fails unless every flag is documented in a program's -h output.
func helpLists(t *testing.T, c command, help string, flags []string) {
	t.Helper()
	for _, f := range flags {
		if !regexp.MustCompile(`(?m)^\s+--?` + regexp.QuoteMeta(f) + `\b`).MatchString(help) {
			t.Errorf("%s: flag -%s does not exist (not in the -h output)", c, f)
		}
	}
}

func checkGoRunHelp(t *testing.T, cmds []command) {
	c := cmds[0]
	bin, args := binaryFor(t, c)
	out, stderr, _ := runCmd(t, root, cleanEnv(), bin, "-h")
	helpLists(t, c, out+stderr, flagNames(args))
}

func checkArchiverHelp(t *testing.T, cmds []command) {
	c := cmds[0]
	w := strings.Fields(c.Text)
	out, stderr, err := runCmd(t, root, cleanEnv(), bins.Archiver, w[1], "-h")
	if err != nil {
		t.Fatalf("%s: archiver %s -h: %v (no such subcommand?)\n%s", c, w[1], err, stderr)
	}
	helpLists(t, c, out+stderr, flagNames(w[2:]))
}

var (
	dateRE    = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}\b`)
	storeURLR = regexp.MustCompile(`\b(s3|file)://[^\s'"]*`)
)

// localize points a README command at the test archive: its store URLs at the file store
// and its dates at the archive's day.
func localize(s string) string {
	s = dateRE.ReplaceAllString(s, arch.Days[0])
	return storeURLR.ReplaceAllString(s, arch.URL)
}

// checkArchiverEvents runs the command for real against the archive the archiver wrote and
// checks that what it prints is exactly the matching archived events.
func checkArchiverEvents(t *testing.T, cmds []command) {
	c := cmds[0]
	w := strings.Fields(localize(c.Text))
	var args []string
	opt := map[string]string{"format": "jsonl"}
	for i := 1; i < len(w); i++ {
		name := strings.TrimLeft(w[i], "-")
		// S3 connection flags mean nothing for the file store.
		if name == "s3-endpoint" || name == "s3-region" {
			i++
			continue
		}
		args = append(args, w[i])
		if strings.HasPrefix(w[i], "-") && i+1 < len(w) && !strings.HasPrefix(w[i+1], "-") {
			opt[name] = w[i+1]
			args = append(args, w[i+1])
			i++
		}
	}
	out, stderr, err := runCmd(t, t.TempDir(), cleanEnv(), bins.Archiver, args...)
	if err != nil {
		t.Fatalf("%s: ran as `archiver %s`: %v\n%s", c, strings.Join(args, " "), err, stderr)
	}
	var want int
	for _, r := range arch.Records {
		if (opt["domain"] == "" || r.str("domain") == opt["domain"]) && (opt["event"] == "" || r.str("event") == opt["event"]) {
			want++
		}
	}
	lines := nonEmptyLines(out)
	if want == 0 {
		t.Fatalf("%s: the test archive has no event this command selects; adjust the sample callbacks", c)
	}
	switch opt["format"] {
	case "table":
		if len(lines) != want+1 {
			t.Errorf("%s: printed %d lines, want a header and %d rows:\n%s", c, len(lines), want, out)
		}
	default:
		if len(lines) != want {
			t.Errorf("%s: printed %d events, want %d:\n%s", c, len(lines), want, out)
		}
		for _, l := range lines {
			var ev map[string]any
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev["archive"] == nil {
				t.Errorf("%s: line is not an archived event: %s (%v)", c, l, err)
			}
		}
	}
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// checkZcatJq runs the pipeline with bash in a copy of the bucket prefix (dt=... folders).
func checkZcatJq(t *testing.T, cmds []command) {
	c := cmds[0]
	for _, tool := range []string{"bash", "zcat", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %s is not installed, so this README command cannot be checked: install it (e.g. apt-get install %s)", c, tool, tool)
		}
	}
	script := localize(c.Text)
	out, stderr, err := runCmd(t, arch.Dir, cleanEnv(), "bash", "-o", "pipefail", "-c", script)
	if err != nil {
		t.Fatalf("%s: ran `%s`: %v\n%s", c, script, err, stderr)
	}
	lines := nonEmptyLines(out)
	if len(lines) == 0 || len(lines) > len(arch.Records) {
		t.Fatalf("%s: printed %d lines for %d archived events:\n%s", c, len(lines), len(arch.Records), out)
	}
	for _, l := range lines {
		var v any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Errorf("%s: output line is not JSON: %s", c, l)
			continue
		}
		// A field name that no longer exists shows up as null.
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				if x == nil {
					t.Errorf("%s: %q is null in %s: the filter names a field the archive does not have", c, k, l)
				}
			}
		}
	}
}

// checkTerraformImport: `terraform import` is a command of the installed terraform, the
// resource type exists, and the acceptance test imports by the same kind of ID.
func checkTerraformImport(t *testing.T, cmds []command) {
	c := cmds[0]
	checkTerraformHelp(t, cmds)
	w := strings.Fields(c.Text)
	if len(w) != 4 {
		t.Fatalf("%s: want `terraform import ADDRESS ID`", c)
	}
	typ, _, _ := strings.Cut(w[2], ".")
	if _, ok := providerSchema(t).Resources[typ]; !ok {
		t.Errorf("%s: the provider has no resource %q", c, typ)
	}
	src, err := os.ReadFile(filepath.Join(root, "internal", "provider", "resource_publish_notification_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	// The steps live in lifecycleCase, shared with the suite against the real Live API.
	body := funcBody(string(src), "TestAccPublishNotification_lifecycle") + funcBody(string(src), "lifecycleCase")
	if !strings.Contains(body, "ImportState:") || !strings.Contains(body, "ImportStateId:") || !strings.Contains(body, "ImportStateVerify:") {
		t.Errorf("%s: the acceptance test TestAccPublishNotification_lifecycle no longer has an import step (ImportState + ImportStateId + ImportStateVerify) that proves this command", c)
	}
}

// funcBody returns the source of a top-level func, up to the next one.
func funcBody(src, name string) string {
	i := strings.Index(src, "func "+name+"(")
	if i < 0 {
		return ""
	}
	rest := src[i+1:]
	if j := strings.Index(rest, "\nfunc "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// checkTerraformHelp: the subcommand exists in the installed terraform with these flags.
func checkTerraformHelp(t *testing.T, cmds []command) {
	c := cmds[0]
	w := strings.Fields(c.Text)
	out, stderr, err := runCmd(t, t.TempDir(), cleanEnv(), terraformBin(t), w[1], "-help")
	if err != nil {
		t.Fatalf("%s: terraform has no command %q: %v\n%s", c, w[1], err, out+stderr)
	}
	helpLists(t, c, out+stderr, flagNames(w[2:]))
}

var mirrorVersionRE = regexp.MustCompile(`/livehook/livehook/(\d+)\.(\d+)\.(\d+)/`)

// checkFilesystemMirror runs the README's mkdir/cp lines with HOME in a temporary directory
// (and a provider build where `make build` puts it), then proves the install works: an
// offline `terraform init` with no CLI config finds the provider through the implicit local
// mirror, and `terraform validate` runs it.
func checkFilesystemMirror(t *testing.T, cmds []command) {
	c := cmds[0]
	tmp := t.TempDir()
	home, wd, cfg := filepath.Join(tmp, "home"), filepath.Join(tmp, "repo"), filepath.Join(tmp, "config")
	for _, d := range []string{home, filepath.Join(wd, "bin"), cfg} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var script []string
	var version []string
	for _, m := range cmds {
		s := strings.ReplaceAll(m.Text, "linux_amd64", runtime.GOOS+"_"+runtime.GOARCH)
		w := strings.Fields(s)
		if w[0] == "cp" && len(w) == 3 && !strings.HasPrefix(w[1], "~") && !strings.HasPrefix(w[1], "/") {
			// The source is a repository path: check that `make build` writes it, then put
			// our build there.
			out, _, err := runCmd(t, root, cleanEnv(), "make", "-n", "build")
			if err != nil || !strings.Contains(out, "-o "+w[1]+" ") {
				t.Errorf("%s: %s is not what `make build` writes (make -n build:\n%s)", m, w[1], out)
			}
			if err := copyFile(bins.Provider, filepath.Join(wd, filepath.FromSlash(w[1]))); err != nil {
				t.Fatal(err)
			}
		}
		if v := mirrorVersionRE.FindStringSubmatch(s); v != nil {
			version = v
		}
		script = append(script, s)
	}
	if version == nil {
		t.Fatalf("%s: no livehook/livehook/X.Y.Z/ directory in these commands", c)
	}
	env := cleanEnv("HOME=" + home)
	if out, stderr, err := runCmd(t, wd, env, "bash", "-euo", "pipefail", "-c", strings.Join(script, "\n")); err != nil {
		t.Fatalf("%s: running the README's commands failed: %v\n%s%s", c, err, out, stderr)
	}
	constraint := fmt.Sprintf("~> %s.%s", version[1], version[2])
	tfcfg := fmt.Sprintf("terraform {\n  required_providers {\n    livehook = {\n      source  = \"livehook/livehook\"\n      version = %q\n    }\n  }\n}\n\nprovider \"livehook\" {\n  endpoint = \"http://127.0.0.1:1\"\n}\n", constraint)
	if err := os.WriteFile(filepath.Join(cfg, "main.tf"), []byte(tfcfg), 0o644); err != nil {
		t.Fatal(err)
	}
	tf := terraformBin(t)
	out, stderr, err := runCmd(t, cfg, env, tf, "init", "-no-color", "-input=false")
	if err != nil {
		t.Fatalf("%s: after these commands, an offline `terraform init` (version %s) fails: %v\n%s%s", c, constraint, err, out, stderr)
	}
	if want := fmt.Sprintf("Installed livehook/livehook v%s.%s.%s", version[1], version[2], version[3]); !strings.Contains(out, want) {
		t.Errorf("%s: terraform init did not say %q:\n%s", c, want, out)
	}
	if out, stderr, err := runCmd(t, cfg, env, tf, "validate", "-no-color"); err != nil {
		t.Errorf("%s: terraform validate with the mirrored provider: %v\n%s%s", c, err, out, stderr)
	}
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}
