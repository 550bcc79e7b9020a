package readmecheck_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// doc is the README split into what the checks need.
type doc struct {
	Lines   []string // the README, line i+1 at index i
	Fences  []fence
	Spans   []span   // inline code outside fences
	Section []string // title of the "## " section of each line
}

// fence is one fenced code block.
type fence struct {
	Lang  string   // "sh", "hcl", ... ("" for a plain ``` block)
	Line  int      // README line of the opening ```
	Lines []string // the body
}

// bodyLine is the README line of body line i.
func (f fence) bodyLine(i int) int { return f.Line + 1 + i }

// span is one `inline code` span (may run over a line break; whitespace is collapsed).
type span struct {
	Text    string
	Line    int
	Section string
}

// command is one shell command: a line of an sh block (continuations joined, comments
// dropped) or a command-like inline span.
type command struct {
	Text   string
	Line   int
	Inline bool // from prose, not from an sh block
	Fence  int  // index of the sh block in doc.Fences (-1 for inline)
}

func (c command) String() string { return fmt.Sprintf("README.md:%d: %s", c.Line, c.Text) }

func parseREADME(file string) (*doc, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the README: %w", err)
	}
	d := &doc{Lines: strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")}
	d.Section = make([]string, len(d.Lines))
	prose := make([]string, len(d.Lines)) // fenced lines blanked, so line numbers stay
	section := ""
	for i := 0; i < len(d.Lines); i++ {
		l := d.Lines[i]
		if strings.HasPrefix(l, "```") {
			f := fence{Lang: strings.TrimSpace(strings.TrimPrefix(l, "```")), Line: i + 1}
			j := i + 1
			for ; j < len(d.Lines) && strings.TrimRight(d.Lines[j], " ") != "```"; j++ {
				f.Lines = append(f.Lines, d.Lines[j])
			}
			if j == len(d.Lines) {
				return nil, fmt.Errorf("README.md:%d: code block never closed", i+1)
			}
			for k := i; k <= j; k++ {
				d.Section[k] = section
			}
			d.Fences = append(d.Fences, f)
			i = j
			continue
		}
		if t, ok := strings.CutPrefix(l, "## "); ok {
			section = strings.TrimSpace(t)
		}
		d.Section[i] = section
		prose[i] = l
	}
	// Inline code cannot cross a paragraph (blank line), so pair backticks per paragraph.
	start := 0
	for i := 0; i <= len(prose); i++ {
		if i < len(prose) && strings.TrimSpace(prose[i]) != "" {
			continue
		}
		para := strings.Join(prose[start:i], "\n")
		for _, m := range spanRE.FindAllStringSubmatchIndex(para, -1) {
			line := start + 1 + strings.Count(para[:m[0]], "\n")
			d.Spans = append(d.Spans, span{
				Text:    strings.Join(strings.Fields(para[m[2]:m[3]]), " "),
				Line:    line,
				Section: d.Section[line-1],
			})
		}
		start = i + 1
	}
	return d, nil
}

var spanRE = regexp.MustCompile("`([^`]+)`")

// fences returns the blocks of one language.
func (d *doc) fences(lang string) []fence {
	var out []fence
	for _, f := range d.Fences {
		if f.Lang == lang {
			out = append(out, f)
		}
	}
	return out
}

// shCommands splits the sh blocks into commands.
func (d *doc) shCommands() []command {
	var out []command
	for fi, f := range d.Fences {
		if f.Lang != "sh" {
			continue
		}
		var cur string
		curLine := 0
		for i, l := range f.Lines {
			l = strings.TrimSpace(stripComment(l))
			if cur == "" {
				curLine = f.bodyLine(i)
			}
			cont := strings.HasSuffix(l, `\`)
			l = strings.TrimSpace(strings.TrimSuffix(l, `\`))
			cur = strings.TrimSpace(cur + " " + l)
			if !cont && cur != "" {
				out = append(out, command{Text: cur, Line: curLine, Fence: fi})
				cur = ""
			}
		}
		if cur != "" {
			out = append(out, command{Text: cur, Line: curLine, Fence: fi})
		}
	}
	return out
}

// stripComment drops a shell comment: a # at the start of a word, outside quotes.
func stripComment(l string) string {
	var quote byte
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return l[:i]
		}
	}
	return l
}

// commandWords are the programs whose inline spans are commands (and so are checked).
var commandWords = map[string]bool{
	"make": true, "go": true, "terraform": true, "archiver": true, "live-emulator": true,
	"aws": true, "zcat": true, "jq": true, "mkdir": true, "cp": true, "duckdb": true, "curl": true,
}

// inlineCommands are the spans of prose that are commands: a known program and at least
// one argument (`terraform` alone is a name, `terraform init` a command).
func (d *doc) inlineCommands() []command {
	var out []command
	for _, s := range d.Spans {
		w := strings.Fields(s.Text)
		if len(w) >= 2 && commandWords[w[0]] {
			out = append(out, command{Text: s.Text, Line: s.Line, Inline: true, Fence: -1})
		}
	}
	return out
}

func (d *doc) allCommands() []command { return append(d.shCommands(), d.inlineCommands()...) }

// table is a markdown table: its header cells and rows, each row with its README line.
type table struct {
	Header []string
	Rows   [][]string
	Lines  []int
}

// tableAfter finds the table whose header's first cell is first.
func (d *doc) table(first string) (table, error) {
	for i, l := range d.Lines {
		if !strings.HasPrefix(l, "|") {
			continue
		}
		h := splitRow(l)
		if len(h) == 0 || h[0] != first {
			continue
		}
		t := table{Header: h}
		for j := i + 2; j < len(d.Lines) && strings.HasPrefix(d.Lines[j], "|"); j++ {
			t.Rows = append(t.Rows, splitRow(d.Lines[j]))
			t.Lines = append(t.Lines, j+1)
		}
		return t, nil
	}
	return table{}, fmt.Errorf("README has no table with the header %q", first)
}

// splitRow splits a table row into cells; a | inside `code` does not split.
func splitRow(l string) []string {
	l = strings.TrimSpace(l)
	l = strings.TrimSuffix(strings.TrimPrefix(l, "|"), "|")
	var cells []string
	var cur strings.Builder
	code := false
	for _, r := range l {
		switch {
		case r == '`':
			code = !code
		case r == '|' && !code:
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

// codeIn returns the `code` spans of a piece of markdown.
func codeIn(s string) []string {
	var out []string
	for _, m := range spanRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// paragraph returns the prose paragraph that starts with prefix in the given section, and its line.
func (d *doc) paragraph(section, prefix string) (string, int, error) {
	for i, l := range d.Lines {
		if d.Section[i] != section || !strings.HasPrefix(l, prefix) {
			continue
		}
		j := i
		for j < len(d.Lines) && strings.TrimSpace(d.Lines[j]) != "" {
			j++
		}
		return strings.Join(d.Lines[i:j], "\n"), i + 1, nil
	}
	return "", 0, fmt.Errorf("README section %q has no paragraph starting %q", section, prefix)
}

func TestMarkdownParsing(t *testing.T) {
	d, err := parseREADME("testdata/sample.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Fences) != 2 || d.Fences[0].Lang != "sh" || d.Fences[1].Lang != "" || d.Fences[0].Line != 5 || d.Fences[1].Line != 19 {
		t.Fatalf("fences: %+v", d.Fences)
	}
	got := d.shCommands()
	want := []command{
		{Text: "make demo", Line: 6},
		{Text: "go run ./x --listen 127.0.0.1:1 --name 'a # b'", Line: 8},
		{Text: `echo "#x" y`, Line: 11},
	}
	if len(got) != len(want) {
		t.Fatalf("commands: %+v", got)
	}
	for i := range want {
		if got[i].Text != want[i].Text || got[i].Line != want[i].Line {
			t.Errorf("command %d = %q at %d, want %q at %d", i, got[i].Text, got[i].Line, want[i].Text, want[i].Line)
		}
	}
	in := d.inlineCommands()
	if len(in) != 2 || in[0].Text != "make build test" || in[0].Line != 3 || in[1].Text != "terraform plan -detailed-exitcode" || in[1].Line != 16 {
		t.Errorf("inline commands: %+v", in)
	}
	if d.Section[15] != "Two" {
		t.Errorf("section of line 16 = %q", d.Section[15])
	}
	if c := splitRow("| `--x` | `a|b` | c |"); len(c) != 3 || c[1] != "`a|b`" {
		t.Errorf("splitRow = %q", c)
	}
}
