package readmegen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEUpToDate: the README's generated archiver reference is what the code prints now.
func TestREADMEUpToDate(t *testing.T) {
	path := filepath.Join("..", "..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Update(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(b) {
		t.Fatal("README.md's generated archiver reference is stale: run `make readme` and commit")
	}
	for _, c := range Commands {
		if !strings.Contains(string(b), "<!-- generated: archiver "+c.Name+" -h (make readme) -->") {
			t.Errorf("README.md has no generated section for `archiver %s`", c.Name)
		}
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
