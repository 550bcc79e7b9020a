// Command readmegen rewrites the generated sections of README.md (`make readme`).
package main

import (
	"fmt"
	"os"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/readmegen"
)

func main() {
	path := "README.md"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	if err := run(path); err != nil {
		fmt.Fprintf(os.Stderr, "readmegen: %v\n", err)
		os.Exit(1)
	}
}

func run(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := readmegen.Update(string(b))
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(out), 0o644)
}
