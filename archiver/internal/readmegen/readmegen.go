// Package readmegen writes the archiver command reference (usage and flag tables) from the
// commands' own -h output into the documents that show it (the guide templates under
// templates/guides/, and README.md should it hold a section), so the docs cannot drift from the
// code. `make readme` runs cmd/readmegen, then renders docs/ from the templates; TestDocsUpToDate
// fails when a section is stale.
package readmegen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/livehook/terraform-provider-livehook/archiver/compact"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/replay"
	"github.com/livehook/terraform-provider-livehook/archiver/report"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/verify"
)

// Commands are the archiver commands documented, each by its Run function. A new command is one
// more line here and a marker pair in the guide that explains it (see Files).
var Commands = []struct {
	Name string
	Run  func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}{
	{"serve", server.Run},
	{"events", readback.Run},
	{"sessions", sessions.Run},
	{"verify", verify.Run},
	{"compact", compact.Run},
	{"drain", server.Drain},
	{"replay", replay.Run},
	{"report", report.Run},
}

// Help is a command's -h output.
func Help(name string) (string, error) {
	for _, c := range Commands {
		if c.Name == name {
			var out, errb bytes.Buffer
			c.Run(context.Background(), []string{"-h"}, &out, &errb)
			return out.String() + errb.String(), nil
		}
	}
	return "", fmt.Errorf("no archiver command %q", name)
}

var (
	flagLine   = regexp.MustCompile(`^  -(\S+)(?: (\S+))?$`)
	defaultEnd = regexp.MustCompile(` \(default:? ([^()]*(?:\([^()]*\)[^()]*)*)\)$`)
)

// Markdown renders help as the README section: the usage lines in a code block, then a table of
// the flags with their defaults.
func Markdown(help string) string {
	head, flags, _ := strings.Cut(help, "\nFlags:\n")
	if flags == "" {
		head, flags, _ = strings.Cut(help, "\nflags:\n")
	}
	var b strings.Builder
	usage, _, _ := strings.Cut(strings.TrimSpace(head), "\n\n")
	b.WriteString("```\n" + strings.TrimPrefix(usage, "usage: ") + "\n```\n\n")
	b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
	lines := strings.Split(flags, "\n")
	for i := 0; i < len(lines); i++ {
		m := flagLine.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		var text []string
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "    \t") {
			i++
			text = append(text, strings.TrimPrefix(lines[i], "    \t"))
		}
		meaning, def := strings.Join(text, " "), ""
		if d := defaultEnd.FindStringSubmatchIndex(meaning); d != nil {
			def = strings.Trim(meaning[d[2]:d[3]], `"`)
			meaning = meaning[:d[0]]
		}
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s |\n", m[1], def, strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(meaning))
	}
	return b.String()
}

// sectionRE matches a generated section: its opening marker (with the command's name), its text,
// its closing marker.
var sectionRE = regexp.MustCompile(`(?s)(<!-- generated: archiver (\S+) -h \(make readme\) -->\n).*?(<!-- end generated -->)`)

// Sections are the names of the commands whose reference doc holds, in order.
func Sections(doc string) []string {
	var names []string
	for _, m := range sectionRE.FindAllStringSubmatch(doc, -1) {
		names = append(names, m[2])
	}
	return names
}

// Files are the documents that may hold generated sections, relative to the repository root:
// README.md and every guide template (tfplugindocs renders templates/guides/X.md.tmpl into
// docs/guides/X.md, so the template is where a section is written).
func Files(root string) ([]string, error) {
	guides, err := filepath.Glob(filepath.Join(root, "templates", "guides", "*.md.tmpl"))
	if err != nil {
		return nil, err
	}
	return append([]string{filepath.Join(root, "README.md")}, guides...), nil
}

// IsTemplate says whether path is a Go template (a tfplugindocs template), whose sections Update
// must escape.
func IsTemplate(path string) bool { return strings.HasSuffix(path, ".tmpl") }

// templateBraces escapes what would start or end a Go template action, so that a flag's help text
// with "{{" renders as written.
var templateBraces = strings.NewReplacer("{{", `{{"{{"}}`, "}}", `{{"}}"}}`)

// Update replaces the text between every `<!-- generated: archiver NAME -h (make readme) -->` and
// `<!-- end generated -->` pair of doc with Markdown(Help(NAME)); template says doc is a Go
// template (IsTemplate), where the section is escaped to render as Markdown gave it.
func Update(doc string, template bool) (string, error) {
	re := sectionRE
	var err error
	out := re.ReplaceAllStringFunc(doc, func(block string) string {
		m := re.FindStringSubmatch(block)
		help, e := Help(m[2])
		if e != nil {
			err = e
			return block
		}
		md := Markdown(help)
		if template {
			md = templateBraces.Replace(md)
		}
		return m[1] + md + m[3]
	})
	return out, err
}
