// Command ociimage writes OCI image tarballs of the archiver from a GoReleaser dist/
// (package internal/ociimage): make image.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/livehook/terraform-provider-livehook/tools/internal/ociimage"
)

func main() {
	dist := flag.String("dist", "dist", "GoReleaser output directory (reads artifacts.json and metadata.json, writes the tarballs)")
	repo := flag.String("repo", ociimage.DefaultRepo, "repository the image is tagged with (docker load shows REPO:VERSION)")
	source := flag.String("source", ociimage.DefaultSource, "org.opencontainers.image.source label")
	ca := flag.String("ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the image for https:// S3 endpoints (\"\" for none)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: ociimage -dist dist [-repo REPO] [-source URL] [-ca-certs FILE]")
		os.Exit(2)
	}
	out, err := ociimage.FromDist(*dist, *repo, *source, *ca)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
	for _, o := range out {
		fmt.Println("ociimage: wrote", o)
	}
}
