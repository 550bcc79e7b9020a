// Command mirror turns a GoReleaser dist/ into a Terraform provider mirror (package
// internal/mirror): make mirror DIR=...
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/livehook/terraform-provider-livehook/tools/internal/mirror"
)

func main() {
	dist := flag.String("dist", "dist", "GoReleaser output directory with the provider zips and SHA256SUMS")
	out := flag.String("out", "", "mirror directory to create or extend (required)")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: mirror -dist dist -out DIR")
		os.Exit(2)
	}
	rel, err := mirror.Make(*dist, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mirror:", err)
		os.Exit(1)
	}
	fmt.Printf("mirror: %s %s for %s in %s\n", mirror.Address, rel.Version, strings.Join(rel.Platforms(), ", "), *out)
}
