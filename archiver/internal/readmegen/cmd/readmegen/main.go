// Command readmegen rewrites the generated archiver reference sections of the given files, by
// default of README.md and templates/guides/*.md.tmpl under the current directory (`make readme`,
// which then renders docs/ from the templates).
package main

import (
	"fmt"
	"os"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/readmegen"
)

func main() {
	paths := os.Args[1:]
	if len(paths) == 0 {
		var err error
		if paths, err = readmegen.Files("."); err != nil {
			fmt.Fprintf(os.Stderr, "readmegen: %v\n", err)
			os.Exit(1)
		}
	}
	for _, path := range paths {
		if err := run(path); err != nil {
			fmt.Fprintf(os.Stderr, "readmegen: %s: %v\n", path, err)
			os.Exit(1)
		}
	}
}

func run(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := readmegen.Update(string(b), readmegen.IsTemplate(path))
	if err != nil {
		return err
	}
	if out == string(b) {
		return nil // untouched files keep their modification time
	}
	return os.WriteFile(path, []byte(out), 0o644)
}
