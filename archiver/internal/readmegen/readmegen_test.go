package readmegen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
)

// TestDocsUpToDate: every generated archiver reference in README.md and the guide templates is
// what the code prints now, and every command has exactly one.
func TestDocsUpToDate(t *testing.T) {
	files, err := Files(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("no guide templates found: %v", files)
	}
	where := map[string][]string{}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Update(string(b), IsTemplate(path))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got != string(b) {
			t.Errorf("%s: the generated archiver reference is stale: run `make readme` and commit", path)
		}
		for _, name := range Sections(string(b)) {
			where[name] = append(where[name], filepath.Base(path))
		}
	}
	for _, c := range Commands {
		switch n := len(where[c.Name]); {
		case n == 0:
			t.Errorf("no generated section for `archiver %s` in README.md or templates/guides/ (add the marker pair to the guide that explains it)", c.Name)
		case n > 1:
			t.Errorf("`archiver %s` has %d generated sections (%v); keep one and link to it", c.Name, n, where[c.Name])
		}
	}
}

// TestUpdateTemplate: in a guide template a section is escaped so that executing the template
// (what tfplugindocs does) gives back exactly the Markdown, braces included; elsewhere it is not.
func TestUpdateTemplate(t *testing.T) {
	doc := "x\n<!-- generated: archiver serve -h (make readme) -->\nold\n<!-- end generated -->\ny\n"
	plain, err := Update(doc, false)
	if err != nil {
		t.Fatal(err)
	}
	help, _ := Help("serve")
	want := strings.Replace(doc, "old\n", Markdown(help), 1)
	if plain != want {
		t.Fatalf("Update(plain) =\n%s\nwant\n%s", plain, want)
	}
	if !strings.Contains(templateBraces.Replace("a {{b}} c"), `{{"{{"}}b{{"}}"}}`) {
		t.Errorf("braces not escaped: %s", templateBraces.Replace("a {{b}} c"))
	}
	for _, md := range []string{"a {{ .Evil }} b }} {{", want} {
		tmpl, err := template.New("guide").Parse(templateBraces.Replace(md))
		if err != nil {
			t.Fatalf("escaped %q does not parse: %v", md, err)
		}
		var out strings.Builder
		if err := tmpl.Execute(&out, nil); err != nil {
			t.Fatal(err)
		}
		if out.String() != md {
			t.Errorf("rendered %q, want %q", out.String(), md)
		}
	}
	tmplDoc, err := Update(doc, true)
	if err != nil || tmplDoc != templateBraces.Replace(want) {
		t.Errorf("Update(template) = %q, %v", tmplDoc, err)
	}
}

func TestMarkdown(t *testing.T) {
	help := "usage: archiver x [flags]\n\nDoes x.\n\nFlags:\n" +
		"  -a string\n    \tthe a | pipe (default \"q\")\n" +
		"  -b\n    \ta switch\n" +
		"  -c duration\n    \twait (default: none (really))\n"
	got := Markdown(help)
	for _, want := range []string{
		"```\narchiver x [flags]\n```",
		"| `--a` | `q` | the a \\| pipe |",
		"| `--b` |  | a switch |",
		"| `--c` | `none (really)` | wait |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, got)
		}
	}
}
