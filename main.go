// Command terraform-provider-livehook is the Terraform provider for Huawei Cloud Live
// publish notifications (livehook).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/livehook/terraform-provider-livehook/internal/provider"
)

// version is stamped at build time from the release tag (GoReleaser, make build):
// go build -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	var debug, showVersion bool
	flag.BoolVar(&debug, "debug", false, "start the provider in debug mode (for debuggers such as delve); prints a TF_REATTACH_PROVIDERS value to use with terraform")
	flag.BoolVar(&showVersion, "version", false, "print the version and exit")
	flag.Parse()
	if showVersion {
		fmt.Println("terraform-provider-livehook", version)
		return
	}

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: provider.Address,
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err.Error())
	}
}
