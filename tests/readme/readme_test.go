package readme

import (
	"bytes"
	"context"

	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"

	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

// root is the repository (this module is tests/ inside it).
var root = func() string { r, _ := devenv.RepoRoot(); return r }()

// block is one fenced code block of a checked document with the check directive before it, if any.
type block struct {
	File                  string // the document, relative to the repository root
	Lang, Text, Directive string
	Line                  int
}

// At names a line of the block's document for a message, file:line.
func (b block) At(line int) string { return fmt.Sprintf("%s:%d", b.File, line) }

var directiveRE = regexp.MustCompile(`^<!--\s*check:\s*(.*?)\s*-->\s*$`)

// blocks parses markdown and returns its fenced code blocks.
func blocks(src []byte) []block {
	doc := goldmark.New().Parser().Parse(text.NewReader(src))
	var out []block
	directive := ""
	for n := doc.FirstChild(); n != nil; n = n.NextSibling() {
		switch n := n.(type) {
		case *ast.HTMLBlock:
			var b strings.Builder
			for i := 0; i < n.Lines().Len(); i++ {
				seg := n.Lines().At(i)
				b.Write(seg.Value(src))
			}
			if m := directiveRE.FindStringSubmatch(strings.TrimSpace(b.String())); m != nil {
				directive = m[1]
				continue
			}
		case *ast.FencedCodeBlock:
			var b strings.Builder
			for i := 0; i < n.Lines().Len(); i++ {
				seg := n.Lines().At(i)
				b.Write(seg.Value(src))
			}
			line := 1
			if n.Lines().Len() > 0 {
				line = bytes.Count(src[:n.Lines().At(0).Start], []byte("\n"))
			}
			out = append(out, block{Lang: string(n.Language(src)), Text: b.String(), Directive: directive, Line: line})
		}
		directive = ""
	}
	return out
}

// documents are the checked files, relative to the repository root: README.md and every guide
// as rendered into docs/guides/ (not its template under templates/guides/). The rendered guide is
// what readers see: tfplugindocs executes the template, so a block holding template syntax reads
// differently there, and `make docs-check` keeps the two equal line for line otherwise.
func documents(t *testing.T) []string {
	t.Helper()
	guides, err := filepath.Glob(filepath.Join(root, "docs", "guides", "*.md"))
	if err != nil || len(guides) == 0 {
		t.Fatalf("no rendered guides in docs/guides (run make docs): %v", err)
	}
	docs := []string{"README.md"}
	for _, g := range guides {
		rel, _ := filepath.Rel(root, g)
		docs = append(docs, rel)
	}
	return docs
}

// docBlocks are the fenced code blocks of every checked document.
func docBlocks(t *testing.T) []block {
	t.Helper()
	var all []block
	for _, doc := range documents(t) {
		src, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks(src) {
			b.File = doc
			if d := b.Directive; d != "" && d != "run" && d != "make" && d != "serve" && !strings.HasPrefix(d, "skip ") {
				t.Errorf("%s: unknown directive <!-- check: %s --> (use run, serve, make or skip REASON)", b.At(b.Line), d)
			}
			all = append(all, b)
		}
	}
	return all
}

// testArchive is a real archive: the archiver binary received the sample callbacks and wrote it.
type testArchive struct {
	Dir    string // the archive (file store root, holds dt=... folders)
	BinDir string // holds the archiver binary
	Day    string // its dt= day
}

var (
	archiveOnce sync.Once
	archiveVal  *testArchive
	archiveErr  error
	workDir     string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	os.Exit(code)
}

func archive(t *testing.T) *testArchive {
	t.Helper()
	archiveOnce.Do(func() { archiveVal, archiveErr = makeArchive() })
	if archiveErr != nil {
		t.Fatalf("making the test archive: %v", archiveErr)
	}
	return archiveVal
}

func makeArchive() (*testArchive, error) {
	var err error
	if workDir, err = os.MkdirTemp("", "readme-check-"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := &testArchive{Dir: filepath.Join(workDir, "archive"), BinDir: filepath.Join(workDir, "bin")}
	bins, err := devenv.Build(ctx, root, a.BinDir, "", "archiver")
	if err != nil {
		return nil, err
	}
	env, err := devenv.NewEnv(filepath.Join(workDir, "env"))
	if err != nil {
		return nil, err
	}
	defer env.Close()
	p, err := env.Start(ctx, proc.Spec{
		Name: "archiver", Path: bins.Archiver, Dir: workDir, WaitListening: true, StopTimeout: 30 * time.Second,
		// The samples include the seed's unsigned example for a domain that also has signed ones,
		// so the archive is made with the explicit unsigned opt-in.
		Args: []string{"serve", "--listen", "127.0.0.1:0", "--store", "file://" + a.Dir, "--spool", filepath.Join(workDir, "spool"),
			"--allow-unsigned"},
	})
	if err != nil {
		return nil, err
	}
	samples, _ := filepath.Glob(filepath.Join(archivetest.SamplesDir(), "*.json"))
	// One more copy of a sample with another unsigned field: archived as a repeat, so the
	// archive also holds an archive.repeat field for the queries to meet.
	samples = append(samples, "repeat")
	for _, f := range samples {
		var body []byte
		if f == "repeat" {
			body, err = os.ReadFile(filepath.Join(archivetest.SamplesDir(), "unsigned-publish.json"))
			body = bytes.Replace(body, []byte(`"116.31.96.221"`), []byte(`"198.51.100.7"`), 1)
		} else {
			body, err = os.ReadFile(f)
		}
		if err != nil {
			return nil, err
		}
		// The seed example as text/plain: the archive also holds an archive.content_type field.
		contentType := "application/json"
		if filepath.Base(f) == "seed-example.json" {
			contentType = "text/plain; charset=utf-8"
		}
		resp, err := http.Post(p.URL+"/callback", contentType, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("POST %s: %s", filepath.Base(f), resp.Status)
		}
	}
	if err := p.Shutdown(); err != nil { // SIGTERM uploads the spool
		return nil, fmt.Errorf("stopping the archiver: %w\n%s", err, p.LogTail(50))
	}
	days, _ := filepath.Glob(filepath.Join(a.Dir, "dt=*"))
	if len(days) == 0 {
		return nil, fmt.Errorf("the archiver wrote no dt= folder under %s:\n%s", a.Dir, p.LogTail(50))
	}
	a.Day = strings.TrimPrefix(filepath.Base(days[0]), "dt=")
	return a, nil
}

var (
	storeRE = regexp.MustCompile(`(s3://[^\s'"]+|file://[^\s'"]+)`)
	dateRE  = regexp.MustCompile(`\b20\d\d-\d\d-\d\d\b`)
)

// localize points a README or guide example at the test archive: store URLs at its directory, the
// `archive/` path of queries at it too, and every date at its day (dates kept when Day is "").
func (a *testArchive) localize(s string) string {
	s = storeRE.ReplaceAllString(s, "file://"+a.Dir)
	s = strings.ReplaceAll(s, "'archive/", "'"+a.Dir+"/")
	if a.Day == "" {
		return s
	}
	return dateRE.ReplaceAllString(s, a.Day)
}

// TestSQL runs every ```sql block in DuckDB against the archive.
func TestSQL(t *testing.T) {
	testenv.Cgo(t, duckDB != nil)
	var n int
	for _, b := range docBlocks(t) {
		if b.Lang != "sql" || strings.HasPrefix(b.Directive, "skip ") {
			continue
		}
		n++
		a := archive(t)
		q := a.localize(b.Text)
		_, rows, err := duckDB(q)
		if err != nil {
			t.Errorf("%s: the query fails: %v\n%s", b.At(b.Line), err, q)
			continue
		}
		if len(rows) == 0 {
			t.Errorf("%s: the query returns no rows from an archive of the sample callbacks:\n%s", b.At(b.Line), q)
		}
	}
	if n == 0 {
		t.Error("README.md and the guides have no ```sql block to run")
	}
}

// commands splits a shell block into command lines: continuations joined, blank lines and
// comment lines dropped. Each comes with its line in the document.
func commands(b block) (cmds []string, lines []int) {
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(strings.TrimRight(b.Text, "\n"), "\n") {
		if cur.Len() == 0 {
			start = b.Line + i + 1
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		if c := strings.TrimSpace(cur.String()); c != "" && !strings.HasPrefix(c, "#") {
			cmds, lines = append(cmds, c), append(lines, start)
		}
		cur.Reset()
	}
	return cmds, lines
}

// TestMakeTargets: in blocks marked <!-- check: make -->, every make target exists (make -n
// resolves it without running anything).
func TestMakeTargets(t *testing.T) {
	var n int
	for _, b := range docBlocks(t) {
		if b.Directive != "make" {
			continue
		}
		cmds, lines := commands(b)
		for i, c := range cmds {
			words := strings.Fields(strings.SplitN(c, "#", 2)[0])
			if len(words) < 2 || words[0] != "make" {
				t.Errorf("%s: not a make command in a <!-- check: make --> block: %s", b.At(lines[i]), c)
				continue
			}
			n++
			cmd := exec.Command("make", append([]string{"-n"}, words[1:]...)...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: %s: make -n fails: %v\n%s", b.At(lines[i]), c, err, out)
			}
		}
	}
	if n == 0 {
		t.Error("README.md and the guides have no <!-- check: make --> block")
	}
}

// TestServeCommands: every command in a block marked <!-- check: serve --> starts (from the
// repository root, its --listen moved to a free 127.0.0.1 port) and prints "listening on".
func TestServeCommands(t *testing.T) {
	listenRE := regexp.MustCompile(`--listen[ =]\S+`)
	var n int
	for _, b := range docBlocks(t) {
		if b.Directive != "serve" {
			continue
		}
		cmds, lines := commands(b)
		for i, c := range cmds {
			n++
			env, err := devenv.NewEnv(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			p, err := env.Start(ctx, proc.Spec{
				Name: "readme-serve", Path: "bash", Args: []string{"-c", "exec " + listenRE.ReplaceAllString(c, "--listen 127.0.0.1:0")},
				Dir: root, WaitListening: true, StopTimeout: 10 * time.Second,
			})
			cancel()
			if err != nil {
				t.Errorf("%s: %s: %v", b.At(lines[i]), c, err)
			} else if err := p.Shutdown(); err != nil {
				t.Logf("%s: stopping: %v", b.At(lines[i]), err)
			}
			env.Close()
		}
	}
	if n == 0 {
		t.Error("README.md and the guides have no <!-- check: serve --> block")
	}
}

// TestHCLFormatted: every ```hcl or ```terraform block (unless skipped) is as `terraform fmt`
// writes it.
func TestHCLFormatted(t *testing.T) {
	tf := testenv.Terraform(t)
	for _, b := range docBlocks(t) {
		if (b.Lang != "hcl" && b.Lang != "terraform") || strings.HasPrefix(b.Directive, "skip ") {
			continue
		}
		cmd := exec.Command(tf, "fmt", "-")
		cmd.Stdin = strings.NewReader(b.Text)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("%s: terraform fmt rejects the block: %v\n%s", b.At(b.Line), err, stderr.String())
		} else if string(out) != b.Text {
			t.Errorf("%s: not formatted as terraform fmt writes it; want:\n%s", b.At(b.Line), out)
		}
	}
}

// TestRunnableCommands runs every line of the blocks marked <!-- check: run -->.
func TestRunnableCommands(t *testing.T) {
	var n int
	for _, b := range docBlocks(t) {
		if b.Directive != "run" {
			continue
		}
		a := archive(t)
		cmds, lines := commands(b)
		for i, line := range cmds {
			n++
			for _, tool := range []string{"jq", "zcat"} {
				if regexp.MustCompile(`\b` + tool + `\b`).MatchString(line) {
					testenv.Binary(t, tool, func() (string, error) { return exec.LookPath(tool) })
				}
			}
			cmdline := a.localize(line)
			cmd := exec.Command("bash", "-o", "pipefail", "-c", cmdline)
			cmd.Dir = a.Dir
			cmd.Env = append(os.Environ(), "PATH="+a.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) == 0 {
				t.Errorf("%s: %s\nran: %s\nerr: %v\noutput:\n%s", b.At(lines[i]), line, cmdline, err, out)
			}
		}
	}
	if n == 0 {
		t.Error("README.md and the guides have no <!-- check: run --> block")
	}
}

// TestBlocks checks the parser and the convention on a small document.
func TestBlocks(t *testing.T) {
	src := "# x\n\n<!-- check: run -->\n```sh\necho a\n```\n\ntext\n\n```sql\nSELECT 1;\n```\n\n<!-- check: skip Athena DDL -->\n```sql\nCREATE TABLE x;\n```\n"
	got := blocks([]byte(src))
	want := []block{
		{Lang: "sh", Text: "echo a\n", Directive: "run", Line: 4},
		{Lang: "sql", Text: "SELECT 1;\n", Line: 10},
		{Lang: "sql", Text: "CREATE TABLE x;\n", Directive: "skip Athena DDL", Line: 15},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("blocks =\n%v\nwant\n%v", got, want)
	}
	cmds, lines := commands(block{Text: "a \\\n  b\n\n# c\nd # e\n", Line: 10})
	if fmt.Sprint(cmds, lines) != "[a    b d # e] [11 15]" {
		t.Errorf("commands = %q %v", cmds, lines)
	}
	a := &testArchive{Dir: "/tmp/a", Day: "2030-01-02"}
	if got := a.localize("archiver events --store s3://b/p --from 2026-11-01 x 'archive/dt=*/*.gz'"); got !=
		"archiver events --store file:///tmp/a --from 2030-01-02 x '/tmp/a/dt=*/*.gz'" {
		t.Errorf("localize: %s", got)
	}
}
