package readme

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"
)

// link is one link or image of a document, with the line it is on.
type link struct {
	Dest string
	Line int
}

// links are the links and images of a markdown document.
func links(src []byte) []link {
	doc := goldmark.New().Parser().Parse(text.NewReader(src))
	var out []link
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		var dest []byte
		switch n := n.(type) {
		case *ast.Link:
			dest = n.Destination
		case *ast.Image:
			dest = n.Destination
		default:
			return ast.WalkContinue, nil
		}
		out = append(out, link{Dest: string(dest), Line: lineOf(src, n)})
		return ast.WalkContinue, nil
	})
	return out
}

// lineOf is the line of an inline node: that of its first text, else of its block.
func lineOf(src []byte, n ast.Node) int {
	for c := n; c != nil; c = c.FirstChild() {
		if t, ok := c.(*ast.Text); ok {
			return strings.Count(string(src[:t.Segment.Start]), "\n") + 1
		}
	}
	for p := n; p != nil; p = p.Parent() {
		if p.Type() == ast.TypeBlock && p.Lines().Len() > 0 {
			return strings.Count(string(src[:p.Lines().At(0).Start]), "\n") + 1
		}
	}
	return 0
}

// anchors are the fragment names GitHub gives a document's headings.
func anchors(src []byte) map[string]bool {
	doc := goldmark.New().Parser().Parse(text.NewReader(src))
	seen := map[string]int{}
	out := map[string]bool{}
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if h, ok := n.(*ast.Heading); ok && entering {
			s := slug(plainText(src, h))
			if k := seen[s]; k > 0 {
				out[fmt.Sprintf("%s-%d", s, k)] = true
			} else {
				out[s] = true
			}
			seen[s]++
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	return out
}

// plainText is a heading's text as GitHub slugs it: code spans and emphasis reduced to their text.
func plainText(src []byte, n ast.Node) string {
	var b strings.Builder
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch c := c.(type) {
		case *ast.Text:
			b.Write(c.Segment.Value(src))
		case *ast.String:
			b.Write(c.Value)
		}
		return ast.WalkContinue, nil
	})
	return b.String()
}

// slug is GitHub's heading anchor: lower case, punctuation dropped (but - and _), spaces to -.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

var schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

// checkLink says what is wrong with a relative link of doc (a path relative to repo), or "".
// Links with a scheme (https:, mailto:) are not followed: the tests never go online.
func checkLink(repo, doc, dest string) string {
	if dest == "" {
		return "empty link"
	}
	if schemeRE.MatchString(dest) || strings.HasPrefix(dest, "//") {
		return ""
	}
	u, err := url.Parse(dest)
	if err != nil {
		return fmt.Sprintf("%q is not a valid link: %v", dest, err)
	}
	target := doc
	if u.Path != "" {
		if strings.HasPrefix(u.Path, "/") {
			return fmt.Sprintf("%q is absolute: write it relative to %s", dest, filepath.Dir(doc))
		}
		target = filepath.Join(filepath.Dir(doc), filepath.FromSlash(u.Path))
		if target == ".." || strings.HasPrefix(target, ".."+string(filepath.Separator)) {
			return fmt.Sprintf("%q leaves the repository", dest)
		}
	}
	info, err := os.Stat(filepath.Join(repo, target))
	if err != nil {
		return fmt.Sprintf("%q: %s does not exist", dest, filepath.ToSlash(target))
	}
	if u.Fragment == "" {
		return ""
	}
	if info.IsDir() || !strings.HasSuffix(target, ".md") {
		return fmt.Sprintf("%q: #%s names a heading, but %s is not a markdown file", dest, u.Fragment, filepath.ToSlash(target))
	}
	src, err := os.ReadFile(filepath.Join(repo, target))
	if err != nil {
		return err.Error()
	}
	if !anchors(src)[u.Fragment] {
		return fmt.Sprintf("%q: %s has no heading #%s", dest, filepath.ToSlash(target), u.Fragment)
	}
	return ""
}

// TestLinks: every relative link and image of README.md and the guides names a file or directory
// of the repository, and a #fragment a heading of its markdown target (as GitHub names it), so
// moving text between the README and the guides cannot leave a dead link behind.
func TestLinks(t *testing.T) {
	var n int
	for _, doc := range documents(t) {
		src, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links(src) {
			n++
			if msg := checkLink(root, doc, l.Dest); msg != "" {
				t.Errorf("%s:%d: %s", doc, l.Line, msg)
			}
		}
	}
	if n == 0 {
		t.Error("README.md and the guides have no links")
	}
}

// TestCheckLink: the link checker itself, on a small tree.
func TestCheckLink(t *testing.T) {
	repo := t.TempDir()
	for name, body := range map[string]string{
		"README.md":           "# livehook\n\n## Two commands\n\n## Tests and benchmarks\n\n## Two commands\n",
		"docs/guides/a.md":    "# A guide\n\n## Proving the archive complete: digests, `archiver verify`\n\n## Function: `provider::livehook::x`\n",
		"examples/ci/x.yml":   "x",
		"docs/performance.md": "# Performance\n",
	} {
		p := filepath.Join(repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		doc, dest, want string // want: "" or a part of the message
	}{
		{"README.md", "docs/guides/a.md", ""},
		{"README.md", "docs/guides/a.md#proving-the-archive-complete-digests-archiver-verify", ""},
		{"README.md", "docs/guides/a.md#function-providerlivehookx", ""},
		{"README.md", "#two-commands-1", ""},
		{"README.md", "#tests-and-benchmarks", ""},
		{"README.md", "examples/ci", ""},
		{"README.md", "https://example.com/nowhere", ""},
		{"README.md", "mailto:x@example.com", ""},
		{"docs/guides/a.md", "../../examples/ci/x.yml", ""},
		{"docs/guides/a.md", "../performance.md#performance", ""},
		{"docs/guides/a.md", "../../README.md#two-commands", ""},
		{"docs/guides/a.md", "#a-guide", ""},
		{"README.md", "#development", "README.md has no heading #development"},
		{"README.md", "docs/guides/b.md", "docs/guides/b.md does not exist"},
		{"docs/guides/a.md", "examples/ci/x.yml", "docs/guides/examples/ci/x.yml does not exist"},
		{"docs/guides/a.md", "../../README.md#releases", "README.md has no heading #releases"},
		{"README.md", "examples/ci/x.yml#top", "not a markdown file"},
		{"README.md", "../../etc/passwd", "leaves the repository"},
		{"README.md", "/etc/passwd", "is absolute"},
		{"README.md", "", "empty link"},
		{"README.md", "%zz", "not a valid link"},
	} {
		got := checkLink(repo, c.doc, c.dest)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("checkLink(%s, %q) = %q, want %q", c.doc, c.dest, got, c.want)
		}
	}
	src := []byte("# T\n\nsee [a](x.md) and\n![img](y.png \"t\") [b](<z w.md>)\n\n```\n[not](a link)\n```\n")
	if got := fmt.Sprint(links(src)); got != "[{x.md 3} {y.png 4} {z w.md 4}]" {
		t.Errorf("links = %s", got)
	}
}
