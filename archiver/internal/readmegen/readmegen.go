// Package readmegen writes the README's archiver command reference (usage and flag tables) from
// the commands' own -h output, so the README cannot drift from the code. `make readme` runs
// cmd/readmegen; TestREADMEUpToDate fails when README.md is stale.
package readmegen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/livehook/terraform-provider-livehook/archiver/compact"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/replay"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/verify"
)

// Commands are the archiver commands documented in the README, each by its Run function. A new
// command is one more line here and a marker pair in README.md.
var Commands = []struct {
	Name string
	Run  func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}{
	{"serve", server.Run},
	{"events", readback.Run},
	{"sessions", sessions.Run},
	{"verify", verify.Run},
	{"compact", compact.Run},
	{"replay", replay.Run},
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

// Update replaces the text between every `<!-- generated: archiver NAME -h -->` and
// `<!-- end generated -->` pair of readme with Markdown(Help(NAME)).
func Update(readme string) (string, error) {
	re := regexp.MustCompile(`(?s)(<!-- generated: archiver (\S+) -h \(make readme\) -->\n).*?(<!-- end generated -->)`)
	var err error
	out := re.ReplaceAllStringFunc(readme, func(block string) string {
		m := re.FindStringSubmatch(block)
		help, e := Help(m[2])
		if e != nil {
			err = e
			return block
		}
		return m[1] + Markdown(help) + m[3]
	})
	return out, err
}
